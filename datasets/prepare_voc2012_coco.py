#!/usr/bin/env python
"""Convert Pascal VOC 2012 to COCO JSON with instance masks, for Faster and Mask R-CNN.

    python datasets/prepare_voc2012_coco.py --voc-root VOCdevkit/VOC2012 --output-dir datasets/voc_2012_coco

Writes annotations/{train,val}.json (ImageSets/Segmentation, boxes and masks), with
--detection-splits also annotations/detection_{train,val,trainval}.json (ImageSets/Main, boxes),
a JPEGImages link and summary.json. Registered as voc_2012_coco_* (see datasets/README.md).
The preset of datasets/prepare_coco.py --format voc2012; the conversion is sna_det.data.prepare.voc.
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
    return prepare_coco.convert(prepare_coco.parse_args(argv, preset="voc2012", description=__doc__))


if __name__ == "__main__":
    prepare_coco = _prepare_coco()
    arguments = prepare_coco.parse_args(preset="voc2012", description=__doc__)
    from sna_det.utils.cli import run_tool

    interrupted = f"interrupted: {arguments.output_dir} is not complete; run the same command again to continue"
    run_tool(prepare_coco.convert, arguments, input_errors=(ValueError, OSError), interrupted=interrupted)
