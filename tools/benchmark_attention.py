#!/usr/bin/env python
"""Every attention type side by side: parameters, FLOPs, inference images/s and training-step time.

    python tools/benchmark_attention.py --config-file configs/VinDr-CXR/faster_rcnn_R_18_FPN.yaml --size 512 512
    python tools/benchmark_attention.py --config-file configs/VinDr-CXR/faster_rcnn_D_121_FPN.yaml --kind backbone
    python tools/benchmark_attention.py --config-file configs/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml \\
        --types none sna nonlocal --placement nonlocal=stem  # non-local at the stem: skipped, says why

Each type is the config with MODEL.ATTENTION switched (placements as in the project's configs:
SNA after the stem, non-local in res4/dense3, the others in every block; --placement
overrides), all models sharing the weights they have in common, measured in one run, interleaved,
medians over --repeats rounds. The table gives ratios to "none" (the baseline).
"""

import argparse
import json


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument(
        "--types",
        nargs="+",
        metavar="TYPE",
        help="attention types to compare (default: every one, sna_det.layers.ATTENTION_TYPES; 'none' is the baseline)",
    )
    parser.add_argument("--kind", choices=["detector", "backbone"], default="detector")
    parser.add_argument("--size", nargs=2, type=int, default=[800, 1333], metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--max-affinity-gib", type=float, default=2.0, help="skip non-local beyond this")
    parser.add_argument(
        "--placement",
        nargs="*",
        default=[],
        metavar="TYPE=WHERE",
        help="override a type's placement: WHERE is stem, blocks or stem+blocks (e.g. nonlocal=stem)",
    )
    parser.add_argument("--output", help="also write the result (with every sample) as JSON here")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, KEY VALUE ...")
    args = parser.parse_args(argv)
    args.placements = dict(item.split("=", 1) for item in args.placement if "=" in item)
    if len(args.placements) != len(args.placement):
        parser.error(f"--placement takes TYPE=WHERE items, got {args.placement}")
    return args


def main(args) -> int:
    import torch

    from sna_det.benchmarks.attention_types import benchmark_attention, format_attention_table
    from sna_det.benchmarks.timing import machine_info
    from sna_det.layers import ATTENTION_TYPES
    from sna_det.utils import atomic_write_json
    from sna_det.utils.cli import CommandError, option_values

    types = args.types or list(ATTENTION_TYPES)
    unknown = [t for t in types if t not in ATTENTION_TYPES]
    if unknown:
        raise CommandError(f"--types {unknown}: not attention types; known: {list(ATTENTION_TYPES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = benchmark_attention(
            args.config_file,
            types=types,
            height=args.size[0],
            width=args.size[1],
            **option_values(args, "kind", "device", "repeats", "warmup", "max_affinity_gib", "placements", "opts"),
        )
    except (ValueError, FileNotFoundError) as error:
        raise CommandError(str(error)) from None
    result["machine"] = machine_info(torch.device(args.device))
    print(f"{args.config_file}, {args.kind}, input {args.size[0]}x{args.size[1]}, {args.repeats} rounds")
    print(json.dumps(result["machine"]))
    print(format_attention_table(result))
    if args.output:
        atomic_write_json(args.output, result)
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
