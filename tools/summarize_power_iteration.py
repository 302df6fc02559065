#!/usr/bin/env python
"""Summarize SNA's power-iteration diagnostics of a training run, per placement.

    python tools/train_net.py --config-file <cfg> MODEL.SNA.DIAGNOSTICS_PERIOD 20 OUTPUT_DIR output/diag
    python tools/summarize_power_iteration.py output/diag [--csv output/diag/power_iteration_summary.csv]

Reads <OUTPUT_DIR>/power_iteration.jsonl (one record per image, placement and sampled iteration)
and prints a Markdown table: the power steps SNA takes, how far its rank-one map is from the SVD's
(median, max), sigma1, sigma2, sigma1/sigma2 (median, min) and the rank-one share of the energy.
"""

import argparse
import os


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a training OUTPUT_DIR or its power_iteration.jsonl")
    parser.add_argument("--csv", help="also write the summary as CSV to this file")
    parser.add_argument("--from-iteration", type=int, default=0, help="leave out sampled iterations before this")
    return parser.parse_args(argv)


def main(args) -> int:
    from sna_det.analysis.power_iteration_stats import (
        format_summary_table,
        read_power_iteration_records,
        summarize_power_iteration,
        summary_csv,
    )
    from sna_det.layers.power_iteration_accuracy import POWER_ITERATION_RECORDS
    from sna_det.utils import atomic_write_text
    from sna_det.utils.cli import CommandError
    from sna_det.utils.paths import check_outputs_not_inputs

    path = os.path.join(args.run, POWER_ITERATION_RECORDS) if os.path.isdir(args.run) else args.run
    check_outputs_not_inputs({"run": path}, {"--csv": args.csv})
    try:
        records = read_power_iteration_records(path)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from None
    kept = [r for r in records if r["iteration"] >= args.from_iteration]
    if not kept:
        raise CommandError(f"{path}: no record at iteration >= {args.from_iteration} (of {len(records)} read)")
    iterations = sorted({r["iteration"] for r in kept})
    print(
        f"{path}: {len(records)} records read, {len(kept)} kept, "
        f"{len(iterations)} sampled iterations ({iterations[0]}-{iterations[-1]})"
    )
    summaries = summarize_power_iteration(kept)
    print(format_summary_table(summaries))
    if args.csv:
        atomic_write_text(args.csv, summary_csv(summaries))
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
