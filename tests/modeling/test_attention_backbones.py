"""Every attention type in every placement on ResNet-18, ResNet-50 and DenseNet-121, through one mechanism."""

import functools

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone
from timm.layers import get_attn
from torch import nn

from sna_det import SpectralNormAttention, add_sna_config
from sna_det.layers import ATTENTION_TYPES, SpectralNormAttentionAuthorsCode, create_attention
from sna_det.modeling.attention_injection import add_attention_to_backbone
from sna_det.modeling.backbone import DenseNetBackbone

TYPES = [t for t in ATTENTION_TYPES if t != "none"]
BLOCKS = {"R18": [2, 2, 2, 2], "R50": [3, 4, 6, 3], "D121": [6, 12, 24, 16]}
STAGES = {"R18": ["res2", "res3", "res4", "res5"], "R50": ["res2", "res3", "res4", "res5"]}
STAGES["D121"] = ["dense1", "dense2", "dense3", "dense4"]
TIMM_NAMES = {"se": "se", "eca": "eca", "nonlocal": "nl", "cbam": "cbam", "gc": "gc"}  # type -> get_attn name
ATTENTION_CLASSES = {
    "sna": SpectralNormAttention,
    "sna_authors": SpectralNormAttentionAuthorsCode,
    **{t: get_attn(name) for t, name in TIMM_NAMES.items()},
}


def backbone_cfg(arch: str, attn_type: str = "none", stem: bool = False, stages=()):
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    if arch == "D121":
        cfg.MODEL.BACKBONE.NAME = "build_densenet_attention_backbone"
    else:
        cfg.MODEL.BACKBONE.NAME = "build_resnet_attention_backbone"
        cfg.MODEL.RESNETS.DEPTH = int(arch[1:])
        cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if arch == "R18" else 256
        cfg.MODEL.RESNETS.OUT_FEATURES = STAGES[arch]
        cfg.MODEL.RESNETS.NORM = "BN"
        cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.ATTENTION.TYPE = attn_type
    cfg.MODEL.ATTENTION.STEM = stem
    cfg.MODEL.ATTENTION.STAGES = list(stages)
    return cfg


@functools.cache
def plain_backbone(arch: str) -> nn.Module:
    """The backbone without attention (built once per architecture; tests must not modify it)."""
    torch.manual_seed(0)
    return build(backbone_cfg(arch))


def build(cfg) -> nn.Module:
    return build_backbone(cfg, ShapeSpec(channels=3))


def attention_modules(model: nn.Module, attn_type: str) -> list:
    return [m for m in model.modules() if isinstance(m, ATTENTION_CLASSES[attn_type])]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", list(BLOCKS))
@pytest.mark.parametrize("attn_type", TYPES)
@pytest.mark.parametrize("placement", ["stem", "stages"])
def test_each_type_in_each_placement_trains_and_costs_what_its_blocks_cost(arch, attn_type, placement):
    plain = plain_backbone(arch)
    stem, stages = placement == "stem", STAGES[arch] if placement == "stages" else []
    model = build(backbone_cfg(arch, attn_type, stem, stages))

    blocks = attention_modules(model, attn_type)
    assert len(blocks) == (1 if stem else sum(BLOCKS[arch]))
    # the parameters added are exactly those of the blocks, and timm's own block for each site has as many
    assert n_params(model) - n_params(plain) == sum(n_params(b) for b in blocks)
    channels = _site_channels(arch, stem, stages)
    if attn_type in ("sna", "sna_authors"):  # no parameters
        assert n_params(model) == n_params(plain)
    else:  # each block costs what timm's block, built directly for that site's channels, costs
        assert [n_params(b) for b in blocks] == [n_params(_timm_block(attn_type, c)) for c in channels]
    # a checkpoint of the plain backbone loads; what it lacks is the attention blocks' own parameters
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and all(".attn." in k for k in missing)
    own = [k for b in blocks for k in b.state_dict() if not k.endswith("num_batches_tracked")]
    assert len(missing) == len(own)

    x = torch.randn(2, 3, 64, 96)
    model.train()
    with torch.no_grad():
        reference = plain(x)
    outputs = model(x)
    assert {k: v.shape for k, v in outputs.items()} == {k: v.shape for k, v in reference.items()}
    loss = sum(o.square().mean() for o in outputs.values())
    loss.backward()
    assert torch.isfinite(loss)
    for block in blocks:
        for name, p in block.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def _site_channels(arch, stem, stages):
    """Channels at each site, from the plain architecture (not read from the attention blocks)."""
    if arch == "D121":
        growth, stem_channels = 32, 64
        return ([stem_channels] if stem else []) + [growth] * sum(BLOCKS[arch]) * bool(stages)
    widths = [64, 128, 256, 512] if arch == "R18" else [256, 512, 1024, 2048]
    return ([64] if stem else []) + [w for w, n in zip(widths, BLOCKS[arch]) for _ in range(n)] * bool(stages)


