#!/usr/bin/env python
"""Losses and AP of one or several training runs (detectron2's metrics.json) as PNG plots, runs overlaid.

    python tools/plot_training_curves.py --run output/demo/faster_rcnn_R_18_FPN_sna --output output/curves
    python tools/plot_training_curves.py --run SNA=output/a --run baseline=output/b/metrics.json \\
        --keys "sna_power/*/map_rel_error_max" --output output/curves

Each --run is an OUTPUT_DIR or a metrics.json, optionally "label=" first (default: the folder name).
Writes losses.png, ap.png (if evaluated), metrics.png (for --keys) and training_curves.csv.
"""

import argparse
import os


def parse_runs(values):
    """{label: path} from "label=path" or "path" (labelled by its folder name)."""
    runs = {}
    for value in values:
        if "=" in value:
            label, path = value.split("=", 1)
        else:
            path = value
            folder = os.path.dirname(path) if os.path.basename(path) == "metrics.json" else path
            label = os.path.basename(os.path.normpath(folder))
        if label in runs:
            raise SystemExit(f"error: two runs labelled {label!r}; give them labels (label=path)")
        runs[label] = path
    return runs


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, help="[label=]OUTPUT_DIR or metrics.json")
    parser.add_argument("--output", required=True, help="folder for the PNGs and the CSV")
    parser.add_argument("--keys", nargs="*", default=[], help="more scalars to plot (shell patterns) in metrics.png")
    return parser.parse_args(argv)


def main(args) -> int:
    from sna_det.analysis.training_curves import write_training_curves
    from sna_det.utils.cli import CommandError

    try:
        written = write_training_curves(parse_runs(args.run), args.output, args.keys)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from None
    for name, keys in written.items():
        print(f"wrote {os.path.join(args.output, name)}: {', '.join(keys)}")
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
