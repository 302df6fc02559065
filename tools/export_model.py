#!/usr/bin/env python
"""Export a detector (or its backbone) to TorchScript or ONNX by tracing, as detectron2's
tools/deploy/export_model.py does, and check it against the eager model.

    python tools/export_model.py --config-file configs/vincxr_faster_sna.yaml --format torchscript \\
        --output output/export MODEL.WEIGHTS output/vincxr_faster_sna/model_final.pth
    python tools/export_model.py --config-file configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml \\
        --format onnx --output output/export_onnx --check image1.png --check image2.png

Writes OUTPUT/model.ts or OUTPUT/model.onnx. The traced function is
``GeneralizedRCNN.inference(do_postprocess=False)``: input one (3, H, W) float32 image resized as for
the test (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST), channels in INPUT.FORMAT; outputs the flat
Instances fields in the resized image's pixels (sna_det/export.py). ``--module backbone`` exports
the backbone instead: normalised padded images (B, 3, H, W) -> p2..p6, with dynamic B, H, W.

--sample-image is the image traced; without it, image 0 of the demo's val split (a synthetic
radiograph rendered on the fly, no dataset needed). --check runs the written file and the eager
model on each given image (use images of other sizes and content than the sample) and prints the
differences. Trailing KEY VALUE pairs override the config (MODEL.WEIGHTS ...).
"""

import argparse

FORMATS = ("torchscript", "onnx")  # sna_det.export.FORMATS, MODULES: here too so that --help needs no torch
MODULES = ("detector", "backbone")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--export-method", choices=["tracing"], default="tracing", help="detectron2's tracing")
    parser.add_argument("--format", choices=FORMATS, default="torchscript")
    parser.add_argument("--module", choices=MODULES, default="detector", help="the whole detector or its backbone")
    parser.add_argument("--sample-image", metavar="PATH", help="image to trace (default: demo val image 0)")
    parser.add_argument("--output", required=True, metavar="DIR", help="writes DIR/model.ts or DIR/model.onnx")
    parser.add_argument(
        "--check", action="append", default=[], metavar="IMAGE", help="compare exported and eager on IMAGE (repeatable)"
    )
    parser.add_argument(
        "--allow-untrained", action="store_true", help="export without MODEL.WEIGHTS (a randomly initialised model)"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, KEY VALUE pairs")
    args = parser.parse_args(argv)
    if any(token.startswith("--") for token in args.opts):  # a flag after the overrides: honour it
        from sna_det.utils.cli import parse_args_with_overrides

        args = parse_args_with_overrides(parser, argv)
    return args


def check(cfg, model, exported, module, paths) -> None:
    """Print exported against eager for each image, then the largest differences."""
    import torch

    from sna_det.export import (
        compare_detections,
        detect,
        max_feature_difference,
        normalised_batch,
        preprocess_image,
        read_input_image,
    )

    worst = [0.0, 0.0]
    for path in paths:
        image = preprocess_image(cfg, read_input_image(path, cfg))
        size = f"{image.shape[1]}x{image.shape[2]}"
        if module == "detector":
            diff = compare_detections(detect(model, image), exported.run(image))
            worst = [max(worst[0], diff.max_box_px), max(worst[1], diff.max_score)]
            print(
                f"{path} ({size}): eager {diff.eager}, exported {diff.exported}, matched {diff.matched} "
                f"detections; max box difference {diff.max_box_px:.2g} px, max score difference {diff.max_score:.2g}"
                + ("" if diff.eager == diff.exported == diff.matched else "  DETECTIONS DIFFER")
            )
        else:
            batch = normalised_batch(model, [image])
            with torch.no_grad():
                eager = model.backbone(batch)
            diffs = max_feature_difference(eager, exported.run(batch))
            worst = [max(worst[0], max(d for d, _ in diffs.values())), max(worst[1], max(m for _, m in diffs.values()))]
            levels = ", ".join(f"{k} {d:.2g}" for k, (d, _) in diffs.items())
            print(f"{path} (input {batch.shape[2]}x{batch.shape[3]}): max |exported - eager| {levels}")
    if module == "detector":
        print(f"over {len(paths)} images: max box difference {worst[0]:.2g} px, max score difference {worst[1]:.2g}")
    else:
        print(f"over {len(paths)} images: max |exported - eager| {worst[0]:.2g} (features up to {worst[1]:.3g})")


def main(args) -> int:
    from sna_det.engine import UnsafeCheckpointError, setup_cfg
    from sna_det.engine.exported_model import model_identity
    from sna_det.engine.inference_model import build_inference_model
    from sna_det.engine.predictor import class_names
    from sna_det.export import (
        FILE_NAMES,
        export_model,
        normalised_batch,
        preprocess_image,
        read_input_image,
        sample_image,
    )
    from sna_det.utils.cli import CommandError, check_writable_dir
    from sna_det.utils.paths import check_outputs_not_inputs

    try:  # traced on the CPU; a TorchScript file runs on CUDA after .to("cuda")
        cfg = setup_cfg(args.config_file, [*args.opts, "MODEL.DEVICE", "cpu"], cpu_fallback=False)
        sample = sample_image(args.sample_image, cfg)
        for path in args.check:
            read_input_image(path, cfg)
        model = build_inference_model(cfg, allow_no_weights=True, compile_backbone=False)  # traced: eager
    except (ValueError, UnsafeCheckpointError) as error:  # ConfigError is a ValueError
        raise CommandError(str(error)) from None
    if not cfg.MODEL.WEIGHTS and not args.allow_untrained:
        raise CommandError(
            "no weights: give MODEL.WEIGHTS <model_final.pth>, or --allow-untrained to export a randomly "
            "initialised model"
        )
    output = check_writable_dir(args.output)
    check_outputs_not_inputs(
        {"--config-file": args.config_file, "MODEL.WEIGHTS": cfg.MODEL.WEIGHTS or None,
         "--sample-image": args.sample_image, **{f"--check {p}": p for p in args.check}},
        {"--output": output / FILE_NAMES[args.format]},
    )  # fmt: skip
    if not cfg.MODEL.WEIGHTS:
        print("note: --allow-untrained: no MODEL.WEIGHTS, the model is randomly initialised")
    image = preprocess_image(cfg, sample)
    traced_input = normalised_batch(model, [image]) if args.module == "backbone" else image
    try:
        exported = export_model(
            model, traced_input, args.format, output, args.module, identity=model_identity(cfg, class_names(cfg))
        )
    except OSError as error:  # a full disk, a read-only folder: no partial file is left
        raise CommandError(f"{error.filename}: cannot be written ({error.strerror or error})") from None
    except RuntimeError as error:  # e.g. MODEL.SNA.MODE svd to ONNX
        raise CommandError(f"{args.config_file}: cannot export: {str(error).splitlines()[0]}") from None
    traced_on = args.sample_image or "demo val image 0"
    print(f"wrote {exported.path} (traced on {traced_on}, input {tuple(traced_input.shape)})")
    if args.check:
        check(cfg, model, exported, args.module, args.check)
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
