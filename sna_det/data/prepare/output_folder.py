"""The output folder of a dataset preparer: proven writable before any work, its settings recorded so
that a re-run resumes (same settings) or refuses (other settings, unless ``rebuild``).

A preparer calls ``open_prepared_folder`` once, before decoding anything. It

1. creates the folder (and its parents) and writes and removes a probe file there, so a read-only
   folder or a parent that is a file is found at once (``PreparedFolderError`` naming the path);
2. compares ``settings`` with those recorded in ``prepare_settings.json`` by an earlier run: the same
   -> the earlier run's finished files are kept (resume); different -> refused, naming each differing
   setting. ``rebuild`` starts over instead: it first removes the earlier outputs (``outputs`` globs,
   the annotation files first, so the folder never looks complete meanwhile);
3. removes the temporary files a killed run of the preparer left beside its outputs: only the atomic
   writer's (``.<name>.<8 characters>.tmp``, ``<name>`` matching one of ``outputs``), never another
   program's ``.*.tmp``;
4. records ``settings``.

``settings`` hold what the outputs depend on: the options, and the inputs (``input_identity``: the
resolved input root, a hash of the annotation files and of the sorted image list), so a re-run
with another input root or changed inputs is refused instead of mixed with the earlier outputs.
Preparers write their per-image outputs atomically (``sna_det.utils.atomic_write``), so an output
that exists is complete (a preparer still verifies it before keeping it), and write their
annotation files last.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence

from ...utils import atomic_write_json

__all__ = [
    "SETTINGS_FILE",
    "PreparedFolder",
    "PreparedFolderError",
    "check_writable_folder",
    "finish_prepared_folder",
    "hash_files",
    "hash_names",
    "input_identity",
    "open_prepared_folder",
]

SETTINGS_FILE = "prepare_settings.json"
REBUILD_FOLDER = ".rebuild"
"""Below the output folder: where ``rebuild`` with ``aside`` builds, until ``finish_prepared_folder``."""
ATOMIC_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")
"""Name of a temporary file of ``sna_det.utils.atomic_write`` (``tempfile.mkstemp(prefix=".<name>.",
suffix=".tmp")``: 8 characters of ``[a-z0-9_]`` between) for the target ``<name>``."""


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
    """Outputs of an earlier run with other settings removed (``rebuild``; with ``aside``: to be replaced)."""
    final: Path | None = None
    """With ``aside``: the folder that ``finish_prepared_folder`` moves the outputs of ``path`` into."""


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


def hash_files(files: Iterable[str | os.PathLike]) -> str:
    """SHA-256 (hex) of these files' bytes, in the given order, each preceded by its size."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{os.path.getsize(file)}\n".encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def hash_names(names: Iterable[str]) -> str:
    """SHA-256 (hex) of these names, sorted, one per line."""
    return hashlib.sha256("\n".join(sorted(names)).encode("utf-8", "surrogatepass")).hexdigest()


def input_identity(
    root: str | os.PathLike, annotation_files: Sequence[str | os.PathLike], images: Iterable[str]
) -> dict:
    """The inputs a prepared folder was made from, as settings: ``input_root`` (resolved),
    ``annotations_sha256`` (``hash_files``) and ``images`` (count and ``hash_names`` of the image
    names, e.g. ``"<file name> <bytes>"``). ``OSError`` for an annotation file that cannot be read."""
    images = list(images)
    return {
        "input_root": str(Path(root).resolve()),
        "annotations_sha256": hash_files(annotation_files),
        "images": f"{len(images)} sha256 {hash_names(images)}",
    }


SHA256 = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")


def _short(value: Any) -> str:
    """``repr(value)`` with SHA-256 digests cut to their first 12 digits (enough to tell two apart)."""
    return SHA256.sub(r"\1...", repr(value))


def _outputs(path: Path, patterns: Sequence[str]) -> List[Path]:
    return [p for pattern in patterns for p in sorted(path.glob(pattern)) if p.is_file()]


def _differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    return [
        f"{key} {_short(old.get(key))} -> {_short(new.get(key))}"
        for key in sorted(set(old) | set(new), key=lambda k: (k != "input_root", k))  # the root first
        if old.get(key) != new.get(key)
    ]


