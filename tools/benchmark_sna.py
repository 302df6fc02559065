#!/usr/bin/env python
"""Benchmark Spectral Norm Attention: how it computes its map, the block alone, whole detectors.

    python tools/benchmark_sna.py                         # 800x1333, CPU: ~7 min on 2 quiet cores
    python tools/benchmark_sna.py --quick                 # small inputs, one repeat, fp32, eager: a smoke test
    python tools/benchmark_sna.py --device cuda --output bench.json   # adds the detector grid
    python tools/benchmark_sna.py --parts ops candidates  # no timing of detectors, < 1 min

Prints a markdown report measured on this machine, with the targets each part is held to:

0. ``ops``: aten operations one SNA forward dispatches on CUDA (each launches a kernel), counted
   without a GPU (``sna_det.benchmarks.op_count``), inference and training, fp32 and bf16, for both modes;
   and those of whole backbones (``DETECTOR_PAIRS``: Table 4's R18-FPN, R50-FPN with SNA after the
   stem), each with and without SNA;
   ``candidates``: the ways to compute the rank-one map side by side (``power_iteration_candidates``):
   op counts, error against the SVD at prescribed sigma1/sigma2, forward time against the floor;
1. the SNA block on a stem-resolution input (batch x 64 x H/4 x W/4), forward and
   forward+backward, in ms and as a multiple of the "memory floor" ``x * x.mean(1, keepdim=True)``,
   for both weightings, power iteration vs exact SVD;
2. Faster R-CNN R50-FPN with SNA (configs/COCO-Detection/faster_rcnn_R_50_FPN_sna_1x.yaml) vs the
   same model without it (faster_rcnn_R_50_FPN_1x.yaml), sharing one set of random weights:
   inference on one image and a training step (forward+backward) on two, ms and SNA/baseline;
3. ``detectors`` (default on CUDA): R18-FPN with SNA in the stem and every block (Table 4) and
   R50-FPN with SNA after the stem, each against its baseline, ``--grid-size`` (1024x1024), batch 2,
   fp32 and bf16 autocast, inference and training step, eager and with the backbone compiled.

Cases are warmed up, then run interleaved (A B A B ...) and the median is reported; on a busy
machine, compare ratios rather than absolute times, and pass ``--threads 1`` when other processes
occupy the cores (more torch threads than free cores can slow small ops tens of times).
``--output`` also writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "COCO-Detection"
DETECTOR_PAIRS = {
    "R18-FPN, SNA in the stem and every block (Table 4)": (
        ROOT / "configs" / "VinDr-CXR" / "faster_rcnn_R_18_FPN.yaml",
        ROOT / "configs" / "VinDr-CXR" / "faster_rcnn_R_18_FPN_sna.yaml",
    ),
    "R50-FPN, SNA after the stem": (
        CONFIGS / "faster_rcnn_R_50_FPN_1x.yaml",
        CONFIGS / "faster_rcnn_R_50_FPN_sna_1x.yaml",
    ),
}
"""SNA / baseline time each detector pair is held to on an accelerator."""
RATIOS = (1.05, 1.2, 1.5, 4.0)
FULL = {
    "height": 800,
    "width": 1333,
    "repeats": 3,
    "warmup": 1,
    "block_repeats": 20,
    "block_warmup": 3,
    "grid_size": 1024,
}
QUICK = {
    "height": 256,
    "width": 320,
    "repeats": 1,
    "warmup": 0,
    "block_repeats": 1,
    "block_warmup": 1,
    "grid_size": 128,
}
SETTINGS = (*FULL, "batch", "channels", "device", "threads", "parts", "seed", "quick", "no_compile")
PARTS = ("ops", "candidates", "block", "model", "detectors")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_argument_group("sizes (defaults: full / --quick)")
    size.add_argument("--height", type=int, help="input image height (800 / 256)")
    size.add_argument("--width", type=int, help="input image width (1333 / 320)")
    size.add_argument("--batch", type=int, default=2, help="images in the block's input (2)")
    size.add_argument("--channels", type=int, default=64, help="channels of the block's input, the stem's (64)")
    timing = parser.add_argument_group("timing (defaults: full / --quick)")
    timing.add_argument("--repeats", type=int, help="timed rounds per model case (3 / 1)")
    timing.add_argument("--warmup", type=int, help="untimed rounds per model case (1 / 0)")
    timing.add_argument("--block-repeats", type=int, help="timed rounds per block case (20 / 1)")
    timing.add_argument("--block-warmup", type=int, help="untimed rounds per block case (3 / 1)")
    parser.add_argument("--quick", action="store_true", help="small input and one repeat, for smoke tests")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (cpu)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, help="what to measure (all but detectors on the CPU; all on CUDA)"
    )
    parser.add_argument("--grid-size", type=int, help="square image side of the detector grid (1024 / 128)")
    parser.add_argument("--no-compile", action="store_true", help="detector grid: eager only, no torch.compile")
    parser.add_argument(
        "--config-file", default=str(CONFIGS / "faster_rcnn_R_50_FPN_sna_1x.yaml"), help="the model with SNA"
    )
    parser.add_argument(
        "--baseline-config", default=str(CONFIGS / "faster_rcnn_R_50_FPN_1x.yaml"), help="the same model without"
    )
    parser.add_argument("--seed", type=int, default=0, help="for inputs, weights and proposal sampling (0)")
    parser.add_argument("--output", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.parts is None:
        args.parts = list(PARTS if args.device.split(":")[0] == "cuda" else PARTS[:-1])
    if min(args.height, args.width, args.batch, args.channels, args.repeats, args.block_repeats, args.grid_size) < 1:
        parser.error("sizes and repeats must be >= 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    if min(args.warmup, args.block_warmup) < 0:
        parser.error("warm-up rounds must be >= 0")
    return args


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """All measurements the arguments ask for, as a JSON-ready dict; ``command`` is recorded."""
    import torch

    from sna_det.benchmarks.algorithm import compare_candidates, count_backbone_ops, count_block_ops
    from sna_det.benchmarks.block import benchmark_block, stem_output_shape
    from sna_det.benchmarks.detectors import (
        benchmark_detector_grid,
        benchmark_detectors,
        build_detector_pair,
        count_parameters,
    )
    from sna_det.benchmarks.timing import machine_info
    from sna_det.layers import SpectralNormAttention
    from sna_det.utils.cli import CommandError

    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"--device {args.device}: CUDA is not available")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results: dict[str, Any] = {
        "command": command,
        "machine": machine_info(device),
        "settings": {key: getattr(args, key) for key in SETTINGS},
    }
    if "ops" in args.parts:
        print("counting the SNA block's operations ...", file=sys.stderr, flush=True)
        results["ops"] = {mode: count_block_ops(SpectralNormAttention(mode=mode)) for mode in ("power", "svd")}
        results["ops"]["backbones"] = {
            label: {"baseline": count_backbone_ops(baseline), "sna": count_backbone_ops(sna)}
            for label, (baseline, sna) in DETECTOR_PAIRS.items()
        }
    if "candidates" in args.parts:
        print("comparing the ways to compute the map ...", file=sys.stderr, flush=True)
        shape = stem_output_shape(args.height, args.width, args.batch, args.channels)
        results["candidates"] = compare_candidates(
            RATIOS, shape, device, repeats=args.block_repeats, warmup=args.block_warmup
        )
    if "block" in args.parts:
        shape = stem_output_shape(args.height, args.width, args.batch, args.channels)
        print(f"timing the SNA block on {shape} ...", file=sys.stderr, flush=True)
        results["block"] = benchmark_block(
            shape, device, repeats=args.block_repeats, warmup=args.block_warmup, seed=args.seed
        )
    if "model" in args.parts:
        print(f"timing the detectors at {args.height}x{args.width} ...", file=sys.stderr, flush=True)
        baseline, sna = build_detector_pair(args.baseline_config, args.config_file, args.device, args.seed)
        results["model"] = {
            "baseline_config": args.baseline_config,
            "sna_config": args.config_file,
            "parameters": {"baseline": count_parameters(baseline), "sna": count_parameters(sna)},
            **benchmark_detectors(
                baseline, sna, args.height, args.width, device, repeats=args.repeats, warmup=args.warmup, seed=args.seed
            ),
        }
    if "detectors" in args.parts:
        size = args.grid_size
        print(f"timing the detector grid at {size}x{size} ...", file=sys.stderr, flush=True)
        results["detectors"] = benchmark_detector_grid(
            {label: tuple(map(str, pair)) for label, pair in DETECTOR_PAIRS.items()}, size, size, device,
            precisions=("fp32",) if args.quick else ("fp32", "bf16"),  # bf16 on a CPU is slow
            compiled=(False,) if args.no_compile or args.quick else (False, True), repeats=args.repeats,
            warmup=args.warmup, seed=args.seed,
        )  # fmt: skip
    return results


def main(args: argparse.Namespace) -> int:
    from sna_det.benchmarks.sna_report import format_markdown
    from sna_det.utils import atomic_write_json

    results = run(args, shlex.join(["python", sys.argv[0], *sys.argv[1:]]))
    print(format_markdown(results))
    if args.output is not None:
        atomic_write_json(args.output, results)
        print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
