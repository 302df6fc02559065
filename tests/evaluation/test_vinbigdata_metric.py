"""The VinBigData challenge's submission format and metric (``tools/evaluate_detections.py --metric
vinbigdata``) against an independent numpy computation on the real VinBigData annotations."""

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from helpers import run_main
from helpers.real_vinbigdata import real_vinbigdata_rows

from sna_det.data.datasets import VINDR_CXR_CLASSES
from sna_det.data.prepare.vindr_cxr import resized_size
from sna_det.evaluation.vinbigdata import (
    apply_normal_filter,
    parse_prediction_string,
    prediction_string,
    read_submission,
    write_submission,
)

ROOT = Path(__file__).resolve().parents[2]
N_IMAGES = 300


def score(gt: Path, submission: Path, output: Path) -> int:
    """``tools/evaluate_detections.py --metric vinbigdata`` run in this process; its exit code."""
    return run_main(
        "tools/evaluate_detections.py", "--metric", "vinbigdata", "--gt", gt, "--dt", submission, "--output", output
    )


def iou_numpy(box, boxes):
    """IoU of one xyxy box with (G, 4) boxes, continuous coordinates."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area(box) + area(boxes) - inter)


def voc_all_point_ap(gt: dict, detections: list, iou: float = 0.4):
    """Independent PASCAL VOC 2010 AP: gt {image: (G, 4)}, detections [(image, score, box)]; None without gt."""
    n_gt = sum(len(b) for b in gt.values())
    if n_gt == 0:
        return None
    used = {image: np.zeros(len(b), bool) for image, b in gt.items()}
    tp = []
    for image, _, box in sorted(detections, key=lambda d: -d[1]):
        boxes = gt.get(image, np.zeros((0, 4)))
        if len(boxes) == 0:
            tp.append(0)
            continue
        overlaps = iou_numpy(np.asarray(box), boxes)
        j = int(np.argmax(overlaps))
        hit = overlaps[j] > iou and not used[image][j]
        if hit:
            used[image][j] = True
        tp.append(int(hit))
    tp = np.array(tp, dtype=float)
    recall = np.cumsum(tp) / n_gt
    precision = np.cumsum(tp) / np.arange(1, len(tp) + 1)
    ap, previous_recall = 0.0, 0.0
    for k in range(len(tp)):  # area under the monotone envelope: precision at k = max precision from k on
        ap += (recall[k] - previous_recall) * precision[k:].max()
        previous_recall = recall[k]
    return ap


@pytest.fixture(scope="module")
def real_subset():
    """{image_id: [(class id, (x0, y0, x1, y1)) of every reader]} of N_IMAGES real images, in DICOM pixels."""
    by_image = defaultdict(list)
    for row in real_vinbigdata_rows():
        by_image[row["image_id"]].append(row)
    chosen = sorted(by_image)[:N_IMAGES]
    boxes = {}
    for image_id in chosen:
        boxes[image_id] = [
            (int(r["class_id"]), tuple(float(r[k]) for k in ("x_min", "y_min", "x_max", "y_max")))
            for r in by_image[image_id]
            if r["class_name"] != "No finding"
        ]
    return boxes


def prepared_json(boxes: dict, path: Path) -> dict:
    """The subset as the preparer writes it: PNG long side 1024, boxes in PNG pixels, the DICOM size recorded."""
    rng = np.random.default_rng(1)
    images, annotations = [], []
    dicom_size = {}
    for number, (image_id, found) in enumerate(boxes.items(), start=1):
        far = np.max([b for _, b in found], axis=0) if found else np.zeros(4)
        width = int(max(far[2], 1800) + rng.integers(1, 600))
        height = int(max(far[3], 1800) + rng.integers(1, 600))
        dicom_size[image_id] = (width, height)
        png_w, png_h = resized_size(width, height, 1024)
        images.append(
            {"id": number, "file_name": f"{image_id}.png", "width": png_w, "height": png_h}
            | {"dicom_width": width, "dicom_height": height}
        )
        sx, sy = png_w / width, png_h / height
        for class_id, (x0, y0, x1, y1) in found:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": number, "category_id": class_id + 1, "iscrowd": 0}
                | {"bbox": [x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy], "area": (x1 - x0) * (y1 - y0) * sx * sy}
            )
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(VINDR_CXR_CLASSES)]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return dicom_size


def perturbed_submission(boxes: dict, dicom_size: dict, seed: int = 0) -> dict:
    """{image_id: [(class, score, box)]}: most real boxes jittered, some missed, false positives, and
    "No finding" entries; values on the CSV's grid (0.1 pixel, 1e-6 score) so that writing loses nothing."""
    rng = np.random.default_rng(seed)
    scores = iter(rng.permutation(np.arange(1, 10**6))[: 50 * len(boxes)] / 1e6)  # distinct scores
    submission = {}
    for image_id, found in boxes.items():
        width, height = dicom_size[image_id]
        entries = []
        for class_id, box in found:
            if rng.random() < 0.8:
                size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
                jittered = np.array(box) + rng.normal(0, 0.15, 4) * size
                x0, y0, x1, y1 = np.round(np.clip(jittered, 0, [width, height] * 2), 1)
                if x1 > x0 and y1 > y0:
                    entries.append((class_id, next(scores), (x0, y0, x1, y1)))
        for _ in range(rng.poisson(1.0)):  # false positives
            x0, y0 = rng.uniform(0, width - 300), rng.uniform(0, height - 300)
            w, h = rng.uniform(50, 300, 2)
            entries.append((int(rng.integers(0, 14)), next(scores), tuple(np.round([x0, y0, x0 + w, y0 + h], 1))))
        if rng.random() < 0.5:  # a "No finding" guess, on normal and abnormal images alike
            entries.append((14, next(scores), (0.0, 0.0, 1.0, 1.0)))
        submission[image_id] = entries
    return submission


