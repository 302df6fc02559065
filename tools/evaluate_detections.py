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

With --metric vinbigdata, --dt is a VinBigData challenge submission (image_id,PredictionString, boxes
in DICOM pixels, e.g. from tools/predict.py --format vinbigdata) and --gt the preparer's val or test
JSON; it is scored as the challenge did: VOC2010 all-point AP at IoU > 0.4 over 15 classes, "No
finding" a box [0, 0, 1, 1] on every normal image, the ground truth mapped to DICOM pixels by the
recorded dicom_width / dicom_height; --output then holds {"vinbigdata": {"mean", "per_class", ...}}
in percent (sna_det/evaluation/vinbigdata.py).

    python tools/evaluate_detections.py --metric vinbigdata --gt datasets/vindr_cxr/annotations/test.json \
        --dt output/predict_test/submission.csv --output vinbigdata.json

The hit rate is the metric behind the paper's Table 4 ("AP at IoU > 0.4"), as its authors' code computes
it: the % of a class's ground-truth boxes that some same-class detection on the image overlaps with
IoU > --iou, every detection counted whatever its score; the total is the unweighted mean over classes.
"""

import argparse
from pathlib import Path


def output_problem(path: str) -> str:
    """What makes ``path`` unusable as the result file ("" when nothing): a folder, or a file on the way."""
    target = Path(path)
    if target.is_dir():
        return "is a folder; give a file name, e.g. ap.json"
    for parent in target.parents:
        if parent.exists():
            return "" if parent.is_dir() else f"is below {parent}, which is a file, not a folder"
    return ""


def vinbigdata(args) -> int:
    """--metric vinbigdata: score the submission --dt against --gt (percent), print and write it."""
    from sna_det.evaluation.vinbigdata import (
        format_vinbigdata_table,
        read_submission,
        vinbigdata_ground_truth,
        vinbigdata_score,
    )
    from sna_det.utils import atomic_write_json
    from sna_det.utils.cli import CommandError

    try:
        truth = vinbigdata_ground_truth(args.gt)
    except (KeyError, TypeError) as error:
        raise CommandError(f"{args.gt}: not a prepared COCO JSON ({type(error).__name__}: {error})") from None
    result = vinbigdata_score(truth, read_submission(args.dt), args.iou)
    print(format_vinbigdata_table(result))
    if args.output:
        atomic_write_json(args.output, {"vinbigdata": result})
        print(f"written to {args.output}")
    return 0


def predictions_as_results(gt: str, dt: str):
    """``dt`` itself when it is COCO results; a predictions.json of tools/predict.py (an object with
    images and annotations) as COCO results in ``gt``'s ids (images matched by file_name, categories
    by name: ``sna_det.evaluation.ensemble.align_detections``), what it left out printed."""
    from sna_det.evaluation.coco_json import read_json
    from sna_det.evaluation.ensemble import align_detections, read_detection_file, reference_from_gt

    data, _ = read_json(dt, dt)
    if not (isinstance(data, dict) and "images" in data and "annotations" in data):
        return dt
    aligned, _, skipped = align_detections([read_detection_file(data, dt)], reference_from_gt(gt))
    left_out = ", ".join(f"{reason} {n:,}" for reason, n in skipped.counts.items() if n)
    print(f"{dt}: a predictions file: {skipped.kept:,} of {skipped.read:,} detections matched to {gt} by file and "
          f"class name" + (f" (left out: {left_out})" if left_out else ""))  # fmt: skip
    return aligned[0]


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (no torch: ``--help`` answers at once)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", required=True, help="COCO ground truth JSON")
    parser.add_argument("--dt", required=True, help="COCO results JSON: [{image_id, category_id, bbox, score}]")
    parser.add_argument("--iou", type=float, default=0.4, help="IoU threshold")
    parser.add_argument("--max-dets", type=int, default=100, help="detections per image and class (COCO-style)")
    parser.add_argument("--output", help="JSON file for the result")
    parser.add_argument(
        "--metric",
        choices=("ap", "vinbigdata"),
        default="ap",
        help="ap: the per-class table above; vinbigdata: the challenge's metric of a submission CSV",
    )
    parser.add_argument("--froc", action="store_true", help="also the FROC: sensitivity at 1/8 ... 8 FP per image")
    parser.add_argument("--froc-plot", metavar="PNG", help="draw the FROC curves into this PNG (implies --froc)")
    args = parser.parse_args(argv)
    if args.output and output_problem(args.output):  # before the evaluation: one line, not a lost result
        parser.exit(1, f"error: {args.output}: --output {output_problem(args.output)}\n")
    return args


def main(args: argparse.Namespace) -> int:
    from sna_det.utils.paths import check_outputs_not_inputs

    outputs = {"--output": args.output, "--froc-plot": args.froc_plot}
    check_outputs_not_inputs({"--gt": args.gt, "--dt": args.dt}, outputs)
    if args.metric == "vinbigdata":
        return vinbigdata(args)
    from sna_det.evaluation import evaluate_detections, format_ap_table, format_skipped, load_coco_gt
    from sna_det.evaluation.froc import evaluate_froc, format_froc_table
    from sna_det.utils import atomic_write_json
    from sna_det.utils.cli import CommandError

    gt = load_coco_gt(args.gt)
    detections = predictions_as_results(args.gt, args.dt)
    result = evaluate_detections(gt, detections, args.iou, args.max_dets)
    froc = None
    if args.froc or args.froc_plot:
        froc = evaluate_froc(gt, detections, args.iou, args.max_dets, plot=args.froc_plot)
    print(format_ap_table(result))
    print(format_skipped(result))
    if froc is not None:
        result["froc"] = froc
        print(format_froc_table(froc))
    if args.froc_plot:
        print(f"FROC curves drawn in {args.froc_plot}")
    if args.output:
        try:
            atomic_write_json(args.output, result)
        except OSError as error:
            raise CommandError(f"{args.output}: --output cannot be written ({error.strerror or error})") from None
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments, input_errors=(OSError, ValueError))
