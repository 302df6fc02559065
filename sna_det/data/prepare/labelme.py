"""labelme JSON (one file beside each image) to COCO JSON, each shape as drawn, as ``labelme2coco`` does.

A labelme folder holds images and, beside each, the JSON labelme saves: ``shapes`` (each with
``label``, ``shape_type``, ``points`` ``[[x, y], ...]`` in pixels, ``group_id``), ``imagePath``
(relative to the JSON; Windows separators and another machine's absolute path resolve beside the
JSON), ``imageWidth`` and ``imageHeight`` (checked against the image), ``imageData`` (the image
embedded; written out into the output folder's ``embedded_images/`` when no image file is there).

- ``rectangle`` -> a box; ``polygon`` (missing ``shape_type``: polygon, as older labelme wrote) -> its
  points as drawn; ``oriented_rectangle`` (labelme 6: four corners) -> that polygon; ``circle``
  (centre, a point on it) -> the polygon ``labelme2coco`` makes of it;
- shapes of one label with the same ``group_id`` are one object: a list of polygons (a rectangle among
  them as its four corners), its box their extent, as ``labelme2coco`` writes it; a shape without area
  in such a group is skipped (counted);
- ``__ignore__`` shapes are ignore regions (``iscrowd: 1``, for every class), never a class;
  ``_background_`` shapes are no class; ``line``, ``linestrip`` and ``point`` shapes have no inside:
  those are skipped, counted in the split's notes by reason; other shape types skip the image.

Splits: ``train/`` and ``val/`` folders of such files, else ``train.txt`` and ``val.txt`` in the root
(one JSON a line, with or without ``.json``), else every ``*.json`` of the root, a share drawn for val.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...utils.atomic_write import atomic_write_bytes
from .annotated import ALL_CLASSES, IMAGE_SUFFIXES, AnnotatedImage, AnnotatedObject
from .coco_writer import Layout, layout_converter
from .input_files import ConversionInputError, finite_number, image_size, read_json, read_text
from .splits import SPLITS

__all__ = ["LabelmeReader", "convert_labelme", "labelme_layout", "read_labelme_json"]

SHAPE_TYPES = ("rectangle", "polygon", "oriented_rectangle", "circle")
SKIPPED_SHAPE_TYPES = ("line", "linestrip", "point")
"""Shapes without an inside: skipped, counted in the split's notes."""
IGNORE, BACKGROUND = "__ignore__", "_background_"
"""labelme's labels of ignore regions (``iscrowd: 1``, every class) and of no class (skipped, counted)."""


def read_labelme_json(path: str | os.PathLike) -> dict:
    """A labelme file as a dict with a ``shapes`` list; ``ConversionInputError`` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ConversionInputError(path, "missing annotation", "annotation file does not exist")
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise ConversionInputError(path, "malformed annotation", "has no shapes list (not a labelme file)")
    return data


def _points(shape: dict, path: Path, where: str) -> List[Tuple[float, float]]:
    points = shape.get("points")
    if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
        raise ConversionInputError(path, "malformed annotation", f"{where} points are not a list of [x, y]")
    return [
        (finite_number(x, path, f"{where} point {k} x"), finite_number(y, path, f"{where} point {k} y"))
        for k, (x, y) in enumerate(points, start=1)
    ]


def _image_file(json_file: Path, data: dict) -> Path:
    """``imagePath`` (relative to the JSON, Windows separators too; an absolute one of another machine:
    its file name beside the JSON), else the JSON's name with an image suffix."""
    image_path = data.get("imagePath")
    candidates = []
    if isinstance(image_path, str) and image_path:
        posix = image_path.replace("\\", "/")
        candidates += [json_file.parent / posix, json_file.parent / PurePosixPath(posix).name]
    candidates += [json_file.with_suffix(s) for s in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES)]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _circle_polygon(points: List[Tuple[float, float]]) -> List[Tuple[float, float]]:
    """labelme's circle (centre, a point on it) as ``labelme2coco`` writes it: N >= 12 points with a gap
    of at most one pixel between the arc and each side (N = pi / arccos(1 - 1/r))."""
    (x1, y1), (x2, y2) = points
    r = float(np.linalg.norm([x2 - x1, y2 - y1]))
    n = max(int(np.pi / np.arccos(1 - 1 / r)), 12) if r >= 1 else 12
    angles = 2 * np.pi / n * np.arange(n)
    return list(zip((x1 + r * np.sin(angles)).tolist(), (y1 + r * np.cos(angles)).tolist()))


def _has_area(points: List[Tuple[float, float]]) -> bool:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return max(xs) > min(xs) and max(ys) > min(ys)


