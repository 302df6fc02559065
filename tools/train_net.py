#!/usr/bin/env python
"""Train or evaluate a detectron2 model with sna_det's backbones, datasets and evaluators.

    python tools/train_net.py --config-file configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml
    python tools/train_net.py --config-file <cfg> --eval-only MODEL.WEIGHTS <output>/model_final.pth
    python tools/train_net.py --config-file <cfg> --num-gpus 8          # DDP through detectron2's launch
    python tools/train_net.py --main [KEY VALUE ...]                    # what `make train` runs
    python tools/train_net.py --config-file configs/lazy/faster_rcnn_R_18_FPN_sna_demo.py [key=value ...]

--main trains the paper's main experiment (configs/vincxr_faster_sna.yaml) when its datasets are
prepared (a DATASETS.ROOTS.VINDR_CXR among the overrides must be: else an error), else says why and trains the demo
(configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml). Without CUDA it runs on the CPU (and --num-gpus N
starts N CPU processes over gloo). With TEST.AUG.ENABLED True the final evaluation (and --eval-only)
is followed by one with test-time augmentation (TEST.AUG: sizes, flip), written to OUTPUT_DIR/inference_TTA.
A .py config file is a LazyConfig (detectron2's tools/lazyconfig_train_net.py;
sna_det/engine/lazy_config.py), overridden by key=value pairs.
"""

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
MAIN_CONFIG = ROOT / "configs" / "vincxr_faster_sna.yaml"
DEMO_CONFIG = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_sna_demo.yaml"


