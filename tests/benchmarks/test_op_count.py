"""count_dispatched_ops against hand counts, and SNA's count as a fixed computation."""

import torch
from torch import nn

from sna_det.benchmarks.op_count import count_dispatched_ops
from sna_det.layers import SpectralNormAttention
from sna_det.layers.spectral_norm_attention import SEGMENT_SIDE_LIMIT


class ScaleShift(nn.Module):
    def forward(self, x):
        y = x.view(x.shape[0], -1)  # a view: not counted
        return (y * 2 + 1).sum()  # mul, add, sum


def test_counts_kernels_not_views():
    count = count_dispatched_ops(ScaleShift(), (2, 3, 4), device="cuda")
    assert count.total == 3
    assert dict(count.by_name) == {"mul": 1, "add": 1, "sum": 1}


def test_the_input_is_fake_so_huge_shapes_cost_nothing():
    # 2 x 64 x 4096 x 4096 float32 would need 8 GiB if it were real
    count = count_dispatched_ops(nn.ReLU(), (2, 64, 4096, 4096), device="cuda")
    assert count.total == 1


def test_sna_dispatches_the_same_operations_whatever_the_input():
    """No data-dependent control flow: the count depends neither on the size nor on the phase."""
    block = SpectralNormAttention()
    counts = {
        count_dispatched_ops(block, shape, device=device, requires_grad=grad).total
        for shape in ((2, 64, 256, 256), (2, 256, 32, 32), (1, 8, 5, 7), (3, 4, 9, 9))
        for device in ("cuda", "cpu")
        for grad in (False, True)
    }
    assert len(counts) == 1
    # a squaring is one matmul; one that starts a group of four is normalised first (amax, div) and
    # folds the group's scale into its matmul (baddbmm instead of bmm)
    counts = [count_dispatched_ops(SpectralNormAttention(squarings=k), (2, 8, 16, 16)).by_name for k in (8, 9, 10)]
    assert counts[1] - counts[0] == {"amax": 1, "div": 1, "baddbmm": 1}
    assert counts[2] - counts[1] == {"bmm": 1}


def test_sna_normalises_every_second_squaring_above_the_side_limit():
    """Four squarings in a row would leave float32's range for a Gram matrix side above the limit."""
    block = SpectralNormAttention()  # 8 squarings: normalised before 1 and 5, or 1, 3, 5 and 7
    at_limit = count_dispatched_ops(block, (1, 1, SEGMENT_SIDE_LIMIT, SEGMENT_SIDE_LIMIT + 5)).by_name
    above = count_dispatched_ops(block, (1, 1, SEGMENT_SIDE_LIMIT + 1, SEGMENT_SIDE_LIMIT + 5)).by_name
    assert (at_limit["amax"], above["amax"]) == (2, 4)
    assert above - at_limit == {"amax": 2, "div": 2, "baddbmm": 2}


class ConvBatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.norm = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.norm(self.conv(x)).relu()


def test_modules_with_parameters_are_counted_on_fake_copies():
    module = ConvBatchNorm()
    weight = module.conv.weight.detach().clone()
    count = count_dispatched_ops(module.eval(), (2, 3, 64, 64), device="cuda")
    assert count.total == 3 and dict(count.by_name) == {"convolution": 1, "cudnn_batch_norm": 1, "relu": 1}
    # training: batch statistics and num_batches_tracked += 1 (an in-place add on a buffer)
    count = count_dispatched_ops(module.train(), (2, 3, 64, 64), requires_grad=True, input_requires_grad=False)
    assert dict(count.by_name) == {"convolution": 1, "cudnn_batch_norm": 1, "relu": 1, "add_": 1}
    # the module itself was not touched: real CPU tensors, the same values, buffers not updated
    assert module.conv.weight.device.type == "cpu" and torch.equal(module.conv.weight, weight)
    assert module.norm.num_batches_tracked.item() == 0
