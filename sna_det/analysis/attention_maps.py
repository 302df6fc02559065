"""Spatial maps of every attention module in a model, collected with forward hooks.

Any attention module that has a spatial map can be read: the maps of each type are in its row of the
attention table (``sna_det.layers.ATTENTION_TABLE``, ``AttentionType.maps``): SNA (its rank-k map before
the softmax and the weights it multiplies the features by), timm's CBAM (the spatial gate) and
GlobalContext (the softmax context weights over H·W). Channel-only blocks (SE, ECA) have no spatial map
and are not listed. Modules outside the table are added with ``register_spatial_map``.

A map is read where the model computes it, so it lives on the padded, resized input the model saw;
``map_to_image`` brings it back onto the original image.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List, Sequence, Tuple, Type

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..layers.attention_factory import ATTENTION_TABLE, SpatialMap
from ..modeling.attention_injection import placement_name

__all__ = [
    "AttentionMapRecorder",
    "SpatialMap",
    "attention_placements",
    "map_to_image",
    "register_spatial_map",
]

_SOURCES: List[Tuple[Type[nn.Module], Tuple[SpatialMap, ...]]] = []


def register_spatial_map(module_type: Type[nn.Module], *sources: SpatialMap) -> None:
    """Declare the spatial maps of a module type that is not a row of ``ATTENTION_TABLE`` (instances of
    ``module_type`` and subclasses); the table's rows declare their own (``AttentionType.maps``)."""
    _SOURCES.append((module_type, tuple(sources)))


def _sources_of(module: nn.Module) -> Tuple[SpatialMap, ...]:
    for module_type, sources in reversed(_SOURCES):  # the latest registration wins
        if isinstance(module, module_type):
            return sources
    for row in ATTENTION_TABLE.values():
        if row.maps and isinstance(module, row.block_type()):
            return row.maps
    return ()


def attention_placements(model: nn.Module) -> Iterator[Tuple[str, nn.Module, Tuple[SpatialMap, ...]]]:
    """(placement name, module, its map sources) for every attention module of ``model`` with a spatial map."""
    for name, module in model.named_modules():
        sources = _sources_of(module)
        if sources:
            yield placement_name(name), module, sources


class AttentionMapRecorder:
    """Context manager that records the spatial maps of every attention module during forward passes.

    ``maps[placement][kind]`` is the list of maps (B, H, W), float32 on the CPU, one per forward
    call of that module, in call order; ``clear()`` empties it. Hooks are removed on exit.

        with AttentionMapRecorder(model) as recorder:
            model(inputs)
        recorder.maps["stem"]["weights"][0]  # (B, H, W)
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.placements = [(name, module, sources) for name, module, sources in attention_placements(model)]
        self.maps: Dict[str, Dict[str, List[Tensor]]] = {}
        self._handles: list = []

    def clear(self) -> None:
        self.maps = {}

    def _hook(self, placement: str, owner: nn.Module, source: SpatialMap) -> Callable:
        def record(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            with torch.no_grad():
                value = source.compute(owner, inputs[0], output)
            self.maps.setdefault(placement, {}).setdefault(source.kind, []).append(value.detach().float().cpu())

        return record

    def __enter__(self) -> AttentionMapRecorder:
        for placement, module, sources in self.placements:
            for source in sources:
                target = module.get_submodule(source.submodule) if source.submodule else module
                self._handles.append(target.register_forward_hook(self._hook(placement, module, source)))
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def map_to_image(
    attention_map: Tensor, model_input_size: Tuple[int, int], padded_size: Sequence[int], image_size: Tuple[int, int]
) -> Tensor:
    """Bring a map (h, w) of a padded model input back onto the original image, (H_img, W_img).

    Args:
        attention_map: (h, w) map of a feature level of stride ``padded_size / (h, w)``.
        model_input_size: (height, width) of the resized image the model saw, before padding.
        padded_size: (height, width) of the padded batch tensor (images are padded at the bottom
            and right, as detectron2's ImageList does).
        image_size: (height, width) of the original image.
    """
    padded_h, padded_w = int(padded_size[0]), int(padded_size[1])
    upsampled = F.interpolate(attention_map[None, None].float(), size=(padded_h, padded_w), mode="bilinear")
    cropped = upsampled[..., : model_input_size[0], : model_input_size[1]]
    return F.interpolate(cropped, size=tuple(image_size), mode="bilinear")[0, 0]
