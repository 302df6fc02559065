"""Which images a tool works on: a registered detectron2 dataset, a folder, or image files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Sequence

import numpy as np
from detectron2.data import DatasetCatalog
from PIL import Image

from ..data.dicom import DICOM_SUFFIXES, read_dicom_values

__all__ = ["IMAGE_SUFFIXES", "load_grayscale", "resolve_images"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff") + DICOM_SUFFIXES


def _folder_images(folder: Path) -> List[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def resolve_images(sources: Sequence[str], max_images: int = 0) -> List[str]:
    """Image paths of ``sources`` in order: each a registered dataset name (its records' ``file_name``),
    a folder (its image files, recursively, sorted) or an image file. ``max_images`` > 0 keeps the
    first that many. Raises ValueError naming a source that is none of these or holds no image."""
    paths: List[str] = []
    for source in sources:
        if source in DatasetCatalog.list():
            found = [record["file_name"] for record in DatasetCatalog.get(source)]
        elif os.path.isdir(source):
            found = _folder_images(Path(source))
        elif os.path.isfile(source):
            found = [source]
        else:
            raise ValueError(f"{source!r} is neither a registered dataset nor an existing image file or folder")
        if not found:
            raise ValueError(f"{source!r} holds no image (looked for {', '.join(IMAGE_SUFFIXES)})")
        paths.extend(found)
    return paths[:max_images] if max_images > 0 else paths


def load_grayscale(path: str | os.PathLike, max_side: int = 0) -> np.ndarray:
    """An image as a float64 matrix (H, W) in its own intensity units: luma for colour images,
    the raw values for 8/16-bit grayscale, and for a DICOM the display values of the project's one
    DICOM reader (``sna_det.data.dicom.read_dicom_values``: modality LUT, VOI LUT or window,
    MONOCHROME1 mirrored so that larger is brighter).

    ``max_side`` > 0 shrinks the image (box filter) so that its longer side is at most that many
    pixels; 0 keeps it as it is.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in DICOM_SUFFIXES:
            image = Image.fromarray(read_dicom_values(path).astype(np.float32))
        else:
            image = Image.open(path)
            image = image.convert("F") if image.mode not in ("I;16", "I;16B", "I") else image
            image = Image.fromarray(np.asarray(image, dtype=np.float32))
    except Exception as error:  # PIL and pydicom raise many types for unreadable files
        raise ValueError(f"{path}: cannot read the image ({error})") from None
    if max_side > 0 and max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.BOX)
    return np.asarray(image, dtype=np.float64)
