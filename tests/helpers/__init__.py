"""What many tests share: the repository root, a project script as a module, and a script run as a
user runs it (a second interpreter, the checkout first on ``PYTHONPATH``)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Mapping, Optional

ROOT = Path(__file__).resolve().parents[2]
"""The repository root."""


def load_script(path: str) -> ModuleType:
    """``ROOT / path`` (e.g. ``"tools/export_model.py"``) imported as a module, so a test calls its
    ``parse_args`` / ``main`` in this process (no second interpreter start)."""
    file = ROOT / path
    spec = importlib.util.spec_from_file_location(f"script_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_env(extra: Optional[Mapping[str, Optional[str]]] = None) -> dict:
    """This process's environment with the checkout first on ``PYTHONPATH`` and no ``PYTHONWARNINGS``,
    then ``extra``'s variables set (a None value: removed)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONWARNINGS", None)
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_script(path: str, *args, env: Optional[Mapping[str, Optional[str]]] = None, timeout: float = 600, **kwargs):
    """``python ROOT/path args...`` from ``ROOT``, output captured as text: a ``CompletedProcess``."""
    command = [sys.executable, str(ROOT / path), *map(str, args)]
    return subprocess.run(
        command, cwd=ROOT, env=script_env(env), capture_output=True, text=True, timeout=timeout, **kwargs
    )


def run_main(path: str, *args) -> int:
    """``ROOT/path args...`` run in this process as ``python`` would run it (its ``__main__`` block,
    so through ``run_tool``: the one error path); its exit code. Output goes to this process's
    stdout and stderr (``capsys`` reads it)."""
    import runpy

    saved = sys.argv
    sys.argv = [str(ROOT / path), *map(str, args)]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv = saved
    return 0


def load_light_cfg(path):
    """The project's config of ``path`` (``setup_cfg``) on the CPU, with fewer proposals and sampled RoIs:
    the same architecture for a fraction of the CPU time."""
    from sna_det.engine import setup_cfg

    opts = ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "64"]
    for key, value in (("PRE_NMS_TOPK", 200), ("POST_NMS_TOPK", 50)):
        opts += [f"MODEL.RPN.{key}_TRAIN", str(value), f"MODEL.RPN.{key}_TEST", str(value)]
    return setup_cfg(path, opts)
