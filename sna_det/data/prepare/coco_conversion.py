"""Annotated images of any labelling format to COCO JSON: the one writer every format reader goes through.

A reader (``voc``, ``yolo``, ``labelme``, ``via``) turns one item of a split (an image id, an
image path, an annotation file, an entry) into an ``AnnotatedImage``: the image file, its size as
decoded (``image_size``), and its objects, each a class name with a box, polygons or a mask, in pixel
coordinates of COCO's convention ((0, 0) is the top-left corner of the top-left pixel). This module
checks and writes them, the same way for every format:

- an object of a class not in the list, a box that is not finite, empty or outside the image (by more
  than ``EDGE_TOLERANCE`` pixels; within it, clipped), a polygon outside the image or covering no pixel,
  a mask of another size: the image is left out whole, counted by reason (``SkipReport``) and named
  (file, object), so no image enters a split with some of its objects missing; ``strict`` raises the
  ``ConversionInputError`` instead;
- one COCO annotation per object: a polygon object is rasterized by pycocotools, its ``bbox`` is the
  mask's tight box, ``area`` its pixels, ``segmentation`` the mask as polygons where they reproduce it
  exactly, else RLE (``masks.encode_mask``); a box object keeps its box (``area`` = w × h).
  In a split where some objects have masks, the box-only objects get their box as a polygon, so that
  Mask R-CNN can train on it (counted as ``masks: box``);
- ``convert_splits`` checks the output folder (writable; same settings as an earlier run, or refused
  unless ``rebuild``: ``output_folder``) before reading anything, writes ``summary.json``, links the
  images' common folder, and writes ``annotations/<split>.json`` last; a run that keeps no image fails.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image
from tqdm import tqdm

from ...utils.atomic_write import atomic_write_json
from ...utils.skip_report import SkipReport
from ...version import __version__
from ..images import PICTURE_SUFFIXES as IMAGE_SUFFIXES  # the images the readers list and link (any case)
from .masks import decode_segmentation, encode_mask
from .output_folder import input_identity, open_prepared_folder

__all__ = [
    "EDGE_TOLERANCE",
    "IMAGE_SUFFIXES",
    "AnnotatedImage",
    "AnnotatedObject",
    "ConversionInputError",
    "Reader",
    "SplitJob",
    "SplitSummary",
    "convert_split",
    "convert_splits",
    "finite_number",
    "format_problems",
    "format_summary",
    "image_size",
    "read_class_file",
    "read_text",
    "split_by_fraction",
]

EDGE_TOLERANCE = 0.5
"""Pixels a box or polygon point may lie outside the image (clipped); farther is bad input."""

DIFFICULT_COUNTS = {"ignore": "ignored", "keep": "kept", "drop": "dropped"}
"""``difficult`` policy -> how the split's summary counts its difficult objects."""