def test_metric_agrees_with_an_independent_computation_on_real_annotations(real_subset, tmp_path):
    dicom_size = prepared_json(real_subset, tmp_path / "gt.json")
    entries = perturbed_submission(real_subset, dicom_size)
    write_submission(tmp_path / "submission.csv", {i: prediction_string(e) for i, e in entries.items()})
    written = read_submission(tmp_path / "submission.csv")
    assert list(written) == list(real_subset)  # every image has a row
    normals = [i for i, found in real_subset.items() if not found]
    assert 100 < len(normals) < N_IMAGES - 50  # the subset has both kinds

    code = score(tmp_path / "gt.json", tmp_path / "submission.csv", tmp_path / "score.json")
    assert code == 0
    result = json.loads((tmp_path / "score.json").read_text())["vinbigdata"]

    # independently: the CSV's boxes and the real CSV's boxes, both in DICOM pixels; an image without an
    # entry has the row "14 1 0 0 1 1"; "No finding" ground truth: [0, 0, 1, 1] on every normal image
    expected = {}
    for class_id in range(15):
        if class_id == 14:
            gt = {i: np.array([[0.0, 0, 1, 1]]) if i in normals else np.zeros((0, 4)) for i in real_subset}
        else:
            gt = {
                i: np.array([b for c, b in found if c == class_id]).reshape(-1, 4) for i, found in real_subset.items()
            }
        detections = [
            (i, s, b) for i, e in entries.items() for c, s, b in (e or [(14, 1.0, (0, 0, 1, 1))]) if c == class_id
        ]
        expected[class_id] = voc_all_point_ap(gt, detections)
    names = [*VINDR_CXR_CLASSES, "No finding"]
    for class_id, name in enumerate(names):
        if expected[class_id] is None:
            assert result["per_class"][name] is None
        else:
            assert result["per_class"][name] == pytest.approx(100 * expected[class_id], abs=1e-9), name
    values = [v for v in expected.values() if v is not None]
    assert len(values) >= 12
    assert result["mean"] == pytest.approx(100 * np.mean(values), abs=1e-9)
    assert 5 < result["mean"] < 95  # neither trivial nor perfect
    assert result["images"] == N_IMAGES and result["images_without_row"] == 0


