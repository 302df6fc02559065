"""The output folder of a dataset preparer: proven writable before any work, its settings recorded so
that a re-run resumes (same settings) or refuses (other settings, unless ``rebuild``).

A preparer calls ``open_prepared_folder`` once, before decoding anything. It

1. creates the folder (and its parents) and writes and removes a probe file there, so a read-only
   folder or a parent that is a file is found at once (``PreparedFolderError`` naming the path);
2. compares ``settings`` with those recorded in ``prepare_settings.json`` by an earlier run: the same
   -> the earlier run's finished files are kept (resume); different -> refused, naming each differing
   setting. ``rebuild`` starts over instead: it first removes the earlier outputs (``outputs`` globs,
   the annotation files first, so the folder never looks complete meanwhile);
3. removes temporary files (``.*.tmp``) a killed run left beside its outputs;
4. records ``settings``.

Preparers write their per-image outputs atomically (``sna_det.utils.atomic_write``), so an output
that exists is complete, and write their annotation files last.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence

from ...utils import atomic_write_json

__all__ = ["SETTINGS_FILE", "PreparedFolder", "PreparedFolderError", "check_writable_folder", "open_prepared_folder"]

SETTINGS_FILE = "prepare_settings.json"


class PreparedFolderError(ValueError):
    """An output folder that cannot be used; the message names the folder and the reason."""


@dataclass
class PreparedFolder:
    path: Path
    resumed: bool
    """An earlier run with the same settings wrote here: its finished outputs are kept."""
    stale_removed: int
    """Temporary files of a killed run removed."""
    rebuilt: int
    """Outputs of an earlier run with other settings removed (``rebuild``)."""


def check_writable_folder(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) and prove a file can be written in it; ``PreparedFolderError`` if not."""
    path = Path(path)
    for folder in reversed([path, *path.parents]):
        if folder.exists() and not folder.is_dir():
            what = "the output folder" if folder == path else f"a parent of {path}"
            raise PreparedFolderError(f"{folder}: is a file, not a folder ({what})")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise PreparedFolderError(f"{path}: cannot write into this folder ({error.strerror or error})") from None
    return path


def _outputs(path: Path, patterns: Sequence[str]) -> List[Path]:
    return [p for pattern in patterns for p in sorted(path.glob(pattern)) if p.is_file()]


def _differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    return [
        f"{key} {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def open_prepared_folder(
    path: str | os.PathLike,
    settings: Dict[str, Any],
    outputs: Sequence[str],
    *,
    rebuild: bool = False,
) -> PreparedFolder:
    """Make ``path`` ready for a preparer with these JSON-able ``settings`` (module docstring).

    ``outputs``: glob patterns (relative to ``path``) of what the preparer writes, annotation files
    first; removed when rebuilding. Raises ``PreparedFolderError`` for an unusable folder, or other
    settings than the earlier run's without ``rebuild``.
    """
    path = check_writable_folder(path)
    settings = json.loads(json.dumps(settings))  # as it reads back (tuples -> lists)
    settings_file = path / SETTINGS_FILE
    old = None
    if settings_file.is_file():
        try:
            old = json.loads(settings_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            old = {"(unreadable settings file)": True}
    earlier = _outputs(path, outputs)
    refusal = None
    if old is not None and old != settings:
        refusal = f"prepared with other settings ({', '.join(_differences(old, settings))})"
    elif old is None and earlier:
        refusal = f"holds prepared files ({earlier[0].relative_to(path)}, ...) but no {SETTINGS_FILE}"
    rebuilt = 0
    if refusal is not None and not rebuild:
        raise PreparedFolderError(f"{path}: {refusal}; --rebuild replaces them, or choose another output folder")
    if rebuild:  # start over, whatever the earlier settings
        settings_file.unlink(missing_ok=True)
        for output in earlier:  # annotation files first: the folder never looks complete meanwhile
            output.unlink()
        rebuilt = len(earlier)
    folders = {path} | {(path / pattern).parent for pattern in outputs}
    stale = [p for folder in sorted(folders) if folder.is_dir() for p in folder.glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink()
    resumed = old == settings and not rebuild
    if not resumed:
        atomic_write_json(settings_file, settings)
    return PreparedFolder(path=path, resumed=resumed, stale_removed=len(stale), rebuilt=rebuilt)
