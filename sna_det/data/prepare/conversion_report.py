"""What a conversion to COCO read, wrote and left out, per split: ``SplitSummary`` (``summary.json``)
and its console lines (``format_summary``, ``format_problems``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import List

from ...utils.skip_report import SkipReport

__all__ = ["SplitSummary", "format_problems", "format_summary"]


@dataclass
class SplitSummary:
    """What a split's conversion read, wrote and left out (JSON-able via ``as_dict``)."""

    images_listed: int = 0
    images_written: int = 0
    objects_read: int = 0
    objects_written: int = 0
    difficult: Counter = field(default_factory=Counter)
    masks: Counter = field(default_factory=Counter)
    """Objects by the kind of their ``segmentation``: ``polygon`` (as drawn, or a mask traced exactly),
    ``rle`` (a mask no polygon reproduces), ``box`` (a box-only object in a split with masks)."""
    images_skipped: SkipReport = field(default_factory=SkipReport)
    objects_in_skipped_images: int = 0
    class_disagreements: int = 0
    """Problems reported and kept (VOC: a ``SegmentationClass`` that says another class)."""
    notes: Counter = field(default_factory=Counter)
    """Counts a format adds (YOLO: images without a label file; labelme: shapes skipped by type)."""
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
