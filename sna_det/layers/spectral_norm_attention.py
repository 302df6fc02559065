"""Spectral Norm Attention (SNA), Fang et al., Neurocomputing 511 (2022), §3.1-3.2.

For features ``x`` of shape (B, C, H, W):

1. ``M = x.mean(1)``, one (H, W) matrix per image;
2. the dominant singular triple (sigma, u, v) of each M, by power iteration on MᵀM (Algorithm 1),
   batched over the images; rank k > 1 sums the top-k rank-one terms, found one after the other
   by deflation;
3. ``M_hat = sigma * u vᵀ``, the rank-one (rank-k) approximation of M;
4. ``A = softmax(M_hat)`` over the H·W positions of each image;
5. ``y = x * A``, broadcast over the channels (optionally ``x * (H·W) A``, see ``weighting``).

The block has no parameters and no buffers: checkpoints of the backbone without it load unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "SpectralNormAttention",
    "PowerIterationResult",
    "dominant_singular_triple",
    "low_rank_approximation",
    "WEIGHTINGS",
    "MODES",
]

WEIGHTINGS = ("softmax", "softmax_mean1")
"""``softmax``: the paper's ``x * A`` (A sums to 1 over H·W, so features shrink by about H·W);
``softmax_mean1``: ``x * (H·W) A``, the same map rescaled to mean 1 per image."""

MODES = ("power", "svd")
"""``power``: batched power iteration (the paper's Algorithm 1); ``svd``: torch.linalg.svd, exact."""


class PowerIterationResult(NamedTuple):
    """Dominant singular triple of a batch of matrices M (B, H, W).

    sigma: (B,) largest singular value; u: (B, H) and v: (B, W) unit singular vectors
    (zero where M is zero); iterations: (B,) int64, power steps taken until that image converged
    (``max_iters`` where it did not).
    """

    sigma: Tensor
    u: Tensor
    v: Tensor
    iterations: Tensor


def _start_vector(m: Tensor) -> Tensor:
    """Deterministic start for the power iteration, (B, H, W) -> (B, W), unit norm (or zero).

    The column sums of |M|: for the non-negative maps that follow a ReLU the dominant right
    singular vector is non-negative (Perron-Frobenius), so this start is close to it (for a
    non-negative rank-one M, one step away). A fixed irregular pattern (1/10 of the norm) is added
    so that no sign-symmetric M makes the start exactly orthogonal to the answer.
    """
    col = m.abs().sum(1)
    col = col / col.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(m.dtype).tiny)
    w = m.shape[-1]
    pattern = torch.cos(torch.arange(1, w + 1, device=m.device, dtype=m.dtype))
    pattern = pattern / pattern.norm().clamp_min(torch.finfo(m.dtype).tiny)
    nonzero = (col.abs().sum(-1, keepdim=True) > 0).to(m.dtype)
    v = col + 0.1 * nonzero * pattern
    return v / v.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(m.dtype).tiny)


def dominant_singular_triple(m: Tensor, max_iters: int = 20, tol: float = 1e-4) -> PowerIterationResult:
    """Power iteration on MᵀM for every matrix of a batch at once (the paper's Algorithm 1).

    Args:
        m: (B, H, W) floating point matrices.
        max_iters: cap on power steps, >= 1.
        tol: an image has converged when ``|v_new · v_old| > 1 - tol`` (cosine of the step), or
            when M v = 0. Converged images keep their vector while the others go on; the loop ends
            when every image has converged. On accelerators the loop does not read that flag
            back (that would be a host-device sync per step): it runs ``max_iters`` cheap steps in
            which converged images no longer change, so results are identical on every device.

    MᵀM is never formed: each step is two batched mat-vecs, 2·H·W multiply-adds per image instead
    of H·W² for the Gram matrix. Differentiable (autograd through the unrolled steps).
    """
    if max_iters < 1:
        raise ValueError(f"max_iters must be >= 1, got {max_iters}")
    b, h, w = m.shape
    tiny = torch.finfo(m.dtype).tiny
    v = _start_vector(m).detach()
    done = torch.zeros(b, dtype=torch.bool, device=m.device)
    iterations = torch.zeros(b, dtype=torch.int64, device=m.device)
    stop_on_host = m.device.type == "cpu"
    for _ in range(max_iters):
        mv = torch.bmm(m, v.unsqueeze(-1))  # (B, H, 1)
        step = torch.bmm(m.transpose(1, 2), mv).squeeze(-1)  # (B, W) = MᵀM v
        norm = step.norm(dim=-1, keepdim=True)
        step = step / norm.clamp_min(tiny)
        converged = ((step * v).sum(-1).abs() > 1 - tol) | (norm.squeeze(-1) <= tiny)
        iterations = iterations + (~done).long()
        v = torch.where(done.unsqueeze(-1), v, step)
        done = done | converged
        if stop_on_host and bool(done.all()):
            break
    mv = torch.bmm(m, v.unsqueeze(-1)).squeeze(-1)  # (B, H) = sigma * u
    sigma = mv.norm(dim=-1)
    u = mv / sigma.unsqueeze(-1).clamp_min(tiny)
    return PowerIterationResult(sigma, u, v, iterations)


