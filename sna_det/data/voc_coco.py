"""Any VOC-format folder to COCO JSON, with instance masks from ``SegmentationObject`` when there.

A VOC-format folder holds ``Annotations/<id>.xml`` and ``JPEGImages/<id>.jpg`` (or the XML's
``filename``, or ``.png``/``.jpeg``), optionally ``ImageSets/{Segmentation,Main}/{train,val}.txt`` and
``SegmentationObject/`` / ``SegmentationClass/`` masks. ``convert_voc_coco`` converts any such folder
(its own classes, with or without split lists); ``convert_voc2012`` is Pascal VOC 2012's preset.

For each split:

- images: ``file_name`` relative to ``JPEGImages``, ``height``, ``width``; ids 1.. in split order;
- categories: the classes in order, ids 1..N (VOC2012: the 20 VOC classes in the standard order);
- one annotation per XML ``<object>``: ``bbox`` ``[x, y, w, h]`` from VOC's 1-based inclusive corners
  (``x = xmin - 1``, ``w = xmax - xmin + 1``, as detectron2's own VOC loader); on segmentation splits,
  the mask of object *i* is the pixels of palette index *i* of ``SegmentationObject/<id>.png`` (255 is
  void, in no instance), as polygons when they reproduce it exactly, else RLE; ``area`` = mask pixels
  (box area on detection splits);
- ``difficult`` objects: ``ignore`` (default) writes them with ``iscrowd: 1``, which COCO evaluation
  ignores and detectron2 leaves out of training, as VOC's protocol does; ``keep`` writes them as
  ordinary objects; ``drop`` leaves them out. Each keeps ``"difficult": 1``.

Bad input is named (file, field) and, by default, the image is left out whole and counted, so no image
enters a split with some of its objects missing; ``strict=True`` raises at the first. An instance whose
``SegmentationClass`` pixels say another class than its XML is reported (kept with the XML class).
The output folder is checked (writable, same settings as an earlier run unless ``rebuild``) before
anything is converted; the settings include the inputs (the resolved root, a hash of the XMLs and
split lists, the image and mask files: ``prepared_folder.input_identity``), so another root or
changed inputs are refused, not mixed in. The annotation JSONs are written last, and a run that
keeps no image, or leaves any of its splits empty, fails naming the split.
"""

from __future__ import annotations

import argparse
import os
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..utils.atomic_write import atomic_write_json
from ..utils.skip_report import SkipReport
from ..version import __version__
from .datasets.voc_2012_coco import VOC_2012_COCO_SPLITS, VOC_CLASSES
from .mask_encoding import encode_mask
from .prepared_folder import input_identity, open_prepared_folder

__all__ = [
    "DIFFICULT_POLICIES",
    "VocAnnotation",
    "VocInputError",
    "VocObject",
    "convert_voc2012",
    "convert_voc_coco",
    "convert_voc_split",
    "read_classes",
    "format_problems",
    "format_summary",
    "parse_voc_xml",
    "read_index_png",
    "conversion_argument_parser",
    "run_conversion",
    "voc_box_to_coco",
]

DIFFICULT_POLICIES = ("ignore", "keep", "drop")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")
SEGMENTATION_SPLITS = ("train", "val")
DETECTION_SPLITS = ("train", "val", "trainval")
VOID = 255


class VocInputError(ValueError):
    """Bad VOC input: ``path`` names the file, ``reason`` is a short category used for counting."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str):
        super().__init__(f"{path}: {detail}")
        self.path, self.reason, self.detail = str(path), reason, detail


@dataclass(frozen=True)
class VocObject:
    name: str
    difficult: bool
    box: Tuple[float, float, float, float]
    """VOC's 1-based inclusive ``(xmin, ymin, xmax, ymax)`` in pixels."""


@dataclass(frozen=True)
class VocAnnotation:
    width: int
    height: int
    objects: Tuple[VocObject, ...]
    filename: str = ""
    """The XML's ``filename`` (may be empty)."""


