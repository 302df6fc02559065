"""Keeping detectron2's ``metrics.json`` (one JSON record per line) consistent across a kill and ``--resume``.

A run killed mid-way may leave a last line cut in half, and records of iterations after its last
checkpoint; the resumed run starts again from that checkpoint and would log those iterations twice.
"""

from __future__ import annotations

import json
import os
from typing import Tuple

__all__ = ["trim_metrics_for_resume"]


def trim_metrics_for_resume(path: str | os.PathLike, start_iter: int) -> Tuple[int, int]:
    """Cut ``path`` before its first record that is not valid JSON or has ``iteration >= start_iter``.

    Truncates in place (the trainer's writer, opened in append mode, then continues at the cut).
    Returns ``(records kept, lines dropped)``; a missing file is ``(0, 0)``.
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
                if not (isinstance(record, dict) and record.get("iteration", -1) < start_iter):
                    dropped += sum(1 for rest in complete[number:] if rest.strip())
                    break
                kept += 1
            offset += len(line) + 1
        f.truncate(offset)
    return kept, dropped
