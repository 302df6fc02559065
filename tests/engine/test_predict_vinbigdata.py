"""The VinBigData challenge path end to end on a synthetic VinDr-CXR copy: prepare (train + the challenge's
test/) -> a model -> predict -> submission -> score; boxes back in DICOM pixels, every test image kept,
the figure the evaluator reports."""

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from helpers.vindr_cxr_synthetic import write_dicom, write_vinbigdata
from test_predict import eval_only, run_predict

from sna_det.data.datasets import register_vindr_cxr_datasets
from sna_det.data.prepare.vindr_cxr import PrepareOptions, prepare_vindr_cxr
from sna_det.engine import SafeCheckpointer, Trainer, setup_cfg
from sna_det.evaluation.vinbigdata import parse_prediction_string, read_submission

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "VinDr-CXR" / "faster_rcnn_R_18_FPN.yaml"
TEST_IMAGES = [("t0", 90, 60), ("t1", 50, 100), ("t2", 64, 80)]  # (image id, rows, columns)
TINY = [
    *("MODEL.DEVICE cpu INPUT.MIN_SIZE_TEST 64 INPUT.MAX_SIZE_TEST 96 MODEL.FPN.OUT_CHANNELS 16".split()),
    *("MODEL.ROI_BOX_HEAD.FC_DIM 32 MODEL.RPN.PRE_NMS_TOPK_TEST 100 MODEL.RPN.POST_NMS_TOPK_TEST 40".split()),
    *("TEST.DETECTIONS_PER_IMAGE 10 DATALOADER.NUM_WORKERS 0 MODEL.ROI_HEADS.SCORE_THRESH_TEST 0.0".split()),
]


@pytest.fixture(scope="module")
def vindr(tmp_path_factory):
    """(source, prepared folder, config overrides with random 14-class weights)."""
    source = write_vinbigdata(tmp_path_factory.mktemp("vinbigdata"))
    rng = np.random.default_rng(0)
    for image_id, rows, columns in TEST_IMAGES:
        write_dicom(source / "test" / f"{image_id}.dicom", rng.integers(0, 4096, (rows, columns)).astype(np.uint16))
    prepared = tmp_path_factory.mktemp("prepared")
    prepare_vindr_cxr(source, prepared, PrepareOptions(max_size=40, val_fraction=0.25))
    opts = [*TINY, "DATASETS.ROOTS.VINDR_CXR", str(prepared)]
    torch.manual_seed(0)
    model = Trainer.build_model(setup_cfg(CONFIG, opts))
    weights = prepared.parent / "vindr_model.pth"
    torch.save({"model": model.state_dict()}, weights)
    yield source, prepared, [*opts, "MODEL.WEIGHTS", str(weights)]
    register_vindr_cxr_datasets(None)


