"""A multi-label image classifier on the project's attention backbones (the paper's VinDr-CXR
classification, §4.2.3): ``MODEL.META_ARCHITECTURE "ImageClassifier"``.

The backbone is ``build_backbone(cfg)``: any registered backbone, so the attention backbones
(``build_densenet_attention_backbone``, ``build_resnet_attention_backbone``) with attention placed by
``MODEL.ATTENTION`` exactly as for detection, and the same parameter names. Its last output
(``MODEL.CLASSIFIER.IN_FEATURE``) is averaged over space and a linear layer gives one logit per class:
``MODEL.ROI_HEADS.NUM_CLASSES`` classes of the dataset, then "No finding" when
``MODEL.CLASSIFIER.NO_FINDING`` (VinDr-CXR: 14 + 1 = 15 outputs).

Inputs are detectron2's (``image``: (C, H, W) uint8 in ``INPUT.FORMAT``); each image is normalised by
``MODEL.PIXEL_MEAN`` / ``PIXEL_STD`` and resized to ``MODEL.CLASSIFIER.INPUT_SIZE`` squared (bilinear,
antialiased). Training targets come from the mapper's ``instances``: an image's labels are the classes of
its boxes, and "No finding" is 1 for an image without any. Outputs: ``[{"probabilities": (K,)}]``, the
sigmoid of the logits.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode, configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from torch import Tensor, nn

from ..config import ConfigError

__all__ = ["ImageClassifier", "classifier_class_names", "multi_hot"]


def multi_hot(classes: Sequence[int], num_classes: int, no_finding: bool) -> Tensor:
    """(num_classes [+ 1],) float32 with 1 at each of ``classes`` (contiguous ids 0..num_classes-1); with
    ``no_finding`` one more entry, 1 when ``classes`` is empty."""
    target = torch.zeros(num_classes + int(no_finding), dtype=torch.float32)
    if len(classes):
        target[torch.as_tensor(list(classes), dtype=torch.int64)] = 1.0
    elif no_finding:
        target[-1] = 1.0
    return target


def classifier_class_names(thing_classes: Sequence[str], no_finding: bool) -> List[str]:
    """The classifier's output names: the dataset's classes, then "No finding" when ``no_finding``."""
    return [*thing_classes, *(["No finding"] if no_finding else [])]


@META_ARCH_REGISTRY.register()
class ImageClassifier(nn.Module):
    """Backbone, global average pooling of one feature map, a linear layer: multi-label logits."""

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        in_feature: str,
        num_classes: int,
        no_finding: bool,
        input_size: int,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        dropout: float = 0.0,
    ):
        """
        Args:
            backbone: returns ``{in_feature: (B, C, h, w)}``.
            num_classes: the dataset's classes; the head has ``num_classes + no_finding`` outputs.
            input_size: side of the square image the backbone sees, in pixels.
            pixel_mean, pixel_std: per channel, in the input's 0-255 units.
            dropout: before the linear layer.
        """
        super().__init__()
        self.backbone = backbone
        self.in_feature = in_feature
        self.num_classes = num_classes
        self.no_finding = no_finding
        self.input_size = int(input_size)
        shapes = backbone.output_shape()
        if in_feature not in shapes:
            raise ConfigError(
                f"MODEL.CLASSIFIER.IN_FEATURE {in_feature!r} is not an output of the backbone, which returns "
                f"{list(shapes)} (MODEL.DENSENET.OUT_FEATURES / MODEL.RESNETS.OUT_FEATURES)"
            )
        channels = shapes[in_feature].channels
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_classes + int(no_finding))
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> Dict:
        c = cfg.MODEL.CLASSIFIER
        return {
            "backbone": build_backbone(cfg),
            "in_feature": c.IN_FEATURE,
            "num_classes": cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            "no_finding": c.NO_FINDING,
            "input_size": c.INPUT_SIZE,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "dropout": c.DROPOUT,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: List[dict]) -> Tensor:
        """(B, C, S, S) float: each image normalised, then resized to ``input_size`` squared."""
        size = (self.input_size, self.input_size)
        images = [(x["image"].to(self.device).float() - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        return torch.cat(
            [F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True) for x in images]
        )

    def logits(self, images: Tensor) -> Tensor:
        """(B, C, S, S) -> (B, K) logits."""
        features = self.backbone(images)[self.in_feature]
        return self.head(self.dropout(features.mean(dim=(2, 3))))

    def targets(self, batched_inputs: List[dict]) -> Tensor:
        """(B, K) multi-hot labels from each input's ``instances.gt_classes``."""
        classes = [x["instances"].gt_classes.tolist() for x in batched_inputs]
        rows = [multi_hot(c, self.num_classes, self.no_finding) for c in classes]
        return torch.stack(rows).to(self.device)

    def forward(self, batched_inputs: List[dict]):
        """Training: ``{"loss_cls": binary cross-entropy of the logits}``; else ``[{"probabilities": (K,)}]``."""
        logits = self.logits(self.preprocess_image(batched_inputs))
        if self.training:
            return {"loss_cls": F.binary_cross_entropy_with_logits(logits, self.targets(batched_inputs))}
        return [{"probabilities": p} for p in torch.sigmoid(logits)]