def test_metric_by_hand(tmp_path):
    """Image a: one Cardiomegaly box; b: normal. Cardiomegaly: a false positive (0.9) ranks above the hit
    (0.8): precision 1/2 at recall 1, AP 50. No finding: b's empty row (score 1) hits, a's guess (0.5) is
    a false positive ranked below it: AP 100. Mean over the two classes with ground truth: 75."""
    gt = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 100, "height": 50, "dicom_width": 200, "dicom_height": 100},
            {"id": 2, "file_name": "b.png", "width": 100, "height": 100, "dicom_width": 1000, "dicom_height": 1000},
        ],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 4, "bbox": [10, 10, 20, 10]}],  # DICOM 20,20,60,40
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(VINDR_CXR_CLASSES)],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    write_submission(
        tmp_path / "s.csv", {"a": "3 0.9 100 60 140 90 3 0.8 21 21 61 41 14 0.5 0 0 1 1", "b": prediction_string([])}
    )
    assert (tmp_path / "s.csv").read_text().splitlines()[2] == "b,14 1 0 0 1 1"
    code = score(tmp_path / "gt.json", tmp_path / "s.csv", tmp_path / "r.json")
    assert code == 0
    result = json.loads((tmp_path / "r.json").read_text())["vinbigdata"]
    assert result["per_class"]["Cardiomegaly"] == pytest.approx(50.0)
    assert result["per_class"]["No finding"] == pytest.approx(100.0)
    assert result["mean"] == pytest.approx(75.0)
    assert sum(v is None for v in result["per_class"].values()) == 13
    # the same box in PNG pixels (not mapped back to the DICOM) would miss: IoU of (21,21,61,41) with (10,10,30,20)
    write_submission(tmp_path / "png.csv", {"a": "3 0.8 10 10 30 20", "b": "14 1 0 0 1 1"})
    score(tmp_path / "gt.json", tmp_path / "png.csv", tmp_path / "r2.json")
    assert json.loads((tmp_path / "r2.json").read_text())["vinbigdata"]["per_class"]["Cardiomegaly"] == 0.0


def test_prediction_strings_round_trip_and_empty_rows():
    entries = [(0, 0.987654, (1.25, 2.0, 30.04, 40.96)), (14, 0.5, (0.0, 0.0, 1.0, 1.0))]
    text = prediction_string(entries)
    assert text == "0 0.987654 1.2 2 30 41 14 0.5 0 0 1 1" or text == "0 0.987654 1.3 2 30 41 14 0.5 0 0 1 1"
    parsed = parse_prediction_string(text, "here")
    assert [c for c, _, _ in parsed] == [0, 14]
    assert np.allclose(parsed[0][2], entries[0][2], atol=0.05 + 1e-9)
    assert prediction_string([]) == "14 1 0 0 1 1"
    with pytest.raises(ValueError, match="here: PredictionString has 5 fields"):
        parse_prediction_string("1 0.5 1 2 3", "here")
    with pytest.raises(ValueError, match="class 15 is not one of 0-14"):
        parse_prediction_string("15 0.5 1 2 3 4", "here")


def test_two_threshold_normal_filter():
    boxes = [(3, 0.7, (1.0, 2.0, 3.0, 4.0))]
    # probability of a finding 1 - p: below low -> the "No finding" row; from low to high -> appended; above -> kept
    assert apply_normal_filter(boxes, p_normal=0.95, low=0.1, high=0.9) == [(14, 1.0, (0.0, 0.0, 1.0, 1.0))]
    assert apply_normal_filter(boxes, p_normal=0.6, low=0.1, high=0.9) == [*boxes, (14, 0.6, (0.0, 0.0, 1.0, 1.0))]
    assert apply_normal_filter(boxes, p_normal=0.05, low=0.1, high=0.9) == boxes


def test_malformed_submission_is_named(tmp_path, capsys):
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(VINDR_CXR_CLASSES)]
    (tmp_path / "gt.json").write_text(json.dumps({"images": [], "annotations": [], "categories": categories}))
    with open(tmp_path / "bad.csv", "w", newline="") as f:
        csv.writer(f).writerows([["image_id", "PredictionString"], ["a", "3 0.5 1 2 x 4"]])
    code = run_main(
        "tools/evaluate_detections.py",
        "--metric",
        "vinbigdata",
        "--gt",
        tmp_path / "gt.json",
        "--dt",
        tmp_path / "bad.csv",
    )
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'bad.csv'}, row 2: PredictionString entry 0: "
        "['3', '0.5', '1', '2', 'x', '4'] are not numbers"
    )
