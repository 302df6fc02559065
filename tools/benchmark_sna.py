#!/usr/bin/env python
"""Benchmark Spectral Norm Attention: how it computes its map, the block alone, whole detectors.

    python tools/benchmark_sna.py                         # 800x1333, CPU: ~7 min on 2 quiet cores
    python tools/benchmark_sna.py --quick                 # small inputs, one repeat, fp32, eager: a smoke test
    python tools/benchmark_sna.py --device cuda --output bench.json   # adds the detector grid
    python tools/benchmark_sna.py --parts ops candidates  # no timing of detectors, < 1 min

Prints a markdown report measured on this machine, with the targets each part is held to:

0. ``ops``: aten operations one SNA forward dispatches on CUDA (each launches a kernel), counted
   without a GPU (``sna_det.op_count``), inference and training, fp32 and bf16, for both modes;
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
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

from sna_det.algorithm_benchmark import (  # noqa: E402
    BACKBONE_OP_COUNT_SIZE,
    OP_COUNT_SHAPES,
    compare_candidates,
    count_backbone_ops,
    count_block_ops,
)
from sna_det.benchmark import (  # noqa: E402
    benchmark_block,
    benchmark_detector_grid,
    benchmark_detectors,
    build_detector_pair,
    count_parameters,
    machine_info,
    stem_output_shape,
)
from sna_det.layers import SpectralNormAttention  # noqa: E402
from sna_det.utils import atomic_write_json  # noqa: E402

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
GOALS = {"R18-FPN, SNA in the stem and every block (Table 4)": 1.05, "R50-FPN, SNA after the stem": 1.02}
"""SNA / baseline time each detector pair is held to on an accelerator."""
RATIOS = (1.05, 1.2, 1.5, 4.0)
TARGETS = {"ops": 24, "svd_error": 1e-3, "stem_x_floor": 1.25, "block_share": 0.02}
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
        args.parts = list(PARTS if torch.device(args.device).type == "cuda" else PARTS[:-1])
    if min(args.height, args.width, args.batch, args.channels, args.repeats, args.block_repeats, args.grid_size) < 1:
        parser.error("sizes and repeats must be >= 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    if min(args.warmup, args.block_warmup) < 0:
        parser.error("warm-up rounds must be >= 0")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available")
    return args


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """All measurements the arguments ask for, as a JSON-ready dict; ``command`` is recorded."""
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


def _met(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def format_ops(ops: dict[str, Any]) -> list[str]:
    keys = list(ops["power"])
    rows = [[key, ops["power"][key], ops["svd"][key]] for key in keys]
    worst = max(ops["power"].values())
    return [
        "",
        "## Operations per SNA forward on CUDA (kernel-launching aten ops, counted without a GPU)",
        "",
        tabulate(rows, headers=["input, phase, precision", "power (default)", "svd"], tablefmt="github"),
        "",
        f"Target: <= {TARGETS['ops']} for the default (power) block: {worst} at most, {_met(worst <= TARGETS['ops'])}. "
        "An svd op launches many kernels inside cuSOLVER; the count is of aten ops.",
        *(format_backbone_ops(ops["backbones"]) if "backbones" in ops else []),
    ]


def format_backbone_ops(backbones: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    batch, height, width = BACKBONE_OP_COUNT_SIZE
    rows = []
    for label, pair in backbones.items():
        base, sna = pair["baseline"], pair["sna"]
        for phase in ("inference", "training"):
            extra = sna[phase] - base[phase]
            per_block = f"{extra / sna['sna_blocks']:.1f}" if sna["sna_blocks"] else ""
            rows.append([
                label, phase, sna["sna_blocks"], base[phase], sna[phase], f"{sna[phase] / base[phase]:.2f}", per_block
            ])  # fmt: skip
    headers = ["backbone", "phase", "SNA blocks", "ops without SNA", "ops with SNA", "ratio", "ops per SNA block"]
    return [
        "",
        f"## Operations per backbone forward on CUDA ({batch} images of {height}x{width}, fp32, random weights)",
        "",
        tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True),
    ]


def format_candidates(c: dict[str, Any]) -> list[str]:
    ratios = [str(r) for r in c["ratios"]]
    stem, branch = (f"{tuple(s)} inference fp32" for s in OP_COUNT_SHAPES)
    rows = []
    for name, r in c["candidates"].items():
        errors = [f"{r['errors'][k]['rank_one']:.1e} / {r['errors'][k]['weights']:.1e}" for k in ratios]
        rows.append([name, r["ops"][stem], r["ops"][branch], *errors, f"{r['forward_ms']:.2f}", f"{r['x_floor']:.2f}"])
    default = c["candidates"]["squaring k=8 (256 steps, the default)"]
    worst = max(default["errors"][k]["rank_one"] for k in ratios)
    return [
        "",
        f"## Ways to compute the map, side by side (timing input {tuple(c['timing_shape'])})",
        "",
        'Error: relative to `mode="svd"` (float64), largest over 4 images (4 x 32 x 48 x 64 features whose '
        "channel mean has the given sigma1/sigma2), of the rank-one map / of the applied weights. "
        f"Memory floor: {c['floor_ms']:.2f} ms.",
        "",
        tabulate(
            rows,
            headers=[
                "candidate",
                "ops (stem)",
                "ops (res4)",
                *(f"error at {r}" for r in ratios),
                "forward ms",
                "x floor",
            ],
            tablefmt="github",
            disable_numparse=True,
        ),
        "",
        f"Target: the default within {TARGETS['svd_error']:g} of the SVD's map for sigma1/sigma2 >= "
        f"{min(c['ratios'])}: {worst:.1e} at most, {_met(worst <= TARGETS['svd_error'])}.",
    ]


def format_detectors(grid: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    size = settings["grid_size"]
    lines = ["", f"## Detectors on {size}x{size}, batch 2: SNA / baseline", ""]
    rows = []
    for label, runs in grid.items():
        for key, r in runs.items():
            inference, train = r["inference"], r["train_step"]
            rows.append([
                label, key, f"{inference['baseline_ms']:.1f}", f"{inference['sna_ms']:.1f}",
                f"{inference['sna_over_baseline']:.3f}", f"{train['baseline_ms']:.1f}", f"{train['sna_ms']:.1f}",
                f"{train['sna_over_baseline']:.3f}",
            ])  # fmt: skip
    headers = ["model", "mode", "inference baseline ms", "SNA ms", "ratio", "train step baseline ms", "SNA ms", "ratio"]
    lines.append(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    for label, runs in grid.items():
        worst = max(
            max(r["inference"]["sna_over_baseline"], r["train_step"]["sna_over_baseline"]) for r in runs.values()
        )
        lines.append(f"\nGoal for {label}: <= {GOALS[label]:.2f}x; worst {worst:.3f}x, {_met(worst <= GOALS[label])}.")
    return lines


def format_header(results: dict[str, Any]) -> list[str]:
    m, s = results["machine"], results["settings"]
    return [
        "# SNA benchmark",
        "",
        f"- command: `{results['command']}`",
        f"- machine: torch {m['torch']}, detectron2 {m['detectron2']}, Python {m['python']}, "
        f"device {m['device']} ({m['device_name']}), torch threads: {m['threads']}, "
        f"{m['cpu_count']} CPUs, load average {m['load_average']} at start",
        f"- method: medians over interleaved rounds; block {s['block_repeats']} repeats after "
        f"{s['block_warmup']} warm-up, models {s['repeats']} repeats after {s['warmup']} warm-up",
        *(["- **--quick: a smoke test; do not draw conclusions from these numbers**"] if s["quick"] else []),
    ]


def format_block(block: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    floor = block["floor"]
    lines = [
        "",
        f"## SNA block, input {tuple(block['input_shape'])} "
        f"(stem output of {settings['batch']} x {settings['height']}x{settings['width']})",
        "",
        f"Power steps per image: {block['power_steps']} (fixed). Memory floor: `y = x * x.mean(1, keepdim=True)`.",
        "",
        "| block | forward ms | × floor | fwd+bwd ms | × floor | svd / power (fwd, fwd+bwd) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| memory floor | {floor['forward_ms']:.2f} | 1.00 | {floor['forward_backward_ms']:.2f} | 1.00 | |",
    ]
    for weighting, modes in block["sna"].items():
        for mode in ("power", "svd"):
            t = modes[mode]
            vs = modes["svd_over_power"]
            svd_cell = f"{vs['forward']:.2f}, {vs['forward_backward']:.2f}" if mode == "svd" else ""
            lines.append(
                f"| SNA {weighting}, {mode} | {t['forward_ms']:.2f} | {t['forward_x_floor']:.2f} "
                f"| {t['forward_backward_ms']:.2f} | {t['forward_backward_x_floor']:.2f} | {svd_cell} |"
            )
    ratio = block["sna"]["softmax_mean1"]["power"]["forward_x_floor"]
    lines += [
        "",
        f"Target: the default block's forward <= {TARGETS['stem_x_floor']}x the floor: {ratio:.2f}x, "
        f"{_met(ratio <= TARGETS['stem_x_floor'])}.",
    ]
    return lines


def format_model(model: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    params = model["parameters"]
    lines = [
        "",
        f"## Faster R-CNN R50-FPN, {settings['height']}x{settings['width']} random pixels, identical random weights",
        "",
        f"Parameters: baseline {params['baseline']:,}, SNA {params['sna']:,} "
        "(SNA model loaded the baseline's state_dict strictly). The RPN's box deltas are zeroed, so "
        "its proposals are anchors ranked by random objectness: ~1000 per image, as with trained weights.",
        "",
        "| step | baseline ms | SNA ms | SNA / baseline | per-round ratios, min-max |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in (("inference", "inference, 1 image"), ("train_step", "training step, 2 images, fwd+bwd")):
        t = model[key]
        rounds = t["sna_over_baseline_per_round"]
        lines.append(
            f"| {label} | {t['baseline_ms']:.1f} | {t['sna_ms']:.1f} | {t['sna_over_baseline']:.3f} "
            f"| {min(rounds):.3f}-{max(rounds):.3f} |"
        )
    return lines


def format_block_share(block: dict[str, Any], model: dict[str, Any]) -> list[str]:
    """The block's own time per image as a share of the baseline's inference: a sharper bound on
    SNA's overhead than the whole-model ratio, whose round-to-round noise on a CPU is larger."""
    per_image_ms = block["sna"]["softmax_mean1"]["power"]["forward_ms"] / block["input_shape"][0]
    inference_ms = model["inference"]["baseline_ms"]
    return [
        "",
        f"SNA block forward per image: {per_image_ms:.2f} ms = {100 * per_image_ms / inference_ms:.2f}% "
        f"of the baseline's inference ({inference_ms:.0f} ms). Target: <= {100 * TARGETS['block_share']:g}%, "
        f"{_met(per_image_ms / inference_ms <= TARGETS['block_share'])}.",
    ]


def format_markdown(results: dict[str, Any]) -> str:
    lines = format_header(results)
    if "ops" in results:
        lines += format_ops(results["ops"])
    if "candidates" in results:
        lines += format_candidates(results["candidates"])
    if "block" in results:
        lines += format_block(results["block"], results["settings"])
    if "model" in results:
        lines += format_model(results["model"], results["settings"])
    if "block" in results and "model" in results:
        lines += format_block_share(results["block"], results["model"])
    if "detectors" in results:
        lines += format_detectors(results["detectors"], results["settings"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    script, argv = (sys.argv[0], sys.argv[1:]) if argv is None else (__file__, argv)
    args = parse_args(argv)
    results = run(args, shlex.join(["python", script, *argv]))
    print(format_markdown(results))
    if args.output is not None:
        atomic_write_json(args.output, results)
        print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from sna_det.cli import run_tool

    run_tool(main)
