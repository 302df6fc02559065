"""Config-free constructors of the attention backbones: keyword arguments in, a detectron2 ``Backbone`` out,
so that a LazyConfig names them as ``LazyCall`` targets::

    from detectron2.config import LazyCall as L
    backbone = L(build_attention_resnet_fpn)(depth=18, attention="sna", stem=True, stages=["res2", "res3"])

The YAML builders (``attention_backbones.py``, ``MODEL.ATTENTION``) read the config and call the same
``add_attention``; the networks themselves are detectron2's ``ResNet`` (``BasicStem`` and
``ResNet.make_default_stages``), our ``DenseNetBackbone`` and detectron2's ``FPN``, so a LazyConfig model
and its YAML twin have the same modules and parameter names (tests/engine/test_lazy_config.py checks it).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from detectron2.modeling import Backbone
from detectron2.modeling.backbone import FPN, BasicStem, ResNet
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7

from ...layers.attention_factory import ATTENTION_TYPES, create_attention
from ..attention_injection import AttentionFactory, add_attention_to_backbone
from .densenet import DenseNetBackbone

__all__ = [
    "DENSENET_STAGES",
    "RESNET_STAGES",
    "add_attention",
    "attention_factory",
    "build_attention_densenet",
    "build_attention_densenet_fpn",
    "build_attention_resnet",
    "build_attention_resnet_fpn",
]

RESNET_STAGES = ("res2", "res3", "res4", "res5")
DENSENET_STAGES = ("dense1", "dense2", "dense3", "dense4")
TOP_BLOCKS = ("maxpool", "p6p7")


def attention_factory(attention: str, options: Optional[Mapping[str, Any]] = None) -> Optional[AttentionFactory]:
    """channels -> a block of type ``attention`` (``ATTENTION_TYPES``; "sna_authors" is the authors' SNA)
    built with ``options`` (the block's keywords, e.g. ``rank`` for "sna", ``rd_ratio`` for "se"); None
    for "none"."""
    if attention not in ATTENTION_TYPES:
        raise ValueError(f"attention type {attention!r} is not one of {list(ATTENTION_TYPES)}")
    if attention == "none":
        return None
    kwargs = dict(options or {})
    return lambda channels: create_attention(attention, channels, **kwargs)


def add_attention(
    backbone: Backbone,
    attention: str = "sna",
    *,
    stem: bool = False,
    stages: Sequence[str] = (),
    options: Optional[Mapping[str, Any]] = None,
) -> Backbone:
    """Attention blocks of type ``attention`` in a built backbone (its ``bottom_up`` network when it has
    one, e.g. an FPN); in place, returned. ``stem``: one block on the stem's output; ``stages``: one on
    every block of these stages (ResNet "res2".."res5", DenseNet "dense1".."dense4")."""
    make = attention_factory(attention, options)
    if make is not None:
        add_attention_to_backbone(getattr(backbone, "bottom_up", backbone), make, stem=stem, stages=list(stages))
    return backbone


def build_attention_resnet(
    *,
    depth: int = 50,
    attention: str = "none",
    stem: bool = False,
    stages: Sequence[str] = (),
    attention_options: Optional[Mapping[str, Any]] = None,
    norm: str = "BN",
    out_features: Sequence[str] = RESNET_STAGES,
    freeze_at: int = 0,
    in_channels: int = 3,
    stride_in_1x1: bool = True,
) -> ResNet:
    """detectron2's ResNet-``depth`` (18, 34, 50, 101, 152; what ``build_resnet_backbone`` builds with
    ``MODEL.RESNETS`` defaults for these) with attention (``add_attention``).

    ``norm``: "BN" to train from scratch, "FrozenBN" (with ``freeze_at`` 2) to fine-tune ImageNet
    weights, "GN", "SyncBN"; ``stride_in_1x1`` (depth >= 50): True for MSRA weights, False for torchvision's.
    Outputs ``out_features`` at strides 4..32 from (B, ``in_channels``, H, W).
    """
    block_options = {"stride_in_1x1": stride_in_1x1} if depth >= 50 else {}
    resnet = ResNet(
        BasicStem(in_channels=in_channels, out_channels=64, norm=norm),
        ResNet.make_default_stages(depth, norm=norm, **block_options),
        out_features=list(out_features),
        freeze_at=freeze_at,
    )
    return add_attention(resnet, attention, stem=stem, stages=stages, options=attention_options)


def _fpn(bottom_up: Backbone, in_features, out_channels: int, norm: str, fuse_type: str, top_block: str) -> FPN:
    if top_block not in TOP_BLOCKS:
        raise ValueError(f"FPN top_block {top_block!r} is not one of {list(TOP_BLOCKS)}")
    if top_block == "maxpool":
        top = LastLevelMaxPool()
    else:
        top = LastLevelP6P7(bottom_up.output_shape()[in_features[-1]].channels, out_channels, in_features[-1])
    return FPN(
        bottom_up=bottom_up,
        in_features=list(in_features),
        out_channels=out_channels,
        norm=norm,
        top_block=top,
        fuse_type=fuse_type,
    )


def build_attention_resnet_fpn(
    *,
    in_features: Sequence[str] = RESNET_STAGES,
    out_channels: int = 256,
    fpn_norm: str = "",
    fuse_type: str = "sum",
    top_block: str = "maxpool",
    **resnet: Any,
) -> FPN:
    """``build_attention_resnet(out_features=in_features, **resnet)`` under detectron2's FPN (p2..p6 with
    ``top_block`` "maxpool", as ``build_resnet_fpn_backbone``; "p6p7": P6, P7 from the last input, RetinaNet's)."""
    bottom_up = build_attention_resnet(out_features=in_features, **resnet)
    return _fpn(bottom_up, in_features, out_channels, fpn_norm, fuse_type, top_block)


def build_attention_densenet(
    *,
    depth: int = 121,
    attention: str = "none",
    stem: bool = False,
    stages: Sequence[str] = (),
    attention_options: Optional[Mapping[str, Any]] = None,
    norm: str = "BN",
    out_features: Sequence[str] = DENSENET_STAGES,
    memory_efficient: bool = False,
) -> DenseNetBackbone:
    """Our DenseNet-``depth`` (torchvision's architecture, ``DenseNetBackbone``) with attention
    (``add_attention``); outputs ``out_features`` among dense1..dense4 (strides 4..32)."""
    densenet = DenseNetBackbone(depth=depth, out_features=out_features, norm=norm, memory_efficient=memory_efficient)
    return add_attention(densenet, attention, stem=stem, stages=stages, options=attention_options)


def build_attention_densenet_fpn(
    *,
    in_features: Sequence[str] = DENSENET_STAGES,
    out_channels: int = 256,
    fpn_norm: str = "",
    fuse_type: str = "sum",
    top_block: str = "maxpool",
    **densenet: Any,
) -> FPN:
    """``build_attention_densenet(out_features=in_features, **densenet)`` under detectron2's FPN."""
    bottom_up = build_attention_densenet(out_features=in_features, **densenet)
    return _fpn(bottom_up, in_features, out_channels, fpn_norm, fuse_type, top_block)