class ConversionInputError(ValueError):
    """Bad input: ``path`` names the file, ``reason`` is a short category used for counting."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str):
        super().__init__(f"{path}: {detail}")
        self.path, self.reason, self.detail = str(path), reason, detail


@dataclass(frozen=True)
class AnnotatedObject:
    """One object as a reader found it; coordinates in pixels."""

    name: str
    box: Optional[Tuple[float, float, float, float]] = None
    """COCO ``(x, y, w, h)``; None: the tight box of the mask or polygons."""
    polygons: Tuple[Tuple[float, ...], ...] = ()
    """Each ``(x0, y0, x1, y1, ...)``, at least 3 points; their union is the object."""
    mask: Optional[np.ndarray] = None
    """H×W bool, for formats that store masks (VOC's ``SegmentationObject``)."""
    difficult: bool = False
    where: str = ""
    """How errors name it in its file: ``"object 3"``, ``"line 4"``, ``"shape 2"``."""


@dataclass(frozen=True)
class AnnotatedImage:
    """One image with its objects, as a reader found it."""

    image_file: Path
    width: int
    height: int
    """As decoded (``image_size``), not as the annotation says."""
    objects: Tuple[AnnotatedObject, ...]
    source: Path
    """The annotation file, named in errors about the objects."""
    reported: Tuple[Tuple[str, str, str], ...] = ()
    """Problems kept with the image, ``(path, reason, detail)``; ``strict`` raises the first."""
    notes: Tuple[str, ...] = ()
    """Facts counted in the split's ``notes`` (YOLO: ``"images without a label file"``)."""


class Reader(Protocol):
    """What ``convert_split`` needs of a format: one split item -> ``AnnotatedImage``."""

    def read(self, item: str) -> AnnotatedImage:
        """The image of ``item``; raises ``ConversionInputError`` for bad input."""

    def count_objects(self, item: str) -> int:
        """Objects of an item whose ``read`` failed, as far as they can be counted (0 if unknown)."""


@dataclass(frozen=True)
class SplitJob:
    """One output split: ``annotations/<stem>.json`` from these items of this reader."""

    stem: str
    items: Sequence[str]
    reader: Reader
    description: str


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
    """Problems reported and kept (VOC: a ``SegmentationClass`` that says another class)."""
    notes: Counter = field(default_factory=Counter)
    """Counts a format adds (YOLO: images without a label file)."""
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
            "notes": dict(sorted(self.notes.items())),
            "problems": self.problems,
        }


def image_size(image_file: str | os.PathLike) -> Tuple[int, int]:
    """(width, height) of an image that decodes whole (a truncated JPEG has a header but no pixels).
    Raises ``ConversionInputError`` (missing image, bad image)."""
    image_file = Path(image_file)
    if not image_file.is_file():
        raise ConversionInputError(image_file, "missing image", "image file does not exist")
    try:
        with Image.open(image_file) as image:
            size = image.size
            image.draft(image.mode, (1, 1))  # JPEG: decode at 1/8 scale; every byte is still read
            image.load()
            return size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:  # PIL's for corrupt files
        raise ConversionInputError(image_file, "bad image", f"unreadable image ({error})") from None


def finite_number(value: object, path: str | os.PathLike, where: str) -> float:
    """``value`` (a JSON or text number) as a finite float; ``ConversionInputError`` naming ``where`` if not."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConversionInputError(path, "malformed annotation", f"{where} is {value!r}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise ConversionInputError(path, "malformed annotation", f"{where} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise ConversionInputError(path, "not a number", f"{where} is {value!r}")
    return number


def read_text(path: str | os.PathLike, reason: str) -> str:
    """The UTF-8 text of a file; ``ConversionInputError`` with ``reason`` if it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConversionInputError(path, reason, f"not UTF-8 text ({error})") from None
    except OSError as error:
        raise ConversionInputError(path, reason, f"cannot be read ({error.strerror or error})") from None


def read_class_file(path: str | os.PathLike) -> Tuple[str, ...]:
    """Class names of a text file, one per line, in order, without duplicates; ``ConversionInputError``
    if it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise ConversionInputError(path, "missing class list", "is not a file (--classes takes auto or a file)")
    lines = read_text(path, "unreadable class list").splitlines()
    names = tuple(dict.fromkeys(line.strip() for line in lines if line.strip()))
    if not names:
        raise ConversionInputError(path, "empty class list", "holds no class name (one per line)")
    return names


def split_by_fraction(items: Sequence[str], fraction: float, seed: int) -> Dict[str, List[str]]:
    """``{"train", "val"}`` of ``items`` (sorted): ``round(fraction × n)`` of them, drawn with ``seed``, to val."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"--val-fraction {fraction} is not in [0, 1]")
    items = sorted(items)
    order = np.random.default_rng(seed).permutation(len(items))
    val = {items[i] for i in order[: round(fraction * len(items))]}
    return {"train": [i for i in items if i not in val], "val": [i for i in items if i in val]}


def _tight_box(mask: np.ndarray) -> List[float]:
    return mask_util.toBbox(mask_util.encode(np.asfortranarray(mask, dtype=np.uint8))).tolist()