def _field(element: ET.Element, path: str, xml_file: Path, where: str = "") -> str:
    node = element.find(path)
    if node is None or node.text is None or not node.text.strip():
        raise VocInputError(xml_file, "missing XML field", f"missing field {where}{path}")
    return node.text.strip()


def _number(element: ET.Element, path: str, xml_file: Path, where: str = "") -> float:
    text = _field(element, path, xml_file, where)
    try:
        value = float(text)
    except ValueError:
        raise VocInputError(xml_file, "malformed XML", f"field {where}{path} is {text!r}, not a number") from None
    if not np.isfinite(value):
        raise VocInputError(xml_file, "malformed XML", f"field {where}{path} is {text!r}")
    return value


def parse_voc_xml(xml_file: str | os.PathLike, classes: Sequence[str] = VOC_CLASSES) -> VocAnnotation:
    """Read a VOC annotation XML: image size and objects in file order; an object whose class is not in
    ``classes`` is an error. Raises ``VocInputError``."""
    xml_file = Path(xml_file)
    if not xml_file.is_file():
        raise VocInputError(xml_file, "missing XML", "annotation file does not exist")
    try:
        root = ET.parse(xml_file).getroot()
    except ET.ParseError as error:
        raise VocInputError(xml_file, "malformed XML", f"not well-formed XML ({error})") from None
    width, height = _number(root, "size/width", xml_file), _number(root, "size/height", xml_file)
    if width < 1 or height < 1 or width != int(width) or height != int(height):
        raise VocInputError(xml_file, "malformed XML", f"size is {width}x{height}")
    objects = []
    for i, obj in enumerate(root.findall("object"), start=1):
        where = f"object {i} "
        name = _field(obj, "name", xml_file, where)
        if name not in classes:
            known = "a VOC class" if tuple(classes) == VOC_CLASSES else f"one of the {len(classes)} classes"
            raise VocInputError(xml_file, "unknown class", f"{where}has class {name!r}, not {known}")
        difficult = obj.find("difficult")
        is_difficult = difficult is not None and (difficult.text or "0").strip() not in ("0", "")
        box = tuple(_number(obj, f"bndbox/{k}", xml_file, where) for k in ("xmin", "ymin", "xmax", "ymax"))
        xmin, ymin, xmax, ymax = box
        if xmin > xmax or ymin > ymax:
            raise VocInputError(xml_file, "inverted box", f"{where}({name}) has an inverted box {box}")
        if xmin < 1 or ymin < 1 or xmax > width or ymax > height:
            raise VocInputError(
                xml_file,
                "box outside the image",
                f"{where}({name}) box {box} is outside the {int(width)}x{int(height)} image (VOC boxes are "
                "1-based and inclusive)",
            )
        objects.append(VocObject(name=name, difficult=is_difficult, box=box))
    filename = (root.findtext("filename") or "").strip()
    return VocAnnotation(width=int(width), height=int(height), objects=tuple(objects), filename=filename)


def _count_objects(xml_file: Path) -> int:
    """``<object>`` elements of an XML file that may be invalid in other ways (0 if it does not parse)."""
    try:
        return len(ET.parse(xml_file).getroot().findall("object"))
    except (OSError, ValueError, ET.ParseError):
        return 0


def voc_box_to_coco(box: Sequence[float]) -> List[float]:
    """VOC 1-based inclusive ``(xmin, ymin, xmax, ymax)`` -> COCO ``[x, y, w, h]`` in pixels."""
    xmin, ymin, xmax, ymax = box
    return [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1]


