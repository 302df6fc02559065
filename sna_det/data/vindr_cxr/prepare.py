"""VinDr-CXR from its public release to a detectron2-ready COCO folder (``datasets/prepare_vindr_cxr.py``).

Output, below ``output_dir`` (every file written atomically):

- ``images/<image_id>.png``: 8-bit grayscale, long side ``max_size`` (``images.py``, ``dicom.py``);
- ``annotations/{train,val,test}.json``: COCO, boxes in the PNGs' pixels, category id = class index + 1;
- ``summary.json``: ``{split: {class_name: box_count}}``, the layout of Table 4's train/test columns;
- ``prepare_report.json``: the options, the classes, and what was read, kept and skipped (with reasons).

Splits: ``test`` = the official test annotations when present (PhysioNet); the training annotations
are split into ``train`` / ``val`` by ``split.stratified_split`` (``val_fraction`` 0: no val).
With ``split_file``, the splits are the file's instead (``split_file.py``), for every image.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from ...evaluation.class_table import format_class_table
from ...utils import atomic_write_json
from .annotations import (
    AnnotationTable,
    FindingBox,
    VinDrSource,
    find_source,
    read_annotations,
    read_original_sizes,
    sorted_by_reader,
)
from .fusion import FUSIONS, fuse_boxes
from .images import convert_image
from .problems import BOX_OUTSIDE_IMAGE, UNKNOWN_IMAGE_ID, UNREADABLE_IMAGE, InputProblems, VinDrInputError
from .split import stratified_split
from .split_file import assign_split_file, read_split_file

__all__ = ["PrepareOptions", "PrepareResult", "format_prepare_summary", "prepare_vindr_cxr"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class PrepareOptions:
    """What ``prepare_vindr_cxr`` does; the defaults are the paper's setting."""

    fusion: str = "per-finding"
    """One of ``fusion.FUSIONS``: how several readers' boxes of a finding on an image are combined."""
    iou_thr: float = 0.5
    """IoU threshold of ``wbf`` and ``nms``."""
    max_size: int = 1024
    """Long side of the written PNGs in pixels (0: the original size)."""
    val_fraction: float = 0.2
    seed: int = 0
    all_labels: bool = False
    """Keep every label of the CSVs (PhysioNet's local labels), not only the paper's 14 findings."""
    drop_no_finding: bool = False
    """Leave out images without any kept box (by default they stay, as negatives)."""
    stats_only: bool = False
    """Read the CSVs only: no image is read or written; boxes are not checked against image sizes."""
    strict: bool = False
    """Stop at the first bad input (``problems.PROBLEMS``) instead of skipping and counting it."""
    workers: int = 1
    """Processes converting images."""
    split_file: Optional[str] = None
    """JSON ``{split name: [image ids]}`` replacing the stratified split (``split_file.py``)."""


@dataclass
class PrepareResult:
    summary: Dict[str, Dict[str, int]]
    """{split: {class_name: box_count}}, as saved in ``summary.json``."""
    report: dict
    """As saved in ``prepare_report.json``."""


def _index_images(source: VinDrSource, split: str, required: bool) -> Optional[Dict[str, Path]]:
    """{image_id: file} in the split's image folder; None when absent and not ``required``."""
    folder = source.image_dirs[split]
    if not folder.is_dir():
        if required:
            raise VinDrInputError(
                f"{folder}: image folder does not exist (expected <image_id>{source.image_suffixes[0]})"
            )
        return None
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in source.image_suffixes}


def _drop_images(table: AnnotationTable, gone: set) -> None:
    table.boxes = [b for b in table.boxes if b.image_id not in gone]
    for image_id in gone:
        del table.image_split[image_id]


def _convert_one(task: Tuple[Path, Path, int]):
    try:
        return convert_image(*task)
    except Exception as error:  # reported, with the file, by the caller
        return f"{type(error).__name__}: {error}"


