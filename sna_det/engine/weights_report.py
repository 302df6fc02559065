"""What a checkpoint left unloaded in a model, by module: the one line that ``SafeCheckpointer`` prints
or refuses with, built from detectron2's ``_IncompatibleKeys`` (missing keys, unexpected keys, keys of
another shape)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, List, Sequence, Tuple

from torch import nn

__all__ = ["WeightsReport", "module_groups", "weights_report"]

IGNORED_SUFFIXES = ("num_batches_tracked",)
"""State entries that do not change what a model computes when missing (BatchNorm's counter, used
only when its momentum is None; detectron2 model-zoo files do not have it)."""

MAX_MODULES_NAMED = 6
MAX_DEPTH = 3
"""Modules are named at most this deep (``backbone.bottom_up.res5``), so that the line stays short."""


def module_groups(keys: Iterable[str], all_keys: Sequence[str]) -> List[str]:
    """Module names covering ``keys``: the highest module whose entries in ``all_keys`` are all in ``keys``
    (``roi_heads.box_predictor`` for its weights and biases), else the entry's own module, cut to
    ``MAX_DEPTH`` names (``backbone.bottom_up.res2``); in ``all_keys`` order, each once.

    ``all_keys``: every state entry (parameter or buffer) these keys are drawn from.
    """
    chosen = set(keys)
    if not chosen:
        return []
    below: dict = {}  # prefix -> are all the entries below it chosen?
    for key in all_keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            prefix = ".".join(parts[:n])
            below[prefix] = below.get(prefix, True) and key in chosen
    groups: List[str] = []
    for key in all_keys:
        if key not in chosen:
            continue
        parts = key.split(".")
        depth = next(n for n in range(1, len(parts) + 1) if below[".".join(parts[:n])])
        prefix = ".".join(parts[: min(depth, len(parts) - 1, MAX_DEPTH) or 1])
        if prefix not in groups:
            groups.append(prefix)
    return groups


def _named(groups: List[str]) -> str:
    shown = ", ".join(groups[:MAX_MODULES_NAMED])
    return shown + (f" and {len(groups) - MAX_MODULES_NAMED} more" if len(groups) > MAX_MODULES_NAMED else "")


@dataclass
class WeightsReport:
    """What loading one file into a model did. ``missing``: model entries the file does not have;
    ``shape``: (key, shape in file, shape in model) left at their initial value; ``unexpected``:
    entries of the file the model does not have; ``total``: the model's state entries (parameters
    and buffers) counted (those in ``IGNORED_SUFFIXES`` are not)."""

    path: str
    total: int
    missing: List[str] = field(default_factory=list)
    shape: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    missing_modules: List[str] = field(default_factory=list)
    shape_modules: List[str] = field(default_factory=list)
    unexpected_modules: List[str] = field(default_factory=list)

    @property
    def not_loaded(self) -> int:
        return len(self.missing) + len(self.shape)

    @property
    def complete(self) -> bool:
        """Every model entry loaded with its shape, and nothing in the file left over."""
        return not (self.missing or self.shape or self.unexpected)

    def describe(self) -> str:
        """One line: loaded N of M tensors; what was not loaded (by module) and why; what was not used."""
        text = f"{self.path}: loaded {self.total - self.not_loaded} of {self.total} model tensors"
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} not in the file ({_named(self.missing_modules)})")
        if self.shape:
            key, in_file, in_model = self.shape[0]
            example = f"e.g. {key} {list(in_file)} in the file, {list(in_model)} in the model"
            parts.append(f"{len(self.shape)} of another shape ({_named(self.shape_modules)}; {example})")
        if parts:
            text += "; not loaded, left at their initial values: " + ", ".join(parts)
        if self.unexpected:
            text += f"; {len(self.unexpected)} in the file not used ({_named(self.unexpected_modules)})"
        return text


def weights_report(path: str, model: nn.Module, incompatible) -> WeightsReport:
    """The ``WeightsReport`` of ``incompatible`` (detectron2's ``_IncompatibleKeys`` from loading
    ``path`` into ``model``; a key of another shape is also among its missing keys, counted once)."""
    all_keys = [k for k in model.state_dict() if not k.endswith(IGNORED_SUFFIXES)]
    shape = [s for s in incompatible.incorrect_shapes if not s[0].endswith(IGNORED_SUFFIXES)]
    shaped = {s[0] for s in shape}
    missing = [k for k in incompatible.missing_keys if k not in shaped and not k.endswith(IGNORED_SUFFIXES)]
    unexpected = [k for k in incompatible.unexpected_keys if not k.endswith(IGNORED_SUFFIXES)]
    return WeightsReport(
        path=path,
        total=len(all_keys),
        missing=missing,
        shape=shape,
        unexpected=unexpected,
        missing_modules=module_groups(missing, all_keys),
        shape_modules=module_groups(shaped, all_keys),
        unexpected_modules=list(dict.fromkeys(".".join(k.split(".")[:3]) for k in unexpected)),
    )
