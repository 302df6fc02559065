#!/usr/bin/env python
"""Convert Pascal VOC 2012 to COCO JSON with instance masks, for Faster and Mask R-CNN.

    python datasets/prepare_voc2012_coco.py --voc-root VOCdevkit/VOC2012 --output-dir datasets/voc_2012_coco

Writes annotations/{train,val}.json (ImageSets/Segmentation, boxes and masks), with
--detection-splits also annotations/detection_{train,val,trainval}.json (ImageSets/Main, boxes),
a JPEGImages link and summary.json. Registered as voc_2012_coco_* (see datasets/README.md).
The conversion itself is sna_det.data.prepare.voc.
"""

from sna_det.data.prepare.voc import conversion_argument_parser, convert_voc2012, run_conversion


def main(argv=None) -> int:
    parser = conversion_argument_parser(__doc__, "the VOC2012 folder of VOCdevkit")
    parser.add_argument("--detection-splits", action="store_true", help="also ImageSets/Main splits, boxes only")
    args = parser.parse_args(argv)
    return run_conversion(convert_voc2012, args, detection_splits=args.detection_splits)


if __name__ == "__main__":
    from sna_det.utils.cli import run_tool

    run_tool(main, input_errors=(ValueError, OSError))  # VocInputError, PreparedFolderError
