#!/usr/bin/env python
"""One table of the final metrics of several runs, like the paper's Tables 3 and 4.

    python tools/compare_runs.py output/VinDr-CXR/faster_rcnn_R_18_FPN output/vincxr_faster_sna --names R18 R18+SNA \\
        --output-md comparison.md --output-csv comparison.csv

Each argument is a tools/train_net.py OUTPUT_DIR; its metrics come from inference/results.json
(else the last evaluation in metrics.json). Prints a summary (AP, AP50, AP75, APs/m/l per task)
and, where the evaluator gave per-class AP (e.g. VinDr-CXR at IoU 0.4), classes × runs.
"""

import argparse
import sys
from pathlib import Path

from sna_det.run_comparison import comparison_csv, comparison_markdown, load_run_metrics
from sna_det.utils import atomic_write_text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dirs", nargs="+", help="OUTPUT_DIRs of tools/train_net.py runs")
    parser.add_argument("--names", nargs="+", help="a name per run (default: the folder names)")
    parser.add_argument("--dataset", help="the evaluated dataset to compare (default: each run's first)")
    parser.add_argument("--output-md", help="write the markdown here too")
    parser.add_argument("--output-csv", help="write one CSV row per run here")
    args = parser.parse_args(argv)
    names = args.names or [Path(d).name for d in args.output_dirs]
    if len(names) != len(args.output_dirs):
        parser.error(f"{len(names)} names for {len(args.output_dirs)} runs")
    try:
        runs = [load_run_metrics(d, args.dataset) for d in args.output_dirs]
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    markdown = comparison_markdown(names, runs)
    print(markdown)
    if args.output_md:
        atomic_write_text(args.output_md, markdown + "\n")
    if args.output_csv:
        atomic_write_text(args.output_csv, comparison_csv(names, runs))
    return 0


if __name__ == "__main__":
    from sna_det.cli import run_tool

    run_tool(main)
