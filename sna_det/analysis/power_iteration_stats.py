"""How accurate SNA's power iteration is on real feature maps, and sigma1/sigma2 of those maps.

The power iteration's error shrinks by (sigma2/sigma1)^2 per step, so its accuracy is set by
sigma2/sigma1 of the channel-mean map M. SNA takes a fixed 2^k steps (k = ``squarings``, by
repeated squaring; no stopping test), so what can vary is not the number of steps but the error.
This module measures, per image, on the very maps a block sees (the training hook
``sna_det.engine.PowerIterationDiagnostics`` calls it on sampled iterations): sigma1, sigma2, the
block's rank-one map against the SVD's, stores them as JSON lines and summarizes them per placement.

A record (one image at one placement at one training iteration) is a dict with the keys
``iteration, placement, image, height, width, power_steps, sigma1, sigma2, sigma1_power,
rank1_energy, map_rel_error`` (see ``measure_power_iteration`` for their meaning).
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence

import numpy as np
import torch
from tabulate import tabulate
from torch import Tensor

from ..layers.spectral_norm_attention import dominant_singular_triple, rank_one_approximation
from ..utils.json_lines import read_json_objects

__all__ = [
    "POWER_ITERATION_RECORDS",
    "PlacementSummary",
    "PowerIterationMeasurement",
    "format_summary_table",
    "measure_power_iteration",
    "measurement_records",
    "read_power_iteration_records",
    "summarize_power_iteration",
    "summary_csv",
]

POWER_ITERATION_RECORDS = "power_iteration.jsonl"
"""File name of the per-image records in a training run's OUTPUT_DIR."""

RECORD_KEYS = (
    "iteration",
    "placement",
    "image",
    "height",
    "width",
    "power_steps",
    "sigma1",
    "sigma2",
    "sigma1_power",
    "rank1_energy",
    "map_rel_error",
)


class PowerIterationMeasurement(NamedTuple):
    """Per-image diagnostics of one batch of feature maps, all (B,) float64 tensors on the CPU.

    sigma1, sigma2: the two largest singular values of M = x.mean(1), from torch.linalg.svd
    (sigma2 = 0 when min(H, W) = 1); sigma1_power: the power iteration's estimate of sigma1;
    rank1_energy: sigma1^2 / sum sigma_i^2, the share of M's energy in the rank-one map;
    map_rel_error: ||M_hat_power - M_hat_svd|| / ||M_hat_svd|| (Frobenius) of the rank-one maps
    (0 where M = 0).
    """

    sigma1: Tensor
    sigma2: Tensor
    sigma1_power: Tensor
    rank1_energy: Tensor
    map_rel_error: Tensor


@torch.no_grad()
def measure_power_iteration(x: Tensor, squarings: int) -> PowerIterationMeasurement:
    """Run SNA's power iteration on ``x`` (B, C, H, W) exactly as the block does, and the SVD beside it.

    The channel mean, dtype (float32, float64 for float64 input) and the rank-one computation are
    the block's (for rank k > 1, those of the first term); the SVD runs in float64.
    """
    if x.dim() != 4:
        raise ValueError(f"expected features (B, C, H, W), got shape {tuple(x.shape)}")
    compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=x.device.type, enabled=False):
        m = x.detach().mean(1, dtype=compute_dtype)
        triple = dominant_singular_triple(m, squarings=squarings)
        power_map = rank_one_approximation(m, squarings=squarings).double()
        u, singular_values, vh = torch.linalg.svd(m.double(), full_matrices=False)  # descending
    exact_map = singular_values[:, :1, None] * u[:, :, :1] * vh[:, None, 0, :]
    exact_norm = exact_map.norm(dim=(1, 2))
    tiny = torch.finfo(torch.float64).tiny
    map_rel_error = torch.where(
        exact_norm > 0, (power_map - exact_map).norm(dim=(1, 2)) / exact_norm.clamp_min(tiny), 0.0
    )
    sigma1 = singular_values[:, 0]
    sigma2 = singular_values[:, 1] if singular_values.shape[1] > 1 else torch.zeros_like(sigma1)
    energy = singular_values.square().sum(-1)
    rank1_energy = torch.where(energy > 0, sigma1.square() / energy.clamp_min(tiny), 1.0)
    return PowerIterationMeasurement(
        sigma1.cpu(), sigma2.cpu(), triple.sigma.double().cpu(), rank1_energy.cpu(), map_rel_error.cpu()
    )


def measurement_records(
    measurement: PowerIterationMeasurement, *, iteration: int, placement: str, height: int, width: int, squarings: int
) -> List[dict]:
    """One JSON-ready record per image of ``measurement`` (see the module docstring)."""
    rows = zip(*(t.tolist() for t in measurement))
    return [
        {
            "iteration": iteration,
            "placement": placement,
            "image": index,
            "height": height,
            "width": width,
            "power_steps": 2**squarings,
            "sigma1": float(s1),
            "sigma2": float(s2),
            "sigma1_power": float(s1_power),
            "rank1_energy": float(energy),
            "map_rel_error": float(error),
        }
        for index, (s1, s2, s1_power, energy, error) in enumerate(rows)
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
