from .attention_injection import add_attention_to_resnet, attach_attention, residual_branch_end
from .backbone import (
    add_sna_to_resnet,
    build_resnet_sna_backbone,
    build_resnet_sna_fpn_backbone,
    build_retinanet_resnet_sna_fpn_backbone,
)

__all__ = [
    "add_attention_to_resnet",
    "attach_attention",
    "residual_branch_end",
    "add_sna_to_resnet",
    "build_resnet_sna_backbone",
    "build_resnet_sna_fpn_backbone",
    "build_retinanet_resnet_sna_fpn_backbone",
]