def _converted(tasks: List[Tuple[Path, Path, int]], workers: int) -> Iterator:
    if workers <= 1:
        yield from map(_convert_one, tasks)
        return
    executor = ProcessPoolExecutor(max_workers=workers)
    try:
        yield from executor.map(_convert_one, tasks, chunksize=4)
    finally:
        executor.shutdown(cancel_futures=True)


def _outside(box: FindingBox, width: int, height: int) -> bool:
    x0, y0, x1, y1 = box.box
    return x0 < 0 or y0 < 0 or x1 > width or y1 > height


def _coco_annotations(boxes: List[FindingBox], classes, options: PrepareOptions, scale: Tuple[float, float]):
    """Fused boxes of one image as COCO annotation dicts (without ids), in class order."""
    by_class = defaultdict(list)
    for box in boxes:
        by_class[box.class_name].append(box)
    sx, sy = scale
    annotations = []
    for category_id, name in enumerate(classes, start=1):
        if name not in by_class:
            continue
        raw = np.array([b.box for b in sorted_by_reader(by_class[name])])
        for x0, y0, x1, y1 in fuse_boxes(raw, options.fusion, options.iou_thr).tolist():
            w, h = (x1 - x0) * sx, (y1 - y0) * sy
            annotations.append(
                {"category_id": category_id, "bbox": [x0 * sx, y0 * sy, w, h], "area": w * h, "iscrowd": 0}
            )
    return annotations


