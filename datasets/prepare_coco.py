#!/usr/bin/env python
"""Convert a labelled folder (VOC, YOLO, labelme, VIA, CVAT or COCO) to COCO JSON for detectron2.

    python datasets/prepare_coco.py --format voc     --root my_voc     --output-dir datasets/my_coco
    python datasets/prepare_coco.py --format yolo    --root my_yolo    --output-dir datasets/my_coco
    python datasets/prepare_coco.py --format labelme --root my_labelme --output-dir datasets/my_coco
    python datasets/prepare_coco.py --format via     --root balloon    --output-dir datasets/balloon_coco
    python datasets/prepare_coco.py --format cvat    --root my_cvat    --output-dir datasets/my_coco
    python datasets/prepare_coco.py --format coco    --root roboflow   --output-dir datasets/my_coco

Writes OUT/annotations/{train,val}.json (boxes; polygons as drawn, masks where the input has masks), a
link to the images (OUT/JPEGImages for VOC, OUT/images for the others) and summary.json (what was
read, written and skipped, by reason, every skipped file named). Bad input (a missing image, a label
line with the wrong number of fields, a class index out of range, NaN, a box outside the image, ...)
leaves its image out and is counted; --strict stops at the first, naming the file and line or field.
Train on it from a config alone: DATASETS.REGISTER with the JSON and the image link printed at the end.
The formats and the options each takes are sna_det.data.prepare.formats; layouts: docs/formats.md.
"""

import argparse

FLAGS = {
    # option dest -> argparse arguments; which format takes which: sna_det.data.prepare.formats.FORMATS
    "classes": dict(
        help="auto (default: the names found, sorted; YOLO: data.yaml's or classes.txt), voc (the 20 VOC "
        "classes), or a file with one class name a line (YOLO: in index order)"
    ),
    "val_fraction": dict(type=float, help="pool every image and draw this share for val"),
    "seed": dict(type=int, help="seed of the --val-fraction draw (default 0)"),
    "difficult": dict(
        choices=("ignore", "keep", "drop"),
        help="VOC difficult objects: ignored by evaluation and training (iscrowd=1, default), kept, or dropped",
    ),
    "detection_splits": dict(action="store_true", default=None, help="voc2012: also ImageSets/Main, boxes only"),
    "data_yaml": dict(help="YOLO: the data.yaml (default ROOT/data.yaml when there)"),
    "class_attribute": dict(help="VIA: the region attribute holding the class"),
    "class_name": dict(help="VIA without --class-attribute: the one class (default: ROOT's name)"),
}


def parse_args(argv=None, preset=None, description=None) -> argparse.Namespace:
    """The options; ``preset`` fixes ``--format`` (the VOC scripts, with their own ``description``).
    An option the format does not take is a usage error (exit 2)."""
    parser = argparse.ArgumentParser(
        description=description or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if preset is None:
        parser.add_argument("--format", required=True, help="voc, voc2012, yolo, labelme, via, cvat or coco")
    flags = ("--root", "--voc-root") if preset is None else ("--voc-root", "--root")
    parser.add_argument(*flags, dest="root", required=True, help="the labelled folder")
    parser.add_argument("--output-dir", required=True, help="where annotations/, the image link and summary.json go")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad input instead of skipping it")
    parser.add_argument(
        "--rebuild", action="store_true", help="start over in --output-dir (needed when it was converted otherwise)"
    )
    for dest, arguments in FLAGS.items():
        parser.add_argument("--" + dest.replace("_", "-"), dest=dest, **arguments)
    args = parser.parse_args(argv)
    if preset is not None:
        args.format = preset
    from sna_det.data.prepare.formats import check_options  # after --help: it imports the package (torch)

    try:
        check_options(args.format, {dest: getattr(args, dest) for dest in FLAGS})
    except ValueError as error:
        parser.error(str(error))
    return args


def convert(args: argparse.Namespace) -> int:
    """Run the conversion ``args`` ask for and print the per-split counts, a few problems, the classes
    and where the dataset is; bad input or an unusable folder raises (one ``error:`` line from run_tool)."""
    from sna_det.data.prepare.conversion_report import format_problems
    from sna_det.data.prepare.formats import convert_folder
    from sna_det.utils.paths import check_folder_not_inside

    check_folder_not_inside(args.output_dir, args.root, "--output-dir", "--root")  # it would read what it writes
    options = {dest: getattr(args, dest) for dest in FLAGS}
    log = lambda line: print(line, flush=True)  # noqa: E731
    summary = convert_folder(
        args.format, args.root, args.output_dir, strict=args.strict, rebuild=args.rebuild, log=log, progress=True,
        **options,
    )  # fmt: skip
    problems = format_problems(summary)
    if problems:
        print(problems)
    print(f"classes ({len(summary['classes'])}): {', '.join(summary['classes'])}")
    print(f"images: {summary['images']}")
    print(f"summary: {args.output_dir}/summary.json")
    return 0


def main(argv=None, preset=None, description=None) -> int:
    return convert(parse_args(argv, preset=preset, description=description))


INPUT_ERRORS = (ValueError, OSError)
"""What run_tool prints as one line: ConversionInputError, PreparedFolderError (ValueError), OSError."""


def interrupted(args: argparse.Namespace) -> str:
    return f"interrupted: {args.output_dir} is not complete; run the same command again to continue"


def run_options(args: argparse.Namespace) -> dict:
    """``run_tool``'s keywords for this script and its presets: which errors are one line, what Ctrl-C says."""
    return {"input_errors": INPUT_ERRORS, "interrupted": interrupted(args)}


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(convert, arguments, **run_options(arguments))