def read_index_png(png_file: str | os.PathLike) -> np.ndarray:
    """The palette indices (H×W uint8) of a VOC segmentation PNG. Raises ``VocInputError``."""
    png_file = Path(png_file)
    if not png_file.is_file():
        raise VocInputError(png_file, "missing mask", "mask file does not exist")
    try:
        with Image.open(png_file) as image:
            if image.mode not in ("P", "L"):
                raise VocInputError(png_file, "bad mask", f"mode {image.mode}, not a palette (P) or L image")
            return np.asarray(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:  # PIL's for corrupt files
        raise VocInputError(png_file, "bad mask", f"unreadable PNG ({error})") from None


def _image_file(voc_root: Path, image_id: str, annotation: VocAnnotation) -> Path:
    """``JPEGImages/<id>.jpg``, else the XML's ``filename``, else ``<id>`` with another image suffix."""
    folder = voc_root / "JPEGImages"
    names = [f"{image_id}.jpg", Path(annotation.filename).name, *(f"{image_id}{s}" for s in IMAGE_SUFFIXES)]
    for name in names:
        if name and (folder / name).is_file():
            return folder / name
    return folder / f"{image_id}.jpg"


def _image_size(jpeg_file: Path) -> Tuple[int, int]:
    """(width, height) of an image that decodes whole (a truncated JPEG has a header but no pixels)."""
    if not jpeg_file.is_file():
        raise VocInputError(jpeg_file, "missing image", "image file does not exist")
    try:
        with Image.open(jpeg_file) as image:
            size = image.size
            image.draft(image.mode, (1, 1))  # JPEG: decode at 1/8 scale; every byte is still read
            image.load()
            return size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:  # PIL's for corrupt files
        raise VocInputError(jpeg_file, "bad image", f"unreadable image ({error})") from None


def _instance_masks(
    voc_root: Path, image_id: str, annotation: VocAnnotation, class_names: Sequence[str]
) -> Tuple[List[np.ndarray], List[str]]:
    """Mask of each XML object (object i <-> index i) and the class disagreements found with
    ``SegmentationClass`` (palette index = class index + 1; checked when that folder exists)."""
    object_png = voc_root / "SegmentationObject" / f"{image_id}.png"
    class_png = voc_root / "SegmentationClass" / f"{image_id}.png"
    objects = read_index_png(object_png)
    check_classes = class_png.parent.is_dir()
    classes = read_index_png(class_png) if check_classes else None
    size = (annotation.height, annotation.width)
    for png, indices in ((object_png, objects), (class_png, classes)):
        if indices is None:
            continue
        if indices.shape != size:
            detail = f"is {indices.shape[1]}x{indices.shape[0]}, the image {annotation.width}x{annotation.height}"
            raise VocInputError(png, "mask size mismatch", detail)
    present = set(np.unique(objects).tolist()) - {0, VOID}
    extra = sorted(i for i in present if i > len(annotation.objects))
    if extra:
        detail = f"indices {extra} have no XML object (the XML has {len(annotation.objects)} objects)"
        raise VocInputError(object_png, "mask index without XML object", detail)
    missing = [i for i in range(1, len(annotation.objects) + 1) if i not in present]
    if missing:
        raise VocInputError(object_png, "XML object without mask", f"objects {missing} of the XML have no pixels")
    masks, disagreements = [], []
    for i, obj in enumerate(annotation.objects, start=1):
        mask = objects == i
        masks.append(mask)
        if classes is None:
            continue
        labels = classes[mask]
        labels = labels[(labels != 0) & (labels != VOID)]
        expected = class_names.index(obj.name) + 1
        found = int(np.bincount(labels).argmax()) if labels.size else 0
        if found != expected:
            said = class_names[found - 1] if 0 < found <= len(class_names) else f"index {found}"
            disagreements.append(f"{class_png}: object {i} is {obj.name!r} in the XML, {said!r} in SegmentationClass")
    return masks, disagreements


@dataclass
class SplitSummary:
    """What a split's conversion read, wrote and left out (JSON-able via ``as_dict``)."""

    images_listed: int = 0
    images_written: int = 0
    objects_read: int = 0
    objects_written: int = 0
    difficult: Counter = field(default_factory=Counter)
    masks: Counter = field(default_factory=Counter)
    images_skipped: SkipReport = field(default_factory=SkipReport)
    objects_in_skipped_images: int = 0
    class_disagreements: int = 0
    problems: List[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "images_listed": self.images_listed,
            "images_written": self.images_written,
            "images_skipped": dict(sorted(self.images_skipped.counts.items())),
            "skipped_items": self.images_skipped.skipped,
            "objects_read": self.objects_read,
            "objects_written": self.objects_written,
            "objects_in_skipped_images": self.objects_in_skipped_images,
            "difficult": dict(sorted(self.difficult.items())),
            "masks": dict(sorted(self.masks.items())),
            "class_disagreements": self.class_disagreements,
            "problems": self.problems,
        }


def read_split_ids(list_file: Path) -> List[str]:
    """Image ids of an ``ImageSets`` list, in file order, without duplicates."""
    if not list_file.is_file():
        raise VocInputError(list_file, "missing split list", "split list does not exist (is --voc-root VOC2012?)")
    try:
        text = list_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise VocInputError(list_file, "unreadable split list", f"not UTF-8 text ({error})") from None
    ids = [line.split()[0] for line in text.splitlines() if line.strip()]
    return list(dict.fromkeys(ids))


def convert_voc_split(
    voc_root: str | os.PathLike,
    image_ids: Sequence[str],
    *,
    with_masks: bool,
    classes: Sequence[str] = VOC_CLASSES,
    difficult: str = "ignore",
    strict: bool = False,
    description: str = "",
    progress: bool = False,
) -> Tuple[dict, SplitSummary]:
    """COCO dict of these images and the summary of what was kept and skipped.

    ``with_masks``: masks from ``SegmentationObject`` (segmentation splits) or boxes only.
    ``classes``: category names, ids 1..N; an object of another class skips its image.
    ``strict``: raise ``VocInputError`` at the first problem (a class disagreement included).
    ``progress``: a progress bar (tqdm) on stderr.
    """
    if difficult not in DIFFICULT_POLICIES:
        raise ValueError(f"difficult must be one of {DIFFICULT_POLICIES}, not {difficult!r}")
    voc_root = Path(voc_root)
    images, annotations, summary = [], [], SplitSummary(images_listed=len(image_ids))
    summary.images_skipped.count_read(len(image_ids))
    for image_id in tqdm(image_ids, desc=description or "converting", unit="image", disable=not progress):
        xml_file = voc_root / "Annotations" / f"{image_id}.xml"
        objects_read = 0
        try:
            if image_id in (".", "..") or any(c in image_id for c in "/\\\x00"):
                detail = f"image id {image_id!r} of the split list is not a file name"
                raise VocInputError(voc_root / "ImageSets", "bad image id", detail)
            annotation = parse_voc_xml(xml_file, classes)
            objects_read = len(annotation.objects)
            image_file = _image_file(voc_root, image_id, annotation)
            width, height = _image_size(image_file)
            if (width, height) != (annotation.width, annotation.height):
                xml_size = f"{annotation.width}x{annotation.height}"
                detail = f"size is {xml_size}, JPEGImages/{image_file.name} is {width}x{height}"
                raise VocInputError(xml_file, "image size mismatch", detail)
            masks, disagreements = (
                _instance_masks(voc_root, image_id, annotation, classes) if with_masks else (None, [])
            )
            if disagreements and strict:
                class_png, detail = disagreements[0].split(": ", 1)
                raise VocInputError(class_png, "class disagreement", detail)
        except VocInputError as error:
            if strict:
                raise
            summary.images_skipped.skip(error.reason, error.path, error.detail)
            in_skipped_image = objects_read or _count_objects(xml_file)
            summary.objects_read += in_skipped_image
            summary.objects_in_skipped_images += in_skipped_image
            summary.problems.append(f"skipped: {error}")
            continue
        summary.objects_read += objects_read
        summary.class_disagreements += len(disagreements)
        summary.problems.extend(f"reported: {d}" for d in disagreements)
        image_entry_id = len(images) + 1
        images.append({"id": image_entry_id, "file_name": image_file.name, "height": height, "width": width})
        for i, obj in enumerate(annotation.objects):
            if obj.difficult:
                summary.difficult[{"ignore": "ignored", "keep": "kept", "drop": "dropped"}[difficult]] += 1
                if difficult == "drop":
                    continue
            bbox = voc_box_to_coco(obj.box)
            entry = {
                "id": len(annotations) + 1,
                "image_id": image_entry_id,
                "category_id": list(classes).index(obj.name) + 1,
                "bbox": bbox,
                "area": bbox[2] * bbox[3],
                "iscrowd": int(obj.difficult and difficult == "ignore"),
            }
            if obj.difficult:
                entry["difficult"] = 1
            if masks is not None:
                entry["segmentation"], kind = encode_mask(masks[i])
                entry["area"] = int(masks[i].sum())
                summary.masks[kind] += 1
            annotations.append(entry)
            summary.objects_written += 1
        summary.images_written += 1
        summary.images_skipped.count_kept()
    coco = {
        "info": {"description": description, "version": __version__},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name, "supercategory": "voc"} for i, name in enumerate(classes, 1)],
    }
    return coco, summary


