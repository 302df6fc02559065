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

import importlib.util
from pathlib import Path


def _prepare_coco():
    spec = importlib.util.spec_from_file_location("prepare_coco", Path(__file__).with_name("prepare_coco.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    prepare_coco = _prepare_coco()
    return prepare_coco.convert(prepare_coco.parse_args(argv, preset="voc", description=__doc__))


if __name__ == "__main__":
    prepare_coco = _prepare_coco()
    arguments = prepare_coco.parse_args(preset="voc", description=__doc__)
    from sna_det.utils.cli import run_tool

    interrupted = f"interrupted: {arguments.output_dir} is not complete; run the same command again to continue"
    run_tool(prepare_coco.convert, arguments, input_errors=(ValueError, OSError), interrupted=interrupted)
