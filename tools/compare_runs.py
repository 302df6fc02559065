#!/usr/bin/env python
"""One table of the final metrics of several runs, like the paper's Tables 3 and 4, and which differences are noise.

    python tools/compare_runs.py output/R18_s0 output/R18_s1 output/sna_s0 output/sna_s1 --names R18 R18 SNA SNA
    python tools/compare_runs.py output/R18_s0 output/sna_s0 --gt datasets/vindr_cxr/annotations/test.json \\
        --bootstrap 1000 --seed 0 --iou 0.4 --output-md comparison.md --output-csv comparison.csv

Each argument is a tools/train_net.py OUTPUT_DIR; its metrics come from inference/results.json (else
the last evaluation in metrics.json). Runs with the same --names entry (e.g. seeds of one config) make
one row: mean ± standard deviation (n); without --names, folders of one name are told apart by their
parents (a/run, b/run), never grouped. Then, per task and per-class metric (AP, and the hit rate of
Table 4), classes × names.

With --gt (the COCO ground truth the runs were evaluated on), every run is compared with the first
(or --reference): a paired bootstrap over the test images (--bootstrap samples, --seed) of the
difference in mean AP at --iou and in mean hit rate, from the detections each run saved
(inference/coco_instances_results*.json). An interval that holds 0: the test set cannot tell the two
apart (sna_det/evaluation/paired_bootstrap.py).
"""

import argparse
from pathlib import Path


def distinct_names(folders) -> list:
    """A name per run folder: its name, or as many trailing path parts as tell it from the other
    folders of that name (``a/run``, ``b/run``), so that only --names groups runs."""
    names = []
    for folder in folders:
        depth = 1
        while depth < len(folder.parts) and any(
            o != folder and o.parts[-depth:] == folder.parts[-depth:] for o in folders
        ):
            depth += 1
        names.append("/".join(folder.parts[-depth:]))
    return names


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (no torch: ``--help`` answers at once)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dirs", nargs="+", help="OUTPUT_DIRs of tools/train_net.py runs")
    parser.add_argument("--names", nargs="+", help="a name per run; equal names are grouped (default: folder names)")
    parser.add_argument("--dataset", help="the evaluated dataset to compare (default: each run's first)")
    parser.add_argument("--output-md", help="write the markdown here too")
    parser.add_argument("--output-csv", help="write one CSV row per run here")
    parser.add_argument("--gt", help="COCO ground truth of the evaluation: paired bootstrap of each run vs the first")
    parser.add_argument("--reference", help="with --gt: the OUTPUT_DIR compared against (default: the first)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap samples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (same seed, same interval)")
    parser.add_argument("--iou", type=float, default=0.4, help="IoU of the bootstrapped AP and hit rate")
    args = parser.parse_args(argv)
    if not 0.0 <= args.iou <= 1.0 or args.bootstrap < 1:  # NaN too
        parser.error(f"--iou {args.iou} must be in [0, 1] and --bootstrap {args.bootstrap} at least 1")
    resolved = [Path(d).resolve() for d in args.output_dirs]
    twice = next((d for d, r in zip(args.output_dirs, resolved) if resolved.count(r) > 1), None)
    if twice is not None:
        parser.error(f"{twice}: the same run given twice")
    args.names = args.names or distinct_names(resolved)
    if len(args.names) != len(args.output_dirs):
        parser.error(f"{len(args.names)} names for {len(args.output_dirs)} runs")
    return args


def main(args: argparse.Namespace) -> int:
    from sna_det.evaluation.paired_bootstrap import paired_bootstrap
    from sna_det.evaluation.run_comparison import (
        bootstrap_markdown,
        comparison_csv,
        comparison_markdown,
        detections_file,
        load_run_metrics,
    )
    from sna_det.utils import atomic_write_text
    from sna_det.utils.paths import check_outputs_not_inputs

    inputs = {"--gt": args.gt}
    for folder in args.output_dirs:
        for name in ("inference/results.json", "metrics.json"):
            inputs[f"{folder}'s {name}"] = Path(folder) / name
    check_outputs_not_inputs(inputs, {"--output-md": args.output_md, "--output-csv": args.output_csv})
    names = args.names
    runs = [load_run_metrics(d, args.dataset) for d in args.output_dirs]
    markdown = comparison_markdown(names, runs)
    if args.gt:
        reference = args.reference or args.output_dirs[0]
        others = [(n, d) for n, d in zip(names, args.output_dirs) if Path(d) != Path(reference)]
        reference_name = names[args.output_dirs.index(reference)] if reference in args.output_dirs else reference
        base = detections_file(reference, args.dataset)
        results = [
            paired_bootstrap(args.gt, base, detections_file(d, args.dataset), args.iou, args.bootstrap, args.seed)
            for _, d in others
        ]
        pairs = [f"{n} ({d}) vs {reference_name} ({reference})" for n, d in others]
        markdown += (
            f"\n\nPaired bootstrap over the test images ({args.bootstrap} samples, seed {args.seed}): B − A\n\n"
            + bootstrap_markdown(pairs, results)
        )
    print(markdown)
    if args.output_md:
        atomic_write_text(args.output_md, markdown + "\n")
    if args.output_csv:
        atomic_write_text(args.output_csv, comparison_csv(names, runs))
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments, input_errors=(FileNotFoundError, ValueError))