def parse_args(argv=None) -> argparse.Namespace:
    """detectron2's standard training arguments (``default_argument_parser``) and ``--main``; no torch."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--config-file", metavar="FILE", help="path to config file")
    which.add_argument(
        "--main",
        action="store_true",
        help=f"{MAIN_CONFIG.relative_to(ROOT)} when its datasets are prepared, else {DEMO_CONFIG.relative_to(ROOT)}",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last_checkpoint")
    parser.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS only")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per machine (GPUs, or CPU processes)")
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument("--machine-rank", type=int, default=0, help="the rank of this machine (unique per machine)")
    port = 2**15 + 2**14 + hash(os.getuid() if sys.platform != "win32" else 1) % 2**14  # as detectron2's
    parser.add_argument("--dist-url", default=f"tcp://127.0.0.1:{port}", help="torch.distributed init URL")
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE pairs (key=value for a .py LazyConfig)"
    )
    args = parser.parse_args(argv)
    if any(token.startswith("--") for token in args.opts):  # a flag after the overrides: honour it
        from sna_det.utils.cli import parse_args_with_overrides

        args = parse_args_with_overrides(parser, argv)
    return args


def main(cfg, args):
    """One training (or evaluation) process: detectron2's ``default_setup``, then the Trainer."""
    import logging

    from detectron2.engine import default_setup
    from detectron2.utils import comm

    from sna_det.data.datasets import register_datasets_from_config
    from sna_det.engine import SafeCheckpointer, enable_cpu_ddp
    from sna_det.engine.classifier import trainer_class
    from sna_det.utils.metrics_json import trim_metrics_for_resume

    Trainer = trainer_class(cfg)  # the image classifier's (tools/train_classifier.py) or the detectors'

    register_datasets_from_config(cfg)  # again: a process started by launch has only the built-in registrations
    default_setup(cfg, args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        checkpointer = SafeCheckpointer(model, cfg.OUTPUT_DIR, allow_unsafe=cfg.MODEL.ALLOW_UNSAFE_WEIGHTS, strict=True)
        checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        results = Trainer.test(cfg, model)
        if cfg.TEST.AUG.ENABLED:  # then with test-time augmentation, as detectron2's train_net
            results.update(Trainer.test_with_TTA(cfg, model))
        return results
    enable_cpu_ddp()
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    if args.resume and comm.is_main_process():
        kept, dropped = trim_metrics_for_resume(os.path.join(cfg.OUTPUT_DIR, "metrics.json"), trainer.start_iter)
        if dropped:
            logging.getLogger("detectron2").info(
                f"metrics.json: kept {kept} records before iteration {trainer.start_iter}, dropped {dropped} "
                "written after the last checkpoint (or cut short) by the interrupted run"
            )
    return trainer.train()


def run(args) -> int:
    """Choose the config (``--main``), check it, its datasets, OUTPUT_DIR and the weights to load (one
    line each, before any process starts or anything is written in OUTPUT_DIR), make SEED concrete
    (a resumed run's from its checkpoint), then ``main`` through detectron2's ``launch``."""
    from sna_det import DatasetNotPreparedError, check_datasets_ready
    from sna_det.config import check_batch_per_process
    from sna_det.data.datasets import check_num_classes
    from sna_det.data.datasets.catalog import check_mask_format, images_in_both
    from sna_det.engine import choose_main_config, setup_cfg
    from sna_det.engine.lazy_config import is_lazy_config
    from sna_det.engine.preflight import check_datasets_registered, check_weights, with_concrete_seed
    from sna_det.utils.cli import CommandError, check_writable_dir

    if is_lazy_config(args.config_file or ""):  # a Python LazyConfig (configs/lazy/*.py)
        return run_lazy(args)
    try:
        if args.main:
            args.config_file, why_not = choose_main_config(MAIN_CONFIG, DEMO_CONFIG, args.opts)
            if why_not:
                print(f"{MAIN_CONFIG.relative_to(ROOT)} is not ready: {why_not}", file=sys.stderr)
                print(f"training the demo instead: {Path(args.config_file).relative_to(ROOT)}", file=sys.stderr)
            else:
                print(f"training {MAIN_CONFIG.relative_to(ROOT)}", file=sys.stderr)
        cfg = setup_cfg(args.config_file, args.opts)
        if not args.eval_only:  # the training loader splits the batch
            check_batch_per_process("SOLVER.IMS_PER_BATCH", cfg.SOLVER.IMS_PER_BATCH, args.num_gpus * args.num_machines)
        names = cfg.DATASETS.TEST if args.eval_only else cfg.DATASETS.TRAIN + cfg.DATASETS.TEST
        check_datasets_registered(names)
        check_datasets_ready(names)
        check_num_classes(cfg, names)
        check_mask_format(cfg, cfg.DATASETS.TRAIN)
        if not args.eval_only:
            images_in_both(cfg.DATASETS.TRAIN, cfg.DATASETS.TEST)  # a warning naming them
    # ValueError: NUM_CLASSES against the dataset's classes
    except (DatasetNotPreparedError, ValueError) as error:
        raise CommandError(error.args[0]) from None
    if cfg.OUTPUT_DIR and args.machine_rank == 0:
        check_writable_dir(cfg.OUTPUT_DIR, "OUTPUT_DIR")
    recorded_seed = check_weights(cfg, resume=args.resume, eval_only=args.eval_only)
    cfg = with_concrete_seed(cfg, recorded_seed if args.resume else None)
    launch_processes(main, args, (cfg, args))
    return 0


def run_lazy(args) -> int:
    """``run`` for a LazyConfig: checked and its datasets ready before ``lazy_main`` is launched."""
    from sna_det import DatasetNotPreparedError, check_datasets_ready
    from sna_det.engine.lazy_config import check_lazy_batch, lazy_dataset_names, lazy_main, setup_lazy_config
    from sna_det.utils.cli import CommandError, check_writable_dir

    cfg = setup_lazy_config(args.config_file, args.opts)
    if not args.eval_only:
        check_lazy_batch(cfg, args.num_gpus * args.num_machines)
    try:
        check_datasets_ready(lazy_dataset_names(cfg, eval_only=args.eval_only))
    except (DatasetNotPreparedError, KeyError) as error:
        raise CommandError(error.args[0]) from None
    if cfg.train.output_dir and args.machine_rank == 0:
        check_writable_dir(cfg.train.output_dir, "train.output_dir")
    # each process loads the file again (a config may hold objects that do not pickle)
    launch_processes(lazy_main, args, (args,))
    return 0


def launch_processes(function: Callable[..., Any], args: argparse.Namespace, function_args: tuple) -> None:
    """``function(*function_args)`` in the processes of the command line's --num-gpus, --num-machines,
    --machine-rank and --dist-url (detectron2's ``launch``)."""
    from detectron2.engine import launch

    launch(
        function,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=function_args,
    )


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(
        run, arguments, interrupted="interrupted: to continue from the last checkpoint, add --resume to the command"
    )
