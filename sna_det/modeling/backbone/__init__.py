from .resnet_sna import (
    add_sna_to_resnet,
    build_resnet_sna_backbone,
    build_resnet_sna_fpn_backbone,
    build_retinanet_resnet_sna_fpn_backbone,
)

__all__ = [
    "add_sna_to_resnet",
    "build_resnet_sna_backbone",
    "build_resnet_sna_fpn_backbone",
    "build_retinanet_resnet_sna_fpn_backbone",
]
