"""What a VinDr-CXR preparation returns and prints: ``PrepareResult``, the printed summary (counts by
reason, Table 4's columns), and the check that no split the configs use ends empty."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Sequence

from ....utils.tables import format_class_table
from .annotations import VinDrSource
from .options import PrepareOptions
from .problems import VinDrInputError

__all__ = ["MAX_SHOWN", "PrepareResult", "check_no_split_empty", "format_prepare_summary"]

MAX_SHOWN = 3
"""Skipped files or rows printed per reason (all of them are in ``prepare_report.json``)."""


@dataclass
class PrepareResult:
    summary: Dict[str, Dict[str, int]]
    """{split: {class_name: box_count}}, as saved in ``summary.json``."""
    report: dict
    """As saved in ``prepare_report.json``."""
    converted: int = 0
    """Images decoded and written by this run."""
    resumed: int = 0
    """Images an earlier run with the same settings had finished (verified and kept, not converted again)."""
    damaged: int = 0
    """PNGs of an earlier run that did not decode whole at their size (converted again; in ``converted``)."""
    stale_removed: int = 0
    """Temporary files of a killed run removed."""


def check_no_split_empty(
    out: Path,
    split_names: Sequence[str],
    from_file: bool,
    source: VinDrSource,
    options: PrepareOptions,
    assigned: Counter,
    kept: Counter,
) -> None:
    """``VinDrInputError`` naming the first split the configs train or test on that ends empty: every
    split of a split file; else train, val (``val_fraction`` > 0) and test (official test annotations)."""
    if from_file:
        needed = list(split_names)
    else:
        needed = ["train", *(["val"] if options.val_fraction > 0 else [])]
        needed += ["test"] if "test" in source.csv_files else []
    for split in needed:
        if kept[split]:
            continue
        if assigned[split]:
            why = f"all its {assigned[split]:,} images were skipped"
        elif from_file:
            why = f"none of the split file's ids for it is an image of the annotations ({options.split_file})"
        elif split == "val":
            trained = assigned["train"] + assigned["val"]
            why = f"--val-fraction {options.val_fraction} of {trained:,} training images sends none to it"
        else:
            why = "no image of the annotations went to it"
        raise VinDrInputError(
            f"{out}: split {split} is empty ({why}); training or testing on it would fail, so no annotations "
            f"were written; every skipped file with its reason is in {out / 'prepare_report.json'}"
        )


def format_prepare_summary(result: PrepareResult) -> str:
    """The printed summary: what was read, skipped (by reason) and kept, then Table 4's count columns."""
    report, read, kept = result.report, result.report["read"], result.report["kept"]
    options = report["options"]
    lines = [
        f"VinDr-CXR, {report['layout']} layout, fusion {options['fusion']}"
        + (" (stats only: images not read)" if options["stats_only"] else f", PNG long side {options['max_size']}"),
        f"read: {read['csv_rows']:,} CSV rows = {read['finding_rows']:,} finding boxes read"
        f" + {read['no_finding_rows']:,} 'No finding' + {read['other_label_rows']:,} other labels (dropped)"
        f" + rows skipped below; {read['images']:,} images"
        + "".join(f" + {n:,} unlabelled ({split})" for split, n in read.get("unlabelled_images", {}).items()),
        "skipped: "
        + ", ".join(f"{reason} {count:,}" for reason, count in report["skipped"].items())
        + f"; finding rows of skipped images {report['finding_rows_of_skipped_images']:,}",
    ]
    if options.get("readers"):
        lines.append(
            f"readers {','.join(options['readers'])} only: {read['rows_of_other_readers']:,} rows of other readers "
            f"left out, {read['images_without_selected_reader']:,} images without a row of these readers left out"
        )
    fusion = report["fusion"]
    lines.append(
        f"fusion {fusion['method']}"
        + (f" (IoU > {fusion['iou_thr']:g})" if fusion["method"] in ("wbf", "nms") else "")
        + f": {fusion['boxes']:,} boxes -> {fusion['clusters']:,} clusters (by readers in a cluster: "
        + ", ".join(f"{k}: {v:,}" for k, v in fusion["clusters_by_readers"].items())
        + ")"
        + (
            f"; {fusion['one_reader_boxes_merged']:,} boxes merged with another box of their reader"
            if fusion["one_reader_boxes_merged"]
            else ""
        )
    )
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
    shown = Counter()
    for item in report["skipped_items"]:
        shown[item["reason"]] += 1
        if shown[item["reason"]] <= MAX_SHOWN:
            lines.append(f"  e.g. {item['where']}: {item['reason']}: {item['detail']}")
    if sum(shown.values()) > sum(min(n, MAX_SHOWN) for n in shown.values()):
        lines.append("  (every skipped file and row: skipped_items in prepare_report.json)")
    lines.append(
        f"kept: {kept['finding_rows']:,} finding boxes -> "
        + ", ".join(
            f"{s} {kept['images'][s]:,} images (unlabelled)"
            if s in read.get("unlabelled_images", {})
            else f"{s} {kept['images'][s]:,} images ({kept['images_without_boxes'][s]:,} without boxes), "
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
