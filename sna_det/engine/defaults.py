"""The set-up every command, benchmark and test shares, as ``detectron2.engine.defaults``: building a
config from a file and overrides, the ``Trainer``, and the choice of the main experiment.

    cfg = setup_cfg("configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml", ["SOLVER.MAX_ITER", "10"])
    Trainer(cfg).train()
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
import yaml
from detectron2.config import CfgNode, get_cfg
from detectron2.data import build_detection_test_loader
from detectron2.engine import DefaultTrainer
from detectron2.engine.hooks import EvalHook
from detectron2.utils import comm

from ..config import ConfigError, add_sna_config, closest_config_keys, validate_config
from ..data.datasets import DatasetNotPreparedError, check_datasets_ready, register_datasets_from_config
from ..data.datasets.mapper import IntensityDatasetMapper
from ..evaluation import build_evaluator
from ..modeling.backbone_compile import compile_backbone_from_cfg
from ..modeling.test_time_augmentation import build_tta_model
from ..solver import build_optimizer
from ..utils import atomic_write_json
from ..utils.metrics_json import nan_to_none
from .autocast_trainer import AutocastTrainer, amp_dtype
from .exact_resume import ExactResume, PositionedBatchSampler, build_resumable_train_loader
from .power_iteration_diagnostics import PowerIterationDiagnostics, insert_before_writers
from .safe_checkpointer import SafeCheckpointer

__all__ = ["CPU_FALLBACK_MESSAGE", "Trainer", "choose_main_config", "setup_cfg"]

logger = logging.getLogger(__name__)

CPU_FALLBACK_MESSAGE = "CUDA is not available: running on the CPU (MODEL.DEVICE=cpu)."


TYPE_MISMATCH = re.compile(
    r"Type mismatch \((?P<old>.*?) vs\. (?P<new>.*?)\) with values \((?P<values>.*)\) for config key: (?P<key>\S+)",
    flags=re.S,
)


def _reason(error: BaseException) -> str:
    """One line: yacs and detectron2 put the message in args[0] (a KeyError's str() would add quotes);
    yacs' type mismatch, which prints a whole section, becomes the key, what it takes and what it got."""
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror}"
    message = str(error.args[0]) if error.args else type(error).__name__
    mismatch = TYPE_MISMATCH.search(message)
    if mismatch:
        expected = (
            "a section of keys" if "CfgNode" in mismatch["old"] else mismatch["old"].strip("<>").replace("class ", "")
        )
        got = " ".join(mismatch["values"].rsplit(" vs. ", 1)[-1].split())
        return f"{mismatch['key']}: takes {expected}, got {got[:80] + ('...' if len(got) > 80 else '')}"
    line = " ".join(message.split())
    return line if len(line) <= 400 else line[:400] + "..."


def _closest(cfg: CfgNode, error: BaseException) -> str:
    """The closest known keys to the one of yacs' "Non-existent config key: <key>", else ""."""
    unknown = re.match(r"Non-existent (?:config )?key: (\S+)", str(error.args[0]) if error.args else "")
    return closest_config_keys(cfg, unknown[1]) if unknown else ""


def _yaml_reason(config_file: str | os.PathLike, error: yaml.YAMLError) -> str:
    """``<file>: line L, column C: <problem> (<context>)``, naming the file where it is (a _BASE_ or the file)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    where = str(config_file)
    if mark is not None:
        if mark.name and mark.name not in (str(config_file), "<file>", "<unicode string>"):
            where = f"{config_file}: {mark.name}"
        where += f": line {mark.line + 1}, column {mark.column + 1}"
    return f"{where}: YAML syntax error: {problem}" + (f" ({context})" if context else "")


def _check_config_text(path: Path) -> None:
    """``ConfigError`` for a file that is not YAML or not a mapping of keys (empty, a list ...)."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (YAML) file") from None
    except yaml.constructor.ConstructorError:
        return  # python tags: detectron2 reads those with its unsafe loader
    except yaml.YAMLError as error:
        raise ConfigError(_yaml_reason(path, error)) from None
    if loaded is None:
        raise ConfigError(f"{path}: empty config file (no keys; start from one in configs/, e.g. with _BASE_)")
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: not a config: a YAML mapping of keys is expected, got a {type(loaded).__name__}")


