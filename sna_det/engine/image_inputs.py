"""Images given on a command line (files, folders, globs; PNG, JPEG, DICOM) read as a detector sees them.

A PNG or JPEG is read by detectron2's ``read_image`` in the model's ``INPUT.FORMAT``, as its
``DatasetMapper`` reads a dataset's images; its own pixels are the file's. A DICOM is rendered exactly
as ``datasets/prepare_vindr_cxr.py`` renders it (``vindr_cxr.images.render_png``: the project's DICOM
reader, long side ``max_size``), then decoded as that PNG would be; its own pixels are the DICOM's, so
a box found on the rendered image maps back by (DICOM width / rendered width, DICOM height / rendered
height).
"""

from __future__ import annotations

import glob
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
from detectron2.data.detection_utils import convert_PIL_to_numpy, read_image
from PIL import Image

from ..data.dicom import DICOM_SUFFIXES, is_dicom_path
from ..data.prepare.vindr_cxr.images import render_png

__all__ = ["IMAGE_SUFFIXES", "ModelImage", "find_image_files", "read_model_image"]

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_SUFFIXES = (*PICTURE_SUFFIXES, *DICOM_SUFFIXES)
"""What a folder or a glob contributes (other files there are left out)."""


def _images_in(paths: Sequence[str]) -> List[Path]:
    return [Path(p) for p in sorted(paths) if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES]


def find_image_files(inputs: Sequence[str]) -> List[Path]:
    """The image files of ``inputs`` in order, each once: a file as given (``IMAGE_SUFFIXES``), a folder's
    images (not its subfolders), a glob's images (``**`` recursive), each folder and glob sorted by name.
    ValueError naming an input that gives no image."""
    found: List[Path] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            images = _images_in([str(p) for p in path.iterdir()])
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise ValueError(f"{given}: not a PNG, JPEG or DICOM file name ({', '.join(IMAGE_SUFFIXES)})")
            images = [path]
        elif glob.has_magic(given):
            images = _images_in(glob.glob(given, recursive=True))
        else:
            raise ValueError(f"{given}: no such file or folder")
        if not images:
            raise ValueError(f"{given}: no PNG, JPEG or DICOM file ({', '.join(IMAGE_SUFFIXES)})")
        found.extend(images)
    return list(dict.fromkeys(found))


@dataclass
class ModelImage:
    """An input image as the model gets it, and the input's own size."""

    image: np.ndarray
    """(H, W, C) uint8 in the model's ``INPUT.FORMAT``: the file, or a DICOM rendered as the preparer renders it."""
    own_size: Tuple[int, int]
    """(width, height) of the input's own pixels (a DICOM's Columns, Rows), the frame of its predictions."""


def read_model_image(
    path: str | os.PathLike, input_format: str, max_size: int = 1024, upscale: bool = False
) -> ModelImage:
    """Read one image (module docstring); ``max_size`` / ``upscale`` as the preparer's options, for DICOMs.

    Raises ``DicomReadError`` / ``ValueError`` / ``OSError`` naming the problem for a file that cannot be read.
    """
    if is_dicom_path(path):
        data, (width, height, _, _) = render_png(Path(path), max_size, upscale)
        with Image.open(io.BytesIO(data)) as png:
            return ModelImage(convert_PIL_to_numpy(png, input_format), (width, height))
    image = read_image(str(path), format=input_format)
    return ModelImage(image, (image.shape[1], image.shape[0]))
