"""Training and evaluation of LazyConfigs (Python config files, detectron2's ``tools/lazyconfig_train_net.py``)
with the project's datasets, evaluators, safe checkpoints, mixed precision and backbone compilation.

``tools/train_net.py --config-file configs/lazy/<file>.py [key=value ...]`` comes here. A LazyConfig
has detectron2's ``model``, ``dataloader.{train,test,evaluator}``, ``optimizer``, ``lr_multiplier`` and
``train`` (``configs/lazy/common/train.py``: detectron2's keys plus ``amp.dtype``, ``backbone_compile``,
``clip_gradients``, ``seed``), and ``datasets``: ``ROOTS`` and ``REGISTER`` as ``DATASETS.ROOTS`` and
``DATASETS.REGISTER`` of a YAML config, registered the same way.
"""

from __future__ import annotations

import ast
import inspect
import logging
import os
import textwrap
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import torch
from detectron2.config import CfgNode, LazyConfig, instantiate
from detectron2.engine import SimpleTrainer, default_writers, hooks
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.utils import comm
from detectron2.utils.registry import locate
from omegaconf import DictConfig, ListConfig, OmegaConf

from ..config import ConfigError, check_batch_per_process, check_sizes, check_value, config_values
from ..data.datasets import register_datasets_from_config
from ..modeling.backbone_compile import compile_backbone
from ..utils import atomic_write_json
from ..utils.config_values import ConfigValue, closest_names
from ..utils.metrics_json import nan_to_none
from .autocast_trainer import AutocastTrainer, amp_dtype
from .config_setup import CPU_FALLBACK_MESSAGE
from .cpu_ddp import create_ddp_model
from .safe_checkpointer import SafeCheckpointer

__all__ = [
    "LAZY_KEYS",
    "check_lazy_batch",
    "is_lazy_config",
    "lazy_dataset_names",
    "lazy_main",
    "lazy_test",
    "lazy_train",
    "register_lazy_datasets",
    "setup_lazy_config",
    "validate_lazy_config",
]

logger = logging.getLogger("detectron2")

_TRAIN_SIZE, _TEST_SIZE = "dataloader.train.mapper.augmentations.0", "dataloader.test.mapper.augmentations.0"
LAZY_KEYS: Dict[str, str] = {
    "train.max_iter": "SOLVER.MAX_ITER",
    "train.eval_period": "TEST.EVAL_PERIOD",
    "train.checkpointer.period": "SOLVER.CHECKPOINT_PERIOD",
    "train.clip_gradients.clip_value": "SOLVER.CLIP_GRADIENTS.CLIP_VALUE",
    "optimizer.lr": "SOLVER.BASE_LR",
    "optimizer.momentum": "SOLVER.MOMENTUM",
    "optimizer.weight_decay": "SOLVER.WEIGHT_DECAY",
    "dataloader.train.total_batch_size": "SOLVER.IMS_PER_BATCH",
    "dataloader.train.num_workers": "DATALOADER.NUM_WORKERS",
    "dataloader.test.num_workers": "DATALOADER.NUM_WORKERS",
    f"{_TRAIN_SIZE}.short_edge_length": "INPUT.MIN_SIZE_TRAIN",
    f"{_TRAIN_SIZE}.max_size": "INPUT.MAX_SIZE_TRAIN",
    f"{_TEST_SIZE}.short_edge_length": "INPUT.MIN_SIZE_TEST",
    f"{_TEST_SIZE}.max_size": "INPUT.MAX_SIZE_TEST",
    "model.roi_heads.num_classes": "MODEL.ROI_HEADS.NUM_CLASSES",
    "model.backbone.attention": "MODEL.ATTENTION.TYPE",
    "model.backbone.stem": "MODEL.ATTENTION.STEM",
}
"""A LazyConfig's key -> the YAML key whose ``sna_det.config.config_values()`` entry it is checked against:
the two config systems refuse the same values."""


def is_lazy_config(path: str | os.PathLike) -> bool:
    """A ``.py`` config file is a LazyConfig; ``.yaml`` ones go through ``setup_cfg``."""
    return str(path).endswith(".py")


