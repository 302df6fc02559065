#!/usr/bin/env python
"""Turn pickled lists of image ids (how the SNA paper's authors published their split) into a split JSON.

    python datasets/split_from_pickles.py --split train=trKeys.txt --split test=teKeys.txt \\
        --output datasets/splits/vindr_cxr_sfsattention.json

The pickles are read without running code from them (sna_det/data/prepare/vindr_cxr/split_file.py:
read_pickled_id_list resolves no global name; anything but a list of strings is refused). The JSON,
{split name: [image ids]}, is what datasets/prepare_vindr_cxr.py --split-file reads.
"""

import argparse


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (no torch: ``--help`` answers at once)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", action="append", required=True, metavar="NAME=PICKLE", help="one per split")
    parser.add_argument("--output", required=True, help="the split JSON to write")
    args = parser.parse_args(argv)
    return args


def main(args: argparse.Namespace) -> int:
    from sna_det.data.prepare.vindr_cxr.split_file import read_pickled_id_list
    from sna_det.utils import atomic_write_json
    from sna_det.utils.cli import CommandError
    from sna_det.utils.paths import check_outputs_not_inputs

    given = {f"--split {n}": p for n, _, p in (s.partition("=") for s in args.split) if p}
    check_outputs_not_inputs(given, {"--output": args.output})  # before any work
    splits = {}
    for item in args.split:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise CommandError(f"--split {item!r}: expected NAME=PICKLE")
        splits[name] = read_pickled_id_list(path)
        print(f"{name}: {len(splits[name]):,} ids from {path}")
    atomic_write_json(args.output, splits, indent=None)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments, input_errors=(ValueError,))  # VinDrInputError: the pickle, named