class LabelmeReader:
    """labelme files by path (``annotated.Reader``); images only embedded in a JSON (``imageData``)
    are written into ``embedded_dir``."""

    def __init__(self, embedded_dir: Optional[Path] = None):
        self.embedded_dir = embedded_dir

    def _image_file(self, json_file: Path, data: dict) -> Path:
        image_file = _image_file(json_file, data)
        if image_file.is_file() or not isinstance(data.get("imageData"), str) or self.embedded_dir is None:
            return image_file
        try:
            image_bytes = base64.b64decode(data["imageData"], validate=True)
        except (ValueError, binascii.Error) as error:
            raise ConversionInputError(json_file, "bad image", f"imageData is not base64 ({error})") from None
        suffix = PurePosixPath(str(data.get("imagePath") or "").replace("\\", "/")).suffix.lower()
        target = self.embedded_dir / f"{json_file.stem}-{hashlib.sha1(image_bytes).hexdigest()[:8]}{suffix or '.png'}"
        if not target.is_file() or target.read_bytes() != image_bytes:
            atomic_write_bytes(target, image_bytes)
        return target

    def read(self, item: str) -> AnnotatedImage:
        json_file = Path(item)
        data = read_labelme_json(json_file)
        image_file = self._image_file(json_file, data)
        width, height = image_size(image_file)
        declared = data.get("imageWidth"), data.get("imageHeight")
        if declared != (None, None) and declared != (width, height):
            detail = f"imageWidth x imageHeight is {declared[0]}x{declared[1]}, {image_file.name} is {width}x{height}"
            raise ConversionInputError(json_file, "image size mismatch", detail)
        groups: Dict[tuple, Tuple[str, List[Tuple[str, List[Tuple[float, float]], str]]]] = {}
        notes: List[str] = []
        for i, shape in enumerate(data["shapes"], start=1):
            where = f"shape {i}"
            if not isinstance(shape, dict) or not isinstance(shape.get("label"), str) or not shape["label"].strip():
                raise ConversionInputError(json_file, "malformed annotation", f"{where} has no label")
            name, kind = shape["label"].strip(), shape.get("shape_type") or "polygon"
            if kind in SKIPPED_SHAPE_TYPES or name == BACKGROUND:
                notes.append(f"shapes skipped: {name if name == BACKGROUND else kind}")
                continue
            if kind not in SHAPE_TYPES:
                detail = f"{where} ({name}) is a {kind!r}; {', '.join(SHAPE_TYPES)} shapes are read"
                raise ConversionInputError(json_file, "unsupported shape", detail)
            points = _points(shape, json_file, where)
            wanted = {"rectangle": (2, 4), "oriented_rectangle": (4,), "circle": (2,)}.get(kind)
            if (wanted and len(points) not in wanted) or (kind == "polygon" and len(points) < 3):
                detail = f"{where} ({name}) is a {kind} of {len(points)} points"
                raise ConversionInputError(json_file, "malformed annotation", detail)
            if kind == "circle":
                points = _circle_polygon(points)
            group = shape.get("group_id")
            key = (name, json.dumps(group)) if group is not None else (i,)  # a group: one object
            groups.setdefault(key, (name, []))[1].append((kind, points, where))
        objects = []
        for name, shapes in groups.values():
            if len(shapes) > 1:  # a shape without area adds no pixel to its group, only a wrong extent
                flat = [s for s in shapes if not _has_area(s[1])]
                notes += ["shapes skipped: no area (in a group)"] * len(flat)
                shapes = [s for s in shapes if _has_area(s[1])] or shapes[:1]
            ignore = name == IGNORE
            name = ALL_CLASSES if ignore else name
            where = ", ".join(w for _, _, w in shapes)
            if len(shapes) == 1 and shapes[0][0] == "rectangle":
                xs, ys = [x for x, _ in shapes[0][1]], [y for _, y in shapes[0][1]]
                box = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
                objects.append(AnnotatedObject(name, box=box, ignore=ignore, where=where))
                continue
            polygons = []
            for kind, points, _ in shapes:
                if kind == "rectangle":  # its corners, in labelme2coco's order
                    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
                    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
                    points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
                polygons.append(tuple(v for point in points for v in point))
            objects.append(AnnotatedObject(name, polygons=tuple(polygons), ignore=ignore, where=where))
        return AnnotatedImage(image_file, width, height, tuple(objects), json_file, notes=tuple(notes))

    def count_objects(self, item: str) -> int:
        try:
            return len(read_labelme_json(item)["shapes"])
        except ConversionInputError:
            return 0


def _labels(json_files: Sequence[str]) -> Tuple[str, ...]:
    """The labels of these files, sorted (files that do not read are named when converted)."""
    found = set()
    for json_file in json_files:
        try:
            shapes = read_labelme_json(json_file)["shapes"]
        except ConversionInputError:
            continue
        found.update(s["label"].strip() for s in shapes if isinstance(s, dict) and isinstance(s.get("label"), str))
    return tuple(sorted(found - {"", IGNORE, BACKGROUND}))


def _list_file(root: Path, list_file: Path) -> List[str]:
    lines = read_text(list_file, "unreadable split list").splitlines()
    names = [line.strip() for line in lines if line.strip()]
    return list(dict.fromkeys(str(root / (n if n.endswith(".json") else f"{n}.json")) for n in names))


def labelme_layout(root: Path, output_dir: Path) -> Layout:
    """Splits as the module says; images only embedded are written into ``output_dir/embedded_images``."""
    pool = None
    if all((root / split).is_dir() for split in SPLITS):
        declared = {split: sorted(str(p) for p in (root / split).glob("*.json")) for split in SPLITS}
        origin = "train/, val/"
    elif all((root / f"{split}.txt").is_file() for split in SPLITS):
        declared = {split: _list_file(root, root / f"{split}.txt") for split in SPLITS}
        origin = "train.txt, val.txt"
    else:
        declared, pool, origin = None, sorted(str(p) for p in root.glob("*.json")), "*.json"
        if not pool:
            raise ConversionInputError(root, "no annotations", "holds no .json file (nor train/, val/ folders)")
    reader = LabelmeReader(embedded_dir=output_dir / "embedded_images")
    found = lambda items: _labels([i for split in items.values() for i in split])  # noqa: E731
    return Layout(reader, declared, origin, found, pool=pool)


convert_labelme = layout_converter("labelme", "labelme", "images with labelme JSONs", labelme_layout)
"""``convert_labelme(root, output_dir, *, classes="auto", val_fraction=None, seed=0, strict, rebuild, log,
progress) -> summary``: splits as the module says (``val_fraction`` default 0.2 without folders or
lists); ``classes`` ``"auto"`` (the labels found, sorted) or a file."""
