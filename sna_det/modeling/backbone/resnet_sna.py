"""ResNet and ResNet-FPN backbones with Spectral Norm Attention, registered in BACKBONE_REGISTRY.

Each builder is detectron2's own builder followed by ``add_sna_to_resnet``: the architecture,
parameter names and checkpoints are detectron2's; SNA adds no parameters. These read SNA's
placement from ``MODEL.SNA.STEM`` / ``STAGES``; ``attention_backbones.py`` has the same builders
for any attention type (``MODEL.ATTENTION``), SNA included.
"""

from __future__ import annotations

from detectron2.config import CfgNode
from detectron2.modeling.backbone.fpn import build_resnet_fpn_backbone, build_retinanet_resnet_fpn_backbone
from detectron2.modeling.backbone.resnet import ResNet, build_resnet_backbone

from ..attention_injection import add_attention_to_resnet
from .attention_backbones import attention_factory_from_cfg, register_backbone_with_attention

__all__ = [
    "add_sna_to_resnet",
    "build_resnet_sna_backbone",
    "build_resnet_sna_fpn_backbone",
    "build_retinanet_resnet_sna_fpn_backbone",
]


def add_sna_to_resnet(resnet: ResNet, cfg: CfgNode) -> ResNet:
    """Attach SNA to a built ResNet where ``cfg.MODEL.SNA`` says; in place, returned."""
    make = attention_factory_from_cfg(cfg, "sna")
    return add_attention_to_resnet(resnet, make, stem=cfg.MODEL.SNA.STEM, stages=list(cfg.MODEL.SNA.STAGES))


build_resnet_sna_backbone = register_backbone_with_attention(
    "build_resnet_sna_backbone",
    build_resnet_backbone,
    add_sna_to_resnet,
    "detectron2's ResNet (``MODEL.RESNETS``) with SNA (``MODEL.SNA``).",
)
build_resnet_sna_fpn_backbone = register_backbone_with_attention(
    "build_resnet_sna_fpn_backbone",
    build_resnet_fpn_backbone,
    add_sna_to_resnet,
    "detectron2's ResNet-FPN (``MODEL.FPN``) with SNA in its bottom-up ResNet.",
)
build_retinanet_resnet_sna_fpn_backbone = register_backbone_with_attention(
    "build_retinanet_resnet_sna_fpn_backbone",
    build_retinanet_resnet_fpn_backbone,
    add_sna_to_resnet,
    "detectron2's RetinaNet ResNet-FPN (P3-P7) with SNA in its bottom-up ResNet.",
)
