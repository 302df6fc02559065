"""The train/val splits of a converted folder: the one ``--val-fraction`` check and the one way every
format reader chooses its splits (the lists its layout declares, else a share drawn for val).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["DEFAULT_VAL_FRACTION", "SPLITS", "check_val_fraction", "choose_splits", "split_by_fraction"]

SPLITS = ("train", "val")
DEFAULT_VAL_FRACTION = 0.2
"""Share drawn for val when the layout declares no split lists."""


def check_val_fraction(fraction: float, *, allow_no_val: bool = False) -> float:
    """``fraction`` if it is in (0, 1) (``allow_no_val``: [0, 1), for a preparer whose val may be absent);
    ``ValueError`` (one line naming ``--val-fraction``) if not. The one range check of every preparer."""
    low_ok = fraction >= 0.0 if allow_no_val else fraction > 0.0
    if isinstance(fraction, bool) or not math.isfinite(fraction) or not (low_ok and fraction < 1.0):
        interval, why = (
            ("[0, 1)", "1 leaves train empty")
            if allow_no_val
            else ("(0, 1)", "0 leaves val (which the configs test on) empty, 1 leaves train empty")
        )
        raise ValueError(f"--val-fraction {fraction} is not in {interval}: {why}")
    return fraction


def split_by_fraction(items: Sequence[str], fraction: float, seed: int) -> Dict[str, List[str]]:
    """``{"train", "val"}`` of ``items`` (sorted): ``round(fraction × n)`` of them, drawn with ``seed``, to val."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"--val-fraction {fraction} is not in [0, 1]")
    items = sorted(items)
    order = np.random.default_rng(seed).permutation(len(items))
    val = {items[i] for i in order[: round(fraction * len(items))]}
    return {"train": [i for i in items if i not in val], "val": [i for i in items if i in val]}


def choose_splits(
    declared: Optional[Dict[str, List[str]]],
    origin: str,
    *,
    val_fraction: Optional[float],
    seed: int,
    pool: Optional[Sequence[str]] = None,
) -> Tuple[Dict[str, List[str]], str]:
    """``({"train": items, "val": items}, origin)`` of a layout, the same way for every format.

    ``declared``: the splits the layout names (folders, list files, ``data.yaml``), or None when it names
    none; ``origin`` says where they (or, without them, the pooled items) come from. Without
    ``val_fraction`` the declared splits are kept; with it, or when none are declared, ``pool`` (default:
    every declared item) is drawn from with ``seed``, ``val_fraction`` (default ``DEFAULT_VAL_FRACTION``)
    of it to val. ``ValueError`` for a fraction outside (0, 1).
    """
    if val_fraction is not None:
        check_val_fraction(val_fraction)
    if declared is not None and val_fraction is None:
        return {split: list(declared.get(split, [])) for split in SPLITS}, origin
    if pool is None:
        pool = [item for split in SPLITS for item in (declared or {}).get(split, [])]
    fraction = DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction
    return split_by_fraction(pool, fraction, seed), f"{origin}, val fraction {fraction}, seed {seed}"
