"""YOLO text labels (as ultralytics and Roboflow export them) to COCO JSON, boxes and segmentation polygons.

A YOLO folder holds images and, for each, a label file found as ultralytics finds it: the last
``/images/`` of the image's path replaced by ``/labels/`` and the suffix by ``.txt``
(``images/train/a.jpg`` -> ``labels/train/a.txt``). Each line of a label file is one object:
``class cx cy w h`` (a box: centre and size) or ``class x1 y1 x2 y2 x3 y3 ...`` (a polygon, at least
three points), every coordinate normalised by the image's width or height; ``class`` is a 0-based
index into the class names. An image without a label file has no objects (counted in the notes).

Class names: ``--classes FILE`` (one a line), else ``data.yaml``'s ``names:`` (a list, or a dict
``{0: name, ...}``), else ``classes.txt``. Splits: ``data.yaml``'s ``train:`` / ``val:`` (a folder of
images, a text file listing images, or a list of them), read against its ``path:`` (where that
folder does not exist here, as exporters write their own machine's, against the root), else
``images/train`` and ``images/val``. Image sizes are read from the images (Pillow) to de-normalise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from .annotated import IMAGE_SUFFIXES, AnnotatedImage, AnnotatedObject
from .coco_writer import Layout, layout_converter
from .input_files import ConversionInputError, finite_number, image_size, read_class_file, read_text
from .splits import SPLITS

__all__ = ["YoloReader", "convert_yolo", "label_file", "parse_label_file", "read_data_yaml", "yolo_images"]


def label_file(image_file: str | os.PathLike) -> Path:
    """The label file of an image, as ultralytics' ``img2label_paths``: ``.../images/x.jpg`` -> ``.../labels/x.txt``."""
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(os.path.splitext(labels.join(str(image_file).rsplit(images, 1)))[0] + ".txt")


def parse_label_file(path: str | os.PathLike, num_classes: int) -> List[Tuple[int, str, List[float], int]]:
    """The objects of a label file: ``(class index, "box" | "polygon", normalised values, line)``.
    Raises ``ConversionInputError`` naming the line and field."""
    path = Path(path)
    text = read_text(path, "unreadable label file")
    objects = []
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 5:
            kind = "box"
        elif len(fields) >= 7 and len(fields) % 2 == 1:
            kind = "polygon"
        else:
            detail = (
                f"line {n} has {len(fields)} fields; a box is 'class cx cy w h' (5), "
                "a polygon 'class x1 y1 x2 y2 x3 y3 ...' (an odd number >= 7)"
            )
            raise ConversionInputError(path, "wrong field count", detail)
        number = finite_number(fields[0], path, f"line {n} field 1 (class)")
        if number != int(number):
            raise ConversionInputError(path, "malformed annotation", f"line {n} field 1 (class) is {fields[0]!r}")
        if not 0 <= number < num_classes:
            detail = f"line {n} field 1: class index {int(number)} is not in 0..{num_classes - 1} ({num_classes} names)"
            raise ConversionInputError(path, "class index out of range", detail)
        values = [finite_number(v, path, f"line {n} field {k}") for k, v in enumerate(fields[1:], start=2)]
        objects.append((int(number), kind, values, n))
    return objects


