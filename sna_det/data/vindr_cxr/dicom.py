"""A radiograph DICOM as an 8-bit grayscale image, as a radiologist's display would show it.

Steps (pydicom's implementations of the DICOM standard's pixel pipeline):

1. the stored values (``pixel_array``, e.g. 12 or 16 bit);
2. modality LUT: ``RescaleSlope`` / ``RescaleIntercept`` (or a Modality LUT Sequence);
3. VOI: the VOI LUT Sequence when present, else ``WindowCenter`` / ``WindowWidth`` (the function in
   ``VOILUTFunction``, default LINEAR), else nothing;
4. the result stretched linearly from its minimum to its maximum onto 0-255 and rounded
   (a constant image becomes 0);
5. ``MONOCHROME1`` (0 = white) inverted, ``255 - value``, so that bone is bright in every PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut, apply_voi_lut

__all__ = ["dicom_size", "read_dicom_uint8", "stretch_to_uint8"]


def stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """(H, W) numbers -> (H, W) uint8: min..max mapped linearly onto 0..255, rounded; constant -> 0.

    Raises ValueError for values that are not a finite, non-empty (H, W) array (e.g. a NaN RescaleSlope).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"pixel values of shape {values.shape} are not a finite (H, W) image")
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def read_dicom_uint8(path: str | Path) -> np.ndarray:
    """The first frame of a grayscale DICOM as (H, W) uint8 (module docstring: the steps)."""
    ds = pydicom.dcmread(str(path))
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"field PhotometricInterpretation is {photometric!r}, not MONOCHROME1/MONOCHROME2")
    samples = ds.get("SamplesPerPixel", 1)
    if samples != 1:
        raise ValueError(f"field SamplesPerPixel is {samples!r}, not 1 (grayscale)")
    pixels = ds.pixel_array
    if pixels.ndim == 3:  # a multi-frame radiograph: its first frame
        pixels = pixels[0]
    values = apply_voi_lut(apply_modality_lut(pixels, ds), ds)
    image = stretch_to_uint8(values)
    return 255 - image if photometric == "MONOCHROME1" else image


def dicom_size(path: str | Path) -> Tuple[int, int]:
    """(width, height) in pixels from the header alone (``Columns``, ``Rows``)."""
    ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    return int(ds.Columns), int(ds.Rows)
