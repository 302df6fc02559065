#!/usr/bin/env python
"""Spatial redundancy of images, as in the paper's Fig. 1 (b)-(e): explained-variance curves,
rank-1 and rank-30 reconstructions, mean maximal explained variance against the number of images.

    python tools/analyze_redundancy.py --input sna_demo_train --output output/redundancy
    python tools/analyze_redundancy.py --input "X-rays=/data/cxr_png" --input "photos=/data/coco/val2017" \\
        --max-images 200 --max-side 1024 --output output/redundancy

Each --input is a registered dataset name, a folder or an image file, optionally "label=" first;
several --input are compared on the same plots. Writes PNGs and CSVs (sna_det.analysis.redundancy_report).
"""

import argparse


def parse_inputs(values):
    """{label: [sources]} from "label=source[,source...]" or "source" (its own label)."""
    sources = {}
    for value in values:
        label, _, rest = value.partition("=") if "=" in value else (value, "", value)
        sources.setdefault(label, []).extend(s for s in rest.split(",") if s)
    return sources


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", action="append", required=True, help="[label=]dataset name, folder or image")
    parser.add_argument("--output", required=True, help="folder for the PNGs and CSVs")
    parser.add_argument("--max-images", type=int, default=100, help="first N images of each input (0 = all)")
    parser.add_argument("--max-side", type=int, default=0, help="shrink images to this longer side (0 = keep)")
    parser.add_argument("--top-k", type=int, default=50, help="singular values in the curves")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 30], help="ranks of the reconstructions")
    parser.add_argument("--subtract-mean", action="store_true", help="decompose each image minus its mean")
    return parser.parse_args(argv)


def main(args) -> int:
    import numpy as np

    import sna_det  # noqa: F401  (registers the datasets)
    from sna_det.analysis.redundancy_report import REPORT_FILES, write_redundancy_report
    from sna_det.utils.cli import CommandError

    try:
        results = write_redundancy_report(
            parse_inputs(args.input),
            args.output,
            max_images=args.max_images,
            max_side=args.max_side,
            top_k=args.top_k,
            ranks=args.ranks,
            subtract_mean=args.subtract_mean,
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    for label, rows in results.items():
        max_evr = np.array([r.max_evr for r in rows])
        rank_99 = np.array([r.rank_99 for r in rows])
        print(
            f"{label}: {len(rows)} images, mean maximal EVR {max_evr.mean():.4f} (min {max_evr.min():.4f}, "
            f"max {max_evr.max():.4f}); singular values for 99% of the energy: median {np.median(rank_99):g}"
        )
    for name in REPORT_FILES.values():
        print(f"wrote {args.output.rstrip('/')}/{name}")
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
