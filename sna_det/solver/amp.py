"""``SOLVER.AMP.DTYPE``: the names it accepts and the autocast dtype each gives on a device.

Torch only: ``sna_det.config`` checks the key with ``AMP_DTYPES`` and the trainers
(``sna_det.engine.autocast_trainer``) run ``torch.autocast`` with ``amp_dtype``.
"""

from __future__ import annotations

import torch

__all__ = ["AMP_DTYPES", "amp_dtype"]

AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
"""``SOLVER.AMP.DTYPE`` -> autocast dtype; "" is the device's usual one (``amp_dtype``)."""


def amp_dtype(name: str, device_type: str) -> torch.dtype:
    """The autocast dtype of ``SOLVER.AMP.DTYPE`` ``name``: "" is float16 on CUDA, bfloat16 elsewhere."""
    if not name:
        return torch.float16 if device_type == "cuda" else torch.bfloat16
    if name not in AMP_DTYPES:
        raise ValueError(f"SOLVER.AMP.DTYPE {name!r} is not one of {['', *AMP_DTYPES]}")
    return AMP_DTYPES[name]