def _own_temporaries(path: Path, patterns: Sequence[str]) -> List[Path]:
    """Temporary files of the atomic writer for ``patterns`` (and the settings file) below ``path``."""
    names: Dict[Path, List[str]] = {path: [SETTINGS_FILE]}
    for pattern in patterns:
        names.setdefault((path / pattern).parent, []).append(Path(pattern).name)
    found = []
    for folder, globs in sorted(names.items()):
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob(".*.tmp")):
            match = ATOMIC_TEMPORARY.fullmatch(p.name)
            if match and p.is_file() and any(fnmatch.fnmatchcase(match["name"], g) for g in globs):
                found.append(p)
    return found


def _read_settings(settings_file: Path) -> Dict[str, Any]:
    """The recorded settings; ``PreparedFolderError`` naming the file if they are not a JSON object."""
    try:
        old = json.loads(settings_file.read_bytes())
    except OSError as error:
        raise PreparedFolderError(f"{settings_file}: cannot read ({error.strerror or error})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        why = f"not JSON ({error})"
    else:
        if isinstance(old, dict):
            return old
        kind = {list: "a list", str: "a string", bool: "true or false", type(None): "null"}.get(type(old), "a number")
        why = f"{kind}, not a JSON object of settings"
    raise PreparedFolderError(
        f"{settings_file}: {why}; --rebuild starts over in this folder, or choose another output folder"
    )


def open_prepared_folder(
    path: str | os.PathLike,
    settings: Dict[str, Any],
    outputs: Sequence[str],
    *,
    rebuild: bool = False,
    aside: bool = False,
) -> PreparedFolder:
    """Make ``path`` ready for a preparer with these JSON-able ``settings`` (module docstring).

    ``outputs``: glob patterns (relative to ``path``) of what the preparer writes, annotation files
    first; removed when rebuilding. Raises ``PreparedFolderError`` for an unusable folder, or other
    settings than the earlier run's without ``rebuild``.

    ``rebuild`` with ``aside``, where an earlier run wrote: the earlier outputs stay untouched; the
    preparer writes into the returned ``path``, ``REBUILD_FOLDER`` below ``path`` (resumed when a
    stopped rebuild with the same settings left it there), and ``finish_prepared_folder`` swaps its
    outputs in at the end, so a rebuild that fails leaves the earlier dataset as it was.
    """
    path = check_writable_folder(path)
    if rebuild and aside and ((path / SETTINGS_FILE).exists() or _outputs(path, outputs)):
        staging = path / REBUILD_FOLDER
        staged = staging / SETTINGS_FILE
        try:  # a stopped rebuild with the same settings is continued; anything else there starts over
            same = staged.is_file() and _read_settings(staged) == json.loads(json.dumps(settings))
        except PreparedFolderError:
            same = False
        folder = open_prepared_folder(staging, settings, outputs, rebuild=not same)
        folder.final, folder.rebuilt = path, len(_outputs(path, outputs))
        return folder
    settings = json.loads(json.dumps(settings))  # as it reads back (tuples -> lists)
    settings_file = path / SETTINGS_FILE
    old = None
    if settings_file.exists() and not rebuild:
        old = _read_settings(settings_file)
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
    stale = _own_temporaries(path, outputs)
    for p in stale:
        p.unlink()
    resumed = old == settings and not rebuild
    if not resumed:
        atomic_write_json(settings_file, settings)
    return PreparedFolder(path=path, resumed=resumed, stale_removed=len(stale), rebuilt=rebuilt)


def finish_prepared_folder(folder: PreparedFolder, outputs: Sequence[str]) -> None:
    """Swap a rebuild made aside (``open_prepared_folder(..., aside=True)``) into its folder: the earlier
    outputs removed (annotation files first), the new ones moved in (annotation files last) with
    the settings, the rebuild folder removed. Nothing to do for a folder opened otherwise."""
    if folder.final is None:
        return
    final, staging = folder.final, folder.path
    for output in _outputs(final, outputs):  # annotation files first: the folder never looks complete meanwhile
        output.unlink()
    for output in reversed(_outputs(staging, outputs)):  # annotation files last
        target = final / output.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(output, target)
    os.replace(staging / SETTINGS_FILE, final / SETTINGS_FILE)
    shutil.rmtree(staging)
    folder.path, folder.final = final, None
