"""Spectral Norm Attention (SNA), Fang et al., Neurocomputing 511 (2022), §3.1-3.2.

For features ``x`` of shape (B, C, H, W):

1. ``M = x.mean(1)``, one (H, W) matrix per image;
2. the projector u uᵀ (or v vᵀ) on the dominant singular vector of M's shorter side, by power
   iteration (Algorithm 1) on that side's Gram matrix, batched over the images: 2^k steps by k
   squarings, normalised every fourth, a fixed computation with no stopping test, so eager, traced,
   exported and compiled models on every device compute the same map; rank k > 1 sums the top-k
   rank-one terms, found one after the other by deflation;
3. ``M_hat = u uᵀ M = sigma * u vᵀ`` (or ``M v vᵀ``), the rank-one (rank-k) approximation of M;
4. ``A = softmax(M_hat)`` over the H·W positions of each image;
5. ``y = x * A``, broadcast over the channels (optionally ``x * (H·W) A``, see ``weighting``).

The block has no parameters and no buffers: checkpoints of the backbone without it load unchanged.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn
from torch.fx.experimental.symbolic_shapes import statically_known_true
from torch.nn import functional as F

__all__ = [
    "SpectralNormAttention",
    "SingularTriple",
    "dominant_singular_triple",
    "low_rank_approximation",
    "rank_one_approximation",
    "WEIGHTINGS",
    "MODES",
]

WEIGHTINGS = ("softmax", "softmax_mean1")
"""``softmax``: the paper's ``x * A`` (A sums to 1 over H·W, so features shrink by about H·W);
``softmax_mean1``: ``x * (H·W) A``, the same map rescaled to mean 1 per image."""

MODES = ("power", "svd")
"""``power``: power iteration (the paper's Algorithm 1) by repeated squaring; ``svd``: torch.linalg.svd, exact."""


class SingularTriple(NamedTuple):
    """Dominant singular triple of a batch of matrices M (B, H, W).

    sigma: (B,) largest singular value; u: (B, H) and v: (B, W) unit singular vectors (zero where
    M is zero). The vectors are defined up to a common sign.
    """

    sigma: Tensor
    u: Tensor
    v: Tensor


PRESCALE = 2.0**-20
"""M is multiplied by this before its Gram matrix is formed, so that the Gram matrix of a float32 map
stays finite up to |M| ~ 1.9e25 / sqrt(long side) (3e23 for a side of 4096), while maps from about
1e-12 up still dominate the eps * I shift and give the exact rank-one map (smaller maps get a
uniform softmax whatever M_hat is). The map itself is computed from the unscaled M."""

SEGMENT = 4
"""Squarings between two normalisations (``_dominant_projector``): 4 while the Gram matrix's side is
at most ``SEGMENT_SIDE_LIMIT``, else 2."""

SEGMENT_SIDE_LIMIT = 2**13
"""The largest side n of the Gram matrix for which 4 squarings after a normalisation stay in
float32's range (see ``_dominant_projector``)."""

SEGMENT_SCALE = 2.0**-11
"""Factor of the first squaring after each normalisation, folded into its matmul (baddbmm's alpha):
it centres the entries of the next four squarings in float32's exponent range."""


def _known(condition) -> bool:
    """A shape condition as a Python bool: a traced model keeps the value of its sample (sizes are
    tensors while torch.jit.trace traces them); under torch.export with dynamic sizes it is True
    only when provable, so exported programs carry no guard on the shape."""
    return bool(condition) if torch.jit.is_tracing() else statically_known_true(condition)


def _shorter_side_gram(m: Tensor) -> tuple[Tensor, bool]:
    """The Gram matrix of (``PRESCALE`` times) M's shorter side and which side it is: (B, H, H) ∝ M Mᵀ
    (True) when H is provably shorter than W, else (B, W, W) ∝ MᵀM (False); plus eps * I.

    The choice only changes the cost: both sides give the same rank-one map. Under ``torch.export``
    with dynamic H and W nothing is provable and the W side is taken, so exported programs carry no
    guard on the shape (eager and compiled models know H and W and take the shorter side; a traced
    model keeps the side of its sample input, which stays exact for other sizes).
    """
    rows = _known(m.shape[-2] < m.shape[-1])
    scaled = m * PRESCALE
    a, b = (scaled, scaled.transpose(1, 2)) if rows else (scaled.transpose(1, 2), scaled)
    # + eps * I: the same eigenvectors, but never an all-zero matrix to normalise (M = 0); eps, float's
    # smallest normal number, is the largest entry of eps * I, so the max-abs normalisation stays exact.
    # Out of place (baddbmm, not an in-place add on the diagonal): ONNX's dynamo exporter needs that.
    eye = torch.eye(a.shape[1], dtype=m.dtype, device=m.device)
    return torch.baddbmm(eye, a, b, beta=torch.finfo(m.dtype).tiny), rows


def _dominant_projector(gram: Tensor, squarings: int) -> Tensor:
    """G^(2^k) / trace of symmetric PSD matrices G, (B, n, n) -> (B, n, n): → u uᵀ, the projector on
    the dominant eigenvector u (error ~ (lambda2/lambda1)^(2^k)); at an exact tie, the average of the
    tied projectors.

    k squarings, 2^k power steps, with a normalisation by the largest entry (one reduction, one
    divide) before every ``SEGMENT`` squarings, and the trace division at the end. Why that stays in
    range: after the normalisation G is PSD with largest entry 1 = its largest diagonal entry, so its
    top eigenvalue lambda1 is in [1, n]; then the largest entry of G^j lies in [lambda1^j / n,
    lambda1^(j-1)] within [1/n, n^(j-1)]: for j = 16 (four squarings) and the ``SEGMENT_SCALE``
    factor a^8 = 2^-88, in [2^-101, 2^107] and a trace below 2^120 for n <= 2^13 (float32: 2^-126 to
    2^128). Above that side, a normalisation every second squaring (j = 4, a^2 = 2^-22) stays in range
    for any n below 2^30. A fixed number of batched matmuls: no stopping test, no host-device sync, the
    same kernels whatever the input.
    """
    segment = SEGMENT if _known(gram.shape[-1] <= SEGMENT_SIDE_LIMIT) else 2
    for i in range(squarings):
        if i % segment == 0:
            gram = gram / gram.amax(dim=(1, 2), keepdim=True)  # > 0: the eps * I
            gram = torch.baddbmm(gram, gram, gram, beta=0, alpha=SEGMENT_SCALE)  # beta = 0: input unread
        else:
            gram = torch.bmm(gram, gram)
    trace = gram.diagonal(dim1=1, dim2=2).sum(-1)  # > 0 (PSD and not zero)
    return gram / trace[:, None, None]


def _dominant_eigenvector(gram: Tensor, squarings: int) -> Tensor:
    """Unit dominant eigenvector of symmetric PSD matrices, (B, n, n) -> (B, n, 1): the column of the
    ``_dominant_projector`` with the largest diagonal entry, the one with the most weight on that
    vector, so no start vector can be orthogonal to the answer."""
    projector = _dominant_projector(gram, squarings)
    column = projector.diagonal(dim1=1, dim2=2).argmax(-1)  # (B,)
    vector = torch.gather(projector, 2, column[:, None, None].expand(-1, projector.shape[1], 1))
    return vector / torch.linalg.vector_norm(vector, dim=1, keepdim=True)


def rank_one_approximation(m: Tensor, squarings: int = 8) -> Tensor:
    """sigma u vᵀ, the best rank-one approximation of each matrix, (B, H, W) -> (B, H, W).

    P M (or M P) with P → u uᵀ (v vᵀ), the dominant projector of the shorter side's Gram matrix
    after 2^squarings power steps (``_dominant_projector``): sigma u vᵀ = u uᵀ M = M v vᵀ, one matmul,
    without forming the vector or sigma.
    """
    gram, rows = _shorter_side_gram(m)
    projector = _dominant_projector(gram, squarings)
    return torch.bmm(projector, m) if rows else torch.bmm(m, projector)


def dominant_singular_triple(m: Tensor, squarings: int = 8) -> SingularTriple:
    """(sigma, u, v) of each matrix, (B, H, W) -> (B,), (B, H), (B, W), as ``rank_one_approximation`` computes them."""
    gram, rows = _shorter_side_gram(m)
    vector = _dominant_eigenvector(gram, squarings)
    other = torch.bmm(vector.transpose(1, 2), m).squeeze(1) if rows else torch.bmm(m, vector).squeeze(-1)
    sigma = torch.linalg.vector_norm(other, dim=-1)
    other = other / sigma.unsqueeze(-1).clamp_min(torch.finfo(m.dtype).tiny)
    vector = vector.squeeze(-1)
    return SingularTriple(sigma, vector, other) if rows else SingularTriple(sigma, other, vector)


def low_rank_approximation(m: Tensor, rank: int = 1, mode: str = "power", squarings: int = 8) -> Tensor:
    """Sum of the top-``rank`` terms sigma_i u_i v_iᵀ of each matrix, (B, H, W) -> (B, H, W).

    ``mode="power"`` finds them one after the other (``rank_one_approximation``, then deflation
    M <- M - sigma u vᵀ); ``mode="svd"`` takes them from torch.linalg.svd (exact; its gradient is
    undefined when singular values repeat, e.g. for an all-zero M, and ONNX has no SVD: a reference,
    not for training or export).
    """
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    if mode == "svd":
        u, s, vh = torch.linalg.svd(m, full_matrices=False)
        k = min(rank, s.shape[-1])
        return (u[..., :k] * s[..., None, :k]) @ vh[..., :k, :]
    if mode != "power":
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if m.shape[-2] == 0 or m.shape[-1] == 0:  # nothing to approximate
        return m.clone()
    approx = rank_one_approximation(m, squarings)  # rank 1, the default, on every forward pass
    for _ in range(min(rank, m.shape[-2], m.shape[-1]) - 1):
        approx = approx + rank_one_approximation(m - approx, squarings)
    return approx


class SpectralNormAttention(nn.Module):
    """Spatial attention from the rank-k approximation of the channel-mean map.

    Shapes: input (B, C, H, W), output (B, C, H, W), same dtype. The map is computed in float32
    (float64 for float64 input) with autocast disabled, then cast to the input's dtype.

    Args:
        channels: ignored (SNA has no parameters); first so that timm's ``attn_layer`` convention,
            ``attn_layer(channels)``, builds it.
        rank: number of singular terms in the map (1 in the paper; Fig. 4 ablates more).
        mode: ``"power"`` (power iteration, the paper's Algorithm 1, as 2^squarings steps by
            repeated squaring) or ``"svd"`` (exact reference; not exportable to ONNX).
        squarings: k, the number of squarings of the Gram matrix: 2^k power steps (8: 256 steps,
            error (sigma2/sigma1)^512, under 1e-6 for sigma1/sigma2 >= 1.05).
        weighting: ``"softmax"`` multiplies by the softmax map A as in the paper;
            ``"softmax_mean1"`` by ``H·W·A``, which averages 1 and keeps the feature scale.
        device, dtype: ignored, as ``channels`` (timm's ``create_attn`` passes them).
    """

    def __init__(
        self,
        channels: Optional[int] = None,
        *,
        rank: int = 1,
        mode: str = "power",
        squarings: int = 8,
        weighting: str = "softmax_mean1",
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()  # no parameters: device and dtype (timm's factory passes them) are ignored
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if rank < 1 or squarings < 0:
            raise ValueError(f"need rank >= 1 and squarings >= 0; got {rank}, {squarings}")
        self.rank = rank
        self.mode = mode
        self.squarings = squarings
        self.weighting = weighting

    def low_rank_map(self, m: Tensor) -> Tensor:
        """The rank-k map M_hat of the channel means, (B, H, W) -> (B, H, W), in m's dtype."""
        return low_rank_approximation(m, self.rank, self.mode, self.squarings)

    def attention_map(self, x: Tensor) -> Tensor:
        """The weights that multiply ``x``: (B, C, H, W) -> (B, 1, H, W), in x's dtype."""
        if self.mode == "svd" and torch.onnx.is_in_onnx_export():
            raise RuntimeError(
                "SpectralNormAttention(mode='svd') cannot be exported to ONNX (ONNX has no SVD): "
                "use mode='power' (MODEL.SNA.MODE power), which computes the same map"
            )
        b, _, h, w = x.shape
        compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=x.device.type, enabled=False):
            m = x.mean(1, dtype=compute_dtype)  # accumulates in fp32 without copying x
            m_hat = self.low_rank_map(m)
            a = F.softmax(m_hat.flatten(1), dim=-1)
            if self.weighting == "softmax_mean1":
                a = a * a.shape[-1]  # H*W; read from the tensor so that traced models follow the size
            if x.dtype == torch.float16:  # H*W can pass float16's 65504 (bfloat16's range is float32's)
                a = a.clamp_max(torch.finfo(x.dtype).max)
        return a.view_as(m).unsqueeze(1).to(x.dtype)

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
        return f"rank={self.rank}, mode={self.mode!r}, squarings={self.squarings}, weighting={self.weighting!r}"
