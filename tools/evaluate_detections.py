#!/usr/bin/env python
"""Per-class AP and hit rate of any detector's COCO-format results at one IoU threshold (default 0.4, Table 4).

    python tools/evaluate_detections.py --gt datasets/vindr_cxr/annotations/val.json \
        --dt output/vincxr_faster_sna/inference/coco_instances_results.json --iou 0.4 --output ap.json

Prints the table (COCO-style 101-point AP, VOC2010 all-point AP and the hit rate, in percent), then
how many detections were read, evaluated and skipped (unknown image_id / category_id, with examples)
and how many images have no detection, and writes {"iou", "coco": {"per_class", "mean"}, "voc2010":
{...}, "hit_rate": {"per_class", "mean", "about"}, "gt_boxes", "detections", "images_without_detections",
"skipped", "skipped_examples"} to --output.
Input that is not COCO (not JSON, a detection lacking a field, a non-finite box) exits 1 with
"error: <file>: detection <i>: ..." on stderr. The definitions are in sna_det/evaluation/detection_ap.py.

The hit rate is the metric behind the paper's Table 4 ("AP at IoU > 0.4"), as its authors' code computes
it: the % of a class's ground-truth boxes that some same-class detection on the image overlaps with
IoU > --iou, every detection counted whatever its score; the total is the unweighted mean over classes.
"""

import argparse
import sys
from pathlib import Path

from sna_det.evaluation import evaluate_detections, format_ap_table, format_skipped
from sna_det.utils import atomic_write_json


def output_problem(path: str) -> str:
    """What makes ``path`` unusable as the result file ("" when nothing): a folder, or a file on the way."""
    target = Path(path)
    if target.is_dir():
        return "is a folder; give a file name, e.g. ap.json"
    for parent in target.parents:
        if parent.exists():
            return "" if parent.is_dir() else f"is below {parent}, which is a file, not a folder"
    return ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", required=True, help="COCO ground truth JSON")
    parser.add_argument("--dt", required=True, help="COCO results JSON: [{image_id, category_id, bbox, score}]")
    parser.add_argument("--iou", type=float, default=0.4, help="IoU threshold")
    parser.add_argument("--max-dets", type=int, default=100, help="detections per image and class (COCO-style)")
    parser.add_argument("--output", help="JSON file for the result")
    args = parser.parse_args(argv)
    if args.output:  # before the evaluation: a mistake here is one line, not a lost result
        problem = output_problem(args.output)
        if problem:
            print(f"error: {args.output}: --output {problem}", file=sys.stderr)
            return 1
    try:
        result = evaluate_detections(args.gt, args.dt, args.iou, args.max_dets)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_ap_table(result))
    print(format_skipped(result))
    if args.output:
        try:
            atomic_write_json(args.output, result)
        except OSError as error:
            print(f"error: {args.output}: --output cannot be written ({error.strerror or error})", file=sys.stderr)
            return 1
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    from sna_det.cli import run_tool

    run_tool(main)
