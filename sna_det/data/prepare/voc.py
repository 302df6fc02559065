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

The writing, counting and checks every format shares are ``coco_writer``'s (``VocReader`` is
VOC's reader). Bad input is named (file, field) and, by default, the image is left out whole and
counted, so no image enters a split with some of its objects missing; ``strict=True`` raises at the
first. An instance whose ``SegmentationClass`` pixels say another class than its XML is reported
(kept with the XML class).
The output folder is checked (writable, same settings as an earlier run unless ``rebuild``) before
anything is converted; the settings include the inputs (the resolved root, a hash of the XMLs and
split lists, the image and mask files: ``output_folder.input_identity``), so another root or
changed inputs are refused, not mixed in. The annotation JSONs are written last, and a run that
keeps no image, or leaves any of its splits empty, fails naming the split.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ..classes import VOC_2012_COCO_SPLITS, VOC_CLASSES
from ..images import PICTURE_SUFFIXES as IMAGE_SUFFIXES
from .annotated import AnnotatedImage, AnnotatedObject
from .coco_writer import DIFFICULT_POLICIES, SplitJob, convert_splits
from .input_files import ConversionInputError, finite_number, image_size, read_class_file
from .splits import SPLITS, check_val_fraction, choose_splits

__all__ = [
    "DIFFICULT_POLICIES",
    "VocAnnotation",
    "VocInputError",
    "VocObject",
    "VocReader",
    "convert_voc2012",
    "convert_voc_coco",
    "read_classes",
    "parse_voc_xml",
    "read_index_png",
    "voc_box_to_coco",
]

SEGMENTATION_SPLITS = SPLITS
DETECTION_SPLITS = ("train", "val", "trainval")
VOID = 255

VocInputError = ConversionInputError
"""Bad VOC input (the converters' ``ConversionInputError``): ``path``, ``reason``, ``detail``."""


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
    return finite_number(text, xml_file, f"field {where}{path}", ("malformed XML", "malformed XML"))


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
    suffixes = IMAGE_SUFFIXES + tuple(map(str.upper, IMAGE_SUFFIXES))
    names = [f"{image_id}.jpg", Path(annotation.filename).name, *(f"{image_id}{s}" for s in suffixes)]
    for name in names:
        if name and (folder / name).is_file():
            return folder / name
    return folder / f"{image_id}.jpg"


def _instance_masks(
    voc_root: Path, image_id: str, annotation: VocAnnotation, class_names: Sequence[str]
) -> Tuple[List[np.ndarray], List[Tuple[str, str, str]]]:
    """Mask of each XML object (object i <-> index i) and the class disagreements found with
    ``SegmentationClass`` (palette index = class index + 1; checked when that folder exists), each
    ``(png, "class disagreement", detail)``."""
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
            detail = f"object {i} is {obj.name!r} in the XML, {said!r} in SegmentationClass"
            disagreements.append((str(class_png), "class disagreement", detail))
    return masks, disagreements


class VocReader:
    """A VOC-format folder's images by id (``annotated.Reader``): boxes from the XML, masks
    from ``SegmentationObject`` when ``with_masks``."""

    def __init__(self, voc_root: str | os.PathLike, classes: Sequence[str], with_masks: bool):
        self.voc_root, self.classes, self.with_masks = Path(voc_root), tuple(classes), with_masks

    def _xml_file(self, image_id: str) -> Path:
        if image_id in (".", "..") or any(c in image_id for c in "/\\\x00"):
            detail = f"image id {image_id!r} of the split list is not a file name"
            raise VocInputError(self.voc_root / "ImageSets", "bad image id", detail)
        return self.voc_root / "Annotations" / f"{image_id}.xml"

    def read(self, image_id: str) -> AnnotatedImage:
        xml_file = self._xml_file(image_id)
        annotation = parse_voc_xml(xml_file, self.classes)
        image_file = _image_file(self.voc_root, image_id, annotation)
        width, height = image_size(image_file)
        if (width, height) != (annotation.width, annotation.height):
            xml_size = f"{annotation.width}x{annotation.height}"
            detail = f"size is {xml_size}, JPEGImages/{image_file.name} is {width}x{height}"
            raise VocInputError(xml_file, "image size mismatch", detail)
        masks, disagreements = (
            _instance_masks(self.voc_root, image_id, annotation, self.classes) if self.with_masks else (None, [])
        )
        objects = tuple(
            AnnotatedObject(
                name=obj.name,
                box=tuple(voc_box_to_coco(obj.box)),
                mask=None if masks is None else masks[i],
                difficult=obj.difficult,
                where=f"object {i + 1}",
            )
            for i, obj in enumerate(annotation.objects)
        )
        return AnnotatedImage(image_file, width, height, objects, xml_file, tuple(disagreements))

    def count_objects(self, image_id: str) -> int:
        try:
            return _count_objects(self._xml_file(image_id))
        except VocInputError:
            return 0


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
    if not Path(classes).is_file():
        raise VocInputError(classes, "missing class list", "is not a file (--classes takes auto, voc or a file)")
    return read_class_file(classes)


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
        SplitJob(
            stem,
            read_split_ids(voc_root / "ImageSets" / sets / f"{split}.txt"),
            VocReader(voc_root, VOC_CLASSES, with_masks),
            f"Pascal VOC 2012 ImageSets/{sets}/{split}.txt, converted by sna-det",
        )
        for stem, sets, split, with_masks in lists
    ]
    settings = {"preset": "voc2012", "detection_splits": detection_splits, "difficult": difficult}
    return convert_splits(
        output_dir, jobs, VOC_CLASSES, settings, fmt="voc", root=voc_root, image_link="JPEGImages",
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
    if val_fraction is not None:  # before anything is read
        check_val_fraction(val_fraction)
    masks_present = (voc_root / "SegmentationObject").is_dir()
    lists = [
        sets
        for sets in SPLIT_LISTS
        if all((voc_root / "ImageSets" / sets / f"{split}.txt").is_file() for split in SEGMENTATION_SPLITS)
    ]
    if lists and val_fraction is None:
        sets = lists[0]
        declared = {split: read_split_ids(voc_root / "ImageSets" / sets / f"{split}.txt") for split in SPLITS}
        ids, origin = choose_splits(declared, f"ImageSets/{sets}", val_fraction=None, seed=seed)
        with_masks = masks_present and sets == "Segmentation"
    else:  # a fraction pools every XML, even where lists exist
        all_ids = sorted(p.stem for p in (voc_root / "Annotations").glob("*.xml"))
        if not all_ids:
            raise VocInputError(voc_root / "Annotations", "no annotations", "holds no .xml file")
        ids, origin = choose_splits(None, "Annotations", val_fraction=val_fraction, seed=seed, pool=all_ids)
        with_masks = masks_present
    names = read_classes(voc_root, classes, ids["train"] + ids["val"])
    reader = VocReader(voc_root, names, with_masks)
    jobs = [SplitJob(split, ids[split], reader, f"{voc_root.name} {split} ({origin})") for split in SEGMENTATION_SPLITS]
    settings = {
        "classes": list(names),
        "splits": origin,
        "masks": with_masks,
        "difficult": difficult,
    }
    return convert_splits(
        output_dir, jobs, names, settings, fmt="voc", root=voc_root, image_link="JPEGImages",
        difficult=difficult, strict=strict, rebuild=rebuild, log=log, progress=progress,
    )  # fmt: skip