def setup_lazy_config(path: str | os.PathLike, opts: Sequence[str] = (), *, cpu_fallback: bool = True) -> DictConfig:
    """The LazyConfig at ``path`` with ``opts`` (``key=value``, detectron2's ``apply_overrides``) applied,
    its datasets registered (``register_lazy_datasets``). With ``cpu_fallback``, ``train.device`` "cuda"
    without CUDA becomes "cpu", with a logged warning. ``ConfigError`` naming the file or override."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such config file")
    try:
        cfg = LazyConfig.load(str(path))
    except Exception as error:  # a Python file: any error of its code  # noqa: BLE001
        raise ConfigError(f"{path}: {type(error).__name__}: {error}") from None
    for key in ("model", "dataloader", "optimizer", "lr_multiplier", "train"):
        if key not in cfg:
            raise ConfigError(f"{path}: has no {key!r} (a LazyConfig as configs/lazy/*.py)")
    for override in opts:
        _check_override_key(cfg, override.split("=", 1)[0].strip())
    try:
        cfg = LazyConfig.apply_overrides(cfg, list(opts))
    except Exception as error:  # noqa: BLE001
        first = str(error).splitlines()[0] if str(error) else ""  # hydra's parse errors span lines
        raise ConfigError(f"config override: {type(error).__name__}: {first}") from None
    for key in ("model", "dataloader", "optimizer", "lr_multiplier", "train"):
        if key not in cfg:
            raise ConfigError(f"{path}: has no {key!r} (a LazyConfig as configs/lazy/*.py)")
    validate_lazy_config(cfg)
    if cpu_fallback and str(cfg.train.device).startswith("cuda") and not torch.cuda.is_available():
        cfg.train.device = "cpu"
        logger.warning(CPU_FALLBACK_MESSAGE.replace("MODEL.DEVICE", "train.device"))
    register_lazy_datasets(cfg)
    return cfg


def _explicit_keywords(function: Any) -> Tuple[List[str], Optional[str]]:
    """(the keyword parameters of ``function``, the name of its ``**kwargs`` or None); ``TypeError``,
    ``ValueError`` where it has no signature."""
    parameters = inspect.signature(function).parameters
    keywords = [p for p, v in parameters.items() if v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)]
    var_keyword = next((p for p, v in parameters.items() if v.kind is v.VAR_KEYWORD), None)
    return keywords, var_keyword


def _kwargs_callees(function: Any, var_keyword: str) -> Optional[List[Any]]:
    """The callables ``function``'s source passes its ``**var_keyword`` on to (``f(**kwargs)``,
    ``mod.Class(**kwargs)``, resolved in its globals); None where that cannot be told."""
    function = inspect.unwrap(function)  # detectron2's @configurable: the globals of the function itself
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None
    callees = []
    for node in ast.walk(tree):
        forwards = isinstance(node, ast.Call) and any(
            k.arg is None and isinstance(k.value, ast.Name) and k.value.id == var_keyword for k in node.keywords
        )
        if not forwards:
            continue
        path = []
        func = node.func
        while isinstance(func, ast.Attribute):
            path.insert(0, func.attr)
            func = func.value
        if not isinstance(func, ast.Name) or func.id not in getattr(function, "__globals__", {}):
            return None
        callee = function.__globals__[func.id]
        for attribute in path:
            callee = getattr(callee, attribute, None)
        if not callable(callee):
            return None
        callees.append(callee)
    return callees or None


def _class_keywords(klass: type) -> Set[str]:
    """The keywords of a class's ``__init__``, and of its bases' while each passes ``**kwargs`` on
    (``super().__init__(**kwargs)``), down to ``nn.Module`` / ``object``, which take none."""
    names: Set[str] = set()
    for base in klass.__mro__:
        if base in (object, torch.nn.Module):
            break
        if "__init__" in base.__dict__:
            keywords, var_keyword = _explicit_keywords(base.__dict__["__init__"])
            names.update(k for k in keywords if k != "self")
            if var_keyword is None:
                break
    return names


def accepted_keywords(target: Any, depth: int = 0) -> Optional[Set[str]]:
    """The keywords a LazyCall ``target`` (a class, a function, or its dotted name) takes, its ``**kwargs``
    followed to where they are used: a class's bases' ``__init__`` (``super().__init__(**kwargs)``), a
    function's callees that receive them (detectron2's ``build_detection_train_loader`` -> ``DataLoader``).
    None where that cannot be told (then any keyword is accepted, and the call itself says)."""
    target = locate(target) if isinstance(target, str) else target
    try:
        if inspect.isclass(target):
            return _class_keywords(target)
        keywords, var_keyword = _explicit_keywords(target)
    except (TypeError, ValueError):  # no signature to read
        return None
    names = set(keywords)
    if var_keyword is None:
        return names
    callees = _kwargs_callees(target, var_keyword) if depth < 4 else None
    for callee in callees or ():
        more = accepted_keywords(callee, depth + 1)
        if more is None:
            return None
        names |= more
    return names if callees else None


def _check_override_key(cfg: DictConfig, key: str) -> None:
    """``ConfigError`` with the closest names for an override ``key`` the config has not, unless it is a new
    keyword of a LazyCall (``_target_``) that takes it, or a name below ``datasets.REGISTER``."""
    node: Any = cfg
    parts = key.split(".")
    for index, part in enumerate(parts):
        where = ".".join(parts[:index])
        if isinstance(node, DictConfig) and part in node:
            node = node[part]
            continue
        if isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if where == "datasets.REGISTER" or (where.startswith("datasets.REGISTER.") and index == len(parts) - 1):
            return  # a dataset name, or one of its keys (checked when it is registered)
        known: List[str] = list(node.keys()) if isinstance(node, DictConfig) else []
        if isinstance(node, DictConfig) and "_target_" in node and index == len(parts) - 1:
            keywords = accepted_keywords(node._target_)
            if keywords is None or part in keywords:
                return
            known = sorted((set(known) | keywords) - {"_target_"})
        raise ConfigError(
            f"config override {key}: {where or 'the config'} has no key {part!r}"
            + closest_names(key, [".".join([*parts[:index], name]) for name in known])
        )


def _value(cfg: DictConfig, key: str) -> Any:
    """The plain value at ``key`` (lists and dicts as Python's), or None where the config has none."""
    try:
        value = OmegaConf.select(cfg, key, default=None)
        return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    except Exception as error:  # an interpolation that does not resolve, a path through a value  # noqa: BLE001
        raise ConfigError(f"{key}: {type(error).__name__}: {' '.join(str(error).split())[:200]}") from None


def validate_lazy_config(cfg: DictConfig) -> None:
    """``ConfigError`` naming the first value of ``LAZY_KEYS`` (when the config has it) that its YAML key's
    ``config_values()`` entry refuses, a train.log_period < 1, or MIN_SIZE > MAX_SIZE."""
    values, specs = {key: _value(cfg, key) for key in LAZY_KEYS}, config_values()
    for key, yaml_key in LAZY_KEYS.items():
        if values[key] is not None:
            check_value(key, values[key], specs[yaml_key], named=yaml_key)
    log_period = _value(cfg, "train.log_period")
    check_value("train.log_period", 20 if log_period is None else log_period, ConfigValue("int", 1))
    for size in (_TRAIN_SIZE, _TEST_SIZE):
        low, high = values[f"{size}.short_edge_length"], values[f"{size}.max_size"]
        if low is not None and high is not None:
            check_sizes(f"{size}.short_edge_length", low, f"{size}.max_size", high)


def check_lazy_batch(cfg: DictConfig, processes: int) -> None:
    """``ConfigError`` unless ``dataloader.train.total_batch_size`` divides among ``processes``."""
    batch = cfg.dataloader.train.get("total_batch_size")
    if batch is not None:
        check_batch_per_process("dataloader.train.total_batch_size", int(batch), processes)


def register_lazy_datasets(cfg: DictConfig) -> None:
    """``cfg.datasets.ROOTS`` / ``.REGISTER`` (when present) registered by ``register_datasets_from_config``,
    as a YAML config's ``DATASETS.ROOTS`` / ``DATASETS.REGISTER``."""
    datasets = OmegaConf.to_container(cfg.get("datasets", {}), resolve=True) or {}
    unknown = sorted(set(datasets) - {"ROOTS", "REGISTER"})
    if unknown:
        raise ConfigError(f"datasets: unknown key(s) {unknown}; known: ['REGISTER', 'ROOTS']")
    node = CfgNode(
        {"DATASETS": CfgNode({"ROOTS": datasets.get("ROOTS", {}), "REGISTER": datasets.get("REGISTER", {})})}
    )
    try:
        register_datasets_from_config(node)
    except ValueError as error:
        raise ConfigError(str(error.args[0]).replace("DATASETS.", "datasets.")) from None


def _names(dataset: Any) -> List[str]:
    names = dataset.get("names", []) if dataset is not None else []
    return [names] if isinstance(names, str) else list(names)


def lazy_dataset_names(cfg: DictConfig, *, eval_only: bool = False) -> List[str]:
    """The dataset names of ``dataloader.test`` (and ``dataloader.train`` unless ``eval_only``)."""
    test = _names(cfg.dataloader.test.get("dataset"))
    return test if eval_only else _names(cfg.dataloader.train.get("dataset")) + test


def _build_model(cfg: DictConfig) -> torch.nn.Module:
    model = instantiate(cfg.model)
    logger.info(f"Model:\n{model}")
    model.to(cfg.train.device)
    compile_options = cfg.train.get("backbone_compile", {})
    if compile_options.get("enabled", False):
        compile_backbone(model, mode=compile_options.mode, backend=compile_options.backend)
    return model


def lazy_test(cfg: DictConfig, model: torch.nn.Module) -> dict:
    """``dataloader.evaluator`` on ``dataloader.test``; metrics printed and saved as
    ``<train.output_dir>/inference/results.json`` ({dataset: {task: metrics}}), as ``Trainer.test``."""
    if "evaluator" not in cfg.dataloader:
        return {}
    results = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
    if comm.is_main_process():
        print_csv_format(results)
        names = _names(cfg.dataloader.test.get("dataset"))
        path = os.path.join(cfg.train.output_dir, "inference", "results.json")
        atomic_write_json(path, nan_to_none({",".join(names): results}))
    return results


def _clip_gradients(cfg: DictConfig, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """``train.clip_gradients`` (``SOLVER.CLIP_GRADIENTS``'s keys, lower case) through detectron2's clipping."""
    clip = cfg.train.get("clip_gradients", {})
    if not clip.get("enabled", False):
        return optimizer
    solver = CfgNode({key.upper(): value for key, value in OmegaConf.to_container(clip, resolve=True).items()})
    return maybe_add_gradient_clipping(CfgNode({"SOLVER": CfgNode({"CLIP_GRADIENTS": solver})}), optimizer)


def lazy_train(cfg: DictConfig, resume: bool = False) -> None:
    """detectron2's LazyConfig training loop (``lazyconfig_train_net.do_train``) with ``SafeCheckpointer``,
    ``train.amp`` on any device (``AutocastTrainer``), ``train.clip_gradients`` and ``train.backbone_compile``."""
    model = _build_model(cfg)
    cfg.optimizer.params.model = model
    optimizer = _clip_gradients(cfg, instantiate(cfg.optimizer))
    train_loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model, **cfg.train.ddp)
    amp = cfg.train.get("amp", {})
    if amp.get("enabled", False):
        device_type = torch.device(cfg.train.device).type
        dtype = amp_dtype(amp.get("dtype", ""), device_type)
        trainer = AutocastTrainer(model, train_loader, optimizer, device_type=device_type, dtype=dtype)
    else:
        trainer = SimpleTrainer(model, train_loader, optimizer)
    checkpointer = SafeCheckpointer(
        model, cfg.train.output_dir, allow_unsafe=cfg.train.get("allow_unsafe_weights", False), trainer=trainer
    )
    main = comm.is_main_process()
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if main else None,
            hooks.EvalHook(cfg.train.eval_period, lambda: lazy_test(cfg, model)),
            hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter), period=cfg.train.log_period)
            if main
            else None,
        ]
    )
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=resume)
    start_iter = trainer.iter + 1 if resume and checkpointer.has_checkpoint() else 0
    trainer.train(start_iter, cfg.train.max_iter)


def lazy_main(args) -> dict | None:
    """One process of ``tools/train_net.py`` for the LazyConfig ``args.config_file`` with ``args.opts``:
    detectron2's ``default_setup``, then evaluation of ``train.init_checkpoint`` (``args.eval_only``) or training."""
    from detectron2.engine import default_setup

    cfg = setup_lazy_config(args.config_file, args.opts)
    default_setup(cfg, args)
    if args.eval_only:
        model = create_ddp_model(_build_model(cfg))
        allow_unsafe = cfg.train.get("allow_unsafe_weights", False)
        SafeCheckpointer(model, cfg.train.output_dir, allow_unsafe=allow_unsafe).resume_or_load(
            cfg.train.init_checkpoint, resume=args.resume
        )
        return lazy_test(cfg, model)
    lazy_train(cfg, resume=args.resume)
    return None