class YoloReader:
    """YOLO images by path (``annotated.Reader``): label lines de-normalised by the image's size."""

    def __init__(self, names: Sequence[str]):
        self.names = tuple(names)

    def read(self, item: str) -> AnnotatedImage:
        image_file, labels = Path(item), label_file(item)
        width, height = image_size(image_file)
        if not labels.is_file():
            return AnnotatedImage(image_file, width, height, (), labels, notes=("images without a label file",))
        objects = []
        for index, kind, values, line in parse_label_file(labels, len(self.names)):
            name, where = self.names[index], f"line {line}"
            if kind == "box":
                cx, cy, w, h = values
                box = ((cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height)
                objects.append(AnnotatedObject(name, box=box, where=where))
            else:
                polygon = tuple(v * (width if k % 2 == 0 else height) for k, v in enumerate(values))
                objects.append(AnnotatedObject(name, polygons=(polygon,), where=where))
        return AnnotatedImage(image_file, width, height, tuple(objects), labels)

    def count_objects(self, item: str) -> int:
        try:
            return sum(1 for line in read_text(label_file(item), "").splitlines() if line.strip())
        except ConversionInputError:
            return 0


def _image_list(folder: Path) -> List[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def yolo_images(spec: object, base: Path, yaml_file: Path, key: str) -> List[Path]:
    """Images of a ``data.yaml`` split entry: a folder, a list file (lines relative to its folder), or a
    list of them, each relative to ``base``. Raises ``ConversionInputError``."""
    specs = spec if isinstance(spec, list) else [spec]
    images: List[Path] = []
    for entry in specs:
        if not isinstance(entry, str) or not entry.strip():
            raise ConversionInputError(yaml_file, "malformed data.yaml", f"{key}: {entry!r} is not a path")
        path = base / entry
        if not path.exists() and entry.startswith("../"):  # Roboflow writes ../train/images; ultralytics' reading
            path = base / entry[3:]
        if path.is_dir():
            images += _image_list(path)
        elif path.is_file():
            lines = read_text(path, "unreadable split list").splitlines()
            images += [path.parent / line.strip() for line in lines if line.strip()]
        else:
            detail = f"{key}: {entry!r} is neither a folder nor a list file ({path} does not exist)"
            raise ConversionInputError(yaml_file, "missing split", detail)
    return list(dict.fromkeys(images))


def read_data_yaml(yaml_file: str | os.PathLike, root: str | os.PathLike) -> Tuple[Optional[Tuple[str, ...]], dict]:
    """``(names or None, {split: images})`` of a ``data.yaml`` (splits it does not name are left out)."""
    yaml_file, root = Path(yaml_file), Path(root)
    try:
        data = yaml.safe_load(read_text(yaml_file, "malformed data.yaml"))
    except yaml.YAMLError as error:
        raise ConversionInputError(yaml_file, "malformed data.yaml", f"not YAML ({error})") from None
    if not isinstance(data, dict):
        raise ConversionInputError(yaml_file, "malformed data.yaml", "is not a mapping of keys (names:, train:, val:)")
    names = data.get("names")
    if names is not None:
        if isinstance(names, dict):
            by_index = {int(k): v for k, v in names.items() if isinstance(k, int) or str(k).isdigit()}
            if sorted(by_index) != list(range(len(names))):
                detail = f"names: keys {sorted(names, key=str)} are not the indices 0..{len(names) - 1}"
                raise ConversionInputError(yaml_file, "malformed data.yaml", detail)
            names = [by_index[i] for i in range(len(names))]
        if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) for n in names):
            raise ConversionInputError(yaml_file, "malformed data.yaml", f"names: {names!r} is not a list of names")
        names = tuple(str(n) for n in names)
        if "nc" in data and data["nc"] != len(names):
            detail = f"nc: {data['nc']!r} but names: has {len(names)} names"
            raise ConversionInputError(yaml_file, "malformed data.yaml", detail)
    base = root
    if isinstance(data.get("path"), str) and data["path"].strip():
        here = yaml_file.parent / data["path"]
        base = here if here.is_dir() else root  # an exporter's own machine's path: read against the root
    splits = {key: yolo_images(data[key], base, yaml_file, key) for key in SPLITS if data.get(key) is not None}
    return names, splits


def yolo_layout(root: Path, output_dir: Path, *, data_yaml: Optional[str | os.PathLike] = None) -> Layout:
    """Splits from ``data_yaml`` (default ``root/data.yaml`` when it exists), else ``images/{train,val}``;
    class names from its ``names:``, else ``classes.txt`` (in index order)."""
    yaml_file = Path(data_yaml) if data_yaml is not None else root / "data.yaml"
    if data_yaml is not None and not yaml_file.is_file():
        raise ConversionInputError(yaml_file, "missing data.yaml", "is not a file")
    names, splits = read_data_yaml(yaml_file, root) if yaml_file.is_file() else (None, {})
    origin = f"{yaml_file.name} train:/val:"
    if not splits:
        folders = {split: root / "images" / split for split in SPLITS}
        for folder in folders.values():
            if not folder.is_dir():
                hint = f"no {yaml_file.name} with train:/val:, and no images/train, images/val folders"
                raise ConversionInputError(folder, "missing split", f"folder does not exist ({hint})")
        splits, origin = {split: _image_list(folder) for split, folder in folders.items()}, "images/{train,val}"
    declared: Dict[str, List[str]] = {split: [str(p) for p in images] for split, images in splits.items()}

    def class_names(_: Dict[str, List[str]]) -> Tuple[str, ...]:
        if names is not None:
            return names
        if not (root / "classes.txt").is_file():
            detail = "no class names: data.yaml with names:, classes.txt, or --classes FILE"
            raise ConversionInputError(root / "classes.txt", "missing class list", detail)
        return read_class_file(root / "classes.txt")

    return Layout(None, declared, origin, class_names, reader_for=YoloReader)


convert_yolo = layout_converter("yolo", "YOLO", "the YOLO export", yolo_layout)
"""``convert_yolo(root, output_dir, *, classes="auto", data_yaml=None, val_fraction=None, seed=0, strict,
rebuild, log, progress) -> summary``: ``classes`` ``"auto"`` (``data.yaml``'s names, else
``classes.txt``) or a file, one name a line, in index order; ``val_fraction``: pool the splits' images
and draw this share for val with ``seed``."""
