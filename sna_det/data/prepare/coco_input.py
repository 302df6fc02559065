"""A COCO JSON as input (one file, or Roboflow's split folders) to the project's COCO layout: validated,
category ids remapped to 1..N, images linked.

``--root`` holds either Roboflow's COCO export, ``train/``, ``valid/`` (and ``test/``) each with its
images and ``_annotations.coco.json``, or one COCO JSON (``annotations.json``, else the root's one
``*.json``; ``file_name`` relative to the JSON's folder, else to ``images/`` beside it), split by a drawn
share. Each image is checked (``id``, ``file_name``, ``width`` and ``height`` against the decoded image)
and each annotation (``image_id``, ``category_id`` of a category, ``bbox`` of 4 finite numbers,
``segmentation`` polygons or RLE); bad input skips the image, named and counted, as for every format.

Objects: ``bbox`` kept as given; polygons as given; an RLE is a mask (written back as polygons where
they reproduce it exactly, else RLE); ``iscrowd: 1`` stays an ignore region. Classes: the categories
in id order, less Roboflow's parent category (the supercategory of the others, without annotations of
its own), ids 1..N; ``--classes FILE`` gives another order or a subset (others: ``unknown class``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

from .annotated import AnnotatedImage, AnnotatedObject
from .coco_writer import Layout, layout_converter
from .input_files import ConversionInputError, finite_number, image_size, read_json
from .masks import decode_segmentation

__all__ = ["CocoReader", "coco_layout", "convert_coco", "read_coco_json"]

ROBOFLOW_SPLITS = {"train": "train", "valid": "val", "test": "test"}
ROBOFLOW_JSON = "_annotations.coco.json"


def read_coco_json(path: Path) -> dict:
    """A COCO dict with ``images``, ``annotations`` and ``categories`` lists; ``ConversionInputError`` if not."""
    data = read_json(path)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise ConversionInputError(path, "malformed COCO JSON", "has no images and categories lists (not a COCO JSON)")
    if not isinstance(data.get("annotations", []), list):
        raise ConversionInputError(path, "malformed COCO JSON", "annotations is not a list")
    for k, category in enumerate(data["categories"]):
        if (
            not isinstance(category, dict)
            or not isinstance(category.get("id"), int)
            or not isinstance(category.get("name"), str)
        ):
            raise ConversionInputError(path, "malformed COCO JSON", f"categories[{k}] has no integer id and name")
    return data


class CocoReader:
    """The images of COCO JSONs by ``"<split>#<index>"`` (``annotated.Reader``)."""

    def __init__(self, files: Dict[str, Path]):
        self.files = files
        self.data = {split: read_coco_json(path) for split, path in files.items()}
        self.by_image: Dict[str, Dict[object, List[dict]]] = {}
        for split, data in self.data.items():
            grouped: Dict[object, List[dict]] = {}
            for annotation in data.get("annotations", []):
                key = annotation.get("image_id") if isinstance(annotation, dict) else None
                grouped.setdefault(key, []).append(annotation)
            self.by_image[split] = grouped

    def items(self, split: str) -> List[str]:
        return [f"{split}#{k}" for k in range(len(self.data[split]["images"]))]

    def _entry(self, item: str) -> Tuple[str, dict]:
        split, index = item.rsplit("#", 1)
        return split, self.data[split]["images"][int(index)]

    def _image_file(self, json_file: Path, file_name: str) -> Path:
        candidates = [json_file.parent / file_name, json_file.parent / "images" / file_name]
        return next((c for c in candidates if c.is_file()), candidates[0])

    def read(self, item: str) -> AnnotatedImage:
        split, image = self._entry(item)
        json_file = self.files[split]
        names = {c["id"]: c["name"] for c in self.data[split]["categories"]}
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str) or "id" not in image:
            raise ConversionInputError(
                json_file, "malformed annotation", f"images[{item.rsplit('#', 1)[1]}] has no id and file_name"
            )
        file_name = image["file_name"]
        image_file = self._image_file(json_file, file_name)
        width, height = image_size(image_file)
        if (image.get("width"), image.get("height")) != (width, height):
            declared = f"{image.get('width')}x{image.get('height')}"
            detail = f"image {file_name}: width x height is {declared}, the file is {width}x{height}"
            raise ConversionInputError(json_file, "image size mismatch", detail)
        objects = []
        for annotation in self.by_image[split].get(image["id"], []):
            where = f"annotation {annotation.get('id')} of {file_name}"
            if annotation.get("category_id") not in names:
                raise ConversionInputError(
                    json_file,
                    "malformed annotation",
                    f"{where}: category_id {annotation.get('category_id')!r} is not a category",
                )
            box = annotation.get("bbox")
            if not isinstance(box, list) or len(box) != 4:
                raise ConversionInputError(
                    json_file, "malformed annotation", f"{where}: bbox {box!r} is not [x, y, w, h]"
                )
            box = tuple(finite_number(v, json_file, f"{where} bbox[{k}]") for k, v in enumerate(box))
            fields = dict(box=box, ignore=bool(annotation.get("iscrowd")), where=where)
            segmentation = annotation.get("segmentation")
            if isinstance(segmentation, dict):  # RLE: a mask
                try:
                    mask = decode_segmentation(segmentation, height, width)
                except (TypeError, ValueError, KeyError) as error:
                    raise ConversionInputError(
                        json_file, "malformed annotation", f"{where}: segmentation is not an RLE ({error})"
                    ) from None
                fields["mask"] = mask
            elif isinstance(segmentation, list) and segmentation:
                polygons = []
                for p in segmentation:
                    if not isinstance(p, list) or len(p) < 6 or len(p) % 2:
                        raise ConversionInputError(
                            json_file, "malformed annotation", f"{where}: a polygon is not >= 3 x, y points"
                        )
                    polygons.append(tuple(finite_number(v, json_file, f"{where} segmentation") for v in p))
                fields["polygons"] = tuple(polygons)
            objects.append(AnnotatedObject(names[annotation["category_id"]], **fields))
        return AnnotatedImage(image_file, width, height, tuple(objects), json_file)

    def count_objects(self, item: str) -> int:
        split, image = self._entry(item)
        return len(self.by_image[split].get(image.get("id") if isinstance(image, dict) else None, []))

    def class_names(self) -> Tuple[str, ...]:
        """Category names in id order (every file's, first file first), less Roboflow's parent category."""
        used, categories = set(), {}
        for data in self.data.values():
            used |= {a.get("category_id") for a in data.get("annotations", []) if isinstance(a, dict)}
            for c in sorted(data["categories"], key=lambda c: c["id"]):
                categories.setdefault(c["name"], (c["id"] in used, c.get("supercategory")))
        parents = {sup for _, sup in categories.values()}
        return tuple(n for n, (has_objects, _) in categories.items() if has_objects or n not in parents)


def coco_layout(root: Path, output_dir: Path) -> Layout:
    """Roboflow's split folders, else the root's one COCO JSON (split by a drawn share)."""
    roboflow = {split: root / folder / ROBOFLOW_JSON for folder, split in ROBOFLOW_SPLITS.items()}
    roboflow = {split: path for split, path in roboflow.items() if path.is_file()}
    if "train" in roboflow and "val" in roboflow:
        reader = CocoReader(roboflow)
        origin = "train/, valid/" + (", test/" if "test" in roboflow else "")
        declared = {split: reader.items(split) for split in ("train", "val")}
        fixed = {"test": reader.items("test")} if "test" in roboflow else None  # written as it is
        return Layout(reader, declared, origin, lambda _: reader.class_names(), fixed_splits=fixed)
    found = [root / "annotations.json"] if (root / "annotations.json").is_file() else sorted(root.glob("*.json"))
    if len(found) != 1:
        detail = f"holds {len(found)} .json files (one COCO JSON, or Roboflow's train/, valid/ with {ROBOFLOW_JSON})"
        raise ConversionInputError(root, "missing COCO JSON", detail)
    reader = CocoReader({"all": found[0]})
    return Layout(reader, None, found[0].name, lambda _: reader.class_names(), pool=reader.items("all"))


convert_coco = layout_converter("coco", "COCO", "a COCO JSON and its images", coco_layout)
"""``convert_coco(root, output_dir, *, classes="auto", val_fraction=None, seed=0, strict, rebuild, log,
progress) -> summary`` (``coco_writer.layout_converter``)."""
