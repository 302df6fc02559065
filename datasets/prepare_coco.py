#!/usr/bin/env python
"""Convert a labelled folder (VOC, YOLO, labelme or VIA) to COCO JSON for detectron2.

    python datasets/prepare_coco.py --format voc     --root my_voc     --output-dir datasets/my_coco
    python datasets/prepare_coco.py --format yolo    --root my_yolo    --output-dir datasets/my_coco
    python datasets/prepare_coco.py --format labelme --root my_labelme --output-dir datasets/my_coco
    python datasets/prepare_coco.py --format via     --root balloon    --output-dir datasets/balloon_coco

Writes OUT/annotations/{train,val}.json (boxes; masks where the input has polygons or masks), a link
to the images (OUT/JPEGImages for VOC, OUT/images for the others) and summary.json (what was read,
written and skipped, by reason, every skipped file named). Bad input (a missing image, a label line
with the wrong number of fields, a class index out of range, NaN, a box outside the image, ...)
leaves its image out and is counted; --strict stops at the first, naming the file and line or field.
Train on it from a config alone: DATASETS.REGISTER with the JSON and the image link printed at the end.
Layouts and options per format: docs/formats.md.
"""

import argparse

FORMATS = ("voc", "voc2012", "yolo", "labelme", "via")

OPTIONS = {
    # option dest -> the formats it applies to
    "classes": ("voc", "yolo", "labelme", "via"),
    "val_fraction": ("voc", "yolo", "labelme", "via"),
    "seed": ("voc", "yolo", "labelme", "via"),
    "difficult": ("voc", "voc2012"),
    "detection_splits": ("voc2012",),
    "data_yaml": ("yolo",),
    "class_attribute": ("via",),
    "class_name": ("via",),
}


def parse_args(argv=None, preset=None, description=None) -> argparse.Namespace:
    """The options; ``preset`` fixes ``--format`` and offers only its options (the VOC scripts, with
    their own ``description``)."""
    parser = argparse.ArgumentParser(
        description=description or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )

    def offered(dest: str) -> bool:
        return preset is None or preset in OPTIONS[dest]

    if preset is None:
        parser.add_argument("--format", required=True, choices=FORMATS, help="the labelling format of --root")
    flags = ("--root", "--voc-root") if preset is None else ("--voc-root", "--root")
    parser.add_argument(*flags, dest="root", required=True, help="the labelled folder")
    parser.add_argument("--output-dir", required=True, help="where annotations/, the image link and summary.json go")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad input instead of skipping it")
    parser.add_argument(
        "--rebuild", action="store_true", help="start over in --output-dir (needed when it was converted otherwise)"
    )
    if offered("classes"):
        parser.add_argument(
            "--classes",
            help="auto (default: the names found, sorted; YOLO: data.yaml's or classes.txt), voc (the 20 VOC "
            "classes), or a file with one class name a line (YOLO: in index order)",
        )
    if offered("val_fraction"):
        parser.add_argument("--val-fraction", type=float, help="pool every image and draw this share for val")
        parser.add_argument("--seed", type=int, help="seed of the --val-fraction draw (default 0)")
    if offered("difficult"):
        parser.add_argument(
            "--difficult",
            choices=("ignore", "keep", "drop"),
            help="VOC difficult objects: ignored by evaluation and training (iscrowd=1, default), kept, or dropped",
        )
    if offered("detection_splits"):
        parser.add_argument(
            "--detection-splits", action="store_true", default=None, help="voc2012: also ImageSets/Main, boxes only"
        )
    if offered("data_yaml"):
        parser.add_argument("--data-yaml", help="YOLO: the data.yaml (default ROOT/data.yaml when there)")
    if offered("class_attribute"):
        parser.add_argument("--class-attribute", help="VIA: the region attribute holding the class")
        parser.add_argument("--class-name", help="VIA without --class-attribute: the one class (default: ROOT's name)")
    args = parser.parse_args(argv)
    if preset is not None:
        args.format = preset
    for dest, formats in OPTIONS.items():
        if getattr(args, dest, None) is not None and args.format not in formats:
            flag = "--" + dest.replace("_", "-")
            parser.error(f"{flag} applies to --format {' or '.join(formats)}, not {args.format}")
    fraction = getattr(args, "val_fraction", None)
    if fraction is not None and not 0.0 < fraction < 1.0:
        parser.exit(1, f"error: --val-fraction {fraction} is not in (0, 1): train and val must both keep images\n")
    if args.format == "via" and args.classes is not None and args.class_attribute is None:
        parser.error("--classes applies to VIA with --class-attribute (without it every region is --class-name)")
    return args


def convert(args: argparse.Namespace) -> int:
    """Run the conversion ``args`` ask for and print the per-split counts, a few problems, the classes
    and where the dataset is; bad input or an unusable folder raises (one ``error:`` line from run_tool)."""
    from sna_det.data.prepare.coco_conversion import format_problems
    from sna_det.utils.paths import check_folder_not_inside

    check_folder_not_inside(args.output_dir, args.root, "--output-dir", "--root")  # it would read what it writes
    options = {d: getattr(args, d) for d in OPTIONS if getattr(args, d, None) is not None}
    common = dict(strict=args.strict, rebuild=args.rebuild)
    if args.format in ("voc", "voc2012"):
        from sna_det.data.prepare.voc import convert_voc2012, convert_voc_coco

        converter = convert_voc_coco if args.format == "voc" else convert_voc2012
    elif args.format == "yolo":
        from sna_det.data.prepare.yolo import convert_yolo as converter
    elif args.format == "labelme":
        from sna_det.data.prepare.labelme import convert_labelme as converter
    else:
        from sna_det.data.prepare.via import convert_via as converter
    log = lambda line: print(line, flush=True)  # noqa: E731
    summary = converter(args.root, args.output_dir, log=log, progress=True, **common, **options)
    problems = format_problems(summary)
    if problems:
        print(problems)
    print(f"classes ({len(summary['classes'])}): {', '.join(summary['classes'])}")
    print(f"images: {summary['images']}")
    print(f"summary: {args.output_dir}/summary.json")
    return 0


def main(argv=None) -> int:
    return convert(parse_args(argv))


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    interrupted = f"interrupted: {arguments.output_dir} is not complete; run the same command again to continue"
    # ConversionInputError, PreparedFolderError: ValueError, OSError
    run_tool(convert, arguments, input_errors=(ValueError, OSError), interrupted=interrupted)
