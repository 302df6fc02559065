"""JSON-lines logs (one JSON object per line), as detectron2's metrics.json and power_iteration.jsonl."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, Tuple

from .atomic_write import atomic_write_text

__all__ = ["append_json_lines", "read_json_objects", "trim_json_lines", "write_json_lines"]


def read_json_objects(path: str | os.PathLike) -> Iterator[Tuple[int, dict]]:
    """(line number, object) for every non-blank line of ``path``; a line that is not a JSON object is
    a ValueError naming the file and line."""
    path = Path(path)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        yield number, record


def write_json_lines(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Replace ``path`` with ``records``, one JSON object per line, atomically."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def append_json_lines(path: str | os.PathLike, records: Sequence[dict]) -> None:
    """Append ``records`` to ``path`` in one write, flushed and synced (a log, like detectron2's metrics.json)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


def trim_json_lines(path: str | os.PathLike, keep: Callable[[dict], bool]) -> Tuple[int, int]:
    """Cut the log at ``path`` before its first line that is not a JSON object or that ``keep`` rejects
    (e.g. ``iteration >= start`` on ``--resume``), and drop a last line cut short (no newline).

    Truncates in place, so that a writer opened in append mode continues at the cut. Returns
    ``(records kept, lines dropped)``; a missing file is ``(0, 0)``.
    """
    if not os.path.exists(path):
        return 0, 0
    with open(path, "rb+") as f:
        *complete, tail = f.read().split(b"\n")  # ``tail``: after the last newline, a line cut short
        offset, kept, dropped = 0, 0, int(bool(tail.strip()))
        for number, line in enumerate(complete):
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not (isinstance(record, dict) and keep(record)):
                    dropped += sum(1 for rest in complete[number:] if rest.strip())
                    break
                kept += 1
            offset += len(line) + 1
        f.truncate(offset)
    return kept, dropped
