"""Attention-map collection (SNA, timm's CBAM and GlobalContext) against independent computations,
their placement on the image, and tools/visualize_attention.py end to end."""

import re

import numpy as np
import pytest
import torch
from helpers import ROOT, run_script
from PIL import Image
from timm.layers.cbam import CbamModule
from timm.layers.global_context import GlobalContext
from timm.layers.squeeze_excite import SEModule
from torch import nn
from torch.nn import functional as F

from sna_det import SpectralNormAttention
from sna_det.analysis.attention_maps import AttentionMapRecorder, attention_placements, map_to_image
from sna_det.analysis.attention_report import overlay_map, panels_side_by_side
from sna_det.modeling.attention_injection import placement_name


def numpy_rank_one(m: np.ndarray) -> np.ndarray:
    u, s, vh = np.linalg.svd(m)
    return s[0] * np.outer(u[:, 0], vh[0])


class Net(nn.Module):
    def __init__(self, attention: nn.Module, channels: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.attn = attention

    def forward(self, x):
        return self.attn(self.conv(x))


def test_sna_maps_match_numpy_svd():
    block = SpectralNormAttention()
    model = Net(block).double()
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    with AttentionMapRecorder(model) as recorder:
        model(x)
        model(x[:1])
    features = model.conv(x).detach()
    assert set(recorder.maps) == {"attn"} and set(recorder.maps["attn"]) == {"rank-k map", "weights"}
    low_rank, weights = recorder.maps["attn"]["rank-k map"], recorder.maps["attn"]["weights"]
    assert [tuple(m.shape) for m in weights] == [(2, 9, 11), (1, 9, 11)], "one entry per forward call"
    for image in range(2):
        expected = numpy_rank_one(features[image].mean(0).numpy())
        np.testing.assert_allclose(low_rank[0][image].numpy(), expected, rtol=1e-4, atol=1e-5)
        softmax = np.exp(expected - expected.max())
        np.testing.assert_allclose(weights[0][image].numpy(), 99 * softmax / softmax.sum(), rtol=1e-4)
    assert not block._forward_hooks, "hooks are removed on exit"
    recorder.clear()
    assert recorder.maps == {}


def test_timm_spatial_maps_and_channel_only_blocks():
    torch.manual_seed(1)
    cbam = Net(CbamModule(8), channels=8).eval()
    x = torch.rand(2, 3, 10, 12)
    with AttentionMapRecorder(cbam) as recorder:
        out = cbam(x)
    channel_attended = cbam.attn.channel(cbam.conv(x))
    pooled = torch.cat([channel_attended.mean(1, keepdim=True), channel_attended.amax(1, keepdim=True)], 1)
    gate = torch.sigmoid(cbam.attn.spatial.conv(pooled))[:, 0]
    torch.testing.assert_close(recorder.maps["attn"]["spatial gate"][0], gate.detach())
    torch.testing.assert_close(out, channel_attended * gate[:, None])

    gc = Net(GlobalContext(8, use_attn=True), channels=8).eval()
    with AttentionMapRecorder(gc) as recorder:
        gc(x)
    logits = gc.attn.conv_attn(gc.conv(x)).detach()
    expected = F.softmax(logits.reshape(2, -1), -1).reshape(2, 10, 12)
    torch.testing.assert_close(recorder.maps["attn"]["context weights"][0], expected)

    assert list(attention_placements(Net(SEModule(8), channels=8))) == [], "SE has no spatial map"


def test_placement_names():
    assert placement_name("module.backbone.bottom_up.res3.1.attn") == "res3.1"
    assert placement_name("backbone.bottom_up.stem.attn") == "stem"
    assert placement_name("backbone.res2.0.attn") == "res2.0"
    assert placement_name("encoder.block.attn") == "encoder.block"
    assert placement_name("attn") == "attn"


def test_map_to_image_crops_the_padding_and_scales():
    """A stride-8 map of a 24 x 40 input padded to 32 x 48, back onto its 48 x 80 original."""
    attention_map = torch.zeros(4, 6)
    attention_map[1, 3] = 1.0
    attention_map[3, :] = 5.0  # padding rows: cropped away, except for bilinear bleed at the border
    attention_map[:, 5] = 5.0
    on_image = map_to_image(attention_map, (24, 40), (32, 48), (48, 80))
    assert on_image.shape == (48, 80)
    interior = on_image[:40, :64]
    row, col = divmod(int(interior.argmax()), 64)
    assert 16 <= row < 32 and 48 <= col < 64, "the hot cell (1, 3) covers image rows 16-31, columns 48-63"
    # the padding (value 5) bleeds in over the last half cell only (bilinear): without the crop, the
    # last image rows and columns would be the padding itself
    assert on_image[:38, :70].max() <= 1 + 1e-6
    assert on_image[-1, :60].max() < 2.5 and on_image[:30, -1].max() < 2.5


def test_overlay_and_side_by_side():
    image = np.full((30, 50, 3), 100, dtype=np.uint8)
    ramp = np.tile(np.linspace(0, 1, 50), (30, 1))
    overlaid = overlay_map(image, ramp, "x", alpha=1.0)
    assert overlaid.shape == (30, 50, 3) and overlaid.dtype == np.uint8
    assert not np.array_equal(overlaid[25, 5], overlaid[25, 45]), "the heat map follows the ramp"
    with pytest.raises(ValueError, match="differ in size"):
        overlay_map(image, ramp[:10], "x")
    row = panels_side_by_side([image, overlaid, image])
    assert row.shape == (30, 3 * 50 + 2 * 4, 3) and (row[:, 50:54] == 255).all()


def test_tool_writes_panels_and_index(tmp_path):
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    for name in ("first", "second"):
        pixels = rng.integers(0, 256, size=(50, 70), dtype=np.uint8)
        Image.fromarray(pixels).convert("RGB").save(images / f"{name}.png")
    out = tmp_path / "out"
    overrides = 'INPUT.MIN_SIZE_TEST 64 INPUT.MAX_SIZE_TEST 128 MODEL.ATTENTION.STAGES ["res3"] '
    overrides += "MODEL.ROI_HEADS.SCORE_THRESH_TEST 0.0 MODEL.RPN.POST_NMS_TOPK_TEST 20 DATASETS.TEST ()"
    proc = run_script(
        "tools/visualize_attention.py",
        *["--config-file", ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_sna_demo.yaml"],
        *["--input", images, "--output", out, "--score-threshold", 0, *overrides.split()],
        check=True,
    )
    assert "randomly initialized" in proc.stdout
    panels = ["detections"] + [f"{p}_{k}" for p in ("stem", "res3.0", "res3.1") for k in ("rank-k_map", "weights")]
    html = (out / "index.html").read_text()
    for number, name in enumerate(("first", "second")):
        folder = out / f"{number:04d}_{name}"
        assert sorted(p.stem for p in folder.glob("*.png")) == sorted(panels)
        original = np.asarray(Image.open(images / f"{name}.png"))
        for panel in panels:
            assert f'src="{folder.name}/{panel}.png"' in html
            with Image.open(folder / f"{panel}.png") as image:
                pixels = np.asarray(image)
            assert pixels.shape == (50, 70, 3), "every panel has the image's size"
            assert not np.array_equal(pixels, original), f"{panel} draws on the image"
        with Image.open(out / f"{folder.name}.png") as combined:
            assert combined.size == (7 * 70 + 6 * 4, 50)
    detections = [int(n) for n in re.findall(r": (\d+) detections", proc.stdout)]
    assert len(detections) == 2 and min(detections) > 0
