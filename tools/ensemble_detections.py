#!/usr/bin/env python
"""Fuse several detectors' boxes with weighted boxes fusion (WBF, ensemble-boxes), and score every input and the fusion.

    python tools/ensemble_detections.py --gt datasets/vindr_cxr/annotations/val.json \\
        --dt output/sna/inference/coco_instances_results_vindr_cxr_val.json \\
           output/baseline/inference/coco_instances_results_vindr_cxr_val.json \\
        --weights 2 1 --iou-thr 0.55 --output fused.json

--dt takes COCO results files ([{image_id, category_id, bbox [x, y, w, h], score}], what evaluation
writes) or predictions.json files of tools/predict.py (images with width and height, categories,
annotations with scores). Boxes are normalised by each image's width and height (from --gt, else
from the predictions files), fused per image and class (boxes with IoU > --iou-thr become one, its
score by --conf-type), and written to --output: with --gt a COCO results list in the ground truth's
ids (for tools/evaluate_detections.py); without, a predictions file with the first predictions
file's images and categories. A predictions file's images are matched by file_name, its categories
by name. With --gt it prints per-class AP at --eval-iou (sna_det/evaluation/detection_ap.py) of every
input and of the fusion; --metrics-output saves them as JSON.

VinBigData submissions (--dt a.csv b.csv: image_id,PredictionString, boxes in DICOM pixels, e.g. of
tools/predict.py --format vinbigdata) fuse into a submission (--output fused.csv):

    python tools/ensemble_detections.py --dt sna/submission.csv r18/submission.csv \
        --sizes datasets/vindr_cxr/annotations/challenge_test.json --output fused.csv

Boxes are normalised by the DICOM sizes the prepared dataset records (--sizes, default --gt: its
dicom_width / dicom_height), the findings fused by WBF as above, and "No finding" handled as the
challenge's 2nd-place solution did: one "14 p 0 0 1 1" per image, p the weighted mean of the inputs'
"No finding" scores (sna_det/evaluation/ensemble.py, fuse_submissions). With --gt every input and
the fusion are scored by the challenge's metric (tools/evaluate_detections.py --metric vinbigdata).
"""

import argparse

