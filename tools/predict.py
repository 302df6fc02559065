#!/usr/bin/env python
"""Run a trained detector on images (PNG, JPEG, TIFF, BMP, DICOM; files, folders (recursive), globs) or a
registered dataset, and keep what it found.

    python tools/predict.py --config-file configs/vincxr_faster_sna.yaml --input scans/ 'more/*.dcm' \\
        --output output/predict MODEL.WEIGHTS output/vincxr_faster_sna/model_final.pth
    python tools/predict.py --config-file configs/vincxr_faster_sna.yaml --dataset vindr_cxr_challenge_test \\
        --format vinbigdata --output output/challenge MODEL.WEIGHTS output/vincxr_faster_sna/model_final.pth
    python tools/predict.py --config-file <cfg> --model output/export/model.ts --input image.png --output out --draw
    python tools/predict.py --config-file <cfg> --dicomweb http://pacs:8042/dicom-web --study <StudyInstanceUID> \\
        --store --output out MODEL.WEIGHTS <model_final.pth>   # a PACS study in, SRs back (credentials: docs/pacs.md)

Writes, atomically, below --output:
  predictions.json  COCO: images (file_name, width, height), categories, annotations (image_id,
                    category_id, bbox [x, y, w, h], score), boxes in the INPUT's own pixels: a DICOM's
                    for a DICOM; for a prepared VinDr-CXR image (--dataset), the original DICOM's
                    (through the recorded dicom_width / dicom_height); a PNG's or JPEG's own otherwise
  predictions.csv   file_name,class,score,x_min,y_min,x_max,y_max (one row per detection)
  submission.csv    with --format vinbigdata: the VinBigData challenge's image_id,PredictionString for
                    every input image (image_id = the file name's stem; boxes in DICOM pixels;
                    "14 1 0 0 1 1" for an image without a box); with --normal-probs CSV (image_id,normal:
                    a classifier's probability of "No finding") --low L --high H, where q = 1 - normal
                    is the probability of a finding: q < L: the row becomes "14 1 0 0 1 1";
                    L <= q < H: "14 <normal> 0 0 1 1" is appended; q >= H: kept
  dicom/<SOPInstanceUID>_sr.dcm, _pr.dcm
                    with --format dicom-sr / dicom-gsps / dicom (both; the default with --dicomweb): for
                    each DICOM with a detection >= --score-thr, a DICOM SR (TID 1500) and / or a
                    presentation state of those detections (docs/pacs.md)
  labelme/<stem>.json  with --format labelme: a labelme file per image (imagePath: the image), each
                    detection scoring >= --score-thr a rectangle, its score in description and flags
  cvat/annotations.xml  with --format cvat: CVAT for images 1.1 boxes (score attribute) to import
                    (both convert back with datasets/prepare_coco.py: sna_det/data/prepare/prelabels.py)
  draw/<name>.png   with --draw: each image with its detections scoring >= --score-thr (drawing only:
                    the files keep every detection)

The model: the config's, with MODEL.WEIGHTS (as train_net.py --eval-only loads it), or --model, an
export of tools/export_model.py (model.ts; run one image at a time). On MODEL.DEVICE (CUDA falls back
to the CPU); --tta: TEST.AUG's sizes and flip (the model --eval-only evaluates with TEST.AUG.ENABLED).
Images are read by sna_det/data/images.py, as every tool reads them: a DICOM (or a 16-bit image)
through INPUT.INTENSITY, rendered exactly as datasets/prepare_vindr_cxr.py renders it (--max-size,
--upscale as there). An image that cannot be read is skipped and named; exit 1 only if none was read.
On --dataset the detections are those --eval-only writes (coco_instances_results*.json), rescaled to
the DICOM's pixels for a VinDr-CXR folder.
Trailing KEY VALUE pairs (after every option) override the config. Logic: sna_det/engine/predictor.py.
"""

import argparse
import re
import sys

CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--input", nargs="+", metavar="PATH", help="image files, folders or globs (PNG, JPEG, TIFF, BMP, DICOM)"
    )
    which.add_argument("--dataset", metavar="NAME", help="a registered dataset, e.g. vindr_cxr_challenge_test")
    which.add_argument("--dicomweb", metavar="URL", help="a DICOMweb server (PACS): --study's images (docs/pacs.md)")
    parser.add_argument("--study", metavar="UID", help="with --dicomweb: the Study Instance UID to predict on")
    parser.add_argument("--store", action="store_true", help="with --dicomweb: store the SRs / GSPSs back (STOW-RS)")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for predictions.json, .csv, ...")
    parser.add_argument("--model", metavar="FILE", help="an exported model.ts (or model.onnx) instead of MODEL.WEIGHTS")
    parser.add_argument("--batch-size", type=int, default=4, help="images per forward pass (default 4)")
    parser.add_argument(
        "--format",
        choices=("coco", "vinbigdata", "labelme", "cvat", "dicom-sr", "dicom-gsps", "dicom"),
        default="coco",
        help="vinbigdata: submission.csv too; labelme, cvat: pre-labels for the labelling tool too; "
        "dicom-sr / dicom-gsps / dicom (both): DIR/dicom/ (docs/pacs.md)",
    )
    parser.add_argument("--normal-probs", metavar="CSV", help="image_id,normal: probability of 'No finding' per image")
    parser.add_argument("--low", type=float, help="with --normal-probs: below it (1 - normal) the row is 'No finding'")
    parser.add_argument("--high", type=float, help="with --normal-probs: below it (1 - normal) 'No finding' is added")
    parser.add_argument("--draw", action="store_true", help="also draw the detections: DIR/draw/<name>.png")
    parser.add_argument("--score-thr", type=float, default=0.5, help="--draw, labelme, cvat, dicom: kept (>=)")
    parser.add_argument("--max-size", type=int, default=1024, help="DICOMs: long side, as prepare_vindr_cxr.py's")
    parser.add_argument("--upscale", action="store_true", help="DICOMs: enlarge small ones to --max-size, as there")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation: TEST.AUG's sizes and flip")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE pairs")
    args = parser.parse_args(argv)
    if args.normal_probs and (args.low is None or args.high is None or args.format != "vinbigdata"):
        parser.error("--normal-probs needs --low, --high and --format vinbigdata")
    if args.normal_probs and not 0.0 <= args.low <= args.high <= 1.0:
        parser.error(f"--low {args.low} and --high {args.high} must satisfy 0 <= low <= high <= 1")
    if bool(args.dicomweb) != bool(args.study) or (args.store and not args.dicomweb):
        parser.error("--dicomweb URL needs --study UID, and --study / --store need --dicomweb")
    if args.batch_size < 1:
        parser.error(f"--batch-size {args.batch_size} is not at least 1")
    return args


