#!/usr/bin/env python
"""Convert any VOC-format folder (Annotations/*.xml, JPEGImages/) to COCO JSON for detectron2.

    python datasets/prepare_voc_coco.py --voc-root my_voc --output-dir datasets/my_voc_coco
    python datasets/prepare_voc_coco.py --voc-root my_voc --output-dir out --classes classes.txt --val-fraction 0.1

Writes OUT/annotations/{train,val}.json (boxes; instance masks too when SegmentationObject/ is
there), a JPEGImages link and summary.json. Splits: ImageSets/Segmentation or ImageSets/Main
{train,val}.txt when present, else every XML split by --val-fraction (default 0.2) and --seed.
Train on it from a config alone: DATASETS.REGISTER (README, "Train on your own data").
"""

import argparse
import sys

from sna_det.data.voc_coco import DIFFICULT_POLICIES, convert_voc_coco, run_conversion


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voc-root", required=True, help="folder with Annotations/ and JPEGImages/")
    parser.add_argument("--output-dir", required=True, help="where annotations/, JPEGImages and summary.json go")
    parser.add_argument(
        "--classes", default="auto", help="auto (names found in the XMLs, sorted), voc (the 20 VOC classes) or a file"
    )
    parser.add_argument(
        "--val-fraction", type=float, help="split every XML: this share to val (default 0.2 without lists)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --val-fraction split")
    parser.add_argument("--difficult", choices=DIFFICULT_POLICIES, default="ignore", help="difficult objects")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad input instead of skipping it")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="start over in --output-dir (needed when it was converted with other settings)",
    )
    args = parser.parse_args(argv)
    return run_conversion(
        convert_voc_coco,
        args.voc_root,
        args.output_dir,
        classes=args.classes,
        val_fraction=args.val_fraction,
        seed=args.seed,
        difficult=args.difficult,
        strict=args.strict,
        rebuild=args.rebuild,
    )


if __name__ == "__main__":
    sys.exit(main())
