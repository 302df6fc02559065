"""CVAT's "CVAT for images 1.1" XML to COCO JSON: boxes, polygons as drawn, ``occluded``, ignore regions.

A CVAT folder holds the export: ``annotations.xml`` (else the one ``*.xml`` of the root) and the images
(``images/<name>`` as CVAT exports them, else ``<name>`` beside the XML). Each ``<image name width
height>`` holds its shapes, in pixels with (0, 0) the top-left corner of the top-left pixel (COCO's):

- ``<box xtl ytl xbr ybr>`` -> a box; a ``rotation`` (degrees, clockwise about its centre) -> the
  polygon of its four corners;
- ``<polygon points="x0,y0;x1,y1;...">`` -> its points as drawn;
- ``occluded="1"`` -> kept, written with ``"occluded": 1``;
- the ignore convention: a shape whose ``<attribute name="ignore">`` is ``true`` is an ignore region of
  its class (``iscrowd: 1``); a shape labelled ``__ignore__`` is an ignore region of every class
  (labelme's label); neither is trained on nor counted by COCO evaluation;
- ``<polyline>``, ``<points>`` and ``<tag>`` have no inside: skipped, counted in the notes; other shapes
  (``ellipse``, ``mask``, ``cuboid``, ``skeleton``) skip the image, named.

Classes: the task's ``<meta>`` labels in order (``__ignore__`` not a class), else the labels found,
sorted, or ``--classes FILE``. Splits: the images' ``subset`` attribute when both ``train`` and ``val``
(or ``validation``) occur, else a share drawn for val (``--val-fraction``, ``--seed``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .annotated import ALL_CLASSES, AnnotatedImage, AnnotatedObject
from .coco_writer import Layout, layout_converter
from .input_files import ConversionInputError, finite_number, image_size
from .splits import SPLITS

__all__ = ["CvatReader", "convert_cvat", "cvat_layout", "cvat_xml_file"]

IGNORE_LABEL, IGNORE_ATTRIBUTE = "__ignore__", "ignore"
SKIPPED_SHAPES = ("polyline", "points", "tag")
READ_SHAPES = ("box", "polygon")
SUBSETS = {"train": "train", "val": "val", "validation": "val"}


def cvat_xml_file(root: Path) -> Path:
    """``annotations.xml`` of a folder, else its one ``*.xml``; ``ConversionInputError`` if neither."""
    if (root / "annotations.xml").is_file():
        return root / "annotations.xml"
    found = sorted(root.glob("*.xml"))
    if len(found) != 1:
        detail = f"holds {len(found)} .xml files and no annotations.xml (a CVAT for images 1.1 export)"
        raise ConversionInputError(root, "missing CVAT XML", detail)
    return found[0]


def _parse(xml_file: Path) -> ET.Element:
    try:
        tree = ET.parse(xml_file)
    except ET.ParseError as error:
        raise ConversionInputError(xml_file, "malformed XML", f"not well-formed XML ({error})") from None
    except OSError as error:
        raise ConversionInputError(xml_file, "malformed XML", f"cannot be read ({error.strerror})") from None
    root = tree.getroot()
    if root.tag != "annotations":
        raise ConversionInputError(xml_file, "malformed XML", f"root element is <{root.tag}>, not <annotations>")
    if root.find("track") is not None:
        detail = "has <track> elements (CVAT for video 1.1); export the task as CVAT for images 1.1"
        raise ConversionInputError(xml_file, "malformed XML", detail)
    return root


def _points(text: Optional[str], xml_file: Path, where: str) -> Tuple[float, ...]:
    values: List[float] = []
    for k, pair in enumerate((text or "").split(";"), start=1):
        xy = pair.split(",")
        if len(xy) != 2:
            raise ConversionInputError(xml_file, "malformed annotation", f"{where} point {k} is {pair!r}, not x,y")
        values += [finite_number(xy[0], xml_file, f"{where} point {k} x")]
        values += [finite_number(xy[1], xml_file, f"{where} point {k} y")]
    return tuple(values)


def _rotated_box(x0: float, y0: float, x1: float, y1: float, degrees: float) -> Tuple[float, ...]:
    """The corners of a box turned ``degrees`` clockwise (image y down) about its centre."""
    cx, cy, a = (x0 + x1) / 2, (y0 + y1) / 2, math.radians(degrees)
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    cos, sin = math.cos(a), math.sin(a)
    turned = [(cx + (x - cx) * cos - (y - cy) * sin, cy + (x - cx) * sin + (y - cy) * cos) for x, y in corners]
    return tuple(v for point in turned for v in point)


class CvatReader:
    """The ``<image>`` elements of a CVAT for images 1.1 XML by index (``annotated.Reader``)."""

    def __init__(self, root: Path, xml_file: Path):
        self.root, self.xml_file = root, xml_file
        tree = _parse(xml_file)
        self.images = tree.findall("image")
        self.meta_labels = [(e.findtext("name") or "").strip() for e in tree.iterfind("meta/*/labels/label")]

    def items(self) -> List[str]:
        return [str(i) for i in range(len(self.images))]

    def subset(self, item: str) -> str:
        return (self.images[int(item)].get("subset") or "").strip().lower()

    def _image_file(self, name: str) -> Path:
        candidates = [self.root / "images" / name, self.xml_file.parent / name]
        return next((c for c in candidates if c.is_file()), candidates[0])

    def read(self, item: str) -> AnnotatedImage:
        element, xml_file = self.images[int(item)], self.xml_file
        name = element.get("name") or ""
        if not name:
            raise ConversionInputError(
                xml_file, "malformed annotation", f"<image id={element.get('id')!r}> has no name"
            )
        image_file = self._image_file(name)
        width, height = image_size(image_file)
        declared = element.get("width"), element.get("height")
        if declared != (None, None) and declared != (str(width), str(height)):
            detail = f"image {name}: width x height is {declared[0]}x{declared[1]}, the file is {width}x{height}"
            raise ConversionInputError(xml_file, "image size mismatch", detail)
        objects, notes = [], []
        for i, shape in enumerate(element, start=1):
            where = f"image {name} shape {i} ({shape.tag})"
            if shape.tag in SKIPPED_SHAPES:
                notes.append(f"shapes skipped: {shape.tag}")
                continue
            if shape.tag not in READ_SHAPES:
                detail = f"{where} is not read (box and polygon shapes are; polyline, points, tag are skipped)"
                raise ConversionInputError(xml_file, "unsupported shape", detail)
            label = (shape.get("label") or "").strip()
            if not label:
                raise ConversionInputError(xml_file, "malformed annotation", f"{where} has no label")
            attributes = {a.get("name"): (a.text or "").strip().lower() for a in shape.iterfind("attribute")}
            ignore = label == IGNORE_LABEL or attributes.get(IGNORE_ATTRIBUTE) == "true"
            common = dict(ignore=ignore, occluded=shape.get("occluded") == "1", where=where)
            label = ALL_CLASSES if label == IGNORE_LABEL else label
            if shape.tag == "box":
                x0, y0, x1, y1 = (
                    finite_number(shape.get(k), xml_file, f"{where} {k}") for k in ("xtl", "ytl", "xbr", "ybr")
                )
                rotation = finite_number(shape.get("rotation", "0"), xml_file, f"{where} rotation")
                if rotation % 360:
                    objects.append(AnnotatedObject(label, polygons=(_rotated_box(x0, y0, x1, y1, rotation),), **common))
                else:
                    objects.append(AnnotatedObject(label, box=(x0, y0, x1 - x0, y1 - y0), **common))
                continue
            polygon = _points(shape.get("points"), xml_file, where)
            if len(polygon) < 6:
                raise ConversionInputError(xml_file, "malformed annotation", f"{where} has fewer than 3 points")
            objects.append(AnnotatedObject(label, polygons=(polygon,), **common))
        return AnnotatedImage(image_file, width, height, tuple(objects), xml_file, notes=tuple(notes))

    def count_objects(self, item: str) -> int:
        return sum(1 for shape in self.images[int(item)] if shape.tag not in SKIPPED_SHAPES)

    def class_names(self) -> Tuple[str, ...]:
        """The ``<meta>`` labels in order, else the labels found, sorted (``__ignore__`` is not a class)."""
        names = [n for n in dict.fromkeys(self.meta_labels) if n]
        if not names:
            names = sorted({(s.get("label") or "").strip() for e in self.images for s in e} - {""})
        return tuple(n for n in names if n != IGNORE_LABEL)


def cvat_layout(root: Path, output_dir: Path) -> Layout:
    """Splits by the images' ``subset`` when both train and val occur, else drawn; classes as the module says."""
    reader = CvatReader(root, cvat_xml_file(root))
    by_subset: Dict[str, List[str]] = {split: [] for split in SPLITS}
    for item in reader.items():
        if reader.subset(item) in SUBSETS:
            by_subset[SUBSETS[reader.subset(item)]].append(item)
    declared = by_subset if all(by_subset.values()) else None
    origin = reader.xml_file.name + (" subsets" if declared else "")
    return Layout(reader, declared, origin, lambda _: reader.class_names(), pool=reader.items())


convert_cvat = layout_converter("cvat", "CVAT", "a CVAT for images 1.1 export", cvat_layout)
"""``convert_cvat(root, output_dir, *, classes="auto", val_fraction=None, seed=0, strict, rebuild, log,
progress) -> summary`` (``coco_writer.layout_converter``)."""
