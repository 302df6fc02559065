"""Keeping detectron2's ``metrics.json`` (one JSON record per line) consistent across a kill and ``--resume``.

A run killed mid-way may leave a last line cut in half, and records of iterations after its last
checkpoint; the resumed run starts again from that checkpoint and would log those iterations twice.
"""

from __future__ import annotations

import os
from typing import Tuple

from ..utils.json_lines import trim_json_lines

__all__ = ["trim_metrics_for_resume"]


def trim_metrics_for_resume(path: str | os.PathLike, start_iter: int) -> Tuple[int, int]:
    """Cut ``path`` before its first record that is not valid JSON or has ``iteration >= start_iter``
    (``trim_json_lines``, the same cut as power_iteration.jsonl's).

    Truncates in place (the trainer's writer, opened in append mode, then continues at the cut).
    Returns ``(records kept, lines dropped)``; a missing file is ``(0, 0)``.
    """
    return trim_json_lines(path, lambda record: record.get("iteration", -1) < start_iter)
