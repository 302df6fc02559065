"""The attention table is the one list of types: the docs are its output, and a row added to it is a type
the config accepts with its options, the registered backbones build, create_attention returns, and
whose spatial map the attention-map recorder reads."""

import re
from pathlib import Path

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from torch import nn

from sna_det.analysis import AttentionMapRecorder
from sna_det.config import ConfigError, add_sna_config, validate_config
from sna_det.layers import attention_factory
from sna_det.layers.attention_factory import (
    ATTENTION_TABLE,
    AttentionOption,
    AttentionType,
    SpatialMap,
    attention_table_markdown,
)
from sna_det.modeling import build_resnet_attention_backbone, create_attention
from sna_det.utils.config_values import ConfigValue

ROOT = Path(__file__).resolve().parents[2]


def test_docs_hold_the_table_as_it_is():
    assert attention_table_markdown() in (ROOT / "docs" / "attention.md").read_text()
    names = re.findall(r"^\| `([a-z_]+)` \|", attention_table_markdown(), flags=re.M)
    assert names == list(ATTENTION_TABLE)


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


@pytest.fixture
def scale_row(monkeypatch):
    """A new type, "scale", as one row of the table."""
    row = AttentionType(
        lambda channels, factor: Scale(factor),
        "multiplies by a constant",
        "MODEL.ATTENTION.SCALE",
        (AttentionOption("FACTOR", 2.0, ConfigValue("float", 0, above=True), lambda f: {"factor": f}, "the constant"),),
        lambda: Scale,
        (SpatialMap("channel mean", "", lambda block, x, output: output.mean(1)),),
    )
    monkeypatch.setitem(attention_factory.ATTENTION_TABLE, "scale", row)


def _cfg(**attention):
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.MODEL.BACKBONE.NAME = "build_resnet_attention_backbone"
    cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 18, 64
    cfg.MODEL.ATTENTION.update(attention)
    return cfg


def test_a_new_row_is_a_type_everywhere(scale_row):
    cfg = _cfg(TYPE="scale", STEM=True)
    assert cfg.MODEL.ATTENTION.SCALE.FACTOR == 2.0  # its config node, from the row
    cfg.MODEL.ATTENTION.SCALE.FACTOR = 3.0
    validate_config(cfg)
    torch.manual_seed(0)
    backbone = build_resnet_attention_backbone(cfg, ShapeSpec(channels=3))
    assert isinstance(backbone.stem.attn, Scale) and backbone.stem.attn.factor == 3.0
    x = torch.rand(1, 3, 32, 32)
    plain_stem = backbone.stem.conv1(x).relu_()
    expected = torch.nn.functional.max_pool2d(plain_stem, kernel_size=3, stride=2, padding=1) * 3.0
    with AttentionMapRecorder(backbone) as recorder:
        torch.testing.assert_close(backbone.stem(x), expected)
    torch.testing.assert_close(recorder.maps["stem"]["channel mean"][0], expected.mean(1))  # its map, recorded
    assert isinstance(create_attention("scale", 8, factor=0.5), Scale)
    cfg.MODEL.ATTENTION.SCALE.FACTOR = -1.0
    with pytest.raises(ConfigError, match=r"MODEL.ATTENTION.SCALE.FACTOR -1.0 must be a number > 0"):
        validate_config(cfg)


def test_type_and_options_checked_from_the_table():
    with pytest.raises(ConfigError, match=r"MODEL.ATTENTION.TYPE 'scale' is not one of \['none', 'sna'"):
        validate_config(_cfg(TYPE="scale"))
    cfg = _cfg(TYPE="cbam")
    cfg.MODEL.ATTENTION.CBAM.RD_RATIO = float("nan")
    with pytest.raises(ConfigError, match="MODEL.ATTENTION.CBAM.RD_RATIO nan must be a number > 0 and <= 1"):
        validate_config(cfg)
