#!/usr/bin/env python
"""Convert Pascal VOC 2012 to COCO JSON with instance masks, for Faster and Mask R-CNN.

    python datasets/prepare_voc2012_coco.py --voc-root VOCdevkit/VOC2012 --output-dir datasets/voc_2012_coco

Writes annotations/{train,val}.json (ImageSets/Segmentation, boxes and masks), with
--detection-splits also annotations/detection_{train,val,trainval}.json (ImageSets/Main, boxes),
a JPEGImages link and summary.json. Registered as voc_2012_coco_* (see datasets/README.md).
The conversion itself is sna_det.data.voc_coco.
"""

import argparse

from sna_det.data.voc_coco import DIFFICULT_POLICIES, convert_voc2012, run_conversion


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voc-root", required=True, help="the VOC2012 folder of VOCdevkit")
    parser.add_argument("--output-dir", required=True, help="where annotations/, JPEGImages and summary.json go")
    parser.add_argument("--detection-splits", action="store_true", help="also ImageSets/Main splits, boxes only")
    parser.add_argument(
        "--difficult",
        choices=DIFFICULT_POLICIES,
        default="ignore",
        help="difficult objects: ignored by evaluation and training (iscrowd=1, default), kept, or dropped",
    )
    parser.add_argument("--strict", action="store_true", help="stop at the first bad input instead of skipping it")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="start over in --output-dir (needed when it was converted with other settings)",
    )
    args = parser.parse_args(argv)
    return run_conversion(
        convert_voc2012,
        args.voc_root,
        args.output_dir,
        detection_splits=args.detection_splits,
        difficult=args.difficult,
        strict=args.strict,
        rebuild=args.rebuild,
    )


if __name__ == "__main__":
    from sna_det.cli import run_tool

    run_tool(main)