def _object_annotation(record: AnnotatedImage, obj: AnnotatedObject, classes: Sequence[str]) -> Tuple[dict, str]:
    """COCO fields of one object (no ids) and its mask kind ("" without a mask); ``ConversionInputError``
    for an unknown class or bad geometry."""
    source, where = record.source, f"{obj.where} ({obj.name})" if obj.where else repr(obj.name)
    width, height, tol = record.width, record.height, EDGE_TOLERANCE
    if obj.name not in classes:
        detail = f"{obj.where or 'an object'} has class {obj.name!r}, not one of the {len(classes)} classes"
        raise ConversionInputError(source, "unknown class", detail)
    entry: dict = {"category_id": list(classes).index(obj.name) + 1}
    mask = obj.mask
    if mask is None and obj.polygons:
        points = np.concatenate([np.asarray(p, dtype=np.float64) for p in obj.polygons]).reshape(-1, 2)
        if not np.isfinite(points).all():
            raise ConversionInputError(source, "not a number", f"{where} has a polygon point that is not finite")
        low, high = points.min(axis=0), points.max(axis=0)
        if (low < -tol).any() or high[0] > width + tol or high[1] > height + tol:
            extent = f"x {low[0]:g}..{high[0]:g}, y {low[1]:g}..{high[1]:g}"
            detail = f"{where} has a polygon outside the {width}x{height} image ({extent})"
            raise ConversionInputError(source, "polygon outside the image", detail)
        assert all(len(p) >= 6 and len(p) % 2 == 0 for p in obj.polygons), "readers pass polygons of >= 3 points"
        mask = decode_segmentation([list(map(float, p)) for p in obj.polygons], height, width)
        if not mask.any():
            raise ConversionInputError(source, "empty polygon", f"{where} has a polygon that covers no pixel")
    if mask is not None:
        if mask.shape != (height, width):
            detail = f"{where} has a {mask.shape[1]}x{mask.shape[0]} mask, the image is {width}x{height}"
            raise ConversionInputError(source, "mask size mismatch", detail)
        if not mask.any():
            raise ConversionInputError(source, "empty mask", f"{where} has a mask without pixels")
        entry["bbox"] = list(obj.box) if obj.box is not None else _tight_box(mask)
        entry["area"] = int(mask.sum())
        entry["segmentation"], kind = encode_mask(mask)
        return entry, kind
    if obj.box is None:
        raise ConversionInputError(source, "malformed annotation", f"{where} has neither a box nor a polygon")
    x, y, w, h = obj.box
    if not all(map(math.isfinite, obj.box)):
        raise ConversionInputError(source, "not a number", f"{where} box {obj.box} is not finite")
    if w <= 0 or h <= 0:
        raise ConversionInputError(source, "empty box", f"{where} box {obj.box} has no area (width and height > 0)")
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        detail = f"{where} box (x, y, w, h) {tuple(obj.box)} is outside the {width}x{height} image"
        raise ConversionInputError(source, "box outside the image", detail)
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(width)), min(y + h, float(height))
    entry["bbox"] = [x0, y0, x1 - x0, y1 - y0]
    entry["area"] = entry["bbox"][2] * entry["bbox"][3]
    return entry, ""


