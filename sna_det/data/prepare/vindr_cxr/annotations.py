"""VinDr-CXR's annotation CSVs, in either public layout, read into boxes of known classes.

- VinBigData (Kaggle): ``train.csv`` with image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max
  and ``train/<image_id>.dicom``; the challenge's ``test/<image_id>.dicom`` (no CSV), when present,
  becomes the unlabelled split ``challenge_test``;
- PhysioNet 1.0.0: ``annotations/annotations_{train,test}.csv`` with image_id,rad_id,class_name,
  x_min,y_min,x_max,y_max and ``{train,test}/<image_id>.dicom``.

Either layout's images may instead be an already-converted PNG/JPG folder (``<image_id>.png``) with
a CSV of the original sizes, since the boxes are in the DICOMs' pixel coordinates.
Class names are matched case-insensitively; "No finding" rows (empty boxes) mark an image as read.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ...classes import VINDR_CXR_CLASSES
from ...dicom import DICOM_SUFFIXES
from .problems import INVERTED_BOX, NAN_BOX, InputProblems, VinDrInputError

__all__ = [
    "CHALLENGE_TEST_SPLIT",
    "NO_FINDING",
    "PICTURE_SUFFIXES",
    "AnnotationTable",
    "FindingBox",
    "VinDrSource",
    "find_source",
    "read_annotations",
    "read_original_sizes",
    "sorted_by_reader",
]

NO_FINDING = "No finding"
CHALLENGE_TEST_SPLIT = "challenge_test"
"""The split made of VinBigData's ``test/`` DICOMs (no CSV): registered as ``vindr_cxr_challenge_test``."""
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
BOX_FIELDS = ("x_min", "y_min", "x_max", "y_max")
REQUIRED_FIELDS = ("image_id", "class_name", *BOX_FIELDS)


@dataclass(frozen=True)
class VinDrSource:
    """Where one VinDr-CXR copy keeps its annotations and images."""

    layout: str
    """``"vinbigdata"`` or ``"physionet"``."""
    csv_files: Dict[str, Path]
    """source split (``"train"``, and ``"test"`` when official test annotations exist) -> CSV."""
    image_dirs: Dict[str, Path]
    """source split -> folder holding ``<image_id><suffix>``."""
    image_suffixes: Tuple[str, ...]
    sizes_csv: Optional[Path] = None
    """For pre-converted PNG/JPG images: CSV of the original (DICOM) width and height per image_id."""
    unlabelled_dirs: Dict[str, Path] = field(default_factory=dict)
    """split name -> folder of images without annotations: VinBigData's challenge ``test/``
    (``CHALLENGE_TEST_SPLIT``), converted into an unlabelled split."""


def find_source(
    vindr_root: str | Path, image_dir: str | Path | None = None, sizes_csv: str | Path | None = None
) -> VinDrSource:
    """Recognise the layout below ``vindr_root``; ``image_dir`` + ``sizes_csv``: pre-converted images."""
    root = Path(vindr_root)
    physionet = root / "annotations" / "annotations_train.csv"
    if physionet.is_file():
        layout = "physionet"
        csv_files = {"train": physionet}
        test = root / "annotations" / "annotations_test.csv"
        if test.is_file():
            csv_files["test"] = test
    elif (root / "train.csv").is_file():
        layout, csv_files = "vinbigdata", {"train": root / "train.csv"}
    else:
        raise VinDrInputError(
            f"{root}: neither VinBigData's train.csv nor PhysioNet's annotations/annotations_train.csv is there "
            "(see datasets/README.md, section 'VinDr-CXR')"
        )
    if (image_dir is None) != (sizes_csv is None):
        raise VinDrInputError("pre-converted images need both --image-dir and --sizes-csv")
    if image_dir is not None:
        return VinDrSource(
            layout, csv_files, dict.fromkeys(csv_files, Path(image_dir)), PICTURE_SUFFIXES, Path(sizes_csv)
        )
    # VinBigData's test/ has DICOMs and no CSV: the challenge's test images, an unlabelled split
    unlabelled = {CHALLENGE_TEST_SPLIT: root / "test"} if layout == "vinbigdata" and (root / "test").is_dir() else {}
    image_dirs = {split: root / split for split in csv_files}
    return VinDrSource(layout, csv_files, image_dirs, DICOM_SUFFIXES, unlabelled_dirs=unlabelled)


