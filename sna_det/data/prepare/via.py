"""VIA (VGG Image Annotator) JSON to COCO JSON, laid out as detectron2's and Mask R-CNN's balloon tutorial.

A VIA folder holds ``train/`` and ``val/``, each with its images and ``via_region_data.json`` (or the
one ``*.json`` there): a dict of entries (VIA 2's export; a project file's ``_via_img_metadata``)
with ``filename`` (relative to the folder) and ``regions`` (a list, or VIA 1's dict) of
``shape_attributes`` (``polygon`` with ``all_points_x`` / ``all_points_y``, or ``rect`` with ``x``,
``y``, ``width``, ``height``, in pixels) and ``region_attributes``. Without ``class_attribute`` every
region is one class, ``class_name``; with it, a region's class is that attribute's value (a text, or
a checkbox dict with one value ticked), and a region without it skips the image. Other shapes
(circle, ellipse, point, polyline) skip the image. A root with one such JSON and no ``train/``,
``val/`` is split by a drawn share.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .annotated import AnnotatedImage, AnnotatedObject
from .coco_writer import Layout, layout_converter
from .input_files import ConversionInputError, finite_number, image_size, read_json
from .splits import SPLITS

__all__ = ["ViaReader", "convert_via", "read_via_json", "via_json_file", "via_layout"]

VIA_JSON = "via_region_data.json"


def via_json_file(folder: Path) -> Optional[Path]:
    """``via_region_data.json`` of a folder, else its only ``*.json``, else None."""
    if (folder / VIA_JSON).is_file():
        return folder / VIA_JSON
    found = sorted(folder.glob("*.json"))
    return found[0] if len(found) == 1 else None


def read_via_json(path: str | os.PathLike) -> Dict[str, dict]:
    """The entries of a VIA export ``{key: {"filename", "regions", ...}}``; ``ConversionInputError`` if the
    file is not one (the whole split cannot be read)."""
    path = Path(path)
    data = read_json(path, "malformed VIA JSON")
    if isinstance(data, dict) and isinstance(data.get("_via_img_metadata"), dict):  # a VIA project file
        data = data["_via_img_metadata"]
    if not isinstance(data, dict) or not all(isinstance(e, dict) for e in data.values()):
        detail = "is not a VIA export (a dict of entries with filename and regions; VIA 3 projects are not read)"
        raise ConversionInputError(path, "malformed VIA JSON", detail)
    return data


class ViaReader:
    """VIA entries by ``"<folder>/<key>"`` (``annotated.Reader``)."""

    def __init__(self, root: Path, files: Dict[str, Path], class_attribute: Optional[str], class_name: str):
        self.root, self.files = root, files
        self.entries = {folder: read_via_json(path) for folder, path in files.items()}
        self.class_attribute, self.class_name = class_attribute, class_name

    def items(self, folder: str) -> List[str]:
        return [f"{folder}/{key}" for key in self.entries[folder]]

    def _entry(self, item: str) -> Tuple[Path, dict, str]:
        folder, key = item.split("/", 1)
        return self.files[folder], self.entries[folder][key], folder

    def regions(self, item: str) -> List[object]:
        json_file, entry, _ = self._entry(item)
        regions = entry.get("regions", [])
        if isinstance(regions, dict):  # VIA 1: {"0": region, ...}
            regions = list(regions.values())
        if not isinstance(regions, list):
            detail = f"entry {entry.get('filename')!r}: regions is not a list"
            raise ConversionInputError(json_file, "malformed annotation", detail)
        return regions

    def class_of(self, region: dict, json_file: Path, where: str) -> str:
        if self.class_attribute is None:
            return self.class_name
        attributes = region.get("region_attributes")
        value = attributes.get(self.class_attribute) if isinstance(attributes, dict) else None
        if isinstance(value, dict):  # a checkbox attribute: {"balloon": true}
            ticked = [k for k, v in value.items() if v]
            value = ticked[0] if len(ticked) == 1 else None
        if not isinstance(value, str) or not value.strip():
            detail = f"{where} has no region attribute {self.class_attribute!r} (or not one value)"
            raise ConversionInputError(json_file, "missing class attribute", detail)
        return value.strip()

    def read(self, item: str) -> AnnotatedImage:
        json_file, entry, folder = self._entry(item)
        filename = entry.get("filename")
        if not isinstance(filename, str) or not filename:
            raise ConversionInputError(
                json_file, "malformed annotation", f"entry {item.split('/', 1)[1]!r} has no filename"
            )
        image_file = self.root / folder / filename
        width, height = image_size(image_file)
        objects = []
        for i, region in enumerate(self.regions(item), start=1):
            where = f"{filename} region {i}"
            shape = region.get("shape_attributes") if isinstance(region, dict) else None
            if not isinstance(shape, dict):
                raise ConversionInputError(json_file, "malformed annotation", f"{where} has no shape_attributes")
            name = self.class_of(region, json_file, where)
            if shape.get("name") == "polygon":
                xs, ys = shape.get("all_points_x"), shape.get("all_points_y")
                if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys) or len(xs) < 3:
                    detail = f"{where}: all_points_x and all_points_y are not two lists of the same >= 3 points"
                    raise ConversionInputError(json_file, "malformed annotation", detail)
                polygon = []
                for k, (x, y) in enumerate(zip(xs, ys), start=1):
                    polygon += [finite_number(x, json_file, f"{where} point {k} x")]
                    polygon += [finite_number(y, json_file, f"{where} point {k} y")]
                objects.append(AnnotatedObject(name, polygons=(tuple(polygon),), where=where))
            elif shape.get("name") == "rect":
                box = tuple(
                    finite_number(shape.get(k), json_file, f"{where} {k}") for k in ("x", "y", "width", "height")
                )
                objects.append(AnnotatedObject(name, box=box, where=where))
            else:
                detail = f"{where} is a {shape.get('name')!r}; polygon and rect regions are read"
                raise ConversionInputError(json_file, "unsupported shape", detail)
        return AnnotatedImage(image_file, width, height, tuple(objects), json_file)

    def count_objects(self, item: str) -> int:
        try:
            return len(self.regions(item))
        except ConversionInputError:
            return 0

    def class_names(self) -> Tuple[str, ...]:
        """The classes found (sorted), or ``(class_name,)`` without a class attribute."""
        if self.class_attribute is None:
            return (self.class_name,)
        found = set()
        for folder in self.entries:
            for item in self.items(folder):
                try:  # what does not read is named when converted
                    found.update(self.class_of(r, self.files[folder], "") for r in self.regions(item))
                except (ConversionInputError, AttributeError):
                    continue
        return tuple(sorted(found))


def via_layout(
    root: Path, output_dir: Path, *, class_attribute: Optional[str] = None, class_name: Optional[str] = None
) -> Layout:
    """``train/`` and ``val/`` with a VIA JSON each, else the root's one JSON (split by a drawn share).

    ``class_name``: the one class without ``class_attribute`` (default: the root folder's name); with
    it, the classes are the values found (sorted)."""
    files = {split: via_json_file(root / split) for split in SPLITS}
    if all(files.values()):
        origin, declared = "train/, val/", True
    elif via_json_file(root) is not None:
        files, origin, declared = {".": via_json_file(root)}, via_json_file(root).name, False
    else:
        missing = next(root / split / VIA_JSON for split, f in files.items() if f is None)
        raise ConversionInputError(missing, "missing VIA JSON", "does not exist (train/ and val/, each with its JSON)")
    reader = ViaReader(root, files, class_attribute, class_name or root.resolve().name or "object")

    def class_names(_: Dict[str, List[str]]) -> Tuple[str, ...]:
        names = reader.class_names()
        if not names:
            raise ConversionInputError(root, "no classes", f"no region with the attribute {class_attribute!r}")
        return names

    pool = [item for folder in files for item in reader.items(folder)]
    found = {folder: reader.items(folder) for folder in files} if declared else None
    settings = {"class_attribute": class_attribute}
    return Layout(reader, found, origin, class_names, pool=pool, settings=settings)


convert_via = layout_converter("via", "VIA", "train/ and val/ VIA folders", via_layout)
"""``convert_via(root, output_dir, *, classes="auto", class_attribute=None, class_name=None,
val_fraction=None, seed=0, strict, rebuild, log, progress) -> summary``: ``classes`` (with
``class_attribute``) ``"auto"`` or a file; ``val_fraction``: pool the entries and draw this share for
val with ``seed`` (default 0.2 for a root without ``train/``, ``val/``)."""
