"""Source radiographs (DICOM or PNG/JPG) to the prepared PNGs: 8-bit grayscale, long side ``max_size``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Tuple

import numpy as np
from PIL import Image

from ...utils import atomic_write_bytes
from .annotations import DICOM_SUFFIXES
from .dicom import read_dicom_uint8, stretch_to_uint8

__all__ = ["convert_image", "read_source_uint8", "resized_size"]


def resized_size(width: int, height: int, max_size: int) -> Tuple[int, int]:
    """(width, height) scaled so that the long side is ``max_size`` (rounded); ``max_size`` 0: unchanged."""
    if max_size <= 0:
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def read_source_uint8(path: Path) -> np.ndarray:
    """A DICOM (see ``dicom.py``) or a PNG/JPG (grayscale; more than 8 bits stretched min..max) as (H, W) uint8."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return read_dicom_uint8(path)
    with Image.open(path) as picture:
        if picture.mode in ("L", "RGB", "RGBA", "P", "LA"):
            return np.asarray(picture.convert("L"))
        return stretch_to_uint8(np.asarray(picture))  # 16-bit or float grayscale


def convert_image(source: Path, target: Path, max_size: int) -> Tuple[int, int, int, int]:
    """Write ``source`` as an 8-bit grayscale PNG at ``target`` (atomically), long side ``max_size``.

    Returns (source width, source height, written width, written height) in pixels; boxes scale by
    written / source along each axis. Resampling: PIL's bilinear filter (antialiased when shrinking).
    """
    image = read_source_uint8(source)
    height, width = image.shape
    new_width, new_height = resized_size(width, height, max_size)
    picture = Image.fromarray(image)  # (H, W) uint8 -> mode "L"
    if (new_width, new_height) != (width, height):
        picture = picture.resize((new_width, new_height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    atomic_write_bytes(target, buffer.getvalue())
    return width, height, new_width, new_height
