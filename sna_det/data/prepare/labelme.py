"""labelme JSON (one file beside each image) to COCO JSON: rectangles as boxes, polygons as masks.

A labelme folder holds images and, beside each, the JSON labelme saves: ``shapes`` (each with
``label``, ``shape_type`` ``rectangle`` or ``polygon`` (missing: polygon, as older labelme wrote),
``points`` ``[[x, y], ...]`` in pixels, ``group_id``), ``imagePath`` (relative to the JSON),
``imageWidth`` and ``imageHeight`` (checked against the image). Shapes of one label with the same
``group_id`` are one object (their polygons unioned, a rectangle among them as its four corners), as
labelme's own ``labelme2coco`` does. Other shape types (circle, line, point, ...) skip the image.

Splits: ``train/`` and ``val/`` folders of such files, else ``train.txt`` and ``val.txt`` in the root
(one JSON a line, with or without ``.json``), else every ``*.json`` of the root, a share drawn for val.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .coco_conversion import (
    IMAGE_SUFFIXES,
    AnnotatedImage,
    AnnotatedObject,
    ConversionInputError,
    SplitJob,
    convert_splits,
    finite_number,
    image_size,
    read_class_file,
    read_text,
    split_by_fraction,
)

__all__ = ["LabelmeReader", "convert_labelme", "read_labelme_json"]

SPLITS = ("train", "val")
SHAPE_TYPES = ("rectangle", "polygon")


def read_labelme_json(path: str | os.PathLike) -> dict:
    """A labelme file as a dict with a ``shapes`` list; ``ConversionInputError`` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ConversionInputError(path, "missing annotation", "annotation file does not exist")
    try:
        data = json.loads(read_text(path, "malformed JSON"))
    except json.JSONDecodeError as error:
        raise ConversionInputError(path, "malformed JSON", f"not JSON ({error})") from None
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
    """``imagePath`` (relative to the JSON, Windows separators too), else the JSON's name with an image suffix."""
    image_path = data.get("imagePath")
    candidates = (
        [json_file.parent / image_path.replace("\\", "/")] if isinstance(image_path, str) and image_path else []
    )
    candidates += [json_file.with_suffix(s) for s in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES)]
    return next((c for c in candidates if c.is_file()), candidates[0])


class LabelmeReader:
    """labelme files by path (``Reader`` of ``coco_conversion``)."""

    def read(self, item: str) -> AnnotatedImage:
        json_file = Path(item)
        data = read_labelme_json(json_file)
        image_file = _image_file(json_file, data)
        width, height = image_size(image_file)
        declared = data.get("imageWidth"), data.get("imageHeight")
        if declared != (None, None) and declared != (width, height):
            detail = f"imageWidth x imageHeight is {declared[0]}x{declared[1]}, {image_file.name} is {width}x{height}"
            raise ConversionInputError(json_file, "image size mismatch", detail)
        groups: Dict[tuple, Tuple[str, List[Tuple[str, List[Tuple[float, float]], str]]]] = {}
        for i, shape in enumerate(data["shapes"], start=1):
            where = f"shape {i}"
            if not isinstance(shape, dict) or not isinstance(shape.get("label"), str) or not shape["label"].strip():
                raise ConversionInputError(json_file, "malformed annotation", f"{where} has no label")
            kind = shape.get("shape_type") or "polygon"
            if kind not in SHAPE_TYPES:
                detail = f"{where} ({shape['label']}) is a {kind!r}; rectangle and polygon shapes are read"
                raise ConversionInputError(json_file, "unsupported shape", detail)
            points = _points(shape, json_file, where)
            if (kind == "rectangle" and len(points) not in (2, 4)) or (kind == "polygon" and len(points) < 3):
                detail = f"{where} ({shape['label']}) is a {kind} of {len(points)} points"
                raise ConversionInputError(json_file, "malformed annotation", detail)
            name, group = shape["label"].strip(), shape.get("group_id")
            key = (name, json.dumps(group)) if group is not None else (i,)  # a group: one object
            groups.setdefault(key, (name, []))[1].append((kind, points, where))
        objects = []
        for name, shapes in groups.values():
            where = ", ".join(w for _, _, w in shapes)
            if len(shapes) == 1 and shapes[0][0] == "rectangle":
                xs, ys = [x for x, _ in shapes[0][1]], [y for _, y in shapes[0][1]]
                box = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
                objects.append(AnnotatedObject(name, box=box, where=where))
                continue
            polygons = []
            for kind, points, _ in shapes:
                if kind == "rectangle":
                    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
                    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
                    points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
                polygons.append(tuple(v for point in points for v in point))
            objects.append(AnnotatedObject(name, polygons=tuple(polygons), where=where))
        return AnnotatedImage(image_file, width, height, tuple(objects), json_file)

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
    found.discard("")
    return tuple(sorted(found))


def _list_file(root: Path, list_file: Path) -> List[str]:
    lines = read_text(list_file, "unreadable split list").splitlines()
    names = [line.strip() for line in lines if line.strip()]
    return list(dict.fromkeys(str(root / (n if n.endswith(".json") else f"{n}.json")) for n in names))


def convert_labelme(
    root: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    classes: str = "auto",
    val_fraction: Optional[float] = None,
    seed: int = 0,
    strict: bool = False,
    rebuild: bool = False,
    log: Optional[Callable[[str], None]] = None,
    progress: bool = False,
) -> dict:
    """Convert a labelme folder into ``output_dir/annotations/{train,val}.json`` (+ an ``images`` link
    to the images' common folder, ``summary.json``); returns the summary.

    Splits as the module says; ``val_fraction`` (default 0.2 without folders or lists) draws val from
    every JSON, with ``seed``. ``classes``: ``"auto"`` (the labels found, sorted) or a file.
    """
    root, output_dir = Path(root), Path(output_dir)
    if not root.is_dir():
        raise ConversionInputError(root, "missing folder", "is not a folder (--root: images with labelme JSONs)")
    if all((root / split).is_dir() for split in SPLITS):
        items = {split: sorted(str(p) for p in (root / split).glob("*.json")) for split in SPLITS}
        origin = "train/, val/"
    elif all((root / f"{split}.txt").is_file() for split in SPLITS):
        items = {split: _list_file(root, root / f"{split}.txt") for split in SPLITS}
        origin = "train.txt, val.txt"
    else:
        items = {"train": sorted(str(p) for p in root.glob("*.json")), "val": []}
        origin = "*.json"
        if not items["train"]:
            raise ConversionInputError(root, "no annotations", "holds no .json file (nor train/, val/ folders)")
        val_fraction = 0.2 if val_fraction is None else val_fraction
    if val_fraction is not None:
        items = split_by_fraction(items["train"] + items["val"], val_fraction, seed)
        origin = f"{origin}, val fraction {val_fraction}, seed {seed}"
    names = read_class_file(classes) if classes != "auto" else _labels(items["train"] + items["val"])
    if not names:
        raise ConversionInputError(root, "no classes", "no shape with a label in any JSON")
    reader = LabelmeReader()
    jobs = [SplitJob(split, items[split], reader, f"{root.name} {split} (labelme, {origin})") for split in SPLITS]
    settings = {"format": "labelme", "classes": list(names), "splits": origin}
    return convert_splits(
        output_dir, jobs, names, settings, fmt="labelme", root=root, strict=strict, rebuild=rebuild, log=log,
        progress=progress,
    )  # fmt: skip
