#!/usr/bin/env python
"""Run a trained image classifier (tools/train_classifier.py) on a dataset or on images, and write its probabilities.

    python tools/classify.py --config-file configs/VinDr-CXR/classification/classifier_D_121_sna.yaml \\
        --dataset vindr_cxr_challenge_test --output output/classify MODEL.WEIGHTS <output>/model_final.pth
    python tools/classify.py --config-file <cfg> --input scans/ 'more/*.dicom' --output out MODEL.WEIGHTS <w>

Writes, atomically, below --output:
  probabilities.csv  image_id (the file name's stem, as in submission.csv) and one column per class:
                     the sigmoid of the classifier's output, in [0, 1]
  normal.csv         image_id,normal: the probability of "No finding" (with MODEL.CLASSIFIER.NO_FINDING),
                     the file tools/predict.py --normal-probs reads

Images are read as tools/predict.py reads them: a dataset's through its test mapper (--eval-only's),
PNG and JPEG files as they are, DICOMs rendered as datasets/prepare_vindr_cxr.py renders them
(--max-size, --upscale as there). MODEL.WEIGHTS is loaded strictly. Trailing KEY VALUE pairs (after
every option) override the config. Logic: sna_det/engine/classifier.py.
"""

import argparse
import sys


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (no torch)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="a classifier config")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--input", nargs="+", metavar="PATH", help="image files, folders or globs (PNG, JPEG, DICOM)")
    which.add_argument("--dataset", metavar="NAME", help="a registered dataset, e.g. vindr_cxr_val")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for probabilities.csv and normal.csv")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    parser.add_argument("--max-size", type=int, default=1024, help="DICOMs: long side, as prepare_vindr_cxr.py's")
    parser.add_argument("--upscale", action="store_true", help="DICOMs: enlarge small ones to --max-size, as there")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE pairs")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size {args.batch_size} is not at least 1")
    return args


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sna_det.data.datasets import DatasetNotPreparedError
    from sna_det.engine import UnsafeCheckpointError, setup_cfg
    from sna_det.engine.classifier import (
        CLASSIFIER_ARCHITECTURE,
        classify,
        image_ids,
        output_names,
        write_probability_files,
    )
    from sna_det.engine.predictor import command_line_inputs
    from sna_det.utils.cli import CommandError, check_writable_dir

    try:
        cfg = setup_cfg(args.config_file, args.opts)
        if cfg.MODEL.META_ARCHITECTURE != CLASSIFIER_ARCHITECTURE:
            raise CommandError(
                f"{args.config_file}: MODEL.META_ARCHITECTURE is {cfg.MODEL.META_ARCHITECTURE!r}, not "
                f"{CLASSIFIER_ARCHITECTURE!r} (for a detector: tools/predict.py)"
            )
        inputs = command_line_inputs(args.dataset, args.input)
        names = output_names(cfg, args.dataset)
        output = check_writable_dir(args.output)
        bar = tqdm(total=len(inputs), unit="image", desc="classifying", file=sys.stderr, smoothing=0.1)
        try:
            probabilities = classify(cfg, inputs, args.batch_size, args.max_size, args.upscale, bar.update)
        finally:
            bar.close()
        written = write_probability_files(output, image_ids(inputs), probabilities, names)
    except (DatasetNotPreparedError, KeyError) as error:  # KeyError: a dataset name that is not registered
        raise CommandError(error.args[0]) from None
    except (ValueError, OSError, UnsafeCheckpointError) as error:  # ConfigError is a ValueError
        raise CommandError(str(error)) from None
    print(f"{len(inputs):,} images, {len(names)} classes: written to {output}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
