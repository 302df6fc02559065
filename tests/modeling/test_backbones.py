"""SNA in the attention backbones: placement, and checkpoint
compatibility with detectron2's own backbones."""

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, build_backbone

from sna_det import SpectralNormAttention, add_sna_config


def backbone_cfg(name: str, depth: int, stem: bool = True, stages=(), attn_type: str = "sna"):
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.MODEL.BACKBONE.NAME = name
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if depth < 50 else 256
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.ATTENTION.TYPE = attn_type
    cfg.MODEL.ATTENTION.STEM = stem
    cfg.MODEL.ATTENTION.STAGES = list(stages)
    return cfg


VANILLA = {  # one builder per family -> detectron2's own builder of that family
    "build_resnet_attention_backbone": "build_resnet_backbone",
    "build_resnet_attention_fpn_backbone": "build_resnet_fpn_backbone",
    "build_retinanet_resnet_attention_fpn_backbone": "build_retinanet_resnet_fpn_backbone",
}


def sna_modules(model):
    return [name for name, module in model.named_modules() if isinstance(module, SpectralNormAttention)]


def test_builders_are_registered():
    for name in VANILLA:
        assert BACKBONE_REGISTRY.get(name) is not None
    registered = {name for name, _ in BACKBONE_REGISTRY}
    assert not {"build_resnet_sna_backbone", "build_retinanet_resnet_sna_fpn_backbone"} & registered


@pytest.mark.parametrize("name", list(VANILLA))
def test_type_none_is_detectron2s_own_backbone(name):
    torch.manual_seed(0)
    ours = build_backbone(backbone_cfg(name, 18, stem=True, stages=["res2"], attn_type="none"), ShapeSpec(channels=3))
    torch.manual_seed(0)
    theirs = build_backbone(backbone_cfg(VANILLA[name], 18), ShapeSpec(channels=3))
    assert repr(ours) == repr(theirs)
    x = torch.randn(1, 3, 64, 64)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        assert all(torch.equal(ours(x)[k], theirs(x)[k]) for k in theirs(x))


@pytest.mark.parametrize("depth", [18, 34, 50, 101])
@pytest.mark.parametrize("sna_name", list(VANILLA))
def test_vanilla_checkpoint_loads_into_sna_backbone(sna_name, depth):
    stages = ["res2", "res3", "res4", "res5"]
    sna = build_backbone(backbone_cfg(sna_name, depth, stem=True, stages=stages), ShapeSpec(channels=3))
    vanilla = build_backbone(backbone_cfg(VANILLA[sna_name], depth), ShapeSpec(channels=3))
    assert len(sna_modules(sna)) == 1 + {18: 8, 34: 16, 50: 16, 101: 33}[depth]
    assert sum(p.numel() for p in sna.parameters()) == sum(p.numel() for p in vanilla.parameters())
    assert list(sna.state_dict()) == list(vanilla.state_dict())
    missing, unexpected = sna.load_state_dict(vanilla.state_dict(), strict=True)
    assert not missing and not unexpected


def test_placement_stem_and_every_block_of_chosen_stages():
    cfg = backbone_cfg("build_resnet_attention_fpn_backbone", 18, stem=True, stages=["res3", "res5"])
    names = sna_modules(build_backbone(cfg, ShapeSpec(channels=3)))
    assert names == [
        "bottom_up.stem.attn",
        "bottom_up.res3.0.attn",
        "bottom_up.res3.1.attn",
        "bottom_up.res5.0.attn",
        "bottom_up.res5.1.attn",
    ]
    cfg = backbone_cfg("build_resnet_attention_backbone", 50, stem=False, stages=["res2"])
    assert sna_modules(build_backbone(cfg, ShapeSpec(channels=3))) == ["res2.0.attn", "res2.1.attn", "res2.2.attn"]


def test_stem_sna_applies_to_the_stem_output():
    cfg = backbone_cfg("build_resnet_attention_backbone", 18, stem=True)
    sna = build_backbone(cfg, ShapeSpec(channels=3)).eval()
    vanilla = build_backbone(backbone_cfg("build_resnet_backbone", 18), ShapeSpec(channels=3)).eval()
    vanilla.load_state_dict(sna.state_dict())
    x = torch.randn(2, 3, 64, 96)
    stem_out = vanilla.stem(x)
    torch.testing.assert_close(sna.stem(x), SpectralNormAttention()(stem_out))
    expected = vanilla.res2(SpectralNormAttention()(stem_out))
    torch.testing.assert_close(sna(x)["res2"], expected)


@pytest.mark.parametrize("depth,branch_end", [(18, "conv2"), (50, "conv3")])
def test_block_sna_sits_on_the_residual_branch_before_the_addition(depth, branch_end):
    cfg = backbone_cfg("build_resnet_attention_backbone", depth, stem=False, stages=["res3"])
    sna = build_backbone(cfg, ShapeSpec(channels=3)).eval()
    vanilla = build_backbone(backbone_cfg("build_resnet_backbone", depth), ShapeSpec(channels=3)).eval()
    vanilla.load_state_dict(sna.state_dict())
    block, plain = sna.res3[1], vanilla.res3[1]
    x = torch.randn(2, block.in_channels, 12, 10)
    branch = x
    for name in ("conv1", "conv2", "conv3")[: 2 if depth < 50 else 3]:
        branch = getattr(plain, name)(branch)
        if name != branch_end:
            branch = torch.relu(branch)
    expected = torch.relu(SpectralNormAttention()(branch) + x)  # identity shortcut in block 1
    torch.testing.assert_close(block(x), expected)


def test_unknown_stage_is_rejected_with_the_stage_names():
    cfg = backbone_cfg("build_resnet_attention_backbone", 18, stages=["res6"])
    with pytest.raises(ValueError, match="res6"):
        build_backbone(cfg, ShapeSpec(channels=3))


def test_sna_options_reach_every_block():
    cfg = backbone_cfg("build_resnet_attention_fpn_backbone", 18, stem=True, stages=["res4"])
    cfg.MODEL.SNA.RANK, cfg.MODEL.SNA.MODE, cfg.MODEL.SNA.SQUARINGS = 2, "svd", 7
    cfg.MODEL.SNA.WEIGHTING = "softmax"
    model = build_backbone(cfg, ShapeSpec(channels=3))
    blocks = [m for m in model.modules() if isinstance(m, SpectralNormAttention)]
    assert len(blocks) == 3
    for block in blocks:
        assert (block.rank, block.mode, block.squarings, block.weighting) == (2, "svd", 7, "softmax")


def test_backbone_trains_a_step_and_deepcopies():
    import copy

    cfg = backbone_cfg("build_resnet_attention_fpn_backbone", 18, stem=True, stages=["res2", "res3", "res4", "res5"])
    model = build_backbone(cfg, ShapeSpec(channels=3))
    out = model(torch.randn(2, 3, 64, 64))
    sum(v.float().mean() for v in out.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    clone = copy.deepcopy(model).eval()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    for key, value in model(x).items():
        torch.testing.assert_close(clone(x)[key], value)
    assert len(sna_modules(clone)) == 1 + 8