def score_submission(gt: Path, submission: Path, output: Path) -> dict:
    spec = importlib.util.spec_from_file_location("evaluate_detections", ROOT / "tools" / "evaluate_detections.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    argv = ["--metric", "vinbigdata", "--gt", str(gt), "--dt", str(submission), "--output", str(output)]
    assert tool.main(tool.parse_args(argv)) == 0
    return json.loads(output.read_text())["vinbigdata"]


def test_val_predictions_are_eval_onlys_in_dicom_pixels_and_score_as_the_evaluator_says(vindr, tmp_path):
    _, prepared, opts = vindr
    weights = Path(opts[-1])
    eval_only(CONFIG, weights, tmp_path / "eval", [o for o in opts[:-2]])
    inference = tmp_path / "eval" / "inference"
    expected = json.loads((inference / "coco_instances_results_vindr_cxr_val.json").read_text())
    reported = json.loads((inference / "per_class_ap_vindr_cxr_val.json").read_text())["vinbigdata"]
    run_predict("--config-file", CONFIG, "--dataset", "vindr_cxr_val", "--format", "vinbigdata", "--batch-size", 1,
                "--output", tmp_path / "p", *opts)  # fmt: skip
    val = json.loads((prepared / "annotations" / "val.json").read_text())
    images = {i["id"]: i for i in val["images"]}
    coco = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert [(i["width"], i["height"]) for i in coco["images"]] == [(80, 64)] * len(val["images"])  # DICOM sizes
    assert len(coco["annotations"]) == len(expected) > 0
    for got, want in zip(coco["annotations"], expected):  # eval-only's PNG boxes, scaled to the DICOM
        image = images[want["image_id"]]
        scale = np.array([image["dicom_width"] / image["width"], image["dicom_height"] / image["height"]] * 2)
        assert (got["image_id"], got["category_id"], got["score"]) == (
            want["image_id"],
            want["category_id"],
            want["score"],
        )
        assert np.allclose(got["bbox"], np.array(want["bbox"]) * scale, atol=1e-6)
    submission = read_submission(tmp_path / "p" / "submission.csv")
    assert sorted(submission) == sorted(Path(i["file_name"]).stem for i in val["images"])
    score = score_submission(
        prepared / "annotations" / "val.json", tmp_path / "p" / "submission.csv", tmp_path / "s.json"
    )
    assert reported["mean"] is not None and score["mean"] == pytest.approx(reported["mean"], abs=1e-9)
    assert score["per_class"] == pytest.approx(reported["per_class"], abs=1e-9)


def test_challenge_test_submission_keeps_every_image_with_boxes_in_its_dicom_pixels(vindr, tmp_path):
    source, prepared, opts = vindr
    run_predict("--config-file", CONFIG, "--dataset", "vindr_cxr_challenge_test", "--format", "vinbigdata",
                "--output", tmp_path / "dataset", *opts)  # fmt: skip
    rows = read_submission(tmp_path / "dataset" / "submission.csv")
    assert sorted(rows) == sorted(i for i, _, _ in TEST_IMAGES)
    # the same DICOMs given as files, rendered as the preparer rendered them: the same boxes, in the same pixels
    run_predict("--config-file", CONFIG, "--input", source / "test", "--format", "vinbigdata", "--max-size", 40,
                "--output", tmp_path / "files", *opts)  # fmt: skip
    direct = read_submission(tmp_path / "files" / "submission.csv")
    for image_id, rows_count, columns in TEST_IMAGES:
        header = pydicom.dcmread(source / "test" / f"{image_id}.dicom", stop_before_pixels=True)
        assert (header.Rows, header.Columns) == (rows_count, columns)
        found, again = rows[image_id], direct[image_id]
        assert len(found) == len(again) == 10
        for (c1, s1, b1), (c2, s2, b2) in zip(found, again):
            assert c1 == c2 and abs(s1 - s2) <= 1e-6
            assert np.abs(np.array(b1) - b2).max() <= 0.1 + 1e-9  # 0.1 px: the CSV's rounding
        boxes = np.array([b for _, _, b in found])
        assert boxes.min() >= 0 and boxes[:, 2].max() <= columns and boxes[:, 3].max() <= rows_count
        assert boxes[:, 2].max() > 40 or boxes[:, 3].max() > 40  # beyond the 40-pixel PNG: the DICOM's frame


def test_normal_probabilities_filter_the_rows(vindr, tmp_path):
    _, _, opts = vindr
    with open(tmp_path / "normal.csv", "w", newline="") as f:
        csv.writer(f).writerows([["image_id", "normal"], ["t0", 0.97], ["t1", 0.5], ["t2", 0.01]])
    base = ["--config-file", CONFIG, "--dataset", "vindr_cxr_challenge_test", "--format", "vinbigdata"]
    run_predict(*base, "--output", tmp_path / "plain", *opts)
    run_predict(*base, "--normal-probs", tmp_path / "normal.csv", "--low", 0.05, "--high", 0.9,
                "--output", tmp_path / "filtered", *opts)  # fmt: skip
    plain = dict(csv.reader(open(tmp_path / "plain" / "submission.csv")))
    filtered = dict(csv.reader(open(tmp_path / "filtered" / "submission.csv")))
    assert filtered["t0"] == "14 1 0 0 1 1"  # probability of a finding 0.03 < low
    assert filtered["t1"] == plain["t1"] + " 14 0.5 0 0 1 1"  # low <= 0.5 < high: "No finding" at p = 0.5 appended
    assert filtered["t2"] == plain["t2"]  # 0.99 >= high: the detector's boxes as they are
    assert len(parse_prediction_string(plain["t2"], "t2")) == 10


def test_tta_predictions_are_eval_onlys_tta_in_dicom_pixels_and_make_a_submission(vindr, tmp_path):
    """predict --tta --format vinbigdata: the detections of --eval-only's TTA (TEST.AUG.ENABLED) on the same
    dataset, scaled to the DICOM's pixels, and a submission row for every image."""
    _, prepared, opts = vindr
    aug = ["TEST.AUG.MIN_SIZES", "(48, 64)", "TEST.AUG.MAX_SIZE", "96", "TEST.AUG.FLIP", "True"]
    cfg = setup_cfg(CONFIG, [*opts, *aug, "TEST.AUG.ENABLED", "True", "OUTPUT_DIR", str(tmp_path / "eval")])
    model = Trainer.build_model(cfg)  # as train_net.py --eval-only loads and evaluates it with TEST.AUG.ENABLED
    SafeCheckpointer(model, cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=False)
    Trainer.test_with_TTA(cfg, model)
    results = tmp_path / "eval" / "inference_TTA" / "coco_instances_results_vindr_cxr_val.json"
    expected = json.loads(results.read_text())
    run_predict("--config-file", CONFIG, "--dataset", "vindr_cxr_val", "--format", "vinbigdata", "--tta",
                "--batch-size", 1, "--output", tmp_path / "p", *opts, *aug)  # fmt: skip
    images = {i["id"]: i for i in json.loads((prepared / "annotations" / "val.json").read_text())["images"]}
    got = json.loads((tmp_path / "p" / "predictions.json").read_text())["annotations"]
    assert len(got) == len(expected) > 0
    for mine, want in zip(got, expected):
        image = images[want["image_id"]]
        scale = np.array([image["dicom_width"] / image["width"], image["dicom_height"] / image["height"]] * 2)
        assert (mine["image_id"], mine["category_id"], mine["score"]) == (
            want["image_id"], want["category_id"], want["score"]
        )  # fmt: skip
        assert np.allclose(mine["bbox"], np.array(want["bbox"]) * scale, atol=1e-6)
    submission = read_submission(tmp_path / "p" / "submission.csv")
    assert sorted(submission) == sorted(Path(i["file_name"]).stem for i in images.values())