def _box_polygon(bbox: Sequence[float]) -> List[List[float]]:
    x, y, w, h = bbox
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def convert_split(
    reader: Reader,
    items: Sequence[str],
    *,
    classes: Sequence[str],
    difficult: str = "ignore",
    strict: bool = False,
    description: str = "",
    supercategory: str = "",
    progress: bool = False,
) -> Tuple[dict, SplitSummary, List[Path]]:
    """COCO dict of these items, the summary of what was kept and skipped, and each written image's file
    (``images[i]["file_name"]`` is filled in by ``convert_splits``, relative to the images' folder).

    ``classes``: category names, ids 1..N. ``difficult`` objects: ``"ignore"`` (``iscrowd: 1``),
    ``"keep"`` or ``"drop"``. ``strict``: raise ``ConversionInputError`` at the first problem.
    """
    if difficult not in DIFFICULT_COUNTS:
        raise ValueError(f"difficult must be ignore, keep or drop, not {difficult!r}")
    images, annotations, files = [], [], []
    summary = SplitSummary(images_listed=len(items))
    summary.images_skipped.count_read(len(items))
    for item in tqdm(items, desc=description or "converting", unit="image", disable=not progress):
        record = None
        try:
            record = reader.read(item)
            converted = [
                None if obj.difficult and difficult == "drop" else _object_annotation(record, obj, classes)
                for obj in record.objects
            ]
            if record.reported and strict:
                raise ConversionInputError(*record.reported[0])
        except ConversionInputError as error:
            if strict:
                raise
            summary.images_skipped.skip(error.reason, error.path, error.detail)
            in_skipped_image = len(record.objects) if record is not None else reader.count_objects(item)
            summary.objects_read += in_skipped_image
            summary.objects_in_skipped_images += in_skipped_image
            summary.problems.append(f"skipped: {error}")
            continue
        summary.objects_read += len(record.objects)
        summary.class_disagreements += len(record.reported)
        summary.notes.update(record.notes)
        summary.problems.extend(f"reported: {path}: {detail}" for path, _, detail in record.reported)
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": "", "height": record.height, "width": record.width})
        files.append(record.image_file)
        for obj, fields_and_kind in zip(record.objects, converted):
            if obj.difficult:
                summary.difficult[DIFFICULT_COUNTS[difficult]] += 1
            if fields_and_kind is None:
                continue
            fields, kind = fields_and_kind
            entry = {"id": len(annotations) + 1, "image_id": image_id, "category_id": fields["category_id"]}
            entry.update(bbox=fields["bbox"], area=fields["area"], iscrowd=int(obj.difficult and difficult == "ignore"))
            if obj.difficult:
                entry["difficult"] = 1
            if "segmentation" in fields:
                entry["segmentation"] = fields["segmentation"]
                summary.masks[kind] += 1
            annotations.append(entry)
            summary.objects_written += 1
        summary.images_written += 1
        summary.images_skipped.count_kept()
    if summary.masks:  # Mask R-CNN needs a mask on every object of a split that has some
        for entry in annotations:
            if "segmentation" not in entry:
                entry["segmentation"] = _box_polygon(entry["bbox"])
                summary.masks["box"] += 1
    coco = {
        "info": {"description": description, "version": __version__},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name, "supercategory": supercategory} for i, name in enumerate(classes, 1)],
    }
    return coco, summary, files


def _link_images(folder: Path, link: Path) -> None:
    """``link`` -> ``folder`` (a symlink, replaced atomically); a real folder at ``link`` must be ``folder``."""
    if link.exists() and not link.is_symlink():
        if not os.path.samefile(link, folder):
            detail = f"is a folder of its own; the images are in {folder} (choose another --output-dir)"
            raise ConversionInputError(link, "output folder clash", detail)
        return
    tmp = link.with_name(f".{link.name}.tmp")
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(folder.resolve(), target_is_directory=True)
    os.replace(tmp, link)


ANNOTATION_SUFFIXES = (".xml", ".txt", ".json", ".yaml", ".yml", ".csv")
"""Files below a root hashed as its annotations (every other file is identified by name and size)."""


def root_identity(root: str | os.PathLike) -> dict:
    """``input_identity`` of an input folder, whatever its format: the files with
    ``ANNOTATION_SUFFIXES`` hashed, every file's relative name and byte size listed. So a second root,
    an edited label file or a replaced image is a changed setting. ``ConversionInputError`` if unreadable."""
    root = Path(root)
    try:
        files = sorted(p for p in root.rglob("*") if p.is_file())
        annotations = [p for p in files if p.suffix.lower() in ANNOTATION_SUFFIXES]
        names = [f"{p.relative_to(root).as_posix()} {p.stat().st_size}" for p in files]
        return input_identity(root, annotations, names)
    except OSError as error:
        where = error.filename or root
        raise ConversionInputError(where, "unreadable input", f"cannot read ({error.strerror})") from None