def main(args) -> int:
    import os
    from pathlib import Path

    from detectron2.data import MetadataCatalog
    from detectron2.data.catalog import Metadata
    from tqdm import tqdm

    from sna_det.data.datasets import DatasetNotPreparedError, check_datasets_ready
    from sna_det.data.images import find_image_files
    from sna_det.engine import UnsafeCheckpointError, setup_cfg
    from sna_det.engine.prediction_files import (
        check_vinbigdata_classes,
        coco_predictions,
        draw_prediction,
        submission_rows,
        write_predictions_csv,
        write_predictions_json,
        write_submission,
    )
    from sna_det.engine.predictor import UNREADABLE, Predictor, class_names, dataset_inputs, file_inputs, predict
    from sna_det.evaluation.vinbigdata import read_normal_probabilities
    from sna_det.utils.cli import CommandError, check_writable_dir
    from sna_det.utils.paths import check_outputs_not_inputs
    from sna_det.utils.skip_report import SkipReport

    keys = [p for p in args.input or [] if CONFIG_KEY.match(p)]
    if keys:
        raise CommandError(
            f"{keys[0]}: given as an --input; put KEY VALUE pairs after every option (e.g. after --output)"
        )
    try:
        cfg = setup_cfg(args.config_file, args.opts)
        if args.dataset:
            check_datasets_ready([args.dataset])
            inputs = dataset_inputs(args.dataset)
        elif args.dicomweb:  # the study's images, retrieved into DIR/dicomweb/<study>/
            from sna_det.engine.dicomweb import DicomwebError, connect, retrieve_study

            try:
                folder = check_writable_dir(args.output) / "dicomweb" / args.study
                inputs = file_inputs(retrieve_study(connect(args.dicomweb), args.study, folder)[0])
            except DicomwebError as error:
                raise CommandError(str(error)) from None
        else:
            inputs = file_inputs(find_image_files(args.input))
        names = class_names(cfg, args.dataset)
        if args.format == "vinbigdata":
            check_vinbigdata_classes(names)
        probabilities = read_normal_probabilities(args.normal_probs) if args.normal_probs else None
        if probabilities is not None:  # before the work, not after it
            lacking = [i.file_name for i in inputs if Path(i.file_name).stem not in probabilities]
            if lacking:
                raise CommandError(
                    f"{args.normal_probs}: --normal-probs has no row for {len(lacking):,} of the {len(inputs):,} "
                    f"images (e.g. image_id {Path(lacking[0]).stem}, {lacking[0]})"
                )
        predictor = Predictor(cfg, args.model, tta=args.tta)
    except (DatasetNotPreparedError, KeyError) as error:  # KeyError: a dataset name that is not registered
        raise CommandError(error.args[0]) from None
    except (ValueError, OSError, UnsafeCheckpointError) as error:  # ConfigError is a ValueError
        raise CommandError(str(error)) from None
    output = check_writable_dir(args.output)
    written = ["predictions.json", "predictions.csv", *(["submission.csv"] if args.format == "vinbigdata" else [])]
    check_outputs_not_inputs(
        {"--config-file": args.config_file, "--normal-probs": args.normal_probs, "--model": args.model,
         **{f"--input {i.file_name}": i.file_name for i in inputs}},
        {f"--output {name}": output / name for name in written},
    )  # fmt: skip
    if args.dataset:
        metadata = MetadataCatalog.get(args.dataset)
        mapping = metadata.get("thing_dataset_id_to_contiguous_id", None)
        category_ids = sorted(mapping, key=mapping.get) if mapping else None
    else:
        metadata, category_ids = Metadata(name="predict", thing_classes=names), None
    if args.draw:
        (output / "draw").mkdir(exist_ok=True)
    print(
        f"{len(inputs):,} images, {len(names)} classes, model: {args.model or cfg.MODEL.WEIGHTS} on {cfg.MODEL.DEVICE}"
    )

    predictions, drawn, skipped = [], set(), SkipReport([UNREADABLE])
    bar = tqdm(total=len(inputs), unit="image", desc="predicting", file=sys.stderr, smoothing=0.1)
    reading = (args.batch_size, args.draw, args.max_size, args.upscale, bar.update, skipped)
    try:
        for p in predict(predictor, cfg, inputs, *reading):
            if args.draw:
                stem = os.path.splitext(os.path.basename(p.file_name))[0]
                name, n = stem, 1
                while name in drawn:
                    n += 1
                    name = f"{stem}-{n}"
                drawn.add(name)
                draw_prediction(output / "draw" / f"{name}.png", p, cfg.INPUT.FORMAT, metadata, args.score_thr)
                p.model_image = None
            predictions.append(p)
    except ValueError as error:  # an image that cannot be read
        raise CommandError(str(error)) from None
    finally:
        bar.close()
    if skipped.skipped:  # unreadable images: left out, each named
        for line in skipped.examples()[UNREADABLE]:
            print(f"skipped {line}", file=sys.stderr)
        if not predictions:
            first, more = skipped.skipped[0], len(skipped.skipped) - 1
            also = f"; {more} more images cannot be read either: nothing predicted" if more else ""
            raise CommandError(f"{first['where']}: cannot read the image ({first['detail']}){also}")

    try:
        rows = None
        if args.format == "vinbigdata":
            rows = submission_rows(predictions, probabilities, args.low or 0.0, args.high or 0.0)
    except ValueError as error:
        raise CommandError(str(error)) from None
    try:  # a full disk, a read-only folder: one line naming the file, no partial file (atomic writes)
        write_predictions_json(output / "predictions.json", coco_predictions(predictions, names, category_ids))
        write_predictions_csv(output / "predictions.csv", predictions, names)
        written = ["predictions.json", "predictions.csv"]
        if rows is not None:
            write_submission(output / "submission.csv", rows)
            written.append("submission.csv")
        if args.format in ("labelme", "cvat"):
            from sna_det.data.prepare.prelabels import write_prelabels

            try:
                files = write_prelabels(args.format, output / args.format, predictions, names, args.score_thr)
            except ValueError as error:  # CVAT: two images of one file name
                raise CommandError(str(error)) from None
            written.append(f"{args.format}/ ({len(files):,} files)")
        if args.format.startswith("dicom") or args.dicomweb:
            written.append(dicom_outputs(args, cfg, output, predictions, names))
    except OSError as error:
        raise CommandError(f"{error.filename}: cannot be written ({error.strerror or error})") from None
    detections = sum(len(p.scores) for p in predictions)
    print(f"{detections:,} detections on {len(predictions):,} images; written to {output}: {', '.join(written)}"
          + (f", draw/ ({len(drawn):,} images)" if args.draw else "")
          + (f"; {len(skipped.skipped):,} unreadable images skipped" if skipped.skipped else ""))  # fmt: skip
    return 0


def dicom_outputs(args, cfg, output, predictions, names) -> str:
    """DIR/dicom/<SOPInstanceUID>_sr.dcm / _pr.dcm of the DICOM inputs, stored with --store; what was written."""
    from sna_det.engine.dicom_results import KINDS, algorithm_of, write_dicom_outputs
    from sna_det.utils.cli import CommandError

    settings = f"max size {args.max_size}{' upscale' if args.upscale else ''}"
    algorithm = algorithm_of(cfg, args.model or cfg.MODEL.WEIGHTS, args.score_thr, settings)
    done = write_dicom_outputs(output / "dicom", predictions, names, algorithm, KINDS.get(args.format, KINDS["dicom"]))
    for line in done.corrected:
        print(f"left out of the SR / GSPS, invalid in the source: {line}")
    summary = f"dicom/ ({len(done.written):,} files; {done.without_detection:,} DICOMs without a detection >= "
    summary += f"--score-thr {args.score_thr:g}: an SR saying so; {done.not_dicom:,} inputs not DICOM: none for them)"
    if args.store:
        from sna_det.engine.dicomweb import DicomwebError, connect, store_instances

        try:
            stored, present = store_instances(connect(args.dicomweb), args.study, done.by_study.get(args.study, []))
        except DicomwebError as error:
            raise CommandError(str(error)) from None
        summary += f"; stored on {args.dicomweb}: {stored:,} (already there: {present:,})"
    return summary


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
