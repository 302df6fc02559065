#!/usr/bin/env python
"""Train or evaluate the multi-label image classifier (the paper's VinDr-CXR classification, Fig. 5).

    python tools/train_classifier.py --config-file configs/VinDr-CXR/classification/classifier_D_121_sna.yaml
    python tools/train_classifier.py --config-file <cfg> --eval-only MODEL.WEIGHTS <output>/model_final.pth
    python tools/train_classifier.py --config-file <cfg> --resume          # continue OUTPUT_DIR's run

The config is a classifier's (MODEL.META_ARCHITECTURE "ImageClassifier", sna_det/modeling/classifier.py):
a backbone of the project with MODEL.ATTENTION placed as for detection, on a prepared dataset's
registered splits (VinDr-CXR's, or your own COCO JSONs through DATASETS.REGISTER): an image's labels
are the classes of its boxes, and with MODEL.CLASSIFIER.NO_FINDING "No finding" for an image without
one. Training is tools/train_net.py's (the same set-up, checks, checkpoints, exact --resume,
metrics.json); each evaluation writes per-class AUROC to OUTPUT_DIR/auroc_<dataset>.json and
OUTPUT_DIR/inference/results.json (tools/compare_runs.py puts runs side by side). Trailing KEY VALUE
pairs override the config. docs/classification.md.
"""

import argparse
import importlib.util
from pathlib import Path


def _train_net():
    spec = importlib.util.spec_from_file_location("train_net", Path(__file__).with_name("train_net.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (no torch)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="a classifier config")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last_checkpoint")
    parser.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS only")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per machine (GPUs, or CPU processes)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE pairs")
    args = parser.parse_args(argv)
    if any(token.startswith("--") for token in args.opts):  # a flag after the overrides: honour it
        from sna_det.utils.cli import parse_args_with_overrides

        args = parse_args_with_overrides(parser, argv)
    return args


def run(args: argparse.Namespace) -> int:
    """Check that the config is a classifier's, then train_net.py's ``run``."""
    from sna_det.engine import setup_cfg
    from sna_det.engine.classifier import CLASSIFIER_ARCHITECTURE
    from sna_det.utils.cli import CommandError

    cfg = setup_cfg(args.config_file, args.opts)
    if cfg.MODEL.META_ARCHITECTURE != CLASSIFIER_ARCHITECTURE:
        raise CommandError(
            f"{args.config_file}: MODEL.META_ARCHITECTURE is {cfg.MODEL.META_ARCHITECTURE!r}, not "
            f"{CLASSIFIER_ARCHITECTURE!r}: a detector config (train it with tools/train_net.py)"
        )
    flags = [*(["--resume"] if args.resume else []), *(["--eval-only"] if args.eval_only else [])]
    train_net = _train_net()
    argv = ["--config-file", args.config_file, "--num-gpus", str(args.num_gpus), *flags, *args.opts]
    return train_net.run(train_net.parse_args(argv))


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(run, arguments)