def prepare_vindr_cxr(
    vindr_root: str | Path,
    output_dir: str | Path | None,
    options: PrepareOptions = PrepareOptions(),
    image_dir: str | Path | None = None,
    sizes_csv: str | Path | None = None,
) -> PrepareResult:
    """Prepare VinDr-CXR below ``output_dir`` (module docstring); with ``stats_only`` only the summary.

    ``image_dir`` + ``sizes_csv``: the images are already PNG/JPG (``<image_id>.png``), and the CSV
    gives the original (DICOM) sizes the boxes refer to. Raises ``VinDrInputError`` for unusable
    input (no annotations, a missing column, a missing image folder) and, with ``strict``, for the
    first bad row or image.
    """
    if options.fusion not in FUSIONS:
        raise ValueError(f"fusion {options.fusion!r} is not one of {FUSIONS}")
    if output_dir is None and not options.stats_only:
        raise ValueError("output_dir is needed unless stats_only")
    split_lists = read_split_file(options.split_file) if options.split_file else None
    source = find_source(vindr_root, image_dir, sizes_csv)
    problems = InputProblems(options.strict)
    table = read_annotations(source.csv_files, problems, options.all_labels)
    read = {
        "csv_rows": table.rows,
        "finding_rows": len(table.boxes),
        "no_finding_rows": table.no_finding_rows,
        "other_label_rows": sum(table.dropped_labels.values()),
        "images": len(table.image_split),
    }

    # Image ids without an image file (checked when the folder is there; always when converting).
    sizes = read_original_sizes(source.sizes_csv) if source.sizes_csv else None
    unknown, image_file = set(), {}
    rows_of_skipped_images = Counter(b.image_id for b in table.boxes)
    for split in source.csv_files:
        index = _index_images(source, split, required=not options.stats_only)
        if index is None:
            continue
        for image_id, image_split in table.image_split.items():
            if image_split == split and (image_id not in index or (sizes is not None and image_id not in sizes)):
                missing = f"{source.image_dirs[split] / image_id}{source.image_suffixes[0]}"
                detail = f"no image file {missing}" if image_id not in index else f"no size in {source.sizes_csv}"
                problems.report(UNKNOWN_IMAGE_ID, table.image_where[image_id], f"image_id {image_id}: {detail}")
                unknown.add(image_id)
        image_file.update({i: index[i] for i, s in table.image_split.items() if s == split and i in index})
    ids_read = list(table.image_split)
    _drop_images(table, unknown)

    # Splits, then the images (read, checked, converted).
    boxes_of: Dict[str, List[FindingBox]] = defaultdict(list)
    for box in table.boxes:
        boxes_of[box.image_id].append(box)
    train_ids = {i: [b.class_name for b in boxes_of[i]] for i, s in table.image_split.items() if s == "train"}
    split_names, from_file = SPLITS, None
    if split_lists is None:
        split_of = stratified_split(train_ids, options.val_fraction, options.seed)
        split_of.update({i: "test" for i, s in table.image_split.items() if s == "test"})
    else:
        from_file = assign_split_file(split_lists, ids_read)
        split_names = from_file.splits
        split_of = {i: s for i, s in from_file.split_of.items() if i in table.image_split}
    negatives_dropped = 0
    if options.drop_no_finding:
        negatives = {i for i in split_of if not boxes_of[i]}
        negatives_dropped = len(negatives)
        split_of = {i: s for i, s in split_of.items() if i not in negatives}

    image_ids = sorted(split_of)
    geometry: Dict[str, Tuple[int, int, int, int]] = {}  # original w, h; written w, h
    if not options.stats_only:
        out = Path(output_dir)
        tasks = [(image_file[i], out / "images" / f"{i}.png", options.max_size) for i in image_ids]
        unreadable = set()
        for image_id, result in zip(image_ids, _converted(tasks, options.workers)):
            if isinstance(result, str):
                problems.report(UNREADABLE_IMAGE, str(image_file[image_id]), result)
                unreadable.add(image_id)
                continue
            width, height, new_width, new_height = result
            if sizes is not None:  # pre-converted: boxes are in the original DICOM's pixels
                width, height = sizes[image_id]
            geometry[image_id] = (width, height, new_width, new_height)
        image_ids = [i for i in image_ids if i not in unreadable]
    lost_rows = sum(rows_of_skipped_images[i] for i in unknown) + sum(
        len(boxes_of[i]) for i in set(split_of) - set(image_ids)
    )

    # Boxes: checked against the image, fused, scaled; COCO per split; the summary.
    coco = {s: {"images": [], "annotations": []} for s in split_names}
    summary = {s: dict.fromkeys(table.classes, 0) for s in split_names}
    kept_rows, images_kept, negatives_kept = 0, Counter(), Counter()
    for image_id in image_ids:
        split = split_of[image_id]
        boxes, scale = boxes_of[image_id], (1.0, 1.0)
        if image_id in geometry:
            width, height, new_width, new_height = geometry[image_id]
            inside = []
            for box in boxes:
                if _outside(box, width, height):
                    problems.report(BOX_OUTSIDE_IMAGE, box.where, f"box {box.box} vs image {width}x{height}")
                else:
                    inside.append(box)
            boxes, scale = inside, (new_width / width, new_height / height)
        kept_rows += len(boxes)
        image_number = len(coco[split]["images"]) + 1
        if image_id in geometry:
            coco[split]["images"].append(
                {"id": image_number, "file_name": f"{image_id}.png", "width": new_width, "height": new_height}
            )
        for annotation in _coco_annotations(boxes, table.classes, options, scale):
            annotation.update(id=len(coco[split]["annotations"]) + 1, image_id=image_number)
            coco[split]["annotations"].append(annotation)
            summary[split][table.classes[annotation["category_id"] - 1]] += 1
        images_kept[split] += 1
        negatives_kept[split] += not boxes

    present = [s for s in split_names if images_kept[s]]
    summary = {s: summary[s] for s in present}
    report = {
        "layout": source.layout + (" (pre-converted images)" if sizes is not None else ""),
        "vindr_root": str(vindr_root),
        "options": asdict(options),
        "classes": list(table.classes),
        "read": read,
        "skipped": problems.as_dict(),
        "skipped_examples": problems.examples,
        "other_labels_dropped": dict(sorted(table.dropped_labels.items())),
        "finding_rows_of_skipped_images": lost_rows,
        "no_finding_images_dropped": negatives_dropped,
        "split_file": None
        if from_file is None
        else {
            "file": str(options.split_file),
            "ids_per_split": {name: len(ids) for name, ids in split_lists.items()},
            "images_in_no_list": from_file.left_out,
            "finding_rows_of_images_in_no_list": sum(len(boxes_of[i]) for i in table.image_split if i not in split_of),
            "unknown_ids": {name: len(ids) for name, ids in from_file.unknown_ids.items()},
            "unknown_id_list": from_file.unknown_ids,
        },
        "kept": {
            "finding_rows": kept_rows,
            "images": {s: images_kept[s] for s in present},
            "images_without_boxes": {s: negatives_kept[s] for s in present},
            "boxes": {s: sum(summary[s].values()) for s in present},
        },
    }
    if output_dir is not None:
        out = Path(output_dir)
        if not options.stats_only:
            categories = [{"id": i, "name": n, "supercategory": "finding"} for i, n in enumerate(table.classes, 1)]
            for split in present:
                data = {"images": coco[split]["images"], "annotations": coco[split]["annotations"]}
                atomic_write_json(
                    out / "annotations" / f"{split}.json", {**data, "categories": categories}, indent=None
                )
        atomic_write_json(out / "summary.json", summary)
        atomic_write_json(out / "prepare_report.json", report)
    return PrepareResult(summary, report)


