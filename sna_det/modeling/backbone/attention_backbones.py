"""Backbones with any attention type of ``MODEL.ATTENTION``, registered in BACKBONE_REGISTRY.

Each builder is the plain backbone's builder (detectron2's ResNet / ResNet-FPN, or our DenseNet)
followed by ``add_attention_to_backbone``: one mechanism for every block type and backbone.

    MODEL.BACKBONE.NAME: "build_resnet_attention_fpn_backbone"
    MODEL.ATTENTION: {TYPE: "se", STEM: False, STAGES: ["res2", "res3", "res4", "res5"]}
"""

from __future__ import annotations

from typing import Callable, Optional

from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import build_resnet_fpn_backbone, build_retinanet_resnet_fpn_backbone
from detectron2.modeling.backbone.resnet import build_resnet_backbone
from torch import nn

from ...layers.attention_factory import ATTENTION_TYPES, create_attention
from ...layers.sna_authors_code import SpectralNormAttentionAuthorsCode
from ..attention_injection import AttentionFactory, add_attention_to_backbone
from .densenet import build_densenet_backbone, build_densenet_fpn_backbone

__all__ = [
    "add_attention_from_cfg",
    "attention_factory_from_cfg",
    "build_densenet_attention_backbone",
    "build_densenet_attention_fpn_backbone",
    "build_resnet_attention_backbone",
    "build_resnet_attention_fpn_backbone",
    "build_retinanet_resnet_attention_fpn_backbone",
    "register_backbone_with_attention",
]


def attention_factory_from_cfg(cfg: CfgNode, attn_type: str) -> Optional[AttentionFactory]:
    """channels -> block of ``attn_type`` with its options from the config; None for "none"."""
    if attn_type not in ATTENTION_TYPES:
        raise ValueError(f"MODEL.ATTENTION.TYPE {attn_type!r} is not one of {list(ATTENTION_TYPES)}")
    a, sna = cfg.MODEL.ATTENTION, cfg.MODEL.SNA
    options = {
        "none": None,
        "sna": dict(rank=sna.RANK, mode=sna.MODE, max_iters=sna.MAX_ITERS, tol=sna.TOL, weighting=sna.WEIGHTING),
        "se": dict(rd_ratio=a.SE.RD_RATIO),
        "eca": dict(kernel_size=a.ECA.KERNEL_SIZE) if a.ECA.KERNEL_SIZE else {},
        "nonlocal": dict(rd_ratio=a.NONLOCAL.RD_RATIO),
        "cbam": dict(rd_ratio=a.CBAM.RD_RATIO, spatial_kernel_size=a.CBAM.SPATIAL_KERNEL_SIZE),
        "gc": dict(rd_ratio=a.GC.RD_RATIO, fuse_add=a.GC.FUSION == "add", fuse_scale=a.GC.FUSION == "scale"),
    }[attn_type]
    if attn_type == "gc" and a.GC.FUSION not in ("add", "scale"):
        raise ValueError(f"MODEL.ATTENTION.GC.FUSION {a.GC.FUSION!r} is not 'add' or 'scale'")
    if options is None:
        return None
    if attn_type == "sna" and sna.VARIANT != "paper":
        if sna.VARIANT != "authors_code":
            raise ValueError(f"MODEL.SNA.VARIANT {sna.VARIANT!r} is not 'paper' or 'authors_code'")
        return SpectralNormAttentionAuthorsCode
    return lambda channels: create_attention(attn_type, channels, **options)


def add_attention_from_cfg(bottom_up: nn.Module, cfg: CfgNode) -> nn.Module:
    """Attach ``MODEL.ATTENTION``'s blocks to a built bottom-up backbone; in place, returned."""
    a = cfg.MODEL.ATTENTION
    make = attention_factory_from_cfg(cfg, a.TYPE)
    if make is None:
        return bottom_up
    return add_attention_to_backbone(bottom_up, make, stem=a.STEM, stages=list(a.STAGES))


BackboneBuilder = Callable[[CfgNode, ShapeSpec], Backbone]


def register_backbone_with_attention(
    name: str, build_plain: BackboneBuilder, attach: Callable[[nn.Module, CfgNode], nn.Module], doc: str
) -> BackboneBuilder:
    """Register ``name`` in BACKBONE_REGISTRY: ``build_plain``, then ``attach(bottom_up, cfg)`` on its
    bottom-up network (the backbone itself when it has no ``bottom_up``, e.g. no FPN)."""

    def build(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
        backbone = build_plain(cfg, input_shape)
        attach(getattr(backbone, "bottom_up", backbone), cfg)
        return backbone

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    BACKBONE_REGISTRY.register(build)
    return build


build_resnet_attention_backbone = register_backbone_with_attention(
    "build_resnet_attention_backbone",
    build_resnet_backbone,
    add_attention_from_cfg,
    "detectron2's ResNet (``MODEL.RESNETS``) with ``MODEL.ATTENTION``.",
)
build_resnet_attention_fpn_backbone = register_backbone_with_attention(
    "build_resnet_attention_fpn_backbone",
    build_resnet_fpn_backbone,
    add_attention_from_cfg,
    "detectron2's ResNet-FPN with ``MODEL.ATTENTION`` in its bottom-up ResNet.",
)
build_retinanet_resnet_attention_fpn_backbone = register_backbone_with_attention(
    "build_retinanet_resnet_attention_fpn_backbone",
    build_retinanet_resnet_fpn_backbone,
    add_attention_from_cfg,
    "detectron2's RetinaNet ResNet-FPN (P3-P7) with ``MODEL.ATTENTION`` in its bottom-up ResNet.",
)
build_densenet_attention_backbone = register_backbone_with_attention(
    "build_densenet_attention_backbone",
    build_densenet_backbone,
    add_attention_from_cfg,
    "DenseNet (``MODEL.DENSENET``) with ``MODEL.ATTENTION``.",
)
build_densenet_attention_fpn_backbone = register_backbone_with_attention(
    "build_densenet_attention_fpn_backbone",
    build_densenet_fpn_backbone,
    add_attention_from_cfg,
    "DenseNet-FPN with ``MODEL.ATTENTION`` in its bottom-up DenseNet.",
)