def _link_images(jpeg_dir: Path, link: Path) -> None:
    """``link`` -> ``jpeg_dir`` (a symlink, replaced atomically); a real folder at ``link`` is kept."""
    if link.exists() and not link.is_symlink():
        return
    tmp = link.with_name(f".{link.name}.tmp")
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(jpeg_dir.resolve(), target_is_directory=True)
    os.replace(tmp, link)


def read_classes(voc_root: Path, classes: str, image_ids: Sequence[str]) -> Tuple[str, ...]:
    """``"voc"``: the 20 VOC classes; ``"auto"``: the object names found in these images' XMLs, sorted;
    else a text file with one class name per line (``VocInputError`` if it is missing or empty)."""
    if classes == "voc":
        return VOC_CLASSES
    if classes == "auto":
        found = set()
        for image_id in image_ids:
            try:
                root = ET.parse(voc_root / "Annotations" / f"{image_id}.xml").getroot()
            except (OSError, ET.ParseError):  # named when the image is converted
                continue
            found.update((o.findtext("name") or "").strip() for o in root.findall("object"))
        found.discard("")
        if not found:
            raise VocInputError(voc_root / "Annotations", "no classes", "no object with a class name in any XML")
        return tuple(sorted(found))
    path = Path(classes)
    if not path.is_file():
        raise VocInputError(path, "missing class list", "is not a file (--classes takes auto, voc or a file)")
    names = tuple(dict.fromkeys(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()))
    if not names:
        raise VocInputError(path, "empty class list", "holds no class name (one per line)")
    return names


