"""Measurements of how SNA computes its map, for ``tools/benchmark_sna.py``: kernel launches,
agreement with the SVD, time, for the block and the candidates of ``power_iteration_candidates``;
kernel launches of whole backbones with and without SNA.

Nothing here prints or parses arguments; every function returns JSON-ready dicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence, Union

import torch
from torch import Tensor, nn

from ..layers import SpectralNormAttention
from .block import memory_floor
from .detectors import build_detector
from .op_count import count_dispatched_ops
from .power_iteration_candidates import candidate_blocks
from .timing import Case, interleaved_median_ms

__all__ = [
    "BACKBONE_OP_COUNT_SIZE",
    "OP_COUNT_SHAPES",
    "compare_candidates",
    "count_backbone_ops",
    "count_block_ops",
    "features_with_spectrum",
    "map_errors_against_svd",
    "time_candidates",
]

OP_COUNT_SHAPES = ((2, 64, 256, 256), (2, 256, 32, 32))
"""A stem output (1024x1024 images) and a res4 residual branch, batch 2."""


def count_block_ops(block: nn.Module, shapes: Sequence[Sequence[int]] = OP_COUNT_SHAPES) -> Dict[str, int]:
    """Aten ops one forward of ``block`` dispatches on CUDA (no GPU needed, ``count_dispatched_ops``),
    keyed ``"<shape> <inference|training> <fp32|bf16>"``; bf16: bf16 features, as under bf16 autocast
    (the block turns autocast off inside; FakeTensorMode without CUDA cannot enter CUDA autocast)."""
    counts = {}
    for shape in shapes:
        for phase, grad in (("inference", False), ("training", True)):
            for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
                total = count_dispatched_ops(block, shape, device="cuda", dtype=dtype, requires_grad=grad).total
                counts[f"{tuple(shape)} {phase} {precision}"] = total
    return counts


BACKBONE_OP_COUNT_SIZE = (2, 1024, 1024)
"""Batch, height, width of the backbones' input: VinDr-CXR's fixed 1024 x 1024 (the count does not
depend on the size)."""


def count_backbone_ops(config_file: Union[str, Path], size: Sequence[int] = BACKBONE_OP_COUNT_SIZE) -> Dict[str, int]:
    """Aten ops one forward of a config's backbone dispatches on CUDA (no GPU needed), fp32, keyed
    ``inference`` (eval mode) and ``training`` (train mode, recording the autograd graph; the input
    image does not require grad), plus
    ``sna_blocks``, the number of SNA blocks in it. Random weights; the input is (batch,
    len(MODEL.PIXEL_MEAN), height, width), ``size`` = (batch, height, width)."""
    model = build_detector(config_file, "cpu")
    backbone = model.backbone
    batch, height, width = size
    shape = (batch, len(model.pixel_mean), height, width)
    counts = {"sna_blocks": sum(isinstance(m, SpectralNormAttention) for m in backbone.modules())}
    for phase, training in (("inference", False), ("training", True)):
        backbone.train(training)
        counts[phase] = count_dispatched_ops(
            backbone, shape, device="cuda", requires_grad=training, input_requires_grad=False
        ).total
    return counts


def features_with_spectrum(batch: int, channels: int, height: int, width: int, ratio: float, seed: int = 0) -> Tensor:
    """(B, C, H, W) float32 features whose channel mean has singular values ``ratio``, 1, then
    0.9 .. 0.01 (sigma1/sigma2 = ``ratio``): the map, plus zero-mean noise across the channels."""
    g = torch.Generator().manual_seed(seed)
    n = min(height, width)
    q1, _ = torch.linalg.qr(torch.randn(batch, height, n, generator=g, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(batch, width, n, generator=g, dtype=torch.float64))
    s = torch.cat(
        [torch.tensor([ratio, 1.0], dtype=torch.float64), torch.linspace(0.9, 0.01, n - 2, dtype=torch.float64)]
    )
    m = (q1 * s) @ q2.transpose(1, 2)  # (B, H, W), Frobenius norm ~ 3
    noise = torch.randn(batch, channels, height, width, generator=g, dtype=torch.float64)
    noise = noise - noise.mean(1, keepdim=True)
    return (m.unsqueeze(1) * (height * width) ** 0.5 / 4 + noise).float()


def _relative(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)


@torch.no_grad()
def map_errors_against_svd(block: SpectralNormAttention, x: Tensor) -> Dict[str, float]:
    """Largest relative errors over the images of ``block`` against ``mode="svd"`` on ``x``:
    ``rank_one`` of the rank-one map M_hat, ``weights`` of the applied weights (Frobenius norms)."""
    exact = SpectralNormAttention(mode="svd", weighting=block.weighting)
    m = x.double().mean(1)
    return {
        "rank_one": _relative(block.low_rank_map(x.mean(1, dtype=torch.float32)).double(), exact.low_rank_map(m))
        .max()
        .item(),
        "weights": _relative(block.attention_map(x).double(), exact.attention_map(x.double())).max().item(),
    }


def time_candidates(
    blocks: Dict[str, nn.Module],
    shape: Sequence[int],
    device: torch.device,
    *,
    repeats: int,
    warmup: int,
    seed: int = 0,
) -> Dict[str, Any]:
    """Forward ms of every block and of the memory floor on ReLU(N(0, 1)) features of ``shape``,
    interleaved; ``x_floor`` is each block's time over the floor's."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tuple(shape), generator=g).relu_().to(device)
    cases = [Case("floor", lambda: memory_floor(x))]
    cases += [Case(name, lambda block=block: block(x)) for name, block in blocks.items()]
    with torch.no_grad():
        ms = interleaved_median_ms(cases, device, repeats=repeats, warmup=warmup)
    return {name: {"forward_ms": t, "x_floor": t / ms["floor"]} for name, t in ms.items()}


def compare_candidates(
    ratios: Sequence[float], timing_shape: Sequence[int], device: torch.device, *, repeats: int, warmup: int
) -> Dict[str, Any]:
    """Every candidate of ``candidate_blocks``: op counts, map errors against the SVD at each
    sigma1/sigma2 in ``ratios`` (features (4, 32, 48, 64)) and forward time on ``timing_shape``."""
    blocks = candidate_blocks()
    errors: Dict[str, Dict[str, Any]] = {name: {} for name in blocks}
    for ratio in ratios:
        x = features_with_spectrum(4, 32, 48, 64, ratio, seed=1)
        for name, block in blocks.items():
            errors[name][str(ratio)] = map_errors_against_svd(block, x)
    times = time_candidates(
        {n: b.to(device) for n, b in blocks.items()}, timing_shape, device, repeats=repeats, warmup=warmup
    )
    return {
        "timing_shape": list(timing_shape),
        "ratios": list(ratios),
        "floor_ms": times["floor"]["forward_ms"],
        "candidates": {
            name: {"ops": count_block_ops(block), "errors": errors[name], **times[name]}
            for name, block in blocks.items()
        },
    }
