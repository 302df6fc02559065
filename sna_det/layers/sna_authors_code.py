"""SNA as the paper's authors' public code computes it (``MODEL.ATTENTION.TYPE: sna_authors``), an ablation.

Reproduces ``SNALayer`` of ``nets/pkgs/sna.py`` in GitHub fjssharpsword/SFSAttention (last changed in
commit 1136b3d, 2021-10-12; the version their VinDr-CXR detector, ``main_vincxr_det.py``, imported),
which differs from the paper's description (``spectral_norm_attention.py``) in five ways:

1. the map M is the channel **max** of the features, not the mean;
2. **one matrix per mini-batch**: M is (B, H*W), one row per image, so an image's map depends on
   the other images of its batch (the paper: one H x W matrix per image);
3. **10 power steps** on MᵀM from a random normal start, with no stopping test;
4. the map is u·vᵀ with u = M·v **not normalised** (= σ·û·vᵀ, the rank-one approximation of M),
   softmax over the H*W positions of each row;
5. the output is **x + A** (the weights are added to the features, not multiplied).

Two departures, both invisible in exact arithmetic: MᵀM ((H*W)², 6.4 GB for a 200 x 200 map) is never
formed, each step is Mᵀ(M·v) instead; the start vector comes from a generator seeded with ``seed`` at
every call (their code drew it from the global RNG, a different one each call), so a forward pass is
reproducible. A zero M gives v = 0 instead of 0/0 = NaN (then A is uniform, 1/(H*W)).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

__all__ = ["SpectralNormAttentionAuthorsCode"]


class SpectralNormAttentionAuthorsCode(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): x + softmax(rank-one map of the batch's channel-max matrix).

    Args:
        channels: unused (blocks of ``create_attention`` take it first); the block has no parameters.
        power_steps: power-iteration steps on MᵀM (the authors' ``Ip``: 10).
        seed: seed of the random normal start vector, drawn anew (identically) at each call.
    """

    def __init__(self, channels: Optional[int] = None, *, power_steps: int = 10, seed: int = 0):
        super().__init__()
        if power_steps < 1:
            raise ValueError(f"power_steps must be >= 1, got {power_steps}")
        self.power_steps = power_steps
        self.seed = seed

    def start_vector(self, n: int, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(n, 1) standard normal, drawn in float32 on the CPU: the same for a given ``seed`` on every device."""
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randn(n, 1, generator=generator).to(device=device, dtype=dtype)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) weights A (each image's sum to 1) of the batch ``x`` (B, C, H, W), float32 (float64
        for float64 ``x``)."""
        b, _, h, w = x.shape
        dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(device_type=x.device.type, enabled=False):
            m = x.amax(dim=1).reshape(b, h * w).to(dtype)  # (B, N): one row per image
            v = self.start_vector(h * w, x.device, dtype)
            for _ in range(self.power_steps):
                v = m.T @ (m @ v)  # = (MᵀM) v
                v = v / v.norm().clamp_min(torch.finfo(v.dtype).tiny)
            u = m @ v  # (B, 1), not normalised: u·vᵀ = σ·û·vᵀ
            return torch.softmax(u @ v.T, dim=-1).reshape(b, 1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == 0:
            return x
        return x + self.attention_map(x).to(x.dtype)

    def extra_repr(self) -> str:
        return f"power_steps={self.power_steps}, seed={self.seed}"
