"""Backbones with attention where ``MODEL.ATTENTION`` says, registered in BACKBONE_REGISTRY.

One builder per backbone family: the plain family's builder (detectron2's ResNet, ResNet-FPN,
RetinaNet ResNet-FPN, or our DenseNet, DenseNet-FPN) followed by ``add_attention`` (``builders.py``,
which the config-free LazyConfig constructors call too), one mechanism for every block type. With
``MODEL.ATTENTION.TYPE "none"`` each is its plain family, so a baseline and its treatments differ in
``MODEL.ATTENTION`` only:

    MODEL.BACKBONE.NAME: "build_resnet_attention_fpn_backbone"
    MODEL.ATTENTION: {TYPE: "se", STEM: False, STAGES: ["res2", "res3", "res4", "res5"]}
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import build_resnet_fpn_backbone, build_retinanet_resnet_fpn_backbone
from detectron2.modeling.backbone.resnet import build_resnet_backbone
from torch import nn

from ..attention_injection import AttentionFactory
from .builders import DENSENET_STAGES, RESNET_STAGES, add_attention, attention_factory
from .densenet import build_densenet_backbone, build_densenet_fpn_backbone

__all__ = [
    "DENSENET_STAGES",
    "RESNET_STAGES",
    "add_attention_from_cfg",
    "attention_arguments_from_cfg",
    "attention_factory_from_cfg",
    "build_densenet_attention_backbone",
    "build_densenet_attention_fpn_backbone",
    "build_resnet_attention_backbone",
    "build_resnet_attention_fpn_backbone",
    "build_retinanet_resnet_attention_fpn_backbone",
]

BackboneBuilder = Callable[[CfgNode, ShapeSpec], Backbone]


def attention_arguments_from_cfg(cfg: CfgNode) -> Dict[str, Any]:
    """``MODEL.ATTENTION`` and ``MODEL.SNA`` as the keywords of ``add_attention`` (attention, stem, stages,
    options): the one translation from a YAML config to the config-free constructors. The values are
    those ``sna_det.config.validate_config`` checked (``setup_cfg`` runs it)."""
    a, sna = cfg.MODEL.ATTENTION, cfg.MODEL.SNA
    options = {
        "sna": dict(rank=sna.RANK, mode=sna.MODE, squarings=sna.SQUARINGS, weighting=sna.WEIGHTING),
        "sna_authors": {},
        "se": dict(rd_ratio=a.SE.RD_RATIO),
        "eca": dict(kernel_size=a.ECA.KERNEL_SIZE) if a.ECA.KERNEL_SIZE else {},
        "nonlocal": dict(rd_ratio=a.NONLOCAL.RD_RATIO),
        "cbam": dict(rd_ratio=a.CBAM.RD_RATIO, spatial_kernel_size=a.CBAM.SPATIAL_KERNEL_SIZE),
        "gc": dict(rd_ratio=a.GC.RD_RATIO, fuse_add=a.GC.FUSION == "add", fuse_scale=a.GC.FUSION == "scale"),
    }.get(a.TYPE, {})  # "none", or an unknown type: attention_factory names it and the known ones
    return dict(attention=a.TYPE, stem=a.STEM, stages=list(a.STAGES), options=options)


def attention_factory_from_cfg(cfg: CfgNode) -> Optional[AttentionFactory]:
    """channels -> block of ``MODEL.ATTENTION.TYPE`` with its options from the config; None for "none"."""
    arguments = attention_arguments_from_cfg(cfg)
    return attention_factory(arguments["attention"], arguments["options"])


def add_attention_from_cfg(backbone: nn.Module, cfg: CfgNode) -> nn.Module:
    """Attach ``MODEL.ATTENTION``'s blocks to a built backbone (its ``bottom_up`` when it has one); in place."""
    return add_attention(backbone, **attention_arguments_from_cfg(cfg))


def register_attention_backbone(name: str, build_plain: BackboneBuilder, stages: tuple, doc: str) -> BackboneBuilder:
    """Register ``name``: ``build_plain``, then ``MODEL.ATTENTION``'s blocks on its bottom-up network
    (the backbone itself when it has no ``bottom_up``, e.g. no FPN). ``stages`` are the family's
    stage names (``builder.attention_stages``, checked by ``sna_det.config.validate_config``)."""

    def build(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
        return add_attention_from_cfg(build_plain(cfg, input_shape), cfg)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    build.attention_stages = stages
    BACKBONE_REGISTRY.register(build)
    return build


build_resnet_attention_backbone = register_attention_backbone(
    "build_resnet_attention_backbone",
    build_resnet_backbone,
    RESNET_STAGES,
    "detectron2's ResNet (``MODEL.RESNETS``) with ``MODEL.ATTENTION``.",
)
build_resnet_attention_fpn_backbone = register_attention_backbone(
    "build_resnet_attention_fpn_backbone",
    build_resnet_fpn_backbone,
    RESNET_STAGES,
    "detectron2's ResNet-FPN with ``MODEL.ATTENTION`` in its bottom-up ResNet.",
)
build_retinanet_resnet_attention_fpn_backbone = register_attention_backbone(
    "build_retinanet_resnet_attention_fpn_backbone",
    build_retinanet_resnet_fpn_backbone,
    RESNET_STAGES,
    "detectron2's RetinaNet ResNet-FPN (P3-P7) with ``MODEL.ATTENTION`` in its bottom-up ResNet.",
)
build_densenet_attention_backbone = register_attention_backbone(
    "build_densenet_attention_backbone",
    build_densenet_backbone,
    DENSENET_STAGES,
    "DenseNet (``MODEL.DENSENET``) with ``MODEL.ATTENTION``.",
)
build_densenet_attention_fpn_backbone = register_attention_backbone(
    "build_densenet_attention_fpn_backbone",
    build_densenet_fpn_backbone,
    DENSENET_STAGES,
    "DenseNet-FPN with ``MODEL.ATTENTION`` in its bottom-up DenseNet.",
)
