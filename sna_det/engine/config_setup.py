"""The one config set-up every command, benchmark and test shares (as ``detectron2.engine.defaults``'s
``default_setup``): a config from a file and overrides, checked where each value enters, its datasets
registered; and the choice of the main experiment (``tools/train_net.py --main``).

    cfg = setup_cfg("configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml", ["SOLVER.MAX_ITER", "10"])
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
import yaml
from detectron2.config import CfgNode, get_cfg

from ..config import ConfigError, add_sna_config, closest_config_keys, validate_config
from ..data.datasets import DatasetNotPreparedError, check_datasets_ready, register_datasets_from_config

__all__ = ["CPU_FALLBACK_MESSAGE", "choose_main_config", "setup_cfg"]

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
