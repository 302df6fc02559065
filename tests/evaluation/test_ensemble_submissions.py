"""VinBigData submissions fused by tools/ensemble_detections.py: WBF of the findings in boxes normalised by
the prepared dataset's DICOM sizes, "No finding" averaged per image (the 2nd-place way), and the fused file
scored by evaluate_detections.py --metric vinbigdata. Expected values computed by hand from WBF's rule
(score-weighted mean box; score = mean score x min(models, boxes) / models)."""

import csv
import json

import numpy as np
import pytest
from helpers import run_main

from sna_det.data.classes import VINDR_CXR_CLASSES
from sna_det.evaluation.ensemble import fuse_submissions
from sna_det.evaluation.vinbigdata import read_submission, vinbigdata_image_sizes

A = {"a": "3 0.8 100 100 400 300 14 0.2 0 0 1 1", "b": "0 0.9 50 50 150 150", "c": "14 1 0 0 1 1"}
B = {"a": "3 0.6 110 110 410 310 14 0.4 0 0 1 1", "b": "0 0.5 300 300 400 400 14 0.6 0 0 1 1", "c": "14 1 0 0 1 1"}


@pytest.fixture
def files(tmp_path):
    """(ground truth: a prepared COCO JSON whose PNGs are a tenth of the DICOMs, a.csv, b.csv)."""
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(VINDR_CXR_CLASSES)]
    images = [
        {"id": 1, "file_name": "a.png", "width": 100, "height": 80, "dicom_width": 1000, "dicom_height": 800},
        {"id": 2, "file_name": "b.png", "width": 50, "height": 50, "dicom_width": 500, "dicom_height": 500},
        {"id": 3, "file_name": "c.png", "width": 40, "height": 40, "dicom_width": 400, "dicom_height": 400},
    ]
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 4, "bbox": [10, 10, 30, 20], "area": 600, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 100, "iscrowd": 0},
    ]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    paths = []
    for name, rows in (("a.csv", A), ("b.csv", B)):
        with open(tmp_path / name, "w", newline="") as f:
            csv.writer(f).writerows([("image_id", "PredictionString"), *rows.items()])
        paths.append(tmp_path / name)
    return gt, *paths


def test_findings_fuse_by_wbf_and_no_finding_is_the_mean_of_the_inputs(files):
    gt, a, b = files
    assert vinbigdata_image_sizes(gt) == {"a": (1000, 800), "b": (500, 500), "c": (400, 400)}
    fused = fuse_submissions([read_submission(a), read_submission(b)], vinbigdata_image_sizes(gt))
    assert list(fused) == ["a", "b", "c"]
    (c1, s1, box1), (n1, p1, nbox1) = fused["a"]
    expected = (0.8 * np.array([100, 100, 400, 300]) + 0.6 * np.array([110, 110, 410, 310])) / 1.4
    assert c1 == 3 and s1 == pytest.approx(0.7) and np.allclose(box1, expected, atol=1e-4)
    assert (n1, nbox1) == (14, (0.0, 0.0, 1.0, 1.0)) and p1 == pytest.approx(0.3)
    (c2, s2, box2), (c3, s3, box3), (n2, p2, _) = fused["b"]  # apart: each alone, at half its score
    assert (c2, c3, n2) == (0, 0, 14) and (s2, s3, p2) == pytest.approx((0.45, 0.25, 0.3))
    assert np.allclose(box2, [50, 50, 150, 150], atol=1e-4) and np.allclose(box3, [300, 300, 400, 400], atol=1e-4)
    assert fused["c"] == [(14, 1.0, (0.0, 0.0, 1.0, 1.0))]
    weighted = fuse_submissions([read_submission(a), read_submission(b)], vinbigdata_image_sizes(gt), weights=[3, 1])
    assert weighted["a"][-1][1] == pytest.approx((3 * 0.2 + 0.4) / 4)


def test_the_tool_writes_a_submission_that_evaluate_detections_scores(files, tmp_path, capsys):
    gt, a, b = files
    fused, metrics = tmp_path / "fused.csv", tmp_path / "m.json"
    argv = ["--dt", a, b, "--gt", gt, "--output", fused, "--metrics-output", metrics]
    assert run_main("tools/ensemble_detections.py", *argv) == 0
    rows = dict(csv.reader(open(fused)))
    assert rows["c"] == "14 1 0 0 1 1" and rows["a"].endswith("14 0.3 0 0 1 1")
    assert run_main("tools/evaluate_detections.py", "--metric", "vinbigdata", "--gt", gt, "--dt", fused,
                    "--output", tmp_path / "s.json") == 0  # fmt: skip
    scored = json.loads((tmp_path / "s.json").read_text())["vinbigdata"]
    reported = json.loads(metrics.read_text())["inputs"]
    assert scored["mean"] == pytest.approx(reported["fused"]["mean"], abs=1e-9)
    # by hand: Cardiomegaly's one box is found at rank 1 (AP 100); Aortic enlargement's at rank 1 of 2
    # (AP 100); "No finding": c's (score 1) ranks first of three class-14 entries (AP 100)
    assert scored["per_class"]["Cardiomegaly"] == 100 and scored["per_class"]["Aortic enlargement"] == 100
    assert scored["per_class"]["No finding"] == 100 and scored["mean"] == 100
    assert scored["per_class"]["Nodule/Mass"] is None


def test_submissions_of_different_images_are_refused_in_one_line(files, tmp_path, capsys):
    gt, a, _ = files
    other = tmp_path / "other.csv"
    other.write_text("image_id,PredictionString\na,14 1 0 0 1 1\n")
    assert run_main("tools/ensemble_detections.py", "--dt", a, other, "--gt", gt, "--output", tmp_path / "f.csv") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other.csv" in err[0] and "image_id b" in err[0]
    assert not (tmp_path / "f.csv").exists()
    assert run_main("tools/ensemble_detections.py", "--dt", a, other, "--output", tmp_path / "f.json") == 2
