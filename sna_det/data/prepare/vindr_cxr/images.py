"""Source radiographs (DICOM or PNG/JPG) to the prepared PNGs: 8-bit grayscale, long side ``max_size``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Tuple

import numpy as np
from PIL import Image

from ....utils import atomic_write_bytes
from ...dicom import is_dicom_path, read_dicom_uint8, stretch_to_uint8

__all__ = ["convert_image", "read_source_uint8", "render_png", "resized_size"]


def resized_size(width: int, height: int, max_size: int, upscale: bool = False) -> Tuple[int, int]:
    """(width, height) scaled so that the long side is ``max_size`` (rounded); ``max_size`` 0: unchanged.

    An image whose long side is already at most ``max_size`` keeps its size unless ``upscale``.
    """
    if max_size <= 0 or (max(width, height) <= max_size and not upscale):
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def read_source_uint8(path: Path) -> np.ndarray:
    """A DICOM (see ``dicom.py``) or a PNG/JPG (grayscale; more than 8 bits stretched min..max) as (H, W) uint8."""
    if is_dicom_path(path):
        return read_dicom_uint8(path)
    with Image.open(path) as picture:
        if picture.mode in ("L", "RGB", "RGBA", "P", "LA"):
            return np.asarray(picture.convert("L"))
        return stretch_to_uint8(np.asarray(picture))  # 16-bit or float grayscale


def render_png(source: Path, max_size: int, upscale: bool = False) -> Tuple[bytes, Tuple[int, int, int, int]]:
    """``source`` as the bytes of an 8-bit grayscale PNG, long side at most ``max_size`` (exactly with
    ``upscale``), and (source width, source height, written width, written height) in pixels.

    Boxes scale by written / source along each axis. Resampling: PIL's bilinear filter (antialiased
    when shrinking). Raises ``DicomReadError``, ``ValueError`` or ``OSError`` for a source that
    cannot be read.
    """
    image = read_source_uint8(source)
    height, width = image.shape
    new_width, new_height = resized_size(width, height, max_size, upscale)
    picture = Image.fromarray(image)  # (H, W) uint8 -> mode "L"
    if (new_width, new_height) != (width, height):
        picture = picture.resize((new_width, new_height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue(), (width, height, new_width, new_height)


def convert_image(source: Path, target: Path, max_size: int, upscale: bool = False) -> Tuple[int, int, int, int]:
    """Write ``render_png(source, max_size, upscale)`` at ``target`` (atomically); returns its sizes."""
    data, sizes = render_png(source, max_size, upscale)
    atomic_write_bytes(target, data)
    return sizes