def low_rank_approximation(
    m: Tensor, rank: int = 1, mode: str = "power", max_iters: int = 20, tol: float = 1e-4
) -> Tensor:
    """Sum of the top-``rank`` terms sigma_i u_i v_iᵀ of each matrix, (B, H, W) -> (B, H, W).

    ``mode="power"`` finds them by power iteration and deflation (M <- M - sigma u vᵀ);
    ``mode="svd"`` takes them from torch.linalg.svd (exact; its gradient is undefined when
    singular values repeat, e.g. for an all-zero M, so use it as a reference, not to train).
    """
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    if mode == "svd":
        u, s, vh = torch.linalg.svd(m, full_matrices=False)
        k = min(rank, s.shape[-1])
        return (u[..., :k] * s[..., None, :k]) @ vh[..., :k, :]
    if mode != "power":
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    terms = min(rank, m.shape[-2], m.shape[-1])
    if terms == 0:  # H or W is 0: nothing to approximate
        return m.clone()
    approx, residual = None, m
    for i in range(terms):  # rank 1 (the default, on every forward pass) is a single outer product
        triple = dominant_singular_triple(residual, max_iters=max_iters, tol=tol)
        term = (triple.sigma[:, None, None] * triple.u.unsqueeze(-1)) * triple.v.unsqueeze(-2)
        approx = term if approx is None else approx + term
        if i + 1 < terms:
            residual = residual - term
    return approx


class SpectralNormAttention(nn.Module):
    """Spatial attention from the rank-k approximation of the channel-mean map.

    Shapes: input (B, C, H, W), output (B, C, H, W), same dtype. The map is computed in float32
    (float64 for float64 input) with autocast disabled, then cast to the input's dtype.

    Args:
        rank: number of singular terms in the map (1 in the paper; Fig. 4 ablates more).
        mode: ``"power"`` (power iteration, the paper's) or ``"svd"`` (exact reference).
        max_iters: cap on power-iteration steps per singular term.
        tol: convergence tolerance on the cosine between successive vectors.
        weighting: ``"softmax"`` multiplies by the softmax map A as in the paper;
            ``"softmax_mean1"`` by ``H·W·A``, which averages 1 and keeps the feature scale.
    """

    def __init__(
        self,
        *,
        rank: int = 1,
        mode: str = "power",
        max_iters: int = 20,
        tol: float = 1e-4,
        weighting: str = "softmax_mean1",
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if rank < 1 or max_iters < 1 or not 0 <= tol < 1:
            raise ValueError(f"need rank >= 1, max_iters >= 1, 0 <= tol < 1; got {rank}, {max_iters}, {tol}")
        self.rank = rank
        self.mode = mode
        self.max_iters = max_iters
        self.tol = tol
        self.weighting = weighting

    def attention_map(self, x: Tensor) -> Tensor:
        """The weights that multiply ``x``: (B, C, H, W) -> (B, 1, H, W), in x's dtype."""
        b, _, h, w = x.shape
        compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=x.device.type, enabled=False):
            m = x.mean(1, dtype=compute_dtype)  # accumulates in fp32 without copying x
            m_hat = low_rank_approximation(m, self.rank, self.mode, self.max_iters, self.tol)
            a = F.softmax(m_hat.reshape(b, h * w), dim=-1)
            if self.weighting == "softmax_mean1":
                a = a * (h * w)
            if x.dtype in (torch.float16, torch.bfloat16):
                a = a.clamp_max(torch.finfo(x.dtype).max)
        return a.reshape(b, 1, h, w).to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"SpectralNormAttention expects (B, C, H, W), got shape {tuple(x.shape)}")
        if x.numel() == 0:
            return x.clone()
        y = x * self.attention_map(x)
        if y.dtype == torch.float16:  # features near fp16's limit times weights up to H*W: saturate, not inf
            y = y.clamp_(-torch.finfo(y.dtype).max, torch.finfo(y.dtype).max)
        return y

    def extra_repr(self) -> str:
        return (
            f"rank={self.rank}, mode={self.mode!r}, max_iters={self.max_iters}, tol={self.tol}, "
            f"weighting={self.weighting!r}"
        )
