"""VinDr-CXR from its public release to a detectron2-ready COCO folder (``datasets/prepare_vindr_cxr.py``).

Output, below ``output_dir`` (every file written atomically):

- ``images/<image_id>.png``: 8-bit grayscale, long side ``max_size`` (``images.py``, ``dicom.py``);
- ``annotations/{train,val,test}.json``: COCO from the shared writer (``coco_writer.convert_split``,
  via ``coco_output.py``), boxes in the PNGs' pixels, category id = class index + 1;
  every ``images`` entry also gives ``dicom_width`` / ``dicom_height``, the original image's size that
  the CSVs' boxes refer to, so a box maps back to the DICOM by ``dicom_width / width`` (x) and
  ``dicom_height / height`` (y);
- ``annotations/challenge_test.json``: VinBigData's ``test/`` DICOMs (the challenge's test images, no
  CSV), when that folder is there: images only, no annotations (``vindr_cxr_challenge_test``);
- ``summary.json``: ``{split: {class_name: box_count}}``, the layout of Table 4's train/test columns;
- ``prepare_report.json``: the options, the classes, and what was read, kept and skipped (every
  skipped file or row with its reason);
- ``prepare_settings.json``: the settings, so that a re-run resumes or refuses (``output_folder.py``).

A kill cannot corrupt the folder, and a re-run finishes it: the settings are checked and the folder
proven writable before any image is decoded; each PNG is written atomically, so a PNG that exists is
finished and a re-run with the same settings keeps it once it decodes whole at the expected size
(one damaged by something else is converted again, and counted) and removes a killed run's
temporary files (its own only), giving the same bytes as an uninterrupted run; the annotation
JSONs, which the readiness check of training looks for, are written last. Other settings into the
same folder are refused unless ``rebuild``, which builds aside and swaps the new dataset in at the
end (``output_folder.open_prepared_folder(aside=True)``), so a failed rebuild leaves the earlier one;
the settings include the inputs (the resolved root, a
hash of the CSVs, of the split file and of the image list: ``output_folder.input_identity``), so
another root with the same image ids is refused, not mixed in. A run that keeps no image, or leaves
a split the configs train or test on empty, fails (its report still lists every skipped file).
Worker processes end with the run, however it ends (``sna_det.utils.worker_pool``).

Splits: ``test`` = the official test annotations when present (PhysioNet); the training annotations
are split into ``train`` / ``val`` by ``split.stratified_split`` (``val_fraction`` 0: no val, only
when there is a test split to test on). With ``split_file``, the splits are the file's instead
(``split_file.py``), for every image. Each of these splits must end with at least one image.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from PIL import Image
from tqdm import tqdm

from ....utils import atomic_write_bytes, atomic_write_json
from ....utils.worker_pool import worker_pool
from ...dicom import dicom_size, is_dicom_path
from ...images import Intensity
from ..annotated import AnnotatedImage
from ..output_folder import PreparedFolderError, finish_prepared_folder, input_identity, open_prepared_folder
from .annotations import (
    AnnotationTable,
    FindingBox,
    VinDrSource,
    find_source,
    read_annotations,
    read_original_sizes,
)
from .coco_output import coco_split, fused_objects
from .fusion import FusionCounts
from .images import render_png, resized_size
from .options import DEFAULT_OPTIONS, RUN_OPTIONS, PrepareOptions, check_options, prepare_settings
from .problems import (
    BOX_OUTSIDE_IMAGE,
    NO_VALID_BOX,
    UNKNOWN_IMAGE_ID,
    UNREADABLE_IMAGE,
    InputProblems,
    VinDrInputError,
)
from .report import PrepareResult, check_no_split_empty, format_prepare_summary
from .split import stratified_split
from .split_file import assign_split_file, read_split_file

__all__ = ["PrepareOptions", "PrepareResult", "format_prepare_summary", "prepare_vindr_cxr"]

SPLITS = ("train", "val", "test")


def source_identity(
    vindr_root: str | Path, source: VinDrSource, options: PrepareOptions, image_files: Sequence[Path]
) -> dict:
    """``output_folder.input_identity`` of a VinDr-CXR copy: the CSVs (and sizes CSV, split file)
    hashed, and the image files' names and byte sizes; the image folder too when it is not the root's."""
    files = [*source.csv_files.values(), *[f for f in (source.sizes_csv, options.split_file) if f]]
    images = (f"{p.parent.name}/{p.name} {p.stat().st_size}" for p in image_files)
    try:
        identity = input_identity(vindr_root, files, images)
    except OSError as error:
        raise VinDrInputError(f"{error.filename}: cannot read ({error.strerror or error})") from None
    if source.sizes_csv is not None:
        identity["image_dir"] = str(next(iter(source.image_dirs.values())).resolve())
    return identity


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


def _unlabelled_images(source: VinDrSource, table: AnnotationTable) -> Dict[str, Dict[str, Path]]:
    """{split: {image_id: file}} of the source's unlabelled folders (the challenge's ``test/``); an
    image id also in the annotations raises ``VinDrInputError``."""
    found = {}
    for split, folder in source.unlabelled_dirs.items():
        index = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in source.image_suffixes}
        both = sorted(set(index) & set(table.image_split))
        if both:
            raise VinDrInputError(f"{index[both[0]]}: image_id {both[0]} is also in the annotations ({len(both)} such)")
        found[split] = index
    return found


def _drop_images(table: AnnotationTable, gone: set) -> None:
    table.boxes = [b for b in table.boxes if b.image_id not in gone]
    for image_id in gone:
        del table.image_split[image_id]


def _convert_one(task: Tuple[Path, Path, int, bool, Intensity]):
    """("ok", sizes) | ("unreadable", why) | ("unwritable", why) for one (source, target, max_size, upscale)."""
    source, target, max_size, upscale, intensity = task
    try:
        data, sizes = render_png(source, max_size, upscale, intensity)
    except Exception as error:  # reported, with the file, by the caller
        return "unreadable", f"{type(error).__name__}: {error}"
    try:
        atomic_write_bytes(target, data)
    except OSError as error:  # a full disk, a folder made read-only meanwhile: fatal, not a bad image
        return "unwritable", f"{target}: cannot write ({error.strerror or error})"
    return "ok", sizes


def _mapped(function: Callable, tasks: list, workers: int) -> Iterator:
    """``function`` over ``tasks`` in order, in ``workers`` processes that end with this one."""
    if workers <= 1:
        yield from map(function, tasks)
        return
    executor = worker_pool(workers)
    try:
        yield from executor.map(function, tasks, chunksize=4)
    finally:
        executor.shutdown(cancel_futures=True)


def _converted(tasks: List[Tuple[Path, Path, int, bool, Intensity]], workers: int) -> Iterator:
    return _mapped(_convert_one, tasks, workers)


def _finished_sizes(task: Tuple[Path, Path, int, bool, Intensity]) -> Optional[Tuple[int, ...]]:
    """(source w, h, written w, h) of an image an earlier run finished, for (source, target, max_size,
    upscale); None unless the PNG decodes whole, 8-bit grayscale, at the size ``render_png`` gives."""
    source, target, max_size, upscale, _ = task
    try:
        with Image.open(target) as png:
            png.load()  # every byte: a truncated or corrupted PNG raises
            mode, written = png.mode, png.size
        if is_dicom_path(source):
            original = dicom_size(source)
        else:
            with Image.open(source) as picture:
                original = picture.size
    except Exception:  # not finished after all (or the source changed): convert it again
        return None
    if mode != "L" or written != resized_size(*original, max_size, upscale):
        return None
    return (*original, *written)


def _outside(box: FindingBox, width: int, height: int) -> bool:
    x0, y0, x1, y1 = box.box
    return x0 < 0 or y0 < 0 or x1 > width or y1 > height


def assign_splits(
    table: AnnotationTable, boxes_of: Dict[str, List[FindingBox]], options: PrepareOptions
) -> Dict[str, str]:
    """{image_id: "train" | "val" | "test"}: the official test annotations are ``test``; the training
    annotations are split by ``stratified_split`` (``val_fraction``, ``seed``)."""
    train_ids = {i: [b.class_name for b in boxes_of[i]] for i, s in table.image_split.items() if s == "train"}
    split_of = stratified_split(train_ids, options.val_fraction, options.seed)
    split_of.update({i: "test" for i, s in table.image_split.items() if s == "test"})
    return split_of


OUTPUTS = ("annotations/*.json", "summary.json", "prepare_report.json", "images/*.png")
"""What the preparer writes below the output folder (annotations first: removed first on rebuild)."""


def prepare_vindr_cxr(
    vindr_root: str | Path,
    output_dir: str | Path | None,
    options: PrepareOptions = DEFAULT_OPTIONS,
    image_dir: str | Path | None = None,
    sizes_csv: str | Path | None = None,
) -> PrepareResult:
    """Prepare VinDr-CXR below ``output_dir`` (module docstring); with ``stats_only`` only the summary.

    ``image_dir`` + ``sizes_csv``: the images are already PNG/JPG (``<image_id>.png``), and the CSV
    gives the original (DICOM) sizes the boxes refer to. Raises ``VinDrInputError`` for unusable
    input (no annotations, a missing column, a missing image folder, no image kept) and, with
    ``strict``, for the first bad row or image; ``PreparedFolderError`` for an output folder that
    cannot be written or was prepared with other settings; ``ValueError`` for options out of range.
    """
    check_options(options)
    if output_dir is None and not options.stats_only:
        raise ValueError("output_dir is needed unless stats_only")
    split_lists = read_split_file(options.split_file) if options.split_file else None
    source = find_source(vindr_root, image_dir, sizes_csv)
    if options.val_fraction == 0 and split_lists is None and "test" not in source.csv_files and not options.stats_only:
        raise ValueError(
            f"--val-fraction 0 writes no val split, and {vindr_root} ({source.layout}) has no test split: "
            "the configs would have nothing to test on; give a fraction in (0, 1)"
        )
    problems = InputProblems(options.strict)
    table = read_annotations(source.csv_files, problems, options.all_labels, options.readers)
    read = {
        "csv_rows": table.rows,
        "finding_rows": len(table.boxes),
        "no_finding_rows": table.no_finding_rows,
        "other_label_rows": sum(table.dropped_labels.values()),
        "images": len(table.image_split),
        "rows_of_other_readers": table.other_reader_rows,
        "images_without_selected_reader": table.images_without_selected_reader,
    }
    ids_read = list(table.image_split)
    # An image whose every finding row was skipped is not an image without findings: left out.
    with_box = {b.image_id for b in table.boxes}
    no_valid = {i for i in table.image_split if table.finding_rows_of[i] and i not in with_box}
    for image_id in sorted(no_valid, key=ids_read.index):
        _skip_no_valid_box(problems, table, image_id, Counter())
    _drop_images(table, no_valid)

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
                problems.skip(UNKNOWN_IMAGE_ID, table.image_where[image_id], f"image_id {image_id}: {detail}")
                unknown.add(image_id)
        image_file.update({i: index[i] for i, s in table.image_split.items() if s == split and i in index})
    _drop_images(table, unknown)
    unlabelled = {} if options.stats_only else _unlabelled_images(source, table)
    for ids in unlabelled.values():
        image_file.update(ids)
    read["unlabelled_images"] = {split: len(ids) for split, ids in unlabelled.items()}

    # The output folder: writable, same settings as an earlier run (resume) or none, before any decoding.
    folder = None
    if output_dir is not None:
        inputs = source_identity(vindr_root, source, options, list(image_file.values()))
        settings = prepare_settings(options, source, inputs)
        folder = open_prepared_folder(output_dir, settings, OUTPUTS, rebuild=options.rebuild, aside=True)

    # Splits, then the images (read, checked, converted; those an earlier run finished are kept).
    boxes_of: Dict[str, List[FindingBox]] = defaultdict(list)
    for box in table.boxes:
        boxes_of[box.image_id].append(box)
    split_names, from_file = SPLITS, None
    if split_lists is None:
        split_of = assign_splits(table, boxes_of, options)
    else:
        from_file = assign_split_file(split_lists, ids_read)
        split_names = from_file.splits
        split_of = {i: s for i, s in from_file.split_of.items() if i in table.image_split}
    negatives_dropped = 0
    if options.drop_no_finding:
        negatives = {i for i in split_of if not boxes_of[i]}
        negatives_dropped = len(negatives)
        split_of = {i: s for i, s in split_of.items() if i not in negatives}
    for split, ids in unlabelled.items():  # every image of an unlabelled split is kept: no "No finding" there
        split_of.update(dict.fromkeys(ids, split))
    split_names = (*split_names, *unlabelled)

    image_ids = sorted(split_of)
    geometry: Dict[str, Tuple[int, int, int, int]] = {}  # original w, h; written w, h
    converted = damaged = 0
    if not options.stats_only:
        out = folder.path  # a rebuild writes aside, swapped in at the end
        target = {i: out / "images" / f"{i}.png" for i in image_ids}
        if folder.resumed:  # an earlier run's PNG is kept once verified
            done = [i for i in image_ids if target[i].is_file()]
            checks = [(image_file[i], target[i], options.max_size, options.upscale, options.intensity) for i in done]
            for image_id, finished in zip(done, _mapped(_finished_sizes, checks, options.workers)):
                if finished is not None:
                    geometry[image_id] = finished
                else:
                    damaged += 1
        todo = [i for i in image_ids if i not in geometry]
        tasks = [(image_file[i], target[i], options.max_size, options.upscale, options.intensity) for i in todo]
        unreadable = set()
        bar = tqdm(total=len(tasks), unit="image", desc="converting", disable=not options.progress, smoothing=0.1)
        try:
            for image_id, (status, result) in zip(todo, _converted(tasks, options.workers)):
                bar.update()
                if status == "unwritable":
                    raise PreparedFolderError(result)
                if status == "unreadable":
                    problems.skip(UNREADABLE_IMAGE, str(image_file[image_id]), result)
                    unreadable.add(image_id)
                    continue
                geometry[image_id] = result
                converted += 1
        finally:
            bar.close()
        for image_id in geometry:
            if sizes is not None:  # pre-converted: boxes are in the original DICOM's pixels
                geometry[image_id] = (*sizes[image_id], *geometry[image_id][2:])
        image_ids = [i for i in image_ids if i not in unreadable]
    lost_rows = sum(rows_of_skipped_images[i] for i in unknown) + sum(
        len(boxes_of[i]) for i in set(split_of) - set(image_ids)
    )

    # Boxes: checked against the image, fused, scaled; COCO per split; the summary.
    records: Dict[str, Dict[str, AnnotatedImage]] = {s: {} for s in split_names}
    summary = {s: dict.fromkeys(table.classes, 0) for s in split_names}
    kept_rows, images_kept, negatives_kept, fusion_counts = 0, Counter(), Counter(), FusionCounts()
    for image_id in image_ids:
        split = split_of[image_id]
        boxes, scale = boxes_of[image_id], (1.0, 1.0)
        if image_id in geometry:
            width, height, new_width, new_height = geometry[image_id]
            inside = []
            for box in boxes:
                if _outside(box, width, height):
                    problems.skip(BOX_OUTSIDE_IMAGE, box.where, f"box {box.box} vs image {width}x{height}")
                else:
                    inside.append(box)
            if boxes and not inside:
                _skip_no_valid_box(problems, table, image_id, Counter({BOX_OUTSIDE_IMAGE: len(boxes)}))
                continue
            boxes, scale = inside, (new_width / width, new_height / height)
        kept_rows += len(boxes)
        objects = fused_objects(boxes, table.classes, options.fusion, options.iou_thr, scale, fusion_counts)
        for obj in objects:
            summary[split][obj.name] += 1
        if image_id in geometry:
            labelled = image_id in table.image_split  # else an unlabelled split's image: no CSV
            where = source.csv_files[table.image_split[image_id]] if labelled else image_file[image_id]
            png = out / "images" / f"{image_id}.png"
            records[split][image_id] = AnnotatedImage(png, new_width, new_height, tuple(objects), source=where)
        images_kept[split] += 1
        negatives_kept[split] += not boxes
    problems.count_read(read["images"] + sum(read["unlabelled_images"].values()))
    problems.count_kept(sum(images_kept.values()))
    assigned = Counter(split_of.values())

    present = [s for s in split_names if images_kept[s]]
    summary = {s: summary[s] for s in present if s not in unlabelled}  # Table 4's columns: labelled splits
    report = {
        "layout": source.layout + (" (pre-converted images)" if sizes is not None else ""),
        "vindr_root": str(vindr_root),
        "options": json.loads(json.dumps({k: v for k, v in asdict(options).items() if k not in RUN_OPTIONS})),
        "classes": list(table.classes),
        "read": read,
        "skipped": problems.counts,
        "skipped_items": problems.skipped,
        "other_labels_dropped": dict(sorted(table.dropped_labels.items())),
        "finding_rows_of_skipped_images": lost_rows,
        "no_finding_images_dropped": negatives_dropped,
        "fusion": {"method": options.fusion, "iou_thr": options.iou_thr, **fusion_counts.as_dict()},
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
            "boxes": {s: sum(summary[s].values()) if s in summary else 0 for s in present},
        },
    }
    result = PrepareResult(
        summary,
        report,
        converted=converted,
        resumed=len(geometry) - converted,
        damaged=damaged,
        stale_removed=folder.stale_removed if folder else 0,
    )
    if output_dir is None:
        return result
    out = folder.path
    atomic_write_json(out / "prepare_report.json", report)
    if not options.stats_only and not images_kept:
        raise VinDrInputError(
            f"{out}: no image kept ({read['images']:,} read; "
            + ", ".join(f"{reason} {n:,}" for reason, n in problems.counts.items() if n)
            + f"); every skipped file with its reason is in {out / 'prepare_report.json'}"
        )
    if not options.stats_only:
        check_no_split_empty(out, split_names, from_file is not None, source, options, assigned, images_kept)
    atomic_write_json(out / "summary.json", summary)
    if not options.stats_only:  # last: a folder with annotations is complete
        for split in present:
            data = coco_split(records[split], table.classes, geometry, problems, f"VinDr-CXR {split}")
            atomic_write_json(out / "annotations" / f"{split}.json", data, indent=None)
    finish_prepared_folder(folder, OUTPUTS)
    return result


def _skip_no_valid_box(problems: InputProblems, table: AnnotationTable, image_id: str, more: Counter) -> None:
    """``NO_VALID_BOX`` for an image whose every finding row was skipped: its CSV reasons plus ``more``."""
    reasons = table.rows_skipped_of.get(image_id, Counter()) + more
    problems.skip(
        NO_VALID_BOX,
        table.image_where[image_id],
        f"image_id {image_id}: all its {table.finding_rows_of[image_id]:,} finding rows were skipped ("
        + ", ".join(f"{why} {n:,}" for why, n in sorted(reasons.items()))
        + "), so the image is left out instead of kept as one without findings",
    )