def format_prepare_summary(result: PrepareResult) -> str:
    """The printed summary: what was read, skipped (by reason) and kept, then Table 4's count columns."""
    report, read, kept = result.report, result.report["read"], result.report["kept"]
    options = report["options"]
    lines = [
        f"VinDr-CXR, {report['layout']} layout, fusion {options['fusion']}"
        + (" (stats only: images not read)" if options["stats_only"] else f", PNG long side {options['max_size']}"),
        f"read: {read['csv_rows']:,} CSV rows = {read['finding_rows']:,} finding boxes read"
        f" + {read['no_finding_rows']:,} 'No finding' + {read['other_label_rows']:,} other labels (dropped)"
        f" + rows skipped below; {read['images']:,} images",
        "skipped: "
        + ", ".join(f"{reason} {count:,}" for reason, count in report["skipped"].items())
        + f"; finding rows of skipped images {report['finding_rows_of_skipped_images']:,}",
    ]
    if report.get("split_file"):
        given = report["split_file"]
        lines.append(
            f"split file {given['file']}: "
            + ", ".join(f"{name} {n:,} ids" for name, n in given["ids_per_split"].items())
            + f"; images in no list (left out): {given['images_in_no_list']:,}"
            + f" ({given['finding_rows_of_images_in_no_list']:,} finding rows); ids not in the annotations: "
            + ", ".join(f"{name} {n:,}" for name, n in given["unknown_ids"].items())
        )
        named = [i for ids in given["unknown_id_list"].values() for i in ids]
        if named:
            lines.append("  not in the annotations: " + ", ".join(named[:5]) + (", ..." if len(named) > 5 else ""))
    if report["no_finding_images_dropped"]:
        lines.append(f"dropped (--drop-no-finding): {report['no_finding_images_dropped']:,} images without boxes")
    for examples in report["skipped_examples"].values():
        lines += [f"  e.g. {example}" for example in examples[:2]]
    lines.append(
        f"kept: {kept['finding_rows']:,} finding boxes -> "
        + ", ".join(
            f"{s} {kept['images'][s]:,} images ({kept['images_without_boxes'][s]:,} without boxes), "
            f"{kept['boxes'][s]:,} boxes"
            for s in kept["images"]
        )
    )
    if report["other_labels_dropped"]:
        lines.append(
            "other labels dropped: " + ", ".join(f"{k} {v:,}" for k, v in report["other_labels_dropped"].items())
        )
    totals = {split: sum(counts.values()) for split, counts in result.summary.items()}
    lines += ["", format_class_table(report["classes"], result.summary, totals)]
    return "\n".join(lines)
