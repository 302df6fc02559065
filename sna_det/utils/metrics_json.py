"""detectron2's ``metrics.json`` (one JSON record per line, written by its JSONWriter): read, and kept
consistent across a kill and ``--resume``.

Training records hold ``iteration``, ``total_loss``, ``loss_*``, ``lr`` ...; evaluation records
``bbox/AP``, ``segm/AP50`` ... A resumed run appends to the file, so an iteration can appear twice;
``read_metrics`` keeps the later line, key by key. A run killed mid-way may leave a last line cut in
half, and records of iterations after its last checkpoint; the resumed run starts again from that
checkpoint and would log those iterations twice (``trim_metrics_for_resume``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Dict, Tuple

from .json_lines import read_json_objects, trim_json_lines

__all__ = ["nan_to_none", "read_metrics", "trim_metrics_for_resume"]


def read_metrics(path: str | os.PathLike) -> Dict[int, dict]:
    """{iteration: merged record} of a ``metrics.json`` (or of the one in a folder), iterations ascending.

    Raises ValueError naming the file and line of a malformed record, FileNotFoundError when absent.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such metrics file (detectron2 writes it into OUTPUT_DIR)")
    merged: Dict[int, dict] = {}
    for number, record in read_json_objects(path):
        if not isinstance(record.get("iteration"), int):
            raise ValueError(f"{path}:{number}: a record needs an integer field 'iteration'")
        merged.setdefault(record["iteration"], {}).update(record)
    return dict(sorted(merged.items()))


def trim_metrics_for_resume(path: str | os.PathLike, start_iter: int) -> Tuple[int, int]:
    """Cut ``path`` before its first record that is not valid JSON or has ``iteration >= start_iter``
    (``trim_json_lines``, the same cut as power_iteration.jsonl's).

    Truncates in place (the trainer's writer, opened in append mode, then continues at the cut).
    Returns ``(records kept, lines dropped)``; a missing file is ``(0, 0)``.
    """
    return trim_json_lines(path, lambda record: record.get("iteration", -1) < start_iter)


def nan_to_none(metrics: Any) -> Any:
    """Metrics (nested dicts) with NaN (the AP of a class without ground truth) as None: valid JSON."""
    if isinstance(metrics, dict):
        return {k: nan_to_none(v) for k, v in metrics.items()}
    return None if isinstance(metrics, float) and math.isnan(metrics) else metrics
