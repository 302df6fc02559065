"""One factory for every attention block a backbone can take: SNA beside timm's blocks.

``create_attention("se", 256)`` returns timm's ``SEModule(256)``; ``"sna"`` returns our
``SpectralNormAttention``. Each block maps (B, C, H, W) to (B, C, H, W).

- ``sna``: ``SpectralNormAttention`` (this project); weighs positions by the rank-one map of the
  channel mean; no parameters.
- ``sna_authors``: ``SpectralNormAttentionAuthorsCode``, SNA as the paper's authors' public code
  computes it (an ablation, for their Table 4 recipe); no parameters.
- ``se``: ``timm.layers.SEModule`` (Hu et al.); weighs channels by an MLP on the global average.
- ``eca``: ``timm.layers.EcaModule`` (Wang et al.); weighs channels by a 1-D conv (k from C).
- ``nonlocal``: ``timm.layers.NonLocalAttn`` (Wang et al., the paper's "SA"); adds a response
  from a (H·W)² affinity between positions (memory grows with (H·W)²).
- ``cbam``: ``timm.layers.CbamModule`` (Woo et al.); weighs channels, then positions.
- ``gc``: ``timm.layers.GlobalContext`` (Cao et al.); adds (or scales by) a global context vector.
"""

from __future__ import annotations

from typing import Tuple

from torch import nn

from .sna_authors_code import SpectralNormAttentionAuthorsCode
from .spectral_norm_attention import SpectralNormAttention

__all__ = ["ATTENTION_TYPES", "TIMM_ATTENTION", "create_attention"]

TIMM_ATTENTION = {"se": "se", "eca": "eca", "nonlocal": "nl", "cbam": "cbam", "gc": "gc"}
"""Our type name -> timm's ``get_attn`` name."""

ATTENTION_TYPES: Tuple[str, ...] = ("none", "sna", "sna_authors", *TIMM_ATTENTION)
"""Every attention type; "none" builds nothing."""


def create_attention(attn_type: str, channels: int, **options) -> nn.Module:
    """The attention block of ``attn_type`` for a (B, ``channels``, H, W) feature map.

    ``options`` go to the block's constructor: ``SpectralNormAttention``'s keywords for "sna",
    ``SpectralNormAttentionAuthorsCode``'s for "sna_authors" (both ignore ``channels``), timm's for
    the others (e.g. ``rd_ratio``). timm is imported here, on first use, so that ``sna_det.layers``
    needs torch alone.
    """
    from timm.layers import get_attn

    if attn_type == "sna":
        return SpectralNormAttention(**options)
    if attn_type == "sna_authors":
        return SpectralNormAttentionAuthorsCode(**options)
    if attn_type == "eca" and options.get("kernel_size"):
        return get_attn("eca")(None, **options)  # a fixed kernel size instead of the one ECA derives from C
    if attn_type in TIMM_ATTENTION:
        return get_attn(TIMM_ATTENTION[attn_type])(channels, **options)
    raise ValueError(f"attention type {attn_type!r} has no block; known: {[t for t in ATTENTION_TYPES if t != 'none']}")
