#!/usr/bin/env python
"""Prepare VinDr-CXR (VinBigData or PhysioNet release) as COCO JSONs + 8-bit PNGs for sna-det.

    python datasets/prepare_vindr_cxr.py --vindr-root <download> --output-dir datasets/vindr_cxr
    python datasets/prepare_vindr_cxr.py --vindr-root <download> --stats-only --fusion per-finding
    python datasets/prepare_vindr_cxr.py --vindr-root <download> --output-dir <out> --readers R8,R9,R10
    python datasets/prepare_vindr_cxr.py --vindr-root <download> --stats-only \
        --split-file datasets/splits/vindr_cxr_sfsattention.json
    python datasets/prepare_vindr_cxr.py --vindr-root <csv folder> --image-dir <pngs> --sizes-csv <sizes.csv> ...

A re-run with the same settings continues where a killed or stopped run left off; other settings
(another --vindr-root or changed inputs included) into the same --output-dir are refused unless
--rebuild. Ctrl-C stops it with one line (exit 130); the same command continues. The logic is in
sna_det/data/prepare/vindr_cxr/; the layouts and options in datasets/README.md ('VinDr-CXR').
"""

import argparse
import os


def parse_args(argv=None) -> argparse.Namespace:
    """The command line, no torch (``--help`` answers at once). Options left out keep ``PrepareOptions``'
    defaults (datasets/README.md lists them)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--vindr-root", required=True, help="folder with train.csv (VinBigData) or annotations/ (PhysioNet)"
    )
    parser.add_argument("--output-dir", help="prepared folder (needed unless --stats-only)")
    parser.add_argument(
        "--fusion",
        metavar="FUSION",
        help="readers' boxes of a finding on an image: wbf (default), nms, none, or per-finding "
        "(one box per image and finding: Table 4's counts; --stats-only)",
    )
    parser.add_argument("--iou-thr", type=float, help="IoU threshold of wbf and nms (default 0.4)")
    parser.add_argument(
        "--readers", metavar="R8,R9,R10", help="keep only these readers' rows (rad_id: boxes and 'No finding')"
    )
    parser.add_argument("--max-size", type=int, help="long side of the PNGs at most (0: original size; default 1024)")
    parser.add_argument("--upscale", action="store_true", help="also enlarge images smaller than --max-size")
    parser.add_argument(
        "--intensity", choices=("file", "window", "percentile"), default="file",
        help="DICOM -> 8 bits: the file's own window (default), --window, or --percentiles (as INPUT.INTENSITY)",
    )  # fmt: skip
    parser.add_argument("--window", metavar="CENTER,WIDTH", help="with --intensity window")
    parser.add_argument("--percentiles", metavar="LOW,HIGH", default="0.5,99.5", help="with --intensity percentile")
    parser.add_argument("--clahe", action="store_true", help="then CLAHE (clip 2, 8 x 8 tiles; opencv)")
    parser.add_argument(
        "--val-fraction",
        type=float,
        help="share of train images in val, in [0, 1) (0: no val, only when a test split exists; default 0.2)",
    )
    parser.add_argument("--seed", type=int, help="seed of the train/val split (default 0)")
    parser.add_argument(
        "--split-file", help="JSON {split name: [image ids]}: these splits instead of the seeded train/val split"
    )
    parser.add_argument("--all-labels", action="store_true", help="keep every label, not only the paper's 14 findings")
    parser.add_argument("--drop-no-finding", action="store_true", help="leave out images without boxes")
    parser.add_argument("--stats-only", action="store_true", help="read the CSVs only and print the per-class summary")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad input")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes converting images (default: CPU count)"
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="start over in --output-dir (needed when it was prepared with other settings)",
    )
    parser.add_argument("--image-dir", help="already-converted <image_id>.png/.jpg instead of the DICOMs")
    parser.add_argument("--sizes-csv", help="with --image-dir: image_id,width,height (or dim0,dim1) of the DICOMs")
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    from sna_det.data.images import Intensity
    from sna_det.data.prepare.vindr_cxr import PrepareOptions, format_prepare_summary, prepare_vindr_cxr
    from sna_det.utils.cli import CommandError, option_values
    from sna_det.utils.paths import check_folder_not_inside

    if args.output_dir:  # a folder inside the input would be read as input
        check_folder_not_inside(args.output_dir, args.vindr_root, "--output-dir", "--vindr-root")

    try:
        window, percentiles = ([float(v) for v in (t or "").split(",") if v] for t in (args.window, args.percentiles))
        intensity = Intensity(args.intensity, tuple(window), tuple(percentiles), args.clahe)
    except ValueError as error:
        raise CommandError(f"--intensity: {error}") from None
    given = option_values(args, "fusion", "iou_thr", "max_size", "val_fraction", "seed")
    flags = option_values(args, "upscale", "all_labels", "drop_no_finding", "stats_only", "strict", "rebuild")
    options = PrepareOptions(
        **{k: v for k, v in given.items() if v is not None},
        **flags,
        intensity=intensity,
        workers=args.workers,
        progress=True,
        split_file=args.split_file,
        readers=None if args.readers is None else tuple(r.strip() for r in args.readers.split(",")),
    )
    result = prepare_vindr_cxr(args.vindr_root, args.output_dir, options, args.image_dir, args.sizes_csv)
    if result.resumed or result.stale_removed or result.damaged:
        print(
            f"resumed: {result.resumed:,} images finished by an earlier run kept, {result.converted:,} converted now "
            f"({result.damaged:,} of them damaged finished images converted again), "
            f"{result.stale_removed:,} temporary files of a killed run removed"
        )
    print(format_prepare_summary(result))
    if args.output_dir:
        print(
            f"\nwritten to {args.output_dir} (summary.json, prepare_report.json"
            + (")" if args.stats_only else ", annotations/, images/)")
        )
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    where = f"{arguments.output_dir} is not complete" if arguments.output_dir else "stopped"
    if arguments.output_dir and arguments.rebuild:  # the rebuild is made aside: the earlier dataset is intact
        where = f"the rebuild of {arguments.output_dir} is not finished (what was there is unchanged)"
    interrupted = f"interrupted: {where}; run the same command again to continue"
    run_tool(
        main, arguments, input_errors=(ValueError, OSError), interrupted=interrupted
    )  # VinDrInputError: a ValueError