INPUT_FOLDERS = ("JPEGImages", "SegmentationObject", "SegmentationClass")
"""Folders whose files' names and byte sizes are part of a conversion's recorded inputs."""


def voc_input_identity(voc_root: Path, jobs: Sequence[Tuple[str, Sequence[str], bool, str]]) -> dict:
    """``prepared_folder.input_identity`` of a VOC folder for these jobs: the XMLs of their images and
    the ``ImageSets`` lists hashed (with each split's id list), the files of ``INPUT_FOLDERS`` listed."""
    ids = sorted({i for _, job_ids, _, _ in jobs for i in job_ids})
    xmls = [voc_root / "Annotations" / f"{i}.xml" for i in ids if "/" not in i and "\\" not in i and "\x00" not in i]
    lists = sorted((voc_root / "ImageSets").glob("*/*.txt")) if (voc_root / "ImageSets").is_dir() else []
    files = [p for p in (*xmls, *lists) if p.is_file()]
    names = [f"split {stem}: {' '.join(job_ids)}" for stem, job_ids, _, _ in jobs]
    for folder in INPUT_FOLDERS:
        if (voc_root / folder).is_dir():
            names += [f"{folder}/{p.name} {p.stat().st_size}" for p in (voc_root / folder).iterdir() if p.is_file()]
    try:
        return input_identity(voc_root, files, names)
    except OSError as error:
        raise VocInputError(error.filename or voc_root, "unreadable input", f"cannot read ({error.strerror})") from None


