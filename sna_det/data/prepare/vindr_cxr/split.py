"""A deterministic, seeded train/val split of images, stratified so that rare findings land in both."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Dict, Iterable, Mapping

import numpy as np

__all__ = ["stratified_split"]


def stratified_split(image_classes: Mapping[str, Iterable[str]], val_fraction: float, seed: int) -> Dict[str, str]:
    """{image_id: "train" | "val"} with about ``val_fraction`` of the images in val.

    Each image is grouped by its rarest finding (fewest images; images without findings form one
    group); each group is shuffled with ``seed`` and round(val_fraction * size) of it goes to val,
    at least one image and at most size - 1 when the group has two or more and 0 < val_fraction < 1.
    So every finding that is the rarest one of two or more images appears in both splits. The
    result depends only on the image ids, their findings, ``val_fraction`` and ``seed``.
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    classes = {image_id: sorted(set(names)) for image_id, names in image_classes.items()}
    frequency = Counter(name for names in classes.values() for name in names)
    groups: Dict[str, list] = defaultdict(list)
    for image_id in sorted(classes):
        names = classes[image_id]
        groups[min(names, key=lambda n: (frequency[n], n)) if names else ""].append(image_id)
    rng = np.random.default_rng(seed)
    split = {}
    for key in sorted(groups):
        members = list(groups[key])
        rng.shuffle(members)
        n_val = round(val_fraction * len(members))
        if 0.0 < val_fraction < 1.0 and len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        for i, image_id in enumerate(members):
            split[image_id] = "val" if i < n_val else "train"
    return split
