#!/usr/bin/env python
"""Browse a registered dataset's ground truth, as prepared or after the train augmentations, before training.

    python tools/browse_dataset.py --config-file configs/VinDr-CXR/faster_rcnn_R_18_FPN_sna.yaml \\
        --dataset vindr_cxr_train --max-images 50 --output output/browse [--augment] [KEY VALUE ...]

Draws every image's boxes in its class's colour (detectron2's Visualizer), one PNG per image, and
DIR/index.html (boxes per class, every image with its counts, filterable by class) and
DIR/summary.json. --augment draws each image after detectron2's DatasetMapper with is_train=True
(the config's INPUT resize, flip and crops, as training sees it), as detectron2's
tools/visualize_data.py --source dataloader does. --dataset defaults to DATASETS.TRAIN[0]; trailing
KEY VALUE pairs override the config, as in tools/train_net.py.
"""

import argparse


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--dataset", help="registered dataset name (default: the config's DATASETS.TRAIN[0])")
    parser.add_argument("--output", required=True, help="folder for the PNGs, index.html and summary.json")
    parser.add_argument("--augment", action="store_true", help="after the train augmentations (DatasetMapper)")
    parser.add_argument("--max-images", type=int, default=0, help="the first N images (0: all)")
    parser.add_argument("--max-size", type=int, default=1024, help="longer side of the PNGs in pixels (0: as is)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random augmentations")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, KEY VALUE pairs")
    return parser.parse_args(argv)


def main(args) -> int:
    from detectron2.data import DatasetCatalog
    from detectron2.utils.env import seed_all_rng

    from sna_det.analysis.dataset_browser import browse_dataset
    from sna_det.data.datasets import DatasetNotPreparedError, check_datasets_ready
    from sna_det.engine import setup_cfg
    from sna_det.utils.cli import CommandError, check_writable_dir

    cfg = setup_cfg(args.config_file, args.opts)
    name = args.dataset or (cfg.DATASETS.TRAIN[0] if cfg.DATASETS.TRAIN else None)
    if name is None:
        raise CommandError(f"{args.config_file}: no DATASETS.TRAIN: name the dataset with --dataset")
    if name not in DatasetCatalog.list():
        raise CommandError(
            f"--dataset {name!r} is not registered (the config's: {list(cfg.DATASETS.TRAIN + cfg.DATASETS.TEST)})"
        )
    try:
        check_datasets_ready([name])
    except DatasetNotPreparedError as error:
        raise CommandError(str(error)) from None
    check_writable_dir(args.output, "--output")
    seed_all_rng(args.seed)
    rows, totals = browse_dataset(
        cfg, name, args.output, augment=args.augment, max_images=args.max_images, max_size=args.max_size
    )
    print(", ".join(f"{c} {kinds['boxes']:,}" for c, kinds in totals.items()) + " boxes")
    print(f"{sum(not r.counts for r in rows):,} of {len(rows):,} images without boxes")
    print(f"wrote {len(rows):,} images and {args.output.rstrip('/')}/index.html")
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
