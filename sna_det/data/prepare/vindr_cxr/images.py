"""Source radiographs (DICOM or PNG/JPG) to the prepared PNGs: 8-bit grayscale, long side ``max_size``.

The pixels are those of the one rendering, ``sna_det.data.images.render_gray`` (which predict and
the analysis tools use too); this module only encodes them as PNG.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Tuple

from PIL import Image

from ....utils import atomic_write_bytes
from ...images import FILE_WINDOW, Intensity, render_gray, resized_size

__all__ = ["convert_image", "render_png", "resized_size"]


def render_png(
    source: Path, max_size: int, upscale: bool = False, intensity: Intensity = FILE_WINDOW
) -> Tuple[bytes, Tuple[int, int, int, int]]:
    """``render_gray(source, max_size, upscale, intensity)`` as the bytes of an 8-bit grayscale PNG, and
    (source width, source height, written width, written height) in pixels.

    Boxes scale by written / source along each axis. Raises ``DicomReadError``, ``ValueError`` or
    ``OSError`` for a source that cannot be read.
    """
    image, (width, height) = render_gray(source, max_size, upscale, intensity)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")  # (H, W) uint8 -> mode "L"
    return buffer.getvalue(), (width, height, image.shape[1], image.shape[0])


def convert_image(
    source: Path, target: Path, max_size: int, upscale: bool = False, intensity: Intensity = FILE_WINDOW
) -> Tuple[int, int, int, int]:
    """Write ``render_png(source, max_size, upscale, intensity)`` at ``target`` (atomically); returns its sizes."""
    data, sizes = render_png(source, max_size, upscale, intensity)
    atomic_write_bytes(target, data)
    return sizes
