"""The SNA block alone, timed against the memory floor of its input (``tools/benchmark_sna.py --parts block``)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ..layers import MODES, WEIGHTINGS, SpectralNormAttention
from .timing import Case, interleaved_median_ms, ratio

__all__ = ["benchmark_block", "forward_backward", "memory_floor", "stem_output_shape"]


def stem_output_shape(height: int, width: int, batch: int, channels: int = 64) -> tuple[int, int, int, int]:
    """Shape of a ResNet stem's output (stride 4: conv 7x7/2 then max-pool 3x3/2, both padded).

    Each stride-2 layer maps n to ceil(n / 2), so 800x1333 gives 200x334.
    """

    def half(n: int) -> int:
        return (n + 1) // 2

    return batch, channels, half(half(height)), half(half(width))


def memory_floor(x: Tensor) -> Tensor:
    """The cheapest block with SNA's memory traffic: a per-position channel mean times ``x``."""
    w = x.mean(1, keepdim=True)
    return x * w


def forward_backward(block: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Gradient of ``block(x).sum()`` with respect to ``x`` (which must require grad)."""
    (grad,) = torch.autograd.grad(block(x).sum(), x)
    return grad


def benchmark_block(
    shape: Sequence[int],
    device: torch.device,
    *,
    repeats: int,
    warmup: int,
    seed: int = 0,
    squarings: int = 8,
) -> dict[str, Any]:
    """Time SNA (every weighting, power and svd mode) against :func:`memory_floor` on one input.

    The input is ReLU(N(0, 1)) noise of ``shape`` (B, C, H, W), non-negative like a stem's output.
    Forward runs on ``x`` without grad; forward+backward on a copy that requires grad.

    Returns a JSON-ready dict: ``input_shape``, ``power_steps`` (2^squarings), ``floor`` and
    ``sna[weighting][mode]`` with ``forward_ms``,
    ``forward_backward_ms`` and, for SNA, the ratios ``forward_x_floor`` and
    ``forward_backward_x_floor``; ``sna[weighting]["svd_over_power"]`` holds the svd/power ratios.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(tuple(shape), generator=generator).relu_().to(device)
    x_grad = x.detach().clone().requires_grad_(True)
    blocks: dict[str, Callable[[Tensor], Tensor]] = {"floor": memory_floor}
    for weighting in WEIGHTINGS:
        for mode in MODES:
            sna = SpectralNormAttention(mode=mode, weighting=weighting, squarings=squarings)
            blocks[f"{weighting}/{mode}"] = sna.to(device)
    cases = []
    for name, block in blocks.items():
        cases.append(Case(f"{name}/forward", lambda block=block: block(x)))
        cases.append(Case(f"{name}/forward_backward", lambda block=block: forward_backward(block, x_grad)))
    ms = interleaved_median_ms(cases, device, repeats=repeats, warmup=warmup)

    def timings(name: str) -> dict[str, float]:
        return {"forward_ms": ms[f"{name}/forward"], "forward_backward_ms": ms[f"{name}/forward_backward"]}

    floor = timings("floor")
    sna_results: dict[str, dict[str, Any]] = {}
    for weighting in WEIGHTINGS:
        per_mode: dict[str, Any] = {}
        for mode in MODES:
            t = timings(f"{weighting}/{mode}")
            t["forward_x_floor"] = ratio(t["forward_ms"], floor["forward_ms"])
            t["forward_backward_x_floor"] = ratio(t["forward_backward_ms"], floor["forward_backward_ms"])
            per_mode[mode] = t
        per_mode["svd_over_power"] = {
            key: ratio(per_mode["svd"][f"{key}_ms"], per_mode["power"][f"{key}_ms"])
            for key in ("forward", "forward_backward")
        }
        sna_results[weighting] = per_mode
    return {
        "input_shape": list(shape),
        "power_steps": 2**squarings,
        "floor": floor,
        "sna": sna_results,
    }
