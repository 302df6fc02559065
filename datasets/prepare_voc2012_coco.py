#!/usr/bin/env python
"""Convert Pascal VOC 2012 to COCO JSON with instance masks, for Faster and Mask R-CNN.

    python datasets/prepare_voc2012_coco.py --voc-root VOCdevkit/VOC2012 --output-dir datasets/voc_2012_coco

Writes annotations/{train,val}.json (ImageSets/Segmentation, boxes and masks), with
--detection-splits also annotations/detection_{train,val,trainval}.json (ImageSets/Main, boxes),
a JPEGImages link and summary.json. Registered as voc_2012_coco_* (see datasets/README.md).
The preset of datasets/prepare_coco.py --format voc2012; the conversion is sna_det.data.prepare.voc.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling, as `python datasets/...` finds it
import prepare_coco  # noqa: E402

if __name__ == "__main__":
    arguments = prepare_coco.parse_args(preset="voc2012", description=__doc__)
    from sna_det.utils.cli import run_tool

    run_tool(prepare_coco.convert, arguments, **prepare_coco.run_options(arguments))
