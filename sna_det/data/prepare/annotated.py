"""What a format reader gives the COCO writer: annotated images and objects, as drawn.

A reader (``voc``, ``yolo``, ``labelme``, ``via``, ``cvat``, ``coco_input``) turns one item of a split
(an image id, an image path, an annotation file, an entry) into an ``AnnotatedImage``: the image
file, its size as decoded (``input_files.image_size``), and its objects, each a class name with a box, the
polygons as drawn, or a mask (only formats that store masks), in pixel coordinates of COCO's
convention ((0, 0) is the top-left corner of the top-left pixel).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol, Tuple

import numpy as np

from ..images import PICTURE_SUFFIXES

__all__ = ["ALL_CLASSES", "IMAGE_SUFFIXES", "AnnotatedImage", "AnnotatedObject", "Reader"]

IMAGE_SUFFIXES = PICTURE_SUFFIXES
"""Image files the readers list (any case): sna_det.data.images' pictures."""

ALL_CLASSES = "*"
"""``AnnotatedObject.name`` of an ignore region of every class (labelme's ``__ignore__``)."""


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
    """As decoded (``input_files.image_size``), not as the annotation says."""
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
        """The image of ``item``; raises ``input_files.ConversionInputError`` for bad input."""

    def count_objects(self, item: str) -> int:
        """Objects of an item whose ``read`` failed, as far as they can be counted (0 if unknown)."""
