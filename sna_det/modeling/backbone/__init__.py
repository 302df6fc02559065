from .attention_backbones import (
    add_attention_from_cfg,
    attention_factory_from_cfg,
    build_densenet_attention_backbone,
    build_densenet_attention_fpn_backbone,
    build_resnet_attention_backbone,
    build_resnet_attention_fpn_backbone,
    build_retinanet_resnet_attention_fpn_backbone,
)
from .densenet import DenseNetBackbone, build_densenet_backbone, build_densenet_fpn_backbone
from .resnet_sna import (
    add_sna_to_resnet,
    build_resnet_sna_backbone,
    build_resnet_sna_fpn_backbone,
    build_retinanet_resnet_sna_fpn_backbone,
)

__all__ = [
    "DenseNetBackbone",
    "add_attention_from_cfg",
    "add_sna_to_resnet",
    "attention_factory_from_cfg",
    "build_densenet_attention_backbone",
    "build_densenet_attention_fpn_backbone",
    "build_densenet_backbone",
    "build_densenet_fpn_backbone",
    "build_resnet_attention_backbone",
    "build_resnet_attention_fpn_backbone",
    "build_resnet_sna_backbone",
    "build_resnet_sna_fpn_backbone",
    "build_retinanet_resnet_attention_fpn_backbone",
    "build_retinanet_resnet_sna_fpn_backbone",
]
