"""The one COCO writer every format reader goes through: checks, polygons as drawn, skip report,
``--strict``, recorded settings, annotation JSONs last.

Readers give ``AnnotatedImage``s (``annotated``); this module checks and writes them, the same way
for every format:

- an object of a class not in the list, a box that is not finite, empty or outside the image (by more
  than ``EDGE_TOLERANCE`` pixels; within it, clipped), a polygon outside the image or covering no pixel,
  a mask of another size: the image is left out whole, counted by reason (``SkipReport``) and named
  (file, object), so no image enters a split with some of its objects missing; ``strict`` raises the
  ``ConversionInputError`` instead;
- one COCO annotation per object: a polygon object keeps its polygons as drawn (``segmentation``, one
  list per shape), its ``bbox`` is their extent (clipped to the image), ``area`` the pixels pycocotools
  rasterizes; a mask object (VOC's PNGs, a COCO RLE) is written as polygons where they reproduce the
  mask exactly, else RLE (``masks.encode_mask``); a box object keeps its box (``area`` = w × h). In a
  split where some objects have masks, the box-only objects get their box as a polygon, so that
  Mask R-CNN can train on it (counted as ``masks: box``). Ignore regions are ``iscrowd: 1`` (one per
  class for ``ALL_CLASSES``);
- ``convert_splits`` checks the output folder (writable; same settings as an earlier run, or refused
  unless ``rebuild``: ``output_folder``) before reading anything, writes ``summary.json``, links the
  images' common folder, and writes ``annotations/<split>.json`` last; a run that keeps no image fails.

For a preparer with its own output steps (VinDr-CXR renders PNGs first): ``convert_split`` per split,
``check_no_split_empty``, then ``write_split_annotations``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from ...utils.atomic_write import atomic_write_json
from ...version import __version__
from .annotated import ALL_CLASSES, AnnotatedImage, AnnotatedObject, Reader
from .conversion_report import SplitSummary, format_summary
from .input_files import ConversionInputError, read_class_file
from .masks import decode_segmentation, encode_mask
from .output_folder import input_identity, open_prepared_folder
from .splits import SPLITS, choose_splits

__all__ = [
    "DIFFICULT_POLICIES",
    "EDGE_TOLERANCE",
    "Layout",
    "SplitJob",
    "check_no_split_empty",
    "convert_split",
    "convert_splits",
    "layout_converter",
    "root_identity",
    "write_split_annotations",
]

EDGE_TOLERANCE = 0.5
"""Pixels a box or polygon point may lie outside the image (clipped); farther is bad input."""

DIFFICULT_COUNTS = {"ignore": "ignored", "keep": "kept", "drop": "dropped"}
"""``difficult`` policy -> how the split's summary counts its difficult objects."""
DIFFICULT_POLICIES = tuple(DIFFICULT_COUNTS)


@dataclass(frozen=True)
class SplitJob:
    """One output split: ``annotations/<stem>.json`` from these items of this reader."""

    stem: str
    items: Sequence[str]
    reader: Reader
    description: str


def _clipped_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> List[float]:
    x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
    return [x0, y0, x1 - x0, y1 - y0]


def _polygon_fields(record: AnnotatedImage, obj: AnnotatedObject, where: str) -> dict:
    """``bbox`` (the extent of the drawn points), ``area`` (rasterized pixels), ``segmentation`` (as drawn)."""
    source, width, height, tol = record.source, record.width, record.height, EDGE_TOLERANCE
    assert all(len(p) >= 6 and len(p) % 2 == 0 for p in obj.polygons), "readers pass polygons of >= 3 points"
    points = np.concatenate([np.asarray(p, dtype=np.float64) for p in obj.polygons]).reshape(-1, 2)
    if not np.isfinite(points).all():
        raise ConversionInputError(source, "not a number", f"{where} has a polygon point that is not finite")
    low, high = points.min(axis=0), points.max(axis=0)
    if (low < -tol).any() or high[0] > width + tol or high[1] > height + tol:
        extent = f"x {low[0]:g}..{high[0]:g}, y {low[1]:g}..{high[1]:g}"
        detail = f"{where} has a polygon outside the {width}x{height} image ({extent})"
        raise ConversionInputError(source, "polygon outside the image", detail)
    segmentation = [[float(v) for v in p] for p in obj.polygons]
    area = int(decode_segmentation(segmentation, height, width).sum())
    if not area:
        raise ConversionInputError(source, "empty polygon", f"{where} has a polygon that covers no pixel")
    box = list(obj.box) if obj.box is not None else _clipped_box(*low, *high, width, height)
    return {"bbox": box, "area": area, "segmentation": segmentation}