CONF_TYPES = ("avg", "max", "box_and_model_avg", "absent_model_aware_avg")  # sna_det.evaluation.ensemble's
WBF_OPTIONS = ("weights", "iou_thr", "skip_box_thr", "conf_type")
"""The options passed on to the fusion (``fuse_detections``, ``fuse_submissions``) under their names."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dt", nargs="+", required=True, metavar="FILE", help="COCO results, predictions.json or submission.csv files"
    )
    parser.add_argument("--weights", nargs="+", type=float, help="one weight per --dt file (default: all 1)")
    parser.add_argument("--iou-thr", type=float, default=0.55, help="boxes of a class with IoU above this are fused")
    parser.add_argument("--skip-box-thr", type=float, default=0.0, help="leave out boxes scored below this")
    parser.add_argument("--conf-type", choices=CONF_TYPES, default="avg", help="how a fused box is scored (WBF)")
    parser.add_argument("--gt", help="COCO ground truth: image sizes, and per-class AP of every input and the fusion")
    parser.add_argument("--eval-iou", type=float, default=0.4, help="IoU threshold of the AP printed with --gt")
    parser.add_argument("--sizes", metavar="JSON", help="submissions: the prepared COCO JSON (DICOM sizes)")
    parser.add_argument("--output", required=True, help="the fused detections (JSON; a .csv for submissions)")
    parser.add_argument("--metrics-output", help="with --gt: JSON of every input's and the fusion's AP")
    args = parser.parse_args(argv)
    if len(args.dt) < 2:
        parser.error("--dt: give two detection files or more")
    if args.weights is not None and len(args.weights) != len(args.dt):
        parser.error(f"--weights: {len(args.weights)} weights for {len(args.dt)} --dt files")
    thresholds = (("--iou-thr", args.iou_thr), ("--skip-box-thr", args.skip_box_thr), ("--eval-iou", args.eval_iou))
    for flag, value in thresholds:
        if not 0.0 <= value <= 1.0:  # also NaN
            parser.error(f"{flag} {value} is not in [0, 1]")
    bad = [w for w in args.weights or [] if not w >= 0.0 or w == float("inf")]  # NaN, negative, inf
    if bad or (args.weights and not any(args.weights)):
        parser.error(f"--weights {' '.join(map(str, args.weights))}: each a finite number >= 0, not all 0")
    if args.metrics_output and not args.gt:
        parser.error("--metrics-output needs --gt")
    args.submissions = all(path.lower().endswith(".csv") for path in args.dt)
    if args.submissions and not (args.sizes or args.gt):
        parser.error("submission.csv inputs need --sizes (or --gt): the prepared COCO JSON with the DICOM sizes")
    if args.submissions != args.output.lower().endswith(".csv") or (args.sizes and not args.submissions):
        parser.error("submission.csv inputs (all --dt *.csv) go with --output *.csv and --sizes; others with JSON")
    return args


def labels(paths) -> list:
    """Column names: the file names, numbered when two are the same."""
    from pathlib import Path

    names = [Path(p).name for p in paths]
    return [f"{i + 1}:{n}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def fuse_submissions(args) -> int:
    """submission.csv inputs: fused into --output (a submission), each input and the fusion scored with --gt."""
    from sna_det.evaluation import format_class_table
    from sna_det.evaluation.ensemble import fuse_submissions
    from sna_det.evaluation.vinbigdata import (
        VINBIGDATA_CLASSES,
        prediction_string,
        read_submission,
        vinbigdata_ground_truth,
        vinbigdata_image_sizes,
        vinbigdata_score,
        write_submission,
    )
    from sna_det.utils import atomic_write_json
    from sna_det.utils.cli import CommandError, option_values

    try:
        inputs = [read_submission(path) for path in args.dt]
        sizes = vinbigdata_image_sizes(args.sizes or args.gt)
        fused = fuse_submissions(inputs, sizes, names=args.dt, **option_values(args, *WBF_OPTIONS))
        write_submission(args.output, {image_id: prediction_string(d) for image_id, d in fused.items()})
        truth = vinbigdata_ground_truth(args.gt) if args.gt else None
    except (OSError, ValueError, KeyError) as error:
        raise CommandError(str(error.args[0] if isinstance(error, KeyError) else error)) from None
    boxes = sum(c != 14 for detections in fused.values() for c, _, _ in detections)
    print(f"{len(inputs)} submissions of {len(fused):,} images fused: {boxes:,} finding boxes, in {args.output}")
    if truth is None:
        return 0
    scored = [*inputs, read_submission(args.output)]  # the fusion as the written file scores
    results = {name: vinbigdata_score(truth, s, args.eval_iou) for name, s in zip([*labels(args.dt), "fused"], scored)}
    columns = {name: r["per_class"] for name, r in results.items()}
    print(f"\nAP@{args.eval_iou:g} (VOC2010 all-point, %; the VinBigData metric) per class:")
    print(format_class_table(list(VINBIGDATA_CLASSES), columns, {n: r["mean"] for n, r in results.items()},
                             total_label="Total (mean)"))  # fmt: skip
    if args.metrics_output:
        atomic_write_json(args.metrics_output, {"iou": args.eval_iou, "inputs": results})
        print(f"metrics written to {args.metrics_output}")
    return 0


def main(args) -> int:
    if args.submissions:
        return fuse_submissions(args)
    from sna_det.evaluation import evaluate_detections, format_class_table, load_coco_gt
    from sna_det.evaluation.ensemble import align_detections, fuse_detections, read_detection_file, reference_from_gt
    from sna_det.utils import atomic_write_json
    from sna_det.utils.cli import CommandError, option_values
    from sna_det.utils.paths import check_outputs_not_inputs

    check_outputs_not_inputs(
        {"--gt": args.gt, **{f"--dt {path}": path for path in args.dt}},
        {"--output": args.output, "--metrics-output": args.metrics_output},
    )
    try:
        inputs = [read_detection_file(path, path) for path in args.dt]
        reference = reference_from_gt(args.gt) if args.gt else None
        aligned, reference, skipped = align_detections(inputs, reference)
        sizes = {i: (image["width"], image["height"]) for i, image in reference.images.items()}
        fused = fuse_detections(aligned, sizes, **option_values(args, *WBF_OPTIONS))
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from None
    if args.gt:
        output = fused
    else:  # the ids are the first predictions file's: keep its images and categories beside them
        categories = [{"id": c, "name": n} for c, n in reference.categories.items()]
        annotations = [{"id": k + 1, **d, "area": d["bbox"][2] * d["bbox"][3]} for k, d in enumerate(fused)]
        output = {"images": list(reference.images.values()), "categories": categories, "annotations": annotations}
    try:  # a full disk, a read-only folder: one line naming the file, no partial file
        atomic_write_json(args.output, output)
    except OSError as error:
        raise CommandError(f"{error.filename}: cannot be written ({error.strerror or error})") from None
    counts = ", ".join(f"{reason} {n:,}" for reason, n in skipped.counts.items())
    print(f"detections: {skipped.read:,} read from {len(inputs)} files, {skipped.kept:,} fused, skipped: {counts}")
    for examples in skipped.examples(2).values():
        print("\n".join(f"  e.g. {e}" for e in examples))
    print(f"{len(fused):,} fused detections on {len({d['image_id'] for d in fused}):,} images written to {args.output}")
    if not args.gt:
        return 0
    gt = load_coco_gt(args.gt)
    results = {}
    for name, detections in zip([*labels(args.dt), "fused (WBF)"], [*aligned, fused]):
        results[name] = evaluate_detections(gt, detections, args.eval_iou)
    first = next(iter(results.values()))
    classes = list(first["gt_boxes"])
    for metric, title in (("voc2010", "VOC2010 all-point"), ("coco", "COCO 101-point")):
        print(f"\nAP@{args.eval_iou:g} ({title}, %) per class:")
        columns = {"GT boxes": first["gt_boxes"], **{n: r[metric]["per_class"] for n, r in results.items()}}
        total = {"GT boxes": sum(first["gt_boxes"].values()), **{n: r[metric]["mean"] for n, r in results.items()}}
        print(format_class_table(classes, columns, total, total_label="Total (mean)"))
    if args.metrics_output:
        atomic_write_json(args.metrics_output, {"iou": args.eval_iou, "inputs": results})
        print(f"metrics written to {args.metrics_output}")
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
