#!/usr/bin/env python
"""Ground truth against detections, image by image: true positives, false positives and misses per class.

    python tools/visualize_predictions.py --gt datasets/vindr_cxr/annotations/val.json \\
        --image-root datasets/vindr_cxr/images \\
        --dt output/VinDr-CXR/faster_rcnn_R_18_FPN_sna/inference/coco_instances_results_vindr_cxr_val.json \\
        --iou 0.4 --score-thr 0.3 --classes Nodule/Mass "Pleural effusion" --output output/look

--dt takes COCO results or a predictions.json of tools/predict.py (matched to the ground truth's images
by file name). Per image a PNG (boxes in the class's colour: ground truth dashed, faint when found,
"miss" when not; true positives solid; false positives dotted, "FP"), then DIR/index.html (totals per
class, every image with its counts, filterable by class and kind) and DIR/summary.json (the counts).
A detection is a true positive when it overlaps a ground-truth box of its class with IoU > --iou (the
hit rate's matching, sna_det/evaluation/detection_ap.py: a second detection of a box is a TP too).
"""

import argparse


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", required=True, help="COCO ground truth JSON")
    parser.add_argument("--dt", required=True, help="COCO results or predictions.json")
    parser.add_argument("--image-root", help="folder of the ground truth's file_name (default: the --gt file's folder)")
    parser.add_argument("--iou", type=float, default=0.4, help="IoU above which a detection finds a box")
    parser.add_argument("--score-thr", type=float, default=0.5, help="draw and count detections scored at least this")
    parser.add_argument("--classes", nargs="+", help="only these classes (names, default: all)")
    parser.add_argument("--max-images", type=int, default=0, help="the first N images of the ground truth (0: all)")
    parser.add_argument("--max-size", type=int, default=1024, help="longer side of the PNGs in pixels (0: as is)")
    parser.add_argument("--output", required=True, help="folder for the PNGs, index.html and summary.json")
    args = parser.parse_args(argv)
    for flag, value in (("--iou", args.iou), ("--score-thr", args.score_thr)):
        if not 0.0 <= value <= 1.0:  # NaN too
            parser.error(f"{flag} {value} is not in [0, 1]")
    if args.max_images < 0 or args.max_size < 0:
        parser.error(f"--max-images {args.max_images} and --max-size {args.max_size} must be >= 0")
    return args


def main(args) -> int:
    from pathlib import Path

    from sna_det.analysis.prediction_report import visualize_predictions
    from sna_det.evaluation import load_coco_gt
    from sna_det.evaluation.ensemble import align_detections, read_detection_file, reference_from_gt
    from sna_det.utils.cli import CommandError, check_writable_dir, option_values
    from sna_det.utils.paths import check_outputs_not_inputs

    try:
        gt = load_coco_gt(args.gt).dataset
        aligned, _, skipped = align_detections([read_detection_file(args.dt, args.dt)], reference_from_gt(args.gt))
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from None
    known = [c["name"] for c in gt["categories"]]
    unknown = [c for c in args.classes or [] if c not in known]
    if unknown:
        raise CommandError(f"--classes: {unknown} are not classes of {args.gt}; it has {known}")
    check_writable_dir(args.output, "--output")
    written = ("index.html", "summary.json")  # beside the PNGs: never an input
    outputs = {f"--output {name}": Path(args.output) / name for name in written}
    check_outputs_not_inputs({"--gt": args.gt, "--dt": args.dt}, outputs)
    image_root = args.image_root or str(Path(args.gt).parent)
    rows, totals, unreadable = visualize_predictions(
        gt,
        aligned[0],
        args.output,
        image_root,
        iou=args.iou,
        score_threshold=args.score_thr,
        progress=True,
        **option_values(args, "classes", "max_images", "max_size"),
    )
    if not rows:
        raise CommandError(f"{image_root}: none of the ground truth's images could be read (give --image-root)")
    counts = ", ".join(f"{reason} {n:,}" for reason, n in skipped.counts.items() if n)
    print(f"detections: {skipped.read:,} read" + (f", left out: {counts}" if counts else ""))
    for name, kinds in totals.items():
        print(f"{name}: " + ", ".join(f"{kind} {n:,}" for kind, n in kinds.items()))
    if unreadable:
        print(f"{len(unreadable):,} images could not be read under {image_root}, e.g. {unreadable[0]}")
    print(f"wrote {len(rows):,} images and {args.output.rstrip('/')}/index.html")
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
