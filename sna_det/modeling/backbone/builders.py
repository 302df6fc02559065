"""``add_attention``: the one placement of attention blocks in a built backbone, for the YAML builders
(``attention_backbones.py``, ``MODEL.ATTENTION``) and LazyConfigs alike::

    from detectron2.config import LazyCall as L
    model.backbone = L(add_attention)(backbone=L(FPN)(bottom_up=L(ResNet)(...), ...), attention="sna", stem=True)

The networks are detectron2's (``ResNet``, ``FPN``) or our ``DenseNetBackbone``, so a LazyConfig model and
its YAML twin have the same modules and parameter names (tests/engine/test_lazy_config.py checks it).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from detectron2.modeling import Backbone

from ...layers.attention_factory import ATTENTION_TABLE, create_attention
from ..attention_injection import add_attention_to_backbone

__all__ = ["DENSENET_STAGES", "RESNET_STAGES", "add_attention"]

RESNET_STAGES = ("res2", "res3", "res4", "res5")
DENSENET_STAGES = ("dense1", "dense2", "dense3", "dense4")


def add_attention(
    backbone: Backbone,
    attention: str = "sna",
    *,
    stem: bool = False,
    stages: Sequence[str] = (),
    options: Optional[Mapping[str, Any]] = None,
) -> Backbone:
    """Attention blocks of type ``attention`` (a row of ``sna_det.layers.ATTENTION_TABLE``; "none" adds nothing) in a
    built backbone (its ``bottom_up`` network when it has one, e.g. an FPN); in place, returned.

    ``stem``: one block on the stem's output; ``stages``: one on every block of these stages (ResNet
    "res2".."res5", DenseNet "dense1".."dense4"); ``options``: the block's constructor keywords (``rank``
    for "sna", ``rd_ratio`` for "se", ...; ``create_attention``).
    """
    if attention not in ATTENTION_TABLE:
        raise ValueError(f"attention type {attention!r} is not one of {list(ATTENTION_TABLE)}")
    if attention != "none":
        keywords = dict(options or {})
        add_attention_to_backbone(
            getattr(backbone, "bottom_up", backbone),
            lambda channels: create_attention(attention, channels, **keywords),
            stem=stem,
            stages=list(stages),
        )
    return backbone
