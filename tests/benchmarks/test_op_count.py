"""count_dispatched_ops against hand counts, and SNA's count as a fixed computation."""

from torch import nn

from sna_det.benchmarks.op_count import count_dispatched_ops
from sna_det.layers import SpectralNormAttention


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
    # each extra squaring adds the same three operations (normalise: norm, div; square: bmm)
    extra = count_dispatched_ops(SpectralNormAttention(squarings=9), (2, 8, 16, 16)).by_name
    base = count_dispatched_ops(SpectralNormAttention(squarings=8), (2, 8, 16, 16)).by_name
    assert extra - base == {"bmm": 1, "linalg_vector_norm": 1, "div": 1}
