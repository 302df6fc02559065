"""The attention table: every attention block a backbone can take, SNA beside timm's blocks.

One row per type (``ATTENTION_TABLE``): its constructor, the config node of its options and how each
option maps to a constructor keyword. Config validation (``sna_det.config``), the backbones
(``sna_det.modeling.backbone``), the docs and ``tools/benchmark_attention.py`` iterate this table, so a
new type is one row here. ``create_attention("se", 256)`` returns timm's ``SEModule(256)``; each block
maps (B, C, H, W) to (B, C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils.config_values import ConfigValue
from .sna_authors_code import SpectralNormAttentionAuthorsCode
from .spectral_norm_attention import MODES, WEIGHTINGS, SpectralNormAttention

__all__ = [
    "ATTENTION_TABLE",
    "ATTENTION_TYPES",
    "AttentionOption",
    "AttentionType",
    "SpatialMap",
    "attention_table_markdown",
    "create_attention",
]


@dataclass(frozen=True)
class AttentionOption:
    """Config key ``key`` of a type's node: its ``default``, what it may be (``value``) and the
    constructor keyword(s) it becomes (``keywords``: config value -> keywords)."""

    key: str
    default: Any
    value: ConfigValue
    keywords: Callable[[Any], Dict[str, Any]]
    doc: str


@dataclass(frozen=True)
class SpatialMap:
    """A spatial map of a block: ``compute(block, input, output)`` -> (B, H, W), read at the output of the
    block's ``submodule`` ("" = the block itself); ``kind`` names it (``sna_det.analysis.AttentionMapRecorder``)."""

    kind: str
    submodule: str
    compute: Callable[[nn.Module, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class AttentionType:
    """One attention type: ``build(channels, **keywords)``, the config node of its options (``node``,
    e.g. "MODEL.ATTENTION.SE"; "" for none), the options, and the spatial maps of its blocks (instances of
    ``block_type()``) that the attention-map recorder reads."""

    build: Callable[..., nn.Module]
    summary: str
    node: str = ""
    options: Tuple[AttentionOption, ...] = ()
    block_type: Optional[Callable[[], type]] = None
    maps: Tuple[SpatialMap, ...] = ()

    def keywords(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        """The constructor keywords of config ``values`` ({option key: value}; absent keys: defaults)."""
        keywords: Dict[str, Any] = {}
        for option in self.options:
            keywords.update(option.keywords(values.get(option.key, option.default)))
        return keywords


def _keyword(name: str) -> Callable[[Any], Dict[str, Any]]:
    return lambda value: {name: value}


def _timm(name: str) -> Callable[..., nn.Module]:
    def build(channels: int, **keywords) -> nn.Module:
        from timm.layers import get_attn  # on first use: sna_det.layers needs torch alone

        if name == "eca" and keywords.get("kernel_size"):
            return get_attn("eca")(None, **keywords)  # a fixed kernel size instead of the one ECA derives from C
        return get_attn(name)(channels, **keywords)

    return build


def _timm_type(name: str) -> Callable[[], type]:
    def block_type() -> type:
        from timm.layers import get_attn

        return get_attn(name)

    return block_type


def _sna_low_rank_map(module: SpectralNormAttention, x: Tensor, output: Tensor) -> Tensor:
    compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=x.device.type, enabled=False):
        return module.low_rank_map(x.mean(1, dtype=compute_dtype))


def _sna_weights(module: SpectralNormAttention, x: Tensor, output: Tensor) -> Tensor:
    return module.attention_map(x)[:, 0]


def _gate_output(module: nn.Module, x: Tensor, output: Tensor) -> Tensor:
    return output[:, 0]


def _context_weights(module: nn.Module, x: Tensor, output: Tensor) -> Tensor:
    b, _, h, w = output.shape
    return F.softmax(output.reshape(b, h * w).float(), dim=-1).reshape(b, h, w)


def _rd_ratio(default: float, doc: str) -> AttentionOption:
    ratio = ConfigValue("float", 0, above=True, maximum=1)
    return AttentionOption("RD_RATIO", default, ratio, _keyword("rd_ratio"), doc)


def _ignore_channels(block: type) -> Callable[..., nn.Module]:
    return lambda channels, **keywords: block(**keywords)


# fmt: off
ATTENTION_TABLE: Dict[str, AttentionType] = {
    "none": AttentionType(lambda channels: nn.Identity(), "no attention (the plain backbone)"),
    "sna": AttentionType(
        _ignore_channels(SpectralNormAttention),
        "SpectralNormAttention (this project): positions weighed by the rank-one map of the channel mean; "
        "no parameters",
        "MODEL.SNA",
        (
            AttentionOption(
                "RANK", 1, ConfigValue("int", 1), _keyword("rank"),
                "number of singular terms in the map: 1 in the paper (its Fig. 4 ablates more)",
            ),
            AttentionOption(
                "MODE", "power", ConfigValue("str", choices=MODES), _keyword("mode"),
                '"power": power iteration (the paper\'s Algorithm 1); "svd": exact torch.linalg.svd, the reference '
                "(its gradient is undefined where singular values repeat: train with power)",
            ),
            AttentionOption(
                "SQUARINGS", 8, ConfigValue("int", 0), _keyword("squarings"),
                "squarings of the Gram matrix: 2^SQUARINGS power steps, a fixed computation (8 = 256 steps: "
                "within 1e-6 of the SVD's map for sigma1/sigma2 >= 1.05, tools/benchmark_sna.py measures it)",
            ),
            AttentionOption(
                "WEIGHTING", "softmax_mean1", ConfigValue("str", choices=WEIGHTINGS), _keyword("weighting"),
                '"softmax_mean1": features times H*W*softmax(map), which averages 1 (docs/block.md); '
                '"softmax": times softmax(map), as written in the paper',
            ),
        ),
        lambda: SpectralNormAttention,
        (SpatialMap("rank-k map", "", _sna_low_rank_map), SpatialMap("weights", "", _sna_weights)),
    ),
    "sna_authors": AttentionType(
        _ignore_channels(SpectralNormAttentionAuthorsCode),
        "SNA as the authors' public code computes it (channel max, one matrix per mini-batch, 10 power steps, "
        "x + A; MODEL.SNA does not apply), the Table 4 ablation (docs/table4.md)",
    ),
    "se": AttentionType(
        _timm("se"),
        "timm.layers.SEModule (Hu et al.): channels weighed by an MLP on the global average",
        "MODEL.ATTENTION.SE",
        (_rd_ratio(1.0 / 16, "reduction (Hu et al.: 1/16)"),),
    ),
    "eca": AttentionType(
        _timm("eca"),
        "timm.layers.EcaModule (Wang et al.): channels weighed by a 1-D conv",
        "MODEL.ATTENTION.ECA",
        (
            AttentionOption(
                "KERNEL_SIZE", 0, ConfigValue("int", 0), lambda k: {"kernel_size": k} if k else {},
                "1-D conv size; 0: adaptive from the channels (Wang et al.)",
            ),
        ),
    ),
    "nonlocal": AttentionType(
        _timm("nl"),
        "timm.layers.NonLocalAttn (Wang et al., the paper's SA): a response from a (H*W)^2 affinity",
        "MODEL.ATTENTION.NONLOCAL",
        (_rd_ratio(1.0 / 8, "embedding channels / channels"),),
    ),
    "cbam": AttentionType(
        _timm("cbam"),
        "timm.layers.CbamModule (Woo et al.): channels, then positions weighed",
        "MODEL.ATTENTION.CBAM",
        (
            _rd_ratio(1.0 / 16, "channel reduction"),
            AttentionOption(
                "SPATIAL_KERNEL_SIZE", 7, ConfigValue("int", 1), _keyword("spatial_kernel_size"),
                "the spatial gate's conv size",
            ),
        ),
        _timm_type("cbam"),
        (SpatialMap("spatial gate", "spatial.gate", _gate_output),),
    ),
    "gc": AttentionType(
        _timm("gc"),
        "timm.layers.GlobalContext (Cao et al.): adds (or scales by) a global context vector",
        "MODEL.ATTENTION.GC",
        (
            _rd_ratio(1.0 / 8, "context channels / channels"),
            AttentionOption(
                "FUSION", "add", ConfigValue("str", choices=("add", "scale")),
                lambda fusion: {"fuse_add": fusion == "add", "fuse_scale": fusion == "scale"},
                '"add" (GCNet\'s default) or "scale"',
            ),
        ),
        _timm_type("gc"),
        (SpatialMap("context weights", "conv_attn", _context_weights),),
    ),
}
# fmt: on
"""Attention type -> its row; "none" builds nothing in a backbone."""

ATTENTION_TYPES: Tuple[str, ...] = tuple(ATTENTION_TABLE)
"""Every attention type, "none" first."""


def create_attention(attn_type: str, channels: int, **options) -> nn.Module:
    """The attention block of ``attn_type`` for a (B, ``channels``, H, W) feature map.

    ``options`` are the block's constructor keywords: ``SpectralNormAttention``'s for "sna" (``rank``,
    ``mode``, ...), timm's for the others (e.g. ``rd_ratio``); ``AttentionType.keywords`` makes them from
    config values.
    """
    row = ATTENTION_TABLE.get(attn_type)
    if row is None or attn_type == "none":
        known = [t for t in ATTENTION_TABLE if t != "none"]
        raise ValueError(f"attention type {attn_type!r} has no block; known: {known}")
    return row.build(channels, **options)


def attention_table_markdown() -> str:
    """``ATTENTION_TABLE`` as the Markdown table of docs/attention.md: type, block, config keys with their
    default and what they may be."""
    lines = ["| `MODEL.ATTENTION.TYPE` | block | options: key = default (may be) |", "| --- | --- | --- |"]
    for name, row in ATTENTION_TABLE.items():
        options = "<br>".join(
            f"`{row.node}.{o.key}` = `{o.default!r}` ({o.value.accepts()}): {o.doc}" for o in row.options
        )
        lines.append(f"| `{name}` | {row.summary} | {options or '-'} |")
    return "\n".join(lines)
