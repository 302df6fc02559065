"""Put attention blocks into a built backbone, without copying its code.

An attention block is attached *after* a module: it becomes a child of the block that owns that
module (so ``print(model)`` and the state_dict show it where it acts) and a forward hook applies
it to that module's output. Every backbone and every attention type goes through this one place.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, List, Sequence, Tuple

from detectron2.modeling.backbone.resnet import BasicBlock, BottleneckBlock, DeformBottleneckBlock, ResNet
from torch import Tensor, nn

__all__ = [
    "AttentionSite",
    "add_attention_to_backbone",
    "attach_attention",
    "placement_name",
    "resnet_attention_sites",
    "residual_branch_end",
]

AttentionFactory = Callable[[int], nn.Module]
"""Makes an attention block for a feature map with the given number of channels."""

AttentionSite = Tuple[nn.Module, nn.Module, int]
"""``(owner, after, channels)``: the block applies to ``after``'s output and becomes ``owner.attn``."""


def _apply(attention: nn.Module, module: nn.Module, inputs: tuple, output: Tensor) -> Tensor:
    return attention(output)


def attach_attention(owner: nn.Module, after: nn.Module, attention: nn.Module, name: str = "attn") -> None:
    """Apply ``attention`` to every output of ``after``; register it as ``owner.<name>``.

    ``after`` is ``owner`` itself or one of its submodules.
    """
    if hasattr(owner, name):
        raise ValueError(f"{type(owner).__name__} already has a child named {name!r}")
    owner.add_module(name, attention)
    after.register_forward_hook(partial(_apply, attention))


def residual_branch_end(block: nn.Module) -> nn.Module:
    """The last layer of a residual block's branch (its conv with norm), before the addition."""
    if isinstance(block, BasicBlock):
        return block.conv2
    if isinstance(block, (BottleneckBlock, DeformBottleneckBlock)):
        return block.conv3
    raise TypeError(f"no residual branch known for {type(block).__name__}")


def resnet_attention_sites(resnet: ResNet, *, stem: bool, stages: Sequence[str]) -> List[AttentionSite]:
    """The stem's output (if ``stem``) and the residual branch of every block of ``stages`` (e.g. "res2")."""
    unknown = sorted(set(stages) - set(resnet.stage_names))
    if unknown:
        raise ValueError(f"attention stages {unknown} are not built in this ResNet (it has {list(resnet.stage_names)})")
    sites = [(resnet.stem, resnet.stem, resnet.stem.out_channels)] if stem else []
    for name, stage in zip(resnet.stage_names, resnet.stages):
        if name in stages:
            sites += [(block, residual_branch_end(block), block.out_channels) for block in stage]
    return sites


def add_attention_to_backbone(
    backbone: nn.Module, make_attention: AttentionFactory, *, stem: bool, stages: Sequence[str]
) -> nn.Module:
    """One attention block at each site of a bottom-up backbone; in place, returned.

    Args:
        backbone: a detectron2 ``ResNet``, or any backbone with an ``attention_sites(stem=, stages=)``
            method returning ``AttentionSite``s (``DenseNetBackbone``).
        make_attention: channels -> attention module.
        stem: one block on the stem's output.
        stages: stage names whose blocks each get one (ResNet "res2".."res5", DenseNet "dense1"..).
    """
    if isinstance(backbone, ResNet):
        sites = resnet_attention_sites(backbone, stem=stem, stages=stages)
    elif hasattr(backbone, "attention_sites"):
        sites = backbone.attention_sites(stem=stem, stages=stages)
    else:
        raise TypeError(f"no attention sites known for {type(backbone).__name__}")
    for owner, after, channels in sites:
        attach_attention(owner, after, make_attention(channels))
    return backbone


def placement_name(module_name: str) -> str:
    """A short name for where an attention module acts: "module.backbone.bottom_up.res3.1.attn" -> "res3.1".

    Drops DDP's "module." and the backbone prefixes detectron2's FPN adds, and the "attn" child name
    ``attach_attention`` gives a block.
    """
    name = module_name.removeprefix("module.")
    for prefix in ("backbone.bottom_up.", "backbone."):
        name = name.removeprefix(prefix)
    return name.removesuffix(".attn") or "model"
