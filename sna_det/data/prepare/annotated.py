"""What a format reader gives the COCO writer: annotated images and objects, as drawn, and the input
helpers every reader shares (image size, numbers, text, class lists, the one input error).

A reader (``voc``, ``yolo``, ``labelme``, ``via``, ``cvat``, ``coco_input``) turns one item of a split
(an image id, an image path, an annotation file, an entry) into an ``AnnotatedImage``: the image
file, its size as decoded (``image_size``), and its objects, each a class name with a box, the
polygons as drawn, or a mask (only formats that store masks), in pixel coordinates of COCO's
convention ((0, 0) is the top-left corner of the top-left pixel).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol, Tuple

import numpy as np
from PIL import Image

from ..images import PICTURE_SUFFIXES

__all__ = [
    "ALL_CLASSES",
    "IMAGE_SUFFIXES",
    "AnnotatedImage",
    "AnnotatedObject",
    "ConversionInputError",
    "Reader",
    "finite_number",
    "image_size",
    "read_class_file",
    "read_json",
    "read_text",
]

IMAGE_SUFFIXES = PICTURE_SUFFIXES
"""Image files the readers list (any case): sna_det.data.images' pictures."""

ALL_CLASSES = "*"
"""``AnnotatedObject.name`` of an ignore region of every class (labelme's ``__ignore__``)."""


class ConversionInputError(ValueError):
    """Bad input: ``path`` names the file, ``reason`` is a short category used for counting."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str):
        super().__init__(f"{path}: {detail}")
        self.path, self.reason, self.detail = str(path), reason, detail


@dataclass(frozen=True)
class AnnotatedObject:
    """One object as a reader found it; coordinates in pixels."""

    name: str
    """Its class; ``ALL_CLASSES`` for an ignore region of every class."""
    box: Optional[Tuple[float, float, float, float]] = None
    """COCO ``(x, y, w, h)``; None: the extent of the polygons (or the mask's tight box)."""
    polygons: Tuple[Tuple[float, ...], ...] = ()
    """Each ``(x0, y0, x1, y1, ...)``, at least 3 points, as drawn; their union is the object."""
    mask: Optional[np.ndarray] = None
    """H×W bool, for formats that store masks (VOC's ``SegmentationObject``, a COCO RLE)."""
    difficult: bool = False
    ignore: bool = False
    """An ignore region (``iscrowd: 1``): labelme's ``__ignore__``, CVAT's ``ignore`` attribute, COCO's crowd."""
    occluded: bool = False
    """Written as ``"occluded": 1`` (CVAT's ``occluded``)."""
    where: str = ""
    """How errors name it in its file: ``"object 3"``, ``"line 4"``, ``"shape 2"``."""


@dataclass(frozen=True)
class AnnotatedImage:
    """One image with its objects, as a reader found it."""

    image_file: Path
    width: int
    height: int
    """As decoded (``image_size``), not as the annotation says."""
    objects: Tuple[AnnotatedObject, ...]
    source: Path
    """The annotation file, named in errors about the objects."""
    reported: Tuple[Tuple[str, str, str], ...] = ()
    """Problems kept with the image, ``(path, reason, detail)``; ``strict`` raises the first."""
    notes: Tuple[str, ...] = ()
    """Facts counted in the split's ``notes`` (YOLO: ``"images without a label file"``; labelme:
    ``"shapes skipped: line"``), one entry per occurrence."""


class Reader(Protocol):
    """What the writer needs of a format: one split item -> ``AnnotatedImage``."""

    def read(self, item: str) -> AnnotatedImage:
        """The image of ``item``; raises ``ConversionInputError`` for bad input."""

    def count_objects(self, item: str) -> int:
        """Objects of an item whose ``read`` failed, as far as they can be counted (0 if unknown)."""


def image_size(image_file: str | os.PathLike) -> Tuple[int, int]:
    """(width, height) of an image that decodes whole (a truncated JPEG has a header but no pixels).
    Raises ``ConversionInputError`` (missing image, bad image)."""
    image_file = Path(image_file)
    if not image_file.is_file():
        raise ConversionInputError(image_file, "missing image", "image file does not exist")
    try:
        with Image.open(image_file) as image:
            size = image.size
            image.draft(image.mode, (1, 1))  # JPEG: decode at 1/8 scale; every byte is still read
            image.load()
            return size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:  # PIL's for corrupt files
        raise ConversionInputError(image_file, "bad image", f"unreadable image ({error})") from None


NUMBER_REASONS = ("malformed annotation", "not a number")
"""``finite_number``'s reasons for a value that is not a number, and for one that is not finite."""


def finite_number(
    value: object, path: str | os.PathLike, where: str, reasons: Tuple[str, str] = NUMBER_REASONS
) -> float:
    """``value`` (a JSON or text number) as a finite float; ``ConversionInputError`` naming ``where`` if not,
    with ``reasons`` (not a number, not finite)."""
    not_number, not_finite = reasons
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConversionInputError(path, not_number, f"{where} is {value!r}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise ConversionInputError(path, not_number, f"{where} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise ConversionInputError(path, not_finite, f"{where} is {value!r}")
    return number


def read_text(path: str | os.PathLike, reason: str) -> str:
    """The UTF-8 text of a file; ``ConversionInputError`` with ``reason`` if it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConversionInputError(path, reason, f"not UTF-8 text ({error})") from None
    except OSError as error:
        raise ConversionInputError(path, reason, f"cannot be read ({error.strerror or error})") from None


def read_json(path: str | os.PathLike, reason: str = "malformed JSON") -> object:
    """The parsed JSON of a UTF-8 file; ``ConversionInputError`` with ``reason`` if it cannot be read or parsed."""
    try:
        return json.loads(read_text(path, reason))
    except json.JSONDecodeError as error:
        raise ConversionInputError(path, reason, f"not JSON ({error})") from None


def read_class_file(path: str | os.PathLike) -> Tuple[str, ...]:
    """Class names of a text file, one per line, in order, without duplicates; ``ConversionInputError``
    if it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise ConversionInputError(path, "missing class list", "is not a file (--classes takes auto or a file)")
    lines = read_text(path, "unreadable class list").splitlines()
    names = tuple(dict.fromkeys(line.strip() for line in lines if line.strip()))
    if not names:
        raise ConversionInputError(path, "empty class list", "holds no class name (one per line)")
    return names
