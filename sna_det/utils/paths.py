"""Inputs are never outputs: the one check every command makes, before any work, that no file it
writes resolves to a file it reads (links and ``..`` followed), and that a preparer's output folder
is not inside its input folder. Standard library only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Optional, Union

from .cli import CommandError

__all__ = ["check_folder_holds_no_input", "check_folder_not_inside", "check_outputs_not_inputs"]

PathLike = Union[str, os.PathLike]


def _resolved(path: PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(path)))).resolve()


def check_outputs_not_inputs(
    inputs: Mapping[str, Optional[PathLike]], outputs: Mapping[str, Optional[PathLike]]
) -> None:
    """``CommandError`` when an output path resolves to an input path (or two outputs to one file).

    inputs, outputs: {how the user named it, e.g. "--gt": path}; None entries (an option not given)
    are ignored. The message names both options and the file.
    """
    seen = {_resolved(p): flag for flag, p in inputs.items() if p is not None}
    written = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        target = _resolved(path)
        if target in seen:
            raise CommandError(f"{path}: {flag} is the same file as {seen[target]}; it would be overwritten")
        if target in written:
            raise CommandError(f"{path}: {flag} and {written[target]} name the same file")
        written[target] = flag


def check_folder_not_inside(output: PathLike, source: PathLike, output_flag: str, source_flag: str) -> None:
    """``CommandError`` when the folder ``output`` is ``source`` or inside it (a preparer would read
    what it writes)."""
    out, src = _resolved(output), _resolved(source)
    if out == src or src in out.parents:
        raise CommandError(
            f"{output}: {output_flag} is inside {source_flag} {source}; choose an output folder outside the input"
        )


def check_folder_holds_no_input(output: PathLike, inputs: Iterable[PathLike], output_flag: str = "--output") -> None:
    """``CommandError`` when the output folder is the folder of an input file (a drawing tool writes
    ``<name>.png`` there and would replace an input image of that name)."""
    out = _resolved(output)
    for path in inputs:
        where = _resolved(path)
        if (where if where.is_dir() else where.parent) == out:
            raise CommandError(
                f"{output}: {output_flag} is the folder of the input {path}; its images would be overwritten: "
                "choose another folder"
            )