def _check_no_split_empty(output_dir: Path, summary: dict, origins: Dict[str, str]) -> None:
    """``VocInputError`` naming the first split that keeps no image (training or testing on it would fail)."""
    for stem, s in summary["splits"].items():
        if s["images_written"]:
            continue
        if s["images_listed"]:
            reasons = ", ".join(f"{k} {v}" for k, v in s["images_skipped"].items())
            why = f"all its {s['images_listed']} listed images were skipped: {reasons}"
        else:
            why = f"no image listed for it: {origins[stem]}"
        detail = (
            f"split {stem} is empty ({why}); training or testing on it would fail, so no annotations were "
            f"written; every skipped file with its reason is in {output_dir}/summary.json"
        )
        raise VocInputError(output_dir, "empty split", detail)


def _convert_jobs(
    voc_root: Path,
    output_dir: Path,
    jobs: Sequence[Tuple[str, Sequence[str], bool, str]],
    classes: Sequence[str],
    settings: dict,
    *,
    difficult: str,
    strict: bool,
    rebuild: bool,
    log: Optional[Callable[[str], None]],
    progress: bool,
) -> dict:
    """Convert each (stem, image ids, with masks, description) job; write ``summary.json``, the
    ``JPEGImages`` link and, last, ``annotations/<stem>.json``. Returns the summary."""
    recorded = {**settings, **voc_input_identity(voc_root, jobs)}
    open_prepared_folder(output_dir, recorded, ("annotations/*.json", "summary.json"), rebuild=rebuild)
    summary = {"voc_root": str(voc_root.resolve()), "options": settings, "classes": list(classes), "splits": {}}
    written: Dict[str, dict] = {}
    for stem, ids, with_masks, description in jobs:
        written[stem], split_summary = convert_voc_split(
            voc_root,
            ids,
            with_masks=with_masks,
            classes=classes,
            difficult=difficult,
            strict=strict,
            description=description,
            progress=progress,
        )
        summary["splits"][stem] = split_summary.as_dict()
        if log is not None:
            log(format_summary({"splits": {stem: summary["splits"][stem]}}))
    atomic_write_json(output_dir / "summary.json", summary)
    if not any(s["images_written"] for s in summary["splits"].values()):
        listed = sum(s["images_listed"] for s in summary["splits"].values())
        detail = f"no image kept ({listed} listed); every skipped file with its reason is in {output_dir}/summary.json"
        raise VocInputError(output_dir, "no image kept", detail)
    _check_no_split_empty(output_dir, summary, {stem: description for stem, _, _, description in jobs})
    _link_images(voc_root / "JPEGImages", output_dir / "JPEGImages")
    for stem, coco in written.items():  # last: a folder with annotations is complete
        atomic_write_json(output_dir / "annotations" / f"{stem}.json", coco, indent=None)
    return summary


def _check_voc_root(voc_root: Path, hint: str) -> None:
    if not (voc_root / "JPEGImages").is_dir():
        raise VocInputError(voc_root / "JPEGImages", "missing image folder", f"folder does not exist ({hint})")


