#!/usr/bin/env python
"""Convert any VOC-format folder (Annotations/*.xml, JPEGImages/) to COCO JSON for detectron2.

    python datasets/prepare_voc_coco.py --voc-root my_voc --output-dir datasets/my_voc_coco
    python datasets/prepare_voc_coco.py --voc-root my_voc --output-dir out --classes classes.txt --val-fraction 0.1

Writes OUT/annotations/{train,val}.json (boxes; instance masks too when SegmentationObject/ is
there), a JPEGImages link and summary.json. Splits: ImageSets/Segmentation or ImageSets/Main
{train,val}.txt when present, else every XML split by --val-fraction (default 0.2) and --seed.
Train on it from a config alone: DATASETS.REGISTER (README, "Train on your own data").
"""

from sna_det.data.prepare.voc import conversion_argument_parser, convert_voc_coco, run_conversion


def main(argv=None) -> int:
    parser = conversion_argument_parser(__doc__, "folder with Annotations/ and JPEGImages/")
    parser.add_argument(
        "--classes", default="auto", help="auto (names found in the XMLs, sorted), voc (the 20 VOC classes) or a file"
    )
    parser.add_argument(
        "--val-fraction", type=float, help="split every XML: this share to val (default 0.2 without lists)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --val-fraction split")
    args = parser.parse_args(argv)
    return run_conversion(convert_voc_coco, args, classes=args.classes, val_fraction=args.val_fraction, seed=args.seed)


if __name__ == "__main__":
    from sna_det.utils.cli import run_tool

    run_tool(main, input_errors=(ValueError, OSError))  # VocInputError, PreparedFolderError
