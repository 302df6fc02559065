#!/usr/bin/env python
"""Convert any VOC-format folder (Annotations/*.xml, JPEGImages/) to COCO JSON for detectron2.

    python datasets/prepare_voc_coco.py --voc-root my_voc --output-dir datasets/my_voc_coco
    python datasets/prepare_voc_coco.py --voc-root my_voc --output-dir out --classes classes.txt --val-fraction 0.1

Writes OUT/annotations/{train,val}.json (boxes; instance masks too when SegmentationObject/ is
there), a JPEGImages link and summary.json. Splits: ImageSets/Segmentation or ImageSets/Main
{train,val}.txt when present, else every XML split by --val-fraction (default 0.2) and --seed.
Train on it from a config alone: DATASETS.REGISTER (README, "Train on your own data").
The preset of datasets/prepare_coco.py --format voc (--voc-root is its --root).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling, as `python datasets/...` finds it
import prepare_coco  # noqa: E402

if __name__ == "__main__":
    arguments = prepare_coco.parse_args(preset="voc", description=__doc__)
    from sna_det.utils.cli import run_tool

    run_tool(prepare_coco.convert, arguments, **prepare_coco.run_options(arguments))