def convert_voc2012(
    voc_root: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    detection_splits: bool = False,
    difficult: str = "ignore",
    strict: bool = False,
    rebuild: bool = False,
    log: Optional[Callable[[str], None]] = None,
    progress: bool = False,
) -> dict:
    """Convert ``VOCdevkit/VOC2012`` into ``output_dir`` (layout of ``voc_2012_coco.py``); returns the summary.

    Pascal VOC 2012's preset of ``convert_voc_coco``: the 20 VOC classes, the ``ImageSets/Segmentation``
    splits with masks as ``annotations/{train,val}.json``, with ``detection_splits`` also the
    ``ImageSets/Main`` splits with boxes as ``annotations/detection_{train,val,trainval}.json``; a
    ``JPEGImages`` link to the VOC images and ``summary.json``; every file atomically. ``log``
    receives one line per split.
    """
    voc_root, output_dir = Path(voc_root), Path(output_dir)
    _check_voc_root(voc_root, "is --voc-root the VOC2012 folder of VOCdevkit?")
    lists = [(split, "Segmentation", split, True) for split in SEGMENTATION_SPLITS]
    if detection_splits:
        lists += [(f"detection_{split}", "Main", split, False) for split in DETECTION_SPLITS]
    assert all(stem in VOC_2012_COCO_SPLITS.values() for stem, *_ in lists)
    jobs = [
        (
            stem,
            read_split_ids(voc_root / "ImageSets" / sets / f"{split}.txt"),
            with_masks,
            f"Pascal VOC 2012 ImageSets/{sets}/{split}.txt, converted by sna-det",
        )
        for stem, sets, split, with_masks in lists
    ]
    settings = {"preset": "voc2012", "detection_splits": detection_splits, "difficult": difficult}
    return _convert_jobs(
        voc_root, output_dir, jobs, VOC_CLASSES, settings,
        difficult=difficult, strict=strict, rebuild=rebuild, log=log, progress=progress,
    )  # fmt: skip


SPLIT_LISTS = ("Segmentation", "Main")
"""``ImageSets`` folders used for the train/val lists when present, in this order."""


def convert_voc_coco(
    voc_root: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    classes: str = "auto",
    val_fraction: Optional[float] = None,
    seed: int = 0,
    difficult: str = "ignore",
    strict: bool = False,
    rebuild: bool = False,
    log: Optional[Callable[[str], None]] = None,
    progress: bool = False,
) -> dict:
    """Convert any VOC-format folder into ``output_dir/annotations/{train,val}.json`` (+ ``JPEGImages``
    link, ``summary.json``); returns the summary.

    Splits: ``ImageSets/Segmentation/{train,val}.txt`` (with masks when ``SegmentationObject/`` exists),
    else ``ImageSets/Main/{train,val}.txt`` (boxes), else every ``Annotations/*.xml`` (sorted), of which
    ``val_fraction`` (default 0.2) goes to val, shuffled with ``seed``. A ``val_fraction`` given
    splits every XML so even when lists exist. ``classes``: ``"auto"`` (the names found, sorted),
    ``"voc"`` (the 20 VOC classes) or a file with one name per line.
    """
    voc_root, output_dir = Path(voc_root), Path(output_dir)
    _check_voc_root(voc_root, "is --voc-root a VOC-format folder with Annotations/ and JPEGImages/?")
    if val_fraction is not None and not 0.0 < val_fraction < 1.0:
        raise ValueError(
            f"--val-fraction {val_fraction} is not in (0, 1): 0 leaves val (which the configs test on) empty, "
            "1 leaves train empty"
        )
    masks_present = (voc_root / "SegmentationObject").is_dir()
    lists = [
        sets
        for sets in SPLIT_LISTS
        if all((voc_root / "ImageSets" / sets / f"{split}.txt").is_file() for split in SEGMENTATION_SPLITS)
    ]
    if lists and val_fraction is None:
        sets = lists[0]
        ids = {split: read_split_ids(voc_root / "ImageSets" / sets / f"{split}.txt") for split in SEGMENTATION_SPLITS}
        with_masks, origin = masks_present and sets == "Segmentation", f"ImageSets/{sets}"
    else:
        all_ids = sorted(p.stem for p in (voc_root / "Annotations").glob("*.xml"))
        if not all_ids:
            raise VocInputError(voc_root / "Annotations", "no annotations", "holds no .xml file")
        fraction = 0.2 if val_fraction is None else val_fraction
        order = np.random.default_rng(seed).permutation(len(all_ids))
        n_val = round(fraction * len(all_ids))
        val = {all_ids[i] for i in order[:n_val]}
        ids = {"train": [i for i in all_ids if i not in val], "val": [i for i in all_ids if i in val]}
        with_masks, origin = masks_present, f"Annotations, val fraction {fraction}, seed {seed}"
    names = read_classes(voc_root, classes, ids["train"] + ids["val"])
    jobs = [(split, ids[split], with_masks, f"{voc_root.name} {split} ({origin})") for split in SEGMENTATION_SPLITS]
    settings = {
        "classes": list(names),
        "splits": origin,
        "masks": with_masks,
        "difficult": difficult,
    }
    return _convert_jobs(
        voc_root, output_dir, jobs, names, settings,
        difficult=difficult, strict=strict, rebuild=rebuild, log=log, progress=progress,
    )  # fmt: skip


