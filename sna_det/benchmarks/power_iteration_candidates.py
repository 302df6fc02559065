"""Ways to compute SNA's rank-one map, measured side by side by ``tools/benchmark_sna.py``.

Each candidate is a ``SpectralNormAttention`` whose ``low_rank_map`` (B, H, W) -> (B, H, W) is
computed another way; everything else (channel mean, fp32, softmax, weighting) is the block's.

- ``algorithm1``: the paper's Algorithm 1 as sna-det ran it until the repeated squaring replaced it:
  mat-vec power steps on MᵀM from the column sums of |M|, each image stopping when successive
  vectors agree to 1 - tol, the loop leaving early (on the CPU) once all have (a host-device sync
  per step elsewhere, and a trace freezes the number of steps of its sample);
- ``fixed_steps``: the same mat-vec steps, a fixed ``steps`` of them, no stopping test;
- ``squaring``: ``SpectralNormAttention(squarings=k)``, the block (k squarings of the shorter
  side's Gram matrix, normalised every fourth, 2^k steps; the map is G^(2^k) / trace times M);
- ``svd``: ``torch.linalg.svd``, the exact reference.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor

from ..layers.spectral_norm_attention import SpectralNormAttention

__all__ = ["Algorithm1Attention", "FixedStepsAttention", "candidate_blocks", "matvec_power_iteration"]


def _column_sum_start(m: Tensor) -> Tensor:
    """Unit start vector (B, W): the column sums of |M| plus a fixed irregular pattern."""
    tiny = torch.finfo(m.dtype).tiny
    col = m.abs().sum(1)
    col = col / col.norm(dim=-1, keepdim=True).clamp_min(tiny)
    pattern = torch.cos(torch.arange(1, m.shape[-1] + 1, device=m.device, dtype=m.dtype))
    v = col + 0.1 * (col.abs().sum(-1, keepdim=True) > 0).to(m.dtype) * pattern / pattern.norm()
    return v / v.norm(dim=-1, keepdim=True).clamp_min(tiny)


def matvec_power_iteration(m: Tensor, steps: int, tol: float | None) -> Tensor:
    """Rank-one map (B, H, W) by mat-vec power steps on MᵀM; ``tol=None``: exactly ``steps`` steps,
    else each image stops at cosine > 1 - tol and the loop ends (CPU only) when all have."""
    tiny = torch.finfo(m.dtype).tiny
    v = _column_sum_start(m)
    done = torch.zeros(m.shape[0], dtype=torch.bool, device=m.device)
    for _ in range(steps):
        step = torch.bmm(m.transpose(1, 2), torch.bmm(m, v.unsqueeze(-1))).squeeze(-1)
        norm = step.norm(dim=-1, keepdim=True)
        step = step / norm.clamp_min(tiny)
        if tol is None:
            v = step
            continue
        converged = ((step * v).sum(-1).abs() > 1 - tol) | (norm.squeeze(-1) <= tiny)
        v = torch.where(done.unsqueeze(-1), v, step)
        done = done | converged
        if m.device.type == "cpu" and bool(done.all()):
            break
    return torch.bmm(m, v.unsqueeze(-1)) * v.unsqueeze(1)


class Algorithm1Attention(SpectralNormAttention):
    """SNA with the stopping-test power iteration (``steps`` cap, ``tol``), rank one."""

    def __init__(self, channels: int | None = None, *, steps: int = 20, tol: float = 1e-4, **kwargs) -> None:
        super().__init__(channels, **kwargs)
        self.steps, self.tol = steps, tol

    def low_rank_map(self, m: Tensor) -> Tensor:
        return matvec_power_iteration(m, self.steps, self.tol)


class FixedStepsAttention(SpectralNormAttention):
    """SNA with exactly ``steps`` mat-vec power steps, rank one."""

    def __init__(self, channels: int | None = None, *, steps: int = 20, **kwargs) -> None:
        super().__init__(channels, **kwargs)
        self.steps = steps

    def low_rank_map(self, m: Tensor) -> Tensor:
        return matvec_power_iteration(m, self.steps, None)


def candidate_blocks(weighting: str = "softmax_mean1") -> Dict[str, SpectralNormAttention]:
    """The candidates by name, the block's default (``squaring, k=8``) among them."""
    return {
        "algorithm1 (tol 1e-4, <= 20 steps)": Algorithm1Attention(weighting=weighting),
        "fixed_steps (20 mat-vec steps)": FixedStepsAttention(steps=20, weighting=weighting),
        "squaring k=6 (64 steps)": SpectralNormAttention(squarings=6, weighting=weighting),
        "squaring k=7 (128 steps)": SpectralNormAttention(squarings=7, weighting=weighting),
        "squaring k=8 (256 steps, the default)": SpectralNormAttention(squarings=8, weighting=weighting),
        "svd": SpectralNormAttention(mode="svd", weighting=weighting),
    }