def _box_fields(record: AnnotatedImage, obj: AnnotatedObject, where: str) -> dict:
    source, width, height, tol = record.source, record.width, record.height, EDGE_TOLERANCE
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
    bbox = _clipped_box(x, y, x + w, y + h, width, height)
    return {"bbox": bbox, "area": bbox[2] * bbox[3]}


def _object_annotations(record: AnnotatedImage, obj: AnnotatedObject, classes: Sequence[str]) -> Tuple[List[dict], str]:
    """COCO fields of one object (no ids; one per class for an ``ALL_CLASSES`` ignore region) and its
    segmentation kind ("" without one); ``ConversionInputError`` for an unknown class or bad geometry."""
    source, where = record.source, f"{obj.where} ({obj.name})" if obj.where else repr(obj.name)
    width, height = record.width, record.height
    if obj.name == ALL_CLASSES and obj.ignore:
        category_ids = list(range(1, len(classes) + 1))
    elif obj.name in classes:
        category_ids = [list(classes).index(obj.name) + 1]
    else:
        detail = f"{obj.where or 'an object'} has class {obj.name!r}, not one of the {len(classes)} classes"
        raise ConversionInputError(source, "unknown class", detail)
    kind = ""
    if obj.mask is not None:
        mask = obj.mask
        if mask.shape != (height, width):
            detail = f"{where} has a {mask.shape[1]}x{mask.shape[0]} mask, the image is {width}x{height}"
            raise ConversionInputError(source, "mask size mismatch", detail)
        if not mask.any():
            raise ConversionInputError(source, "empty mask", f"{where} has a mask without pixels")
        ys, xs = np.nonzero(mask)
        tight = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
        box = list(obj.box) if obj.box is not None else tight
        segmentation, kind = encode_mask(mask)
        fields = {"bbox": box, "area": int(mask.sum()), "segmentation": segmentation}
    elif obj.polygons:
        fields, kind = _polygon_fields(record, obj, where), "polygon"
    else:
        fields = _box_fields(record, obj, where)
    return [dict(fields, category_id=c) for c in category_ids], kind


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
    (``images[i]["file_name"]`` is filled in by ``write_split_annotations``, relative to the images' folder).

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
                None if obj.difficult and difficult == "drop" else _object_annotations(record, obj, classes)
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
            entries, kind = fields_and_kind
            crowd = obj.ignore or (obj.difficult and difficult == "ignore")
            for fields in entries:
                entry = {"id": len(annotations) + 1, "image_id": image_id, "category_id": fields["category_id"]}
                entry.update(bbox=fields["bbox"], area=fields["area"], iscrowd=int(crowd))
                if obj.difficult:
                    entry["difficult"] = 1
                if obj.occluded:
                    entry["occluded"] = 1
                if "segmentation" in fields:
                    entry["segmentation"] = fields["segmentation"]
                annotations.append(entry)
            if kind:
                summary.masks[kind] += 1
            if obj.ignore:
                summary.notes["ignore regions (iscrowd: 1)"] += 1
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


def check_no_split_empty(output_dir: Path, splits: Dict[str, dict], origins: Dict[str, str]) -> None:
    """``ConversionInputError`` naming the first split that keeps no image (training or testing on it
    would fail), before any annotation file is written. ``splits``: ``{stem: SplitSummary.as_dict()}``;
    ``origins``: ``{stem: where its images were listed from}``."""
    for stem, s in splits.items():
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


def write_split_annotations(output_dir: Path, written: Dict[str, Tuple[dict, List[Path]]], image_folder: Path) -> None:
    """``annotations/<stem>.json`` of each ``(coco, image files)`` of ``convert_split``, atomically, each
    image's ``file_name`` relative to ``image_folder`` (the folder the dataset's image link points to)."""
    for stem, (coco, split_files) in written.items():
        for image, image_file in zip(coco["images"], split_files):
            image["file_name"] = Path(os.path.relpath(os.path.abspath(image_file), image_folder)).as_posix()
        atomic_write_json(Path(output_dir) / "annotations" / f"{stem}.json", coco, indent=None)


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
    check_no_split_empty(output_dir, summary["splits"], {job.stem: job.description for job in jobs})
    _link_images(folder, output_dir / image_link)
    write_split_annotations(output_dir, written, folder)  # last: a folder with annotations is complete
    return summary


@dataclass(frozen=True)
class Layout:
    """What a format finds in its ``--root``: the reader, the splits the layout declares (None: none, a
    share of ``pool`` is drawn) and the class names found (``--classes auto``)."""

    reader: Optional[Reader]
    """None where ``reader_for`` makes it from the class names."""
    declared: Optional[Dict[str, List[str]]]
    origin: str
    """Where the items come from (``"train/, val/"``), recorded in the settings."""
    class_names: Callable[[Dict[str, List[str]]], Tuple[str, ...]]
    """The names found in these splits' items (sorted, or the layout's own order); may raise
    ``ConversionInputError`` saying where names were looked for."""
    pool: Optional[Sequence[str]] = None
    fixed_splits: Optional[Dict[str, List[str]]] = None
    """Splits written as they are, never drawn from (Roboflow's ``test/``)."""
    reader_for: Optional[Callable[[Tuple[str, ...]], Reader]] = None
    """The reader of the chosen class names, for a format whose labels are class indices (YOLO)."""
    settings: Dict[str, object] = field(default_factory=dict)
    """The format's own options, recorded with the output (VIA's ``class_attribute``)."""


def layout_converter(fmt: str, label: str, root_hint: str, read_layout: Callable[..., Layout]) -> Callable[..., dict]:
    """A format's converter from its ``read_layout(root, output_dir, **options) -> Layout``::

        convert(root, output_dir, *, classes="auto", val_fraction=None, seed=0,
                strict=False, rebuild=False, log=None, progress=False, **options) -> summary

    The same for every format: splits by ``splits.choose_splits``, ``classes`` ``"auto"`` (the layout's
    names) or a file (one a line), then ``convert_splits`` into ``output_dir/annotations/<split>.json``
    (+ an ``images`` link to the images' common folder, ``summary.json``). ``options``: the format's own
    keyword arguments, passed to ``read_layout`` (YOLO's ``data_yaml``; one it does not take is its
    ``TypeError``). A layout that declares some splits but not all is refused unless ``val_fraction``
    draws them."""

    def convert(
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
        **format_options: object,
    ) -> dict:
        root, output_dir = Path(root), Path(output_dir)
        if not root.is_dir():
            raise ConversionInputError(root, "missing folder", f"is not a folder (--root: {root_hint})")
        layout = read_layout(root, output_dir, **format_options)
        missing = [split for split in SPLITS if layout.declared is not None and split not in layout.declared]
        if missing and val_fraction is None:
            detail = f"no {' or '.join(missing)} split in {layout.origin} (declare it, or draw it with --val-fraction)"
            raise ConversionInputError(root, "missing split", detail)
        items, origin = choose_splits(
            layout.declared, layout.origin, val_fraction=val_fraction, seed=seed, pool=layout.pool
        )
        items.update(layout.fixed_splits or {})
        names = read_class_file(classes) if classes != "auto" else layout.class_names(items)
        if not names:
            raise ConversionInputError(root, "no classes", f"no labelled object in {layout.origin}")
        reader = layout.reader if layout.reader_for is None else layout.reader_for(names)
        jobs = [SplitJob(split, i, reader, f"{root.name} {split} ({label}, {origin})") for split, i in items.items()]
        settings = {"format": fmt, "classes": list(names), "splits": origin, **layout.settings}
        return convert_splits(
            output_dir, jobs, names, settings, fmt=fmt, root=root, strict=strict, rebuild=rebuild, log=log,
            progress=progress,
        )  # fmt: skip

    convert.__name__ = convert.__qualname__ = f"convert_{fmt}"
    convert.__doc__ = f"Convert a {label} folder ({root_hint}) to COCO; ``layout_converter`` says how."
    return convert