def setup_cfg(config_file: str | os.PathLike, opts: Sequence[str] = (), *, cpu_fallback: bool = True) -> CfgNode:
    """The project's config: detectron2's defaults, ``add_sna_config``, the file, then ``opts``
    (``KEY VALUE`` pairs), frozen; its datasets registered below ``DATASETS.ROOTS``.

    Values are checked right after merging (``validate_config``), before anything is built. With
    ``cpu_fallback``, a CUDA device without CUDA becomes the CPU, with a logged warning.
    Raises ``ConfigError`` naming the file or key for a missing file, an unknown key, a value of the
    wrong type or one that cannot work.
    """
    path = Path(config_file)
    if not path.is_file():
        raise ConfigError(f"{config_file}: no such config file")
    _check_config_text(path)
    cfg = get_cfg()
    add_sna_config(cfg)
    try:
        cfg.merge_from_file(str(path))
    except yaml.YAMLError as error:  # in a _BASE_ file
        raise ConfigError(_yaml_reason(config_file, error)) from None
    except (KeyError, ValueError, AssertionError, OSError) as error:
        raise ConfigError(f"{config_file}: {_reason(error)}{_closest(cfg, error)}") from None
    except (TypeError, AttributeError):  # detectron2 reading a _BASE_ that is empty or not a mapping
        raise ConfigError(f"{config_file}: a file it includes (_BASE_) is empty or not a mapping of keys") from None
    try:
        cfg.merge_from_list(list(opts))
    except (KeyError, ValueError, AssertionError) as error:
        raise ConfigError(f"config override: {_reason(error)}{_closest(cfg, error)}") from None
    validate_config(cfg)
    if cpu_fallback and cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
        logger.warning(CPU_FALLBACK_MESSAGE)
    cfg.freeze()
    register_datasets_from_config(cfg)
    return cfg


def choose_main_config(
    main_config: str | os.PathLike, fallback_config: str | os.PathLike, opts: Sequence[str] = ()
) -> Tuple[str, Optional[str]]:
    """(config to train, why not ``main_config``: None when it is used).

    ``main_config`` with ``opts`` (so a ``DATASETS.ROOTS`` given there counts) is used when its
    training and test datasets are prepared; otherwise ``fallback_config``, with the reason (the
    dataset, the missing file, how to prepare it). A config that does not load, a dataset that is not
    registered, or one not prepared below a ``DATASETS.ROOTS`` given in ``opts`` raises: those are
    errors, not "not prepared".
    """
    from .preflight import check_datasets_registered

    cfg = setup_cfg(main_config, opts, cpu_fallback=False)
    check_datasets_registered(cfg.DATASETS.TRAIN + cfg.DATASETS.TEST)
    roots = [key for key in list(opts)[::2] if str(key).startswith("DATASETS.ROOTS.")]
    try:
        check_datasets_ready(cfg.DATASETS.TRAIN + cfg.DATASETS.TEST)
    except DatasetNotPreparedError as error:
        if roots:  # a root the user gave must be the prepared one: a typo does not train the demo
            raise DatasetNotPreparedError(f"{error} ({roots[0]} was given: prepare it there or correct it)") from None
        return str(fallback_config), str(error)
    return str(main_config), None