def _timm_block(attn_type, channels):
    """timm's block with timm's defaults, except GC's fusion: our default is GCNet's "add"."""
    options = {"gc": {"fuse_add": True, "fuse_scale": False}}.get(attn_type, {})
    return get_attn(TIMM_NAMES[attn_type])(channels, **options)


class Spy(nn.Module):
    """Attention stand-in: records its input and multiplies by a constant."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor, self.seen = factor, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x * self.factor


def test_resnet_attention_acts_on_the_residual_branch_before_the_addition():
    """With the branch scaled by 0, every block is its shortcut: BasicBlock output = relu(shortcut(x))."""
    torch.manual_seed(0)
    model = build(backbone_cfg("R18")).eval()
    spies = []
    add_attention_to_backbone(model, lambda c: spies.append(Spy(0.0)) or spies[-1], stem=False, stages=["res3"])
    block = model.res3[1]  # identity shortcut
    x = torch.randn(1, 128, 8, 8)
    with torch.no_grad():
        assert torch.equal(block(x), torch.relu(x))
    assert spies[1].seen[-1].shape == (1, 128, 8, 8)


def test_densenet_attention_acts_on_each_dense_layers_new_features():
    """Zeroing the new features of every layer of dense1 leaves only the stem's 64 channels non-zero."""
    torch.manual_seed(0)
    model = DenseNetBackbone(out_features=["dense1"]).eval()
    add_attention_to_backbone(model, lambda c: Spy(0.0), stem=False, stages=["dense1"])
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))["dense1"]
    assert out.shape == (1, 256, 16, 16)
    assert out[:, :64].abs().sum() > 0 and torch.equal(out[:, 64:], torch.zeros_like(out[:, 64:]))


def test_densenet_matches_torchvision_and_builds_only_what_it_returns():
    from torchvision.models import densenet121

    torch.manual_seed(0)
    reference = densenet121(weights=None).eval()
    model = DenseNetBackbone().eval()
    model.load_state_dict({k: v for k, v in reference.state_dict().items() if k.startswith("features.")})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = torch.relu(reference.features(x))
        out = model(x)
    assert torch.allclose(out["dense4"], expected, atol=1e-5)
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        "dense1": (256, 16, 16),
        "dense2": (512, 8, 8),
        "dense3": (1024, 4, 4),
        "dense4": (1024, 2, 2),
    }
    assert model.output_shape()["dense3"] == ShapeSpec(channels=1024, stride=16)
    short = DenseNetBackbone(out_features=["dense1", "dense2"])
    assert not hasattr(short.features, "denseblock3") and not hasattr(short.features, "norm5")
    assert n_params(reference.features) == n_params(model)


def test_options_reach_the_blocks():
    cfg = backbone_cfg("R18", "se", stages=["res5"])
    cfg.MODEL.ATTENTION.SE.RD_RATIO = 1 / 4
    block = attention_modules(build(cfg), "se")[0]
    assert block.fc1.out_channels == 128  # 512 / 4
    cfg = backbone_cfg("R18", "eca", stages=["res5"])
    cfg.MODEL.ATTENTION.ECA.KERNEL_SIZE = 7
    assert attention_modules(build(cfg), "eca")[0].conv.kernel_size == (7,)
    cfg = backbone_cfg("R18", "sna", stem=True)
    cfg.MODEL.SNA.RANK = 2
    assert attention_modules(build(cfg), "sna")[0].rank == 2


def test_unknown_type_and_stage_are_named():
    with pytest.raises(ValueError, match="attention type 'mystery' is not one of"):
        build(backbone_cfg("R18", "mystery", stem=True))
    with pytest.raises(ValueError, match=r"\['res6'\] are not built"):
        build(backbone_cfg("R18", "se", stages=["res6"]))
    with pytest.raises(ValueError, match=r"\['res2'\] are not DenseNet stages"):
        build(backbone_cfg("D121", "se", stages=["res2"]))
    with pytest.raises(ValueError, match="has no block"):
        create_attention("none", 8)
