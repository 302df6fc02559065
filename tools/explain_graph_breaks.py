#!/usr/bin/env python
"""Where torch.compile breaks the graph of a detector (or its backbone): torch._dynamo.explain's
breaks by source line, and how many fall inside SNA (spectral_norm_attention.py).

    python tools/explain_graph_breaks.py --config-file configs/vincxr_faster_sna.yaml
    python tools/explain_graph_breaks.py --config-file configs/vincxr_faster_sna.yaml --module backbone

The detector is run as ``GeneralizedRCNN.inference`` on one image (--sample-image, default the
demo's val image 0, resized as for the test), the backbone on that image normalised and padded.
Trailing KEY VALUE pairs override the config.
"""

import argparse


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--module", choices=("detector", "backbone"), default="detector")
    parser.add_argument("--sample-image", metavar="PATH", help="image to run (default: demo val image 0)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, KEY VALUE pairs")
    return parser.parse_args(argv)


def main(args) -> int:
    from tabulate import tabulate

    from sna_det.benchmarks.graph_breaks import explain_graph_breaks
    from sna_det.engine import UnsafeCheckpointError, setup_cfg
    from sna_det.engine.inference_model import build_inference_model
    from sna_det.export import normalised_batch, preprocess_image, sample_image
    from sna_det.utils.cli import CommandError

    try:
        cfg = setup_cfg(args.config_file, [*args.opts, "MODEL.DEVICE", "cpu"], cpu_fallback=False)
        sample = sample_image(args.sample_image, cfg)
        model = build_inference_model(cfg, allow_no_weights=True, compile_backbone=False)  # dynamo explains it
    except (ValueError, UnsafeCheckpointError) as error:  # ConfigError is a ValueError
        raise CommandError(str(error)) from None
    image = preprocess_image(cfg, sample)
    if args.module == "backbone":
        found = explain_graph_breaks(model.backbone, normalised_batch(model, [image]))
    else:
        found = explain_graph_breaks(lambda x: model.inference([{"image": x}], do_postprocess=False), image)
    rows = [(s.count, f"{s.file}:{s.line}", s.reason[:90]) for s in found.sites]
    if rows:
        print(tabulate(rows, headers=["breaks", "where", "why (dynamo)"], tablefmt="github"))
    sna = found.in_file("spectral_norm_attention.py")
    reasons = sum(site.count for site in found.sites)
    print(f"{args.module} of {args.config_file}, input {tuple(image.shape)}: {found.graphs} graphs, "
          f"{found.breaks} graph breaks ({reasons} break reasons at {len(found.sites)} source lines), "
          f"{sna} with SNA (spectral_norm_attention.py) in their stack")  # fmt: skip
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