class Trainer(DefaultTrainer):
    """DefaultTrainer whose evaluator follows the dataset's ``evaluator_type`` metadata, whose checkpoints
    load safely (and strictly when resuming) and save atomically, whose resumed runs are the
    uninterrupted run (``sna_det.engine.exact_resume``), with SNA's power-iteration diagnostics when
    MODEL.SNA.DIAGNOSTICS_PERIOD > 0, mixed precision on any device (``SOLVER.AMP``), the backbone
    compiled when ``MODEL.BACKBONE_COMPILE.ENABLED``, and with ``TEST.AUG.ENABLED`` an evaluation with
    test-time augmentation after the plain one at the end of training (``test_with_TTA``), as detectron2's
    tools/train_net.py.

    ``cfg.SEED`` < 0 is replaced by a seed drawn once (shared by all processes) and logged; to resume
    such a run, give the SEED recorded in its config.yaml (tools/train_net.py does)."""

    def __init__(self, cfg: CfgNode):
        if cfg.SEED < 0:
            cfg = cfg.clone()
            cfg.defrost()
            cfg.SEED = comm.shared_random_seed()
            cfg.freeze()
            logger.info(f"SEED -1: using SEED {cfg.SEED}")
        super().__init__(cfg)
        if cfg.SOLVER.AMP.ENABLED:  # detectron2's AMPTrainer is CUDA and float16 only
            device_type = torch.device(cfg.MODEL.DEVICE).type
            step = self._trainer
            self._trainer = AutocastTrainer(
                step.model, step.data_loader, step.optimizer,
                device_type=device_type, dtype=amp_dtype(cfg.SOLVER.AMP.DTYPE, device_type),
            )  # fmt: skip

    @classmethod
    def build_model(cls, cfg):
        """detectron2's model, its backbone compiled when ``MODEL.BACKBONE_COMPILE.ENABLED``."""
        return compile_backbone_from_cfg(cfg, super().build_model(cfg))

    @classmethod
    def build_train_loader(cls, cfg):
        """Batch ``k`` depends on SEED and ``k`` only, so that a resumed run reads what the uninterrupted one did;
        images read as predict reads them (``IntensityDatasetMapper``)."""
        return build_resumable_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        """detectron2's test loader, its images read as predict reads them (``IntensityDatasetMapper``)."""
        return build_detection_test_loader(cfg, dataset_name, mapper=IntensityDatasetMapper(cfg, False))

    def build_hooks(self):
        # DefaultTrainer's checkpointer, made safe: no code from loaded files runs, saves are atomic,
        # a resume is strict and weights of another shape are refused unless allowed
        self.checkpointer = SafeCheckpointer(
            self.checkpointer.model,
            self.cfg.OUTPUT_DIR,
            allow_unsafe=self.cfg.MODEL.ALLOW_UNSAFE_WEIGHTS,
            allow_shape_mismatch=self.cfg.MODEL.WEIGHTS_ALLOW_SHAPE_MISMATCH,
            **self.checkpointer.checkpointables,
        )
        hooks = [ExactResume(self.cfg.SEED), *super().build_hooks()]
        if self.cfg.MODEL.SNA.DIAGNOSTICS_PERIOD > 0:
            diagnostics = PowerIterationDiagnostics(self.cfg.MODEL.SNA.DIAGNOSTICS_PERIOD, self.cfg.OUTPUT_DIR)
            insert_before_writers(hooks, diagnostics)
        if self.cfg.TEST.AUG.ENABLED:  # period 0: once, after training, after the plain evaluation
            insert_before_writers(hooks, EvalHook(0, lambda: self.test_with_TTA(self.cfg, self.model)))
        return hooks

    def resume_or_load(self, resume: bool = True) -> None:
        """As detectron2's; besides, removes the temporary files of a save a kill interrupted, continues
        the data stream after the batches already used, and when the checkpoint is the last iteration's
        (a kill while writing model_final), writes model_final.pth from it."""
        if resume and comm.is_main_process():
            removed = self.checkpointer.remove_stale_temporary_files()
            if removed:
                logger.info(f"removed {', '.join(removed)}: left by a save that was interrupted")
        super().resume_or_load(resume=resume)
        batches = getattr(self._trainer.data_loader, "batch_sampler", None)
        if isinstance(batches, PositionedBatchSampler):  # (a subclass may build another loader)
            batches.start_batch = self.start_iter
        final = os.path.join(self.cfg.OUTPUT_DIR, "model_final.pth")
        if resume and self.start_iter >= self.max_iter and not os.path.isfile(final) and comm.is_main_process():
            logger.info(f"{final} is missing (a kill while it was written): writing it from the last checkpoint")
            self.checkpointer.save("model_final", iteration=self.start_iter - 1)

    @classmethod
    def build_optimizer(cls, cfg, model):
        """``SOLVER.OPTIMIZER``: SGD, Adam or AdamW (sna_det/solver/build.py)."""
        return build_optimizer(cfg, model)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_evaluator(cfg, dataset_name, output_folder or os.path.join(cfg.OUTPUT_DIR, "inference"))

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """Evaluate, and save the metrics as ``OUTPUT_DIR/inference/results.json`` ({dataset: {task: metrics}})."""
        results = super().test(cfg, model, evaluators)
        _save_results(cfg, results)
        return results

    @classmethod
    def test_with_TTA(cls, cfg, model):
        """Evaluate ``build_tta_model(cfg, model)`` (``TEST.AUG``), the evaluators writing to
        ``OUTPUT_DIR/inference_TTA``; add its metrics to ``inference/results.json`` as
        {dataset: {"<task>_TTA": metrics}} beside the plain ones. Returns detectron2's results, keys + "_TTA"."""
        logging.getLogger("detectron2.trainer").info("Running inference with test-time augmentation ...")
        folder = os.path.join(cfg.OUTPUT_DIR, "inference_TTA")
        evaluators = [cls.build_evaluator(cfg, name, folder) for name in cfg.DATASETS.TEST]
        results = super().test(cfg, build_tta_model(cfg, model), evaluators)
        by_dataset = _by_dataset(cfg, results)
        _save_results(
            cfg, {name: {f"{task}_TTA": m for task, m in r.items()} for name, r in by_dataset.items()}, merge=True
        )
        return {f"{key}_TTA": value for key, value in results.items()}


def _by_dataset(cfg, results) -> dict:
    """DefaultTrainer.test's results ({task: metrics} for one test dataset) as {dataset: {task: metrics}}."""
    return {cfg.DATASETS.TEST[0]: results} if len(cfg.DATASETS.TEST) == 1 else results


def _save_results(cfg, results, merge: bool = False) -> None:
    """Write ``OUTPUT_DIR/inference/results.json`` ({dataset: {task: metrics}}) on the main process; with
    ``merge``, ``results`` are already by dataset and join the tasks the file holds."""
    if not comm.is_main_process():
        return
    path = os.path.join(cfg.OUTPUT_DIR, "inference", "results.json")
    by_dataset = results if merge else _by_dataset(cfg, results)
    if merge and os.path.isfile(path):
        with open(path, encoding="utf-8") as file:
            saved = json.load(file)
        by_dataset = {**saved, **{name: {**saved.get(name, {}), **r} for name, r in by_dataset.items()}}
    atomic_write_json(path, nan_to_none(by_dataset))