@dataclass(frozen=True)
class FindingBox:
    """One reader's box for one finding, in the original image's pixels."""

    image_id: str
    class_name: str
    rad_id: str
    box: Tuple[float, float, float, float]
    """(x_min, y_min, x_max, y_max)"""
    where: str
    """``"<csv>, row <n>"`` (n counts the header as row 1)."""


@dataclass
class AnnotationTable:
    """Everything the CSVs say, after class mapping and row checks."""

    classes: Tuple[str, ...]
    """Category names; COCO category id = index + 1."""
    image_split: Dict[str, str] = field(default_factory=dict)
    """image_id -> source split, in order of first appearance (every image with a row, boxes or not)."""
    image_where: Dict[str, str] = field(default_factory=dict)
    """image_id -> the first row naming it."""
    boxes: List[FindingBox] = field(default_factory=list)
    rows: int = 0
    no_finding_rows: int = 0
    dropped_labels: Counter = field(default_factory=Counter)
    """label -> rows of labels outside ``classes`` (dropped)."""
    finding_rows_of: Counter = field(default_factory=Counter)
    """image_id -> its rows other than "No finding" (any label, valid or not)."""
    rows_skipped_of: Dict[str, Counter] = field(default_factory=dict)
    """image_id -> {why: rows} of its finding rows left out (bad box, other label)."""
    other_reader_rows: int = 0
    """Rows of readers outside ``readers`` (left out before any check)."""
    images_without_selected_reader: int = 0
    """Images whose every row is another reader's (left out)."""


def _normalise(label: str) -> str:
    return " ".join(label.split()).casefold()


def _parse_box(row: dict) -> Optional[Tuple[float, float, float, float]]:
    try:
        box = tuple(float(row[name]) for name in BOX_FIELDS)
    except (TypeError, ValueError):
        return None
    return None if any(math.isnan(v) or math.isinf(v) for v in box) else box


