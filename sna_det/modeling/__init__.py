"""What a detectron2 user needs: the config keys (``add_sna_config``, ``validate_config``), the registered
backbones (``MODEL.BACKBONE.NAME``), ``add_attention`` (attention in any built backbone, a LazyCall target)
and ``create_attention`` (one block of a type, ``sna_det.layers.ATTENTION_TABLE``)."""

from ..config import add_sna_config, validate_config
from ..layers.attention_factory import create_attention
from .backbone import *  # noqa: F401,F403  (registers the backbones)
from .backbone import __all__ as _backbone_all
from .classifier import ImageClassifier

__all__ = ["ImageClassifier", "add_sna_config", "create_attention", "validate_config", *_backbone_all]
