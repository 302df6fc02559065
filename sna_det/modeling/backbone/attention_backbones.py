"""Backbones with attention where ``MODEL.ATTENTION`` says, registered in BACKBONE_REGISTRY.

One builder per backbone family: the plain family's builder (detectron2's ResNet, ResNet-FPN,
RetinaNet ResNet-FPN, or our DenseNet, DenseNet-FPN) followed by ``add_attention`` (``builders.py``,
which LazyConfigs call too), one mechanism for every block type. With
``MODEL.ATTENTION.TYPE "none"`` each is its plain family, so a baseline and its treatments differ in
``MODEL.ATTENTION`` only:

    MODEL.BACKBONE.NAME: "build_resnet_attention_fpn_backbone"
    MODEL.ATTENTION: {TYPE: "se", STEM: False, STAGES: ["res2", "res3", "res4", "res5"]}
"""

from __future__ import annotations

from functools import reduce
from typing import Any, Callable, Dict

from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import build_resnet_fpn_backbone, build_retinanet_resnet_fpn_backbone
from detectron2.modeling.backbone.resnet import build_resnet_backbone

from ...layers.attention_factory import ATTENTION_TABLE
from .builders import DENSENET_STAGES, RESNET_STAGES, add_attention
from .densenet import build_densenet_backbone, build_densenet_fpn_backbone

__all__ = [
    "build_densenet_attention_backbone",
    "build_densenet_attention_fpn_backbone",
    "build_resnet_attention_backbone",
    "build_resnet_attention_fpn_backbone",
    "build_retinanet_resnet_attention_fpn_backbone",
]

BackboneBuilder = Callable[[CfgNode, ShapeSpec], Backbone]


def attention_arguments(cfg: CfgNode) -> Dict[str, Any]:
    """``MODEL.ATTENTION`` and the type's option node (``ATTENTION_TABLE``) as the keywords of ``add_attention``
    (attention, stem, stages, options): the one translation from a YAML config. The values are those
    ``sna_det.config.validate_config`` checked (``setup_cfg`` runs it)."""
    a = cfg.MODEL.ATTENTION
    row = ATTENTION_TABLE.get(a.TYPE)  # an unknown type: add_attention names it and the known ones
    options = row.keywords(reduce(getattr, row.node.split("."), cfg) if row.node else {}) if row else {}
    return dict(attention=a.TYPE, stem=a.STEM, stages=list(a.STAGES), options=options)


def register_attention_backbone(name: str, build_plain: BackboneBuilder, stages: tuple, doc: str) -> BackboneBuilder:
    """Register ``name``: ``build_plain``, then ``MODEL.ATTENTION``'s blocks on its bottom-up network
    (the backbone itself when it has no ``bottom_up``, e.g. no FPN). ``stages`` are the family's
    stage names (``builder.attention_stages``, checked by ``sna_det.config.validate_config``)."""

    def build(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
        return add_attention(build_plain(cfg, input_shape), **attention_arguments(cfg))

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
