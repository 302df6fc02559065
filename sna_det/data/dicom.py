"""A grayscale DICOM as a radiologist's display would show it: the project's one DICOM reader.

Steps (pydicom's implementations of the DICOM standard's pixel pipeline):

1. the stored values (``pixel_array``, e.g. 12 or 16 bit), decoded by pydicom with the installed
   plugins: every transfer syntax pydicom knows (uncompressed, deflated, RLE, JPEG baseline and
   12-bit extended, JPEG lossless process 14, JPEG-LS lossless and near-lossless, JPEG 2000,
   HTJ2K) with pylibjpeg, pylibjpeg-libjpeg, -openjpeg and -rle installed (``pip install sna-det[data]``);
2. modality LUT: ``RescaleSlope`` / ``RescaleIntercept`` (or a Modality LUT Sequence);
3. VOI: the VOI LUT Sequence when present, else ``WindowCenter`` / ``WindowWidth`` (the function in
   ``VOILUTFunction``, default LINEAR), else nothing;
4. (``read_dicom_uint8``) the result stretched linearly from its minimum to its maximum onto 0-255
   and rounded (a constant image becomes 0);
5. ``MONOCHROME1`` (0 = white) inverted, so that bone is bright in every image.

What cannot be shown as one grayscale image raises ``DicomReadError`` naming the problem: not a
DICOM, no pixel data, colour, several frames, a transfer syntax no installed plugin decodes (named),
pixel data that does not decode (corrupt or truncated).
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder

__all__ = [
    "DICOM_SUFFIXES",
    "DicomReadError",
    "dicom_size",
    "is_dicom_path",
    "read_dicom_modality",
    "read_dicom_uint8",
    "read_dicom_values",
    "stretch_to_uint8",
]

DICOM_SUFFIXES = (".dicom", ".dcm")
"""File suffixes read as DICOM, in any case (VinDr-CXR ships ``.dicom``; most PACS exports ``.dcm``)."""
GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
DECODERS_HINT = "install the decoders: pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle"


def is_dicom_path(path: str | Path) -> bool:
    """Whether ``path``'s suffix is one of ``DICOM_SUFFIXES`` (case-insensitive)."""
    return Path(path).suffix.lower() in DICOM_SUFFIXES


class DicomReadError(ValueError):
    """A DICOM that cannot be read as one grayscale image; the message names the problem."""


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


def _transfer_syntax(ds: Dataset) -> str:
    uid = ds.file_meta.get("TransferSyntaxUID", None) if hasattr(ds, "file_meta") else None
    return "unknown transfer syntax" if uid is None else f"transfer syntax {uid.name} ({uid})"


def read_dicom_modality(path: str | Path, voi: bool = True) -> Tuple[np.ndarray, bool]:
    """(values (H, W) float64 after the modality LUT and, with ``voi``, the file's VOI (steps 1-3 of the
    module docstring), whether MONOCHROME1), or ``DicomReadError`` naming the problem."""
    try:
        ds = pydicom.dcmread(str(path))
    except InvalidDicomError as error:
        raise DicomReadError(f"not a DICOM file ({error})") from None
    except Exception as error:  # pydicom raises many types for a damaged header
        raise DicomReadError(f"corrupt DICOM header ({type(error).__name__}: {error})") from None
    if not any(key in ds for key in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DicomReadError(f"no pixel data (SOP class {ds.get('SOPClassUID', 'unknown')})")
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    samples = ds.get("SamplesPerPixel", 1)
    if photometric not in GRAYSCALE or samples != 1:
        raise DicomReadError(
            f"colour image (PhotometricInterpretation is {photometric or 'missing'}, SamplesPerPixel is "
            f"{samples}), not a grayscale radiograph"
        )
    frames = ds.get("NumberOfFrames", 1)
    try:
        frames = int(frames)
    except (TypeError, ValueError):
        raise DicomReadError(f"field NumberOfFrames is {frames!r}, not a number") from None
    if frames != 1:
        raise DicomReadError(f"{frames} frames (NumberOfFrames), not one radiograph")
    syntax = _transfer_syntax(ds)
    try:
        available = get_decoder(ds.file_meta.TransferSyntaxUID).is_available
    except (AttributeError, NotImplementedError):
        available = True  # let pydicom's own message say what is missing
    if not available:
        raise DicomReadError(f"{syntax}: no installed plugin decodes it ({DECODERS_HINT})")
    try:
        pixels = ds.pixel_array
        values = apply_modality_lut(pixels, ds)
        values = apply_voi_lut(values, ds) if voi else values
    except Exception as error:  # decoders raise RuntimeError, ValueError, ...: a damaged file
        message = " ".join(str(error).split())
        raise DicomReadError(f"{syntax}: pixel data does not decode ({type(error).__name__}: {message})") from None
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise DicomReadError(f"pixel data of shape {values.shape} is not one (rows, columns) image")
    return values, photometric == "MONOCHROME1"


def read_dicom_uint8(path: str | Path) -> np.ndarray:
    """A single-frame grayscale DICOM as (H, W) uint8, bone bright (module docstring: the steps).

    Raises ``DicomReadError`` naming the problem for what cannot be read (module docstring).
    """
    values, monochrome1 = read_dicom_modality(path)
    try:
        image = stretch_to_uint8(values)
    except ValueError as error:
        raise DicomReadError(str(error)) from None
    return 255 - image if monochrome1 else image


def read_dicom_values(path: str | Path) -> np.ndarray:
    """The display values (H, W) float64 after the modality LUT and VOI, before the 8-bit stretch;
    ``MONOCHROME1`` mirrored (max + min - value) so that larger is brighter. Raises ``DicomReadError``."""
    values, monochrome1 = read_dicom_modality(path)
    return values.max() + values.min() - values if monochrome1 else values


def dicom_size(path: str | Path) -> Tuple[int, int]:
    """(width, height) in pixels from the header alone (``Columns``, ``Rows``)."""
    ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    return int(ds.Columns), int(ds.Rows)
