#!/usr/bin/env python
"""Attention maps of a model over images, beside its detections: PNGs and an index.html grid.

    python tools/visualize_attention.py --config-file configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml \\
        --weights output/demo/faster_rcnn_R_18_FPN_sna/model_final.pth --input sna_demo_val --max-images 8 \\
        --output output/attention

--input takes registered dataset names, folders or image files. For SNA each placement gives two
maps: the rank-k map before the softmax and the weights that multiply the features; other
attention types give the spatial maps they have (sna_det.analysis.attention_maps). Trailing
KEY VALUE pairs override the config, as in tools/train_net.py.
"""

import argparse


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--weights", default="", help="checkpoint (default: the config's MODEL.WEIGHTS)")
    parser.add_argument("--input", nargs="+", required=True, help="dataset names, folders or image files")
    parser.add_argument("--output", required=True, help="folder for the PNGs and index.html")
    parser.add_argument("--max-images", type=int, default=16, help="first N images (0 = all)")
    parser.add_argument("--score-threshold", type=float, default=0.5, help="draw detections at or above this")
    parser.add_argument("--alpha", type=float, default=0.5, help="opacity of the heat maps")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, KEY VALUE pairs")
    return parser.parse_args(argv)


def main(args) -> int:
    import logging

    from detectron2.data import DatasetCatalog, MetadataCatalog

    from sna_det.analysis.attention_report import visualize_attention
    from sna_det.engine import setup_cfg
    from sna_det.engine.predictor import resolve_images
    from sna_det.utils.cli import CommandError, check_writable_dir
    from sna_det.utils.paths import check_folder_holds_no_input

    logging.basicConfig(level=logging.WARNING)
    cfg = setup_cfg(args.config_file, args.opts + (["MODEL.WEIGHTS", args.weights] if args.weights else []))
    if not cfg.MODEL.WEIGHTS:
        print("note: no weights given (--weights or MODEL.WEIGHTS): the model is randomly initialized")
    datasets = [s for s in args.input if s in DatasetCatalog.list()]
    metadata = MetadataCatalog.get(datasets[0]) if datasets else None
    try:
        paths = resolve_images(args.input, args.max_images)
    except ValueError as error:
        raise CommandError(str(error)) from None
    check_folder_holds_no_input(args.output, paths)  # its PNGs would replace the images of that name
    check_writable_dir(args.output, "--output")
    rows = visualize_attention(
        cfg, paths, args.output, metadata=metadata, score_threshold=args.score_threshold, alpha=args.alpha
    )
    for row in rows:
        print(f"{row.image}: {row.detections} detections, {len(row.panels)} panels -> {row.combined}")
    print(f"wrote {len(rows)} images' panels and {args.output.rstrip('/')}/index.html")
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
