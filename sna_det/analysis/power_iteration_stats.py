"""How accurate SNA's power iteration was in a training run, and sigma1/sigma2 of its maps: the
records of ``power_iteration.jsonl`` summarized per placement.

The training hook ``sna_det.engine.PowerIterationDiagnostics`` measures, per image, on the very maps
a block sees (``sna_det.layers.power_iteration_accuracy``): sigma1, sigma2, the block's rank-one map
against the SVD's, as JSON lines. This module reads them and summarizes them per placement.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
from tabulate import tabulate

from ..layers.power_iteration_accuracy import RECORD_KEYS
from ..utils.json_lines import read_json_objects

__all__ = [
    "PlacementSummary",
    "format_summary_table",
    "read_power_iteration_records",
    "summarize_power_iteration",
    "summary_csv",
]


def read_power_iteration_records(path: str | os.PathLike) -> List[dict]:
    """Records of a ``power_iteration.jsonl``; a malformed line is an error naming the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no power-iteration records (train with MODEL.SNA.DIAGNOSTICS_PERIOD > 0 to write them)"
        )
    records = []
    for number, record in read_json_objects(path):
        missing = [key for key in RECORD_KEYS if key not in record]
        if missing:
            raise ValueError(f"{path}:{number}: missing field(s) {missing}")
        records.append(record)
    return records


@dataclass(frozen=True)
class PlacementSummary:
    """Statistics of one placement over all its records (images x sampled iterations).

    power_steps: steps the block takes (2^squarings, the same for every image);
    map_rel_error_*: the block's rank-one map against the SVD's (relative, Frobenius) per image;
    sigma*: singular values of the channel-mean map (feature units); sigma_ratio_median: median
    of sigma1/sigma2 per image; sigma_ratio_min: the hardest image; rank1_energy_mean: mean share
    of the map's energy in its rank-one term; sigma1_power_rel_error_max: largest
    |sigma1_power - sigma1| / sigma1.
    """

    placement: str
    images: int
    sampled_iterations: int
    map_height: str
    map_width: str
    power_steps: str
    map_rel_error_median: float
    map_rel_error_max: float
    sigma1_mean: float
    sigma2_mean: float
    sigma_ratio_median: float
    sigma_ratio_min: float
    rank1_energy_mean: float
    sigma1_power_rel_error_max: float


def _span(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def summarize_power_iteration(records: Sequence[dict]) -> List[PlacementSummary]:
    """Per-placement statistics of ``records``, in the order placements first appear."""
    by_placement: Dict[str, List[dict]] = {}
    for record in records:
        by_placement.setdefault(record["placement"], []).append(record)
    summaries = []
    for placement, rows in by_placement.items():
        errors = np.array([r["map_rel_error"] for r in rows], dtype=np.float64)
        s1 = np.array([r["sigma1"] for r in rows], dtype=np.float64)
        s2 = np.array([r["sigma2"] for r in rows], dtype=np.float64)
        s1_power = np.array([r["sigma1_power"] for r in rows], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(s2 > 0, s1 / s2, np.inf)
            rel_error = np.where(s1 > 0, np.abs(s1_power - s1) / s1, 0.0)
        summaries.append(
            PlacementSummary(
                placement=placement,
                images=len(rows),
                sampled_iterations=len({r["iteration"] for r in rows}),
                map_height=_span([r["height"] for r in rows]),
                map_width=_span([r["width"] for r in rows]),
                power_steps=_span([r["power_steps"] for r in rows]),
                map_rel_error_median=float(np.median(errors)),
                map_rel_error_max=float(errors.max()),
                sigma1_mean=float(s1.mean()),
                sigma2_mean=float(s2.mean()),
                sigma_ratio_median=float(np.median(ratio)),
                sigma_ratio_min=float(ratio.min()),
                rank1_energy_mean=float(np.array([r["rank1_energy"] for r in rows]).mean()),
                sigma1_power_rel_error_max=float(rel_error.max()),
            )
        )
    return summaries


def _ratio_text(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def format_summary_table(summaries: Sequence[PlacementSummary]) -> str:
    """A Markdown table of ``summaries``, one row per placement."""
    rows = [
        [
            s.placement,
            s.images,
            f"{s.map_height} x {s.map_width}",
            s.power_steps,
            f"{s.map_rel_error_median:.1e}",
            f"{s.map_rel_error_max:.1e}",
            f"{s.sigma1_mean:.4g}",
            f"{s.sigma2_mean:.4g}",
            _ratio_text(s.sigma_ratio_median),
            _ratio_text(s.sigma_ratio_min),
            f"{s.rank1_energy_mean:.3f}",
            f"{s.sigma1_power_rel_error_max:.1e}",
        ]  # fmt: skip
        for s in summaries
    ]
    headers = [
        "placement", "images", "map H x W", "power steps", "map error vs SVD (median)", "(max)", "sigma1",
        "sigma2", "sigma1/sigma2 (median)", "(min)", "rank-1 energy", "sigma1 rel. error (max)",
    ]  # fmt: skip
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def summary_csv(summaries: Sequence[PlacementSummary]) -> str:
    """``summaries`` as CSV text with a header row of the ``PlacementSummary`` field names."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(PlacementSummary)], lineterminator="\n")
    writer.writeheader()
    for summary in summaries:
        writer.writerow(asdict(summary))
    return buffer.getvalue()