def _check_no_split_empty(output_dir: Path, summary: dict, origins: Dict[str, str]) -> None:
    """``ConversionInputError`` naming the first split that keeps no image (training or testing on it
    would fail), before any annotation file is written."""
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
        raise ConversionInputError(output_dir, "empty split", detail)


def convert_splits(
    output_dir: str | os.PathLike,
    jobs: Sequence[SplitJob],
    classes: Sequence[str],
    settings: dict,
    *,
    fmt: str,
    root: str | os.PathLike,
    image_link: str = "images",
    difficult: str = "ignore",
    strict: bool = False,
    rebuild: bool = False,
    log: Optional[Callable[[str], None]] = None,
    progress: bool = False,
) -> dict:
    """Convert each job into ``output_dir``: ``summary.json``, the ``image_link`` link to the written
    images' common folder and, last, ``annotations/<stem>.json`` (every file atomically). Returns the summary.

    ``settings``: what the output depends on, recorded and compared with an earlier run's
    (``open_prepared_folder``) before anything is read. ``log`` receives a few lines per split.
    """
    output_dir = Path(output_dir)
    if difficult not in DIFFICULT_COUNTS:  # before the folder is touched
        raise ValueError(f"difficult must be ignore, keep or drop, not {difficult!r}")
    recorded = {**settings, **root_identity(root)}  # another root, or changed inputs: refused like a setting
    open_prepared_folder(output_dir, recorded, ("annotations/*.json", "summary.json"), rebuild=rebuild)
    summary = {"format": fmt, "root": str(Path(root).resolve()), "options": settings, "classes": list(classes)}
    summary["splits"] = {}
    written: Dict[str, Tuple[dict, List[Path]]] = {}
    for job in jobs:
        coco, split_summary, files = convert_split(
            job.reader,
            job.items,
            classes=classes,
            difficult=difficult,
            strict=strict,
            description=job.description,
            supercategory=fmt,
            progress=progress,
        )
        written[job.stem] = coco, files
        summary["splits"][job.stem] = split_summary.as_dict()
        if log is not None:
            log(format_summary({"splits": {job.stem: summary["splits"][job.stem]}}))
    files = [Path(os.path.abspath(f)) for _, split_files in written.values() for f in split_files]
    folder = Path(os.path.commonpath([f.parent for f in files])) if files else None
    summary["images"] = str(output_dir / image_link)
    atomic_write_json(output_dir / "summary.json", summary)
    if folder is None:
        listed = sum(s["images_listed"] for s in summary["splits"].values())
        detail = f"no image kept ({listed} listed); every skipped file with its reason is in {output_dir}/summary.json"
        raise ConversionInputError(output_dir, "no image kept", detail)
    _check_no_split_empty(output_dir, summary, {job.stem: job.description for job in jobs})
    _link_images(folder, output_dir / image_link)
    for stem, (coco, split_files) in written.items():  # last: a folder with annotations is complete
        for image, image_file in zip(coco["images"], split_files):
            image["file_name"] = Path(os.path.relpath(os.path.abspath(image_file), folder)).as_posix()
        atomic_write_json(output_dir / "annotations" / f"{stem}.json", coco, indent=None)
    return summary


def format_summary(summary: dict) -> str:
    """Human-readable counts of a ``convert_splits`` summary: a few lines per split."""
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
        for note, count in s.get("notes", {}).items():
            lines.append(f"  {note}: {count}")
        if s["class_disagreements"]:
            lines.append(f"  class disagreements with SegmentationClass: {s['class_disagreements']} (kept as in XML)")
    return "\n".join(lines)


def format_problems(summary: dict, max_problems: int = 5) -> str:
    """The first ``max_problems`` problems of each split (all of them are in summary.json)."""
    lines = []
    for stem, s in summary["splits"].items():
        lines += [f"{stem}: {p}" for p in s["problems"][:max_problems]]
        if len(s["problems"]) > max_problems:
            lines.append(f"{stem}: ... {len(s['problems']) - max_problems} more in summary.json")
    return "\n".join(lines)
