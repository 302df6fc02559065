"""SNA's power iteration against the SVD on real feature maps, per image, and the record it is logged as.

The power iteration's error shrinks by (sigma2/sigma1)^2 per step, so its accuracy is set by
sigma2/sigma1 of the channel-mean map M. SNA takes a fixed 2^k steps (k = ``squarings``, by
repeated squaring; no stopping test), so what can vary is not the number of steps but the error.
``measure_power_iteration`` measures it on the very maps a block sees: the training hook
``sna_det.engine.PowerIterationDiagnostics`` calls it on sampled iterations and appends
``measurement_records`` to ``power_iteration.jsonl``; ``sna_det.analysis.power_iteration_stats``
summarizes that file per placement. Torch only.

A record (one image at one placement at one training iteration) is a dict with the keys
``RECORD_KEYS`` (see ``PowerIterationMeasurement`` for their meaning).
"""

from __future__ import annotations

from typing import List, NamedTuple

import torch
from torch import Tensor

from .spectral_norm_attention import dominant_singular_triple, rank_one_approximation

__all__ = [
    "POWER_ITERATION_RECORDS",
    "RECORD_KEYS",
    "PowerIterationMeasurement",
    "measure_power_iteration",
    "measurement_records",
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
