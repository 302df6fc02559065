"""SNA never yields NaN or Inf, whatever the features (hypothesis), in fp32, fp16 and bf16 under autocast;
a training step on a batch with images without boxes works."""

from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from helpers import load_light_cfg as load_cfg
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sna_det import SpectralNormAttention

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo" / "faster_rcnn_R_18_FPN_sna_demo.yaml"

# features from all over float16's range: zeros, subnormals, huge values, constant and sign-flipped maps
values = st.one_of(
    st.just(0.0),
    st.floats(min_value=-6e4, max_value=6e4, allow_nan=False, width=16),
    st.sampled_from([6e-8, -6e-8, 1e-4, 6.5e4, -6.5e4]),
)
features = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 9), st.integers(1, 9)).flatmap(
    lambda shape: arrays(np.float32, shape, elements=values)
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(x=features, weighting=st.sampled_from(["softmax_mean1", "softmax"]), mode=st.sampled_from(["power", "svd"]))
def test_output_and_gradient_are_finite_in_fp32(x, weighting, mode):
    x = torch.from_numpy(x).requires_grad_()
    y = SpectralNormAttention(weighting=weighting, mode=mode)(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if mode == "power":  # svd's own gradient is undefined where singular values repeat (an all-zero map)
        y.square().mean().backward()
        assert torch.isfinite(x.grad).all()


@settings(max_examples=100, deadline=None, derandomize=True)
@given(x=features, dtype=st.sampled_from([torch.float16, torch.bfloat16]))
def test_output_is_finite_under_autocast(x, dtype):
    x = torch.from_numpy(x).to(dtype)
    with torch.autocast("cpu", dtype=dtype):
        y = SpectralNormAttention()(x)
    assert y.dtype == dtype and torch.isfinite(y).all()


def boxes_batch(counts):
    """Demo-sized training inputs, image i with counts[i] ground-truth boxes."""
    batch = []
    for n_boxes in counts:
        instances = Instances((96, 128))
        instances.gt_boxes = Boxes(torch.tensor([[10.0, 12.0, 50.0, 60.0], [60.0, 20.0, 110.0, 80.0]])[:n_boxes])
        instances.gt_classes = torch.zeros(n_boxes, dtype=torch.long)
        batch.append({"image": torch.rand(3, 96, 128) * 255, "instances": instances, "height": 96, "width": 128})
    return batch


@pytest.mark.parametrize("counts", [(0, 2, 0), (0, 0)], ids=["some images without boxes", "no boxes at all"])
def test_training_step_with_images_without_boxes(counts):
    model = build_model(load_cfg(DEMO_CONFIG)).train()
    with EventStorage(0):
        losses = model(boxes_batch(counts))
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    if sum(counts) == 0:  # nothing to regress to: the box losses are exactly zero, not NaN
        assert losses["loss_box_reg"].item() == 0.0 and losses["loss_rpn_loc"].item() == 0.0
