"""JSON-lines logs (one JSON object per line), as detectron2's metrics.json and power_iteration.jsonl."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Tuple

from .atomic_write import atomic_write_text

__all__ = ["append_json_lines", "read_json_objects", "write_json_lines"]


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
