"""DenseNet (torchvision's architecture) as a detectron2 ``Backbone``, alone or under an FPN.

The paper runs Faster R-CNN on VinDr-CXR with DenseNet-121 beside ResNet-18 (Table 4). The network
is torchvision's, built without weights, so parameter names are torchvision's ``features.*``:

| output | after | stride | channels (121) |
| --- | --- | --- | --- |
| ``dense1`` | ``denseblock1`` | 4 | 256 |
| ``dense2`` | ``denseblock2`` | 8 | 512 |
| ``dense3`` | ``denseblock3`` | 16 | 1024 |
| ``dense4`` | ``denseblock4``, ``norm5``, ReLU | 32 | 1024 |

The stem (``conv0``, ``norm0``, ``relu0``, ``pool0``) has stride 4, as detectron2's ResNet stem.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch.nn.functional as F
from detectron2.config import CfgNode
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import Backbone
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool
from torch import Tensor, nn
from torchvision.models import densenet

__all__ = ["DENSENET_SPECS", "DenseNetBackbone", "build_densenet_backbone", "build_densenet_fpn_backbone"]

DENSENET_SPECS: Dict[int, Tuple[int, Tuple[int, int, int, int], int]] = {
    121: (32, (6, 12, 24, 16), 64),
    161: (48, (6, 12, 36, 24), 96),
    169: (32, (6, 12, 32, 32), 64),
    201: (32, (6, 12, 48, 32), 64),
}
"""depth -> (growth rate, layers per dense block, stem channels), torchvision's."""


class DenseNetBackbone(Backbone):
    """torchvision's DenseNet feature extractor with outputs ``dense1``..``dense4``."""

    def __init__(
        self,
        *,
        depth: int = 121,
        out_features: Sequence[str] = ("dense1", "dense2", "dense3", "dense4"),
        norm: str = "BN",
        memory_efficient: bool = False,
    ):
        """
        Args:
            depth: 121, 161, 169 or 201.
            out_features: names among ``dense1``..``dense4`` to return.
            norm: "BN", "FrozenBN" (for fine-tuning pretrained weights) or "SyncBN".
            memory_efficient: torchvision's checkpointing inside dense layers.
        """
        super().__init__()
        if depth not in DENSENET_SPECS:
            raise ValueError(f"DenseNet depth {depth} is not one of {sorted(DENSENET_SPECS)}")
        growth, blocks, stem_channels = DENSENET_SPECS[depth]
        net = densenet.DenseNet(
            growth_rate=growth, block_config=blocks, num_init_features=stem_channels, memory_efficient=memory_efficient
        )
        self.features = net.features
        if norm == "FrozenBN":
            self.features = FrozenBatchNorm2d.convert_frozen_batchnorm(self.features)
        elif norm == "SyncBN":
            self.features = nn.SyncBatchNorm.convert_sync_batchnorm(self.features)
        elif norm != "BN":
            raise ValueError(f"DenseNet norm {norm!r} is not one of BN, FrozenBN, SyncBN")
        self.stage_names = tuple(f"dense{i}" for i in range(1, 5))
        unknown = sorted(set(out_features) - set(self.stage_names))
        if unknown or not out_features:
            raise ValueError(f"DenseNet out_features {list(out_features)}: choose among {list(self.stage_names)}")
        self._out_features = list(out_features)
        self._last_stage = max(self.stage_names.index(name) for name in out_features) + 1
        for i in range(self._last_stage + 1, 5):  # drop what no output needs (unused parameters break DDP)
            delattr(self.features, f"transition{i - 1}")
            delattr(self.features, f"denseblock{i}")
        if self._last_stage < 4:
            delattr(self.features, "norm5")
        channels, self._out_feature_channels, self._out_feature_strides = stem_channels, {}, {}
        for i, (name, layers) in enumerate(zip(self.stage_names, blocks)):
            channels += layers * growth
            self._out_feature_channels[name] = channels
            self._out_feature_strides[name] = 4 * 2**i
            channels //= 2  # the transition after the block halves channels (and resolution)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        """(B, 3, H, W) -> {name: (B, C, H / stride, W / stride)} for ``out_features``."""
        f = self.features
        x = f.pool0(f.relu0(f.norm0(f.conv0(x))))
        outputs = {}
        for i, name in enumerate(self.stage_names[: self._last_stage], start=1):
            if i > 1:
                x = getattr(f, f"transition{i - 1}")(x)
            x = getattr(f, f"denseblock{i}")(x)
            if i == 4:
                x = F.relu(f.norm5(x))
            if name in self._out_features:
                outputs[name] = x
        return outputs

    def attention_sites(self, *, stem: bool, stages: Sequence[str]) -> List[Tuple[nn.Module, nn.Module, int]]:
        """Where attention goes: ``(owner, after, channels)`` for the stem output (after ``pool0``) and
        for the new features of every dense layer of ``stages`` (after its ``conv2``, before concatenation).
        """
        unknown = sorted(set(stages) - set(self.stage_names))
        if unknown:
            raise ValueError(f"attention stages {unknown} are not DenseNet stages {list(self.stage_names)}")
        f = self.features
        sites = [(f.pool0, f.pool0, f.conv0.out_channels)] if stem else []
        for i, name in enumerate(self.stage_names, start=1):
            if name in stages:
                if not hasattr(f, f"denseblock{i}"):
                    raise ValueError(f"attention stage {name} is not built (out_features end before it)")
                layers = getattr(f, f"denseblock{i}").values()
                sites += [(layer, layer.conv2, layer.conv2.out_channels) for layer in layers]
        return sites


def _densenet_from_cfg(cfg: CfgNode, out_features: Sequence[str]) -> DenseNetBackbone:
    d = cfg.MODEL.DENSENET
    return DenseNetBackbone(depth=d.DEPTH, out_features=out_features, norm=d.NORM, memory_efficient=d.MEMORY_EFFICIENT)


def build_densenet_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """DenseNet (``MODEL.DENSENET``) returning ``MODEL.DENSENET.OUT_FEATURES`` (registered with attention:
    ``build_densenet_attention_backbone``)."""
    if input_shape.channels != 3:
        raise ValueError(f"DenseNet takes 3-channel input, not {input_shape.channels}")
    return _densenet_from_cfg(cfg, cfg.MODEL.DENSENET.OUT_FEATURES)


def build_densenet_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """DenseNet with detectron2's FPN (``MODEL.FPN``: IN_FEATURES among dense1..dense4) and P6 by max-pool
    (registered with attention: ``build_densenet_attention_fpn_backbone``)."""
    if input_shape.channels != 3:
        raise ValueError(f"DenseNet takes 3-channel input, not {input_shape.channels}")
    bottom_up = _densenet_from_cfg(cfg, cfg.MODEL.FPN.IN_FEATURES)
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
