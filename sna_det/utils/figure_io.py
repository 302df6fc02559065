"""Figures and images written as PNG files atomically (``sna_det.utils.atomic_write_bytes``)."""

from __future__ import annotations

import io
import os

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from .atomic_write import atomic_write_bytes

__all__ = ["new_figure", "save_figure", "save_png"]


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure of ``width`` x ``height`` inches that needs no GUI backend (nor pyplot state)."""
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(figure: Figure, path: str | os.PathLike, dpi: int = 100) -> None:
    """Write ``figure`` to ``path`` as a compact PNG, atomically: 8-bit grayscale when it has no colour,
    else a 256-colour palette (plots have few colours; a third of the size of RGB)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    pixels = np.asarray(image)
    grayscale = (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    image = image.convert("L") if grayscale else image.quantize(256)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(path, buffer.getvalue())


def save_png(image: np.ndarray, path: str | os.PathLike, palette: bool = False) -> None:
    """Write an RGB image (H, W, 3) uint8 to ``path`` as PNG, atomically; ``palette`` reduces it to
    256 colours (about a third of the size, for overviews)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{path}: expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    picture = Image.fromarray(image)
    buffer = io.BytesIO()
    (picture.quantize(256) if palette else picture).save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(path, buffer.getvalue())
