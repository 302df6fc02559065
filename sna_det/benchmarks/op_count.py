"""Count the aten operations a module dispatches on a device, without that device.

On CUDA nearly every non-view aten operation launches at least one kernel, so the count is a
machine-independent measure of launch overhead. The input lives in ``FakeTensorMode``: shapes,
dtypes and devices are tracked but nothing is computed, so ``device="cuda"`` works on a machine
without a GPU (forward only: backward needs real kernels).

    count_dispatched_ops(SpectralNormAttention(), (2, 64, 256, 256), device="cuda").total

Modules with parameters and buffers (a whole backbone) are counted on fake copies of them on
``device`` (``torch.func.functional_call``): the module itself is not changed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["METADATA_OPS", "OpCount", "count_dispatched_ops"]

METADATA_OPS = frozenset(
    {
        "detach",
        "alias",
        "lift_fresh",
        "device",
        "sym_size",
        "sym_stride",
        "sym_numel",
        "is_contiguous",
        "dim",
        "numel",
        "size",
        "stride",
    }  # fmt: skip
)
"""aten operations that only read or relabel metadata: never a kernel launch, not counted."""


@dataclass
class OpCount:
    """Operations dispatched by one forward: ``total`` and per aten name (``by_name``)."""

    total: int = 0
    by_name: Counter = field(default_factory=Counter)


class _CountingMode(TorchDispatchMode):
    def __init__(self, count: OpCount) -> None:
        super().__init__()
        self.count = count

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if not func.is_view and name not in METADATA_OPS:
            self.count.total += 1
            self.count.by_name[name] += 1
        return func(*args, **(kwargs or {}))


def count_dispatched_ops(
    module: nn.Module,
    input_shape: Sequence[int],
    *,
    device: str = "cuda",
    dtype: torch.dtype = torch.float32,
    requires_grad: bool = False,
    input_requires_grad: Optional[bool] = None,
) -> OpCount:
    """Operations ``module`` dispatches on one forward of a (``input_shape``) input on ``device``.

    Views and metadata queries (``METADATA_OPS``) are not counted. ``requires_grad=True`` records
    the autograd graph as training does (the forward's count; backward is not run); the module's
    train/eval mode is the caller's. Parameters and buffers are replaced by fake copies on
    ``device`` in their own dtypes (parameters require grad where they do, if ``requires_grad``);
    copying them is not counted. The input requires grad when
    ``input_requires_grad`` says so, by default when ``requires_grad`` does (as a block inside a
    network; a backbone's input image does not).
    """
    count = OpCount()
    with FakeTensorMode(allow_non_fake_inputs=True):
        state = {
            name: tensor.detach().to(device).requires_grad_(requires_grad and tensor.requires_grad)
            for name, tensor in (*module.named_parameters(), *module.named_buffers())
        }
        grad_input = requires_grad if input_requires_grad is None else input_requires_grad
        x = torch.randn(*input_shape, device=device, dtype=dtype, requires_grad=grad_input)
        with torch.set_grad_enabled(requires_grad), _CountingMode(count):
            torch.func.functional_call(module, state, (x,)) if state else module(x)
    return count