def format_summary(summary: dict) -> str:
    """Human-readable counts of a ``convert_voc2012`` summary: a few lines per split."""
    lines = []
    for stem, s in summary["splits"].items():
        skipped = sum(s["images_skipped"].values())
        reasons = ", ".join(f"{k}: {v}" for k, v in s["images_skipped"].items())
        lines.append(
            f"{stem}: {s['images_written']}/{s['images_listed']} images written, {skipped} skipped"
            + (f" ({reasons})" if skipped else "")
        )
        lines.append(
            f"  objects: {s['objects_read']} read, {s['objects_written']} written, "
            f"{s['objects_in_skipped_images']} in skipped images"
            + "".join(f", difficult {k}: {v}" for k, v in s["difficult"].items())
        )
        if s["masks"]:
            lines.append("  masks: " + ", ".join(f"{v} {k}" for k, v in s["masks"].items()))
        if s["class_disagreements"]:
            lines.append(f"  class disagreements with SegmentationClass: {s['class_disagreements']} (kept as in XML)")
    return "\n".join(lines)


def conversion_argument_parser(description: str, voc_root_help: str) -> argparse.ArgumentParser:
    """The options every VOC script shares (``--voc-root``, ``--output-dir``, ``--difficult``,
    ``--strict``, ``--rebuild``); a script adds its own, then calls ``run_conversion``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voc-root", required=True, help=voc_root_help)
    parser.add_argument("--output-dir", required=True, help="where annotations/, JPEGImages and summary.json go")
    parser.add_argument(
        "--difficult",
        choices=DIFFICULT_POLICIES,
        default="ignore",
        help="difficult objects: ignored by evaluation and training (iscrowd=1, default), kept, or dropped",
    )
    parser.add_argument("--strict", action="store_true", help="stop at the first bad input instead of skipping it")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="start over in --output-dir (needed when it was converted with other settings)",
    )
    return parser


def run_conversion(convert: Callable[..., dict], args: argparse.Namespace, **options) -> int:
    """For the scripts: ``convert`` on ``args`` (from ``conversion_argument_parser``) and the script's
    own ``options``, with the per-split lines, a few problems and the classes printed; bad input or an
    unusable folder is one ``error:`` line, 1."""
    output_dir = args.output_dir
    common = dict(difficult=args.difficult, strict=args.strict, rebuild=args.rebuild)
    try:
        summary = convert(
            args.voc_root, output_dir, log=lambda line: print(line, flush=True), progress=True, **common, **options
        )
    except (ValueError, OSError) as error:  # VocInputError, PreparedFolderError: one line naming the file
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: {output_dir} is not complete; run the same command again to continue", file=sys.stderr)
        return 130
    problems = format_problems(summary)
    if problems:
        print(problems)
    print(f"classes ({len(summary['classes'])}): {', '.join(summary['classes'])}")
    print(f"summary: {output_dir}/summary.json")
    return 0


def format_problems(summary: dict, max_problems: int = 5) -> str:
    """The first ``max_problems`` problems of each split (all of them are in summary.json)."""
    lines = []
    for stem, s in summary["splits"].items():
        lines += [f"{stem}: {p}" for p in s["problems"][:max_problems]]
        if len(s["problems"]) > max_problems:
            lines.append(f"{stem}: ... {len(s['problems']) - max_problems} more in summary.json")
    return "\n".join(lines)