def _open_rows(path: Path):
    """(line number, row) of a CSV after checking its header has ``REQUIRED_FIELDS``."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        try:
            missing = [name for name in REQUIRED_FIELDS if name not in (reader.fieldnames or [])]
            if missing:
                raise VinDrInputError(f"{path}: missing column(s) {', '.join(missing)} (header: {reader.fieldnames})")
            for row in reader:
                yield reader.line_num, row
        except (UnicodeDecodeError, csv.Error) as error:  # text is decoded in blocks: the row is approximate
            raise VinDrInputError(f"{path}, near row {reader.line_num + 1}: not UTF-8 CSV ({error})") from None


def read_annotations(
    csv_files: Dict[str, Path],
    problems: InputProblems,
    all_labels: bool = False,
    readers: Optional[Sequence[str]] = None,
) -> AnnotationTable:
    """Read the CSVs of each source split into boxes of the paper's 14 classes (``all_labels``: every label).

    Bad rows (NaN or inverted boxes) go to ``problems``; labels outside the classes are counted in
    ``dropped_labels``. With ``all_labels`` the classes are the 14, then the other labels sorted.
    ``readers``: keep only the rows (boxes and "No finding") of these rad_ids; an image without any
    of their rows is left out (``images_without_selected_reader``); a reader without a row is an error.
    """
    canonical = {_normalise(name): name for name in VINDR_CXR_CLASSES}
    extra: Dict[str, str] = {}
    table = AnnotationTable(classes=VINDR_CXR_CLASSES)
    selected = None if readers is None else set(readers)
    split_of: Dict[str, str] = {}  # every image of the CSVs, selected reader or not
    found_readers: set = set()
    for split, path in csv_files.items():
        for line, row in _open_rows(path):
            table.rows += 1
            where = f"{path}, row {line}"
            image_id = (row["image_id"] or "").strip()
            if not image_id:
                raise VinDrInputError(f"{where}: field image_id is empty")
            if split_of.setdefault(image_id, split) != split:
                raise VinDrInputError(f"{where}: image_id {image_id} is also in the {split_of[image_id]} annotations")
            rad_id = (row.get("rad_id") or "").strip()
            if selected is not None:
                if "rad_id" not in row:
                    raise VinDrInputError(f"{path}: no column rad_id, which --readers selects by")
                found_readers.add(rad_id)
                if rad_id not in selected:
                    table.other_reader_rows += 1
                    continue
            table.image_split.setdefault(image_id, split)
            table.image_where.setdefault(image_id, where)
            label = _normalise(row["class_name"] or "")
            if label == _normalise(NO_FINDING):
                table.no_finding_rows += 1
                continue
            table.finding_rows_of[image_id] += 1
            name = canonical.get(label)
            if name is None:
                if not all_labels:
                    table.dropped_labels[(row["class_name"] or "").strip()] += 1
                    table.rows_skipped_of.setdefault(image_id, Counter())["other label"] += 1
                    continue
                name = extra.setdefault(label, (row["class_name"] or "").strip())
            box = _parse_box(row)
            if box is None:
                values = ", ".join(f"{k}={row[k]!r}" for k in BOX_FIELDS)
                problems.skip(NAN_BOX, where, f"fields x_min,y_min,x_max,y_max must be numbers: {values}")
                table.rows_skipped_of.setdefault(image_id, Counter())[NAN_BOX] += 1
                continue
            x0, y0, x1, y1 = box
            if x1 <= x0 or y1 <= y0:
                problems.skip(INVERTED_BOX, where, f"fields x_max <= x_min or y_max <= y_min: {box}")
                table.rows_skipped_of.setdefault(image_id, Counter())[INVERTED_BOX] += 1
                continue
            table.boxes.append(FindingBox(image_id, name, rad_id, box, where))
    if selected is not None:
        absent = sorted(selected - found_readers)
        if absent:
            files = ", ".join(map(str, csv_files.values()))
            raise VinDrInputError(
                f"{files}: field rad_id: --readers {','.join(absent)} has no row (readers there: "
                + ", ".join(sorted(found_readers, key=lambda r: (len(r), r))[:20])
                + ")"
            )
        table.images_without_selected_reader = len(split_of) - len(table.image_split)
    if extra:
        table.classes = VINDR_CXR_CLASSES + tuple(sorted(extra.values(), key=_normalise))
    return table


def read_original_sizes(path: Path) -> Dict[str, Tuple[int, int]]:
    """{image_id: (width, height)} from a CSV with image_id and width,height (or dim1,dim0 = columns,rows)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        names = reader.fieldnames or []
        if "image_id" in names and {"width", "height"} <= set(names):
            w_field, h_field = "width", "height"
        elif "image_id" in names and {"dim0", "dim1"} <= set(names):
            w_field, h_field = "dim1", "dim0"
        else:
            raise VinDrInputError(f"{path}: needs columns image_id and width,height (or dim0,dim1); header: {names}")
        sizes = {}
        for row in reader:
            try:
                sizes[row["image_id"].strip()] = (int(float(row[w_field])), int(float(row[h_field])))
            except (TypeError, ValueError):
                raise VinDrInputError(
                    f"{path}, row {reader.line_num}: fields {w_field},{h_field} must be numbers"
                ) from None
        return sizes


def sorted_by_reader(boxes: Sequence[FindingBox]) -> List[FindingBox]:
    """Boxes in a fixed order (reader, then coordinates), so that fusion does not depend on the CSV's row order."""
    return sorted(boxes, key=lambda b: (b.rad_id, b.box))
