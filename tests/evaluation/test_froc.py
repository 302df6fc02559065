"""FROC (sna_det/evaluation/froc.py, tools/evaluate_detections.py --froc) against a hand-computed case,
and against an independent computation on the real VinBigData boxes."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.coco_cases import coco_ground_truth
from helpers.coco_cases import detection as det
from helpers.real_vinbigdata import real_vinbigdata_rows
from PIL import Image

from sna_det.evaluation.froc import ALL_CLASSES, _curve, evaluate_froc, format_froc_table, sensitivity_at

ROOT = Path(__file__).resolve().parents[2]

# Three images, the third without boxes. "a": A1, A2 on image 1, A3 on image 2; "b": B1 on image 2; "c": none.
A1, A2, A3, B1 = [0, 0, 10, 10], [20, 20, 10, 10], [0, 0, 10, 10], [5, 5, 20, 20]
GT = coco_ground_truth([(1, 1, A1), (1, 1, A2), (2, 1, A3), (2, 2, B1)], ["a", "b", "c"])


DETECTIONS = [
    # "a", by score: TP, FP (normal image), FP (a second detection of A1, IoU 0.81), TP, FP, FP, TP
    det(1, 1, A1, 0.9),
    det(3, 1, [0, 0, 5, 5], 0.8),
    det(1, 1, [1, 1, 10, 9], 0.7),
    det(2, 1, A3, 0.6),
    det(1, 1, [30, 0, 5, 5], 0.5),
    det(2, 1, [30, 30, 5, 5], 0.4),
    det(1, 1, A2, 0.3),
    # "b": TP (IoU 0.82), then three false positives
    det(2, 2, [6, 6, 20, 20], 0.95),
    det(3, 2, [0, 0, 30, 30], 0.85),
    det(3, 2, [2, 2, 30, 30], 0.75),
    det(1, 2, [0, 0, 12, 12], 0.65),
]


def test_hand_computed_froc():
    # "a", 3 boxes, 3 images: (FP/image, sensitivity) after each detection:
    # (0, 1/3) (1/3, 1/3) (2/3, 1/3) (2/3, 2/3) (1, 2/3) (4/3, 2/3) (4/3, 1)
    a = [100 / 3, 100 / 3, 100 / 3, 200 / 3, 100, 100, 100]  # at 1/8, 1/4, 1/2, 1, 2, 4, 8
    b = [100.0] * 7  # its one box is the best-scored detection
    # pooled, 4 boxes: 0.95 TP, 0.9 TP (0, 1/2); five FPs (5/3, 1/2); 0.6 TP (5/3, 3/4); two FPs (7/3, 3/4); TP (7/3, 1)
    pooled = [50.0, 50.0, 50.0, 50.0, 75.0, 100.0, 100.0]
    result = evaluate_froc(GT, DETECTIONS, iou=0.4)
    assert result["fp_rates"] == [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0] and result["images"] == 3
    assert result["per_class"]["a"] == pytest.approx(a)
    assert result["per_class"]["b"] == pytest.approx(b)
    assert result["per_class"]["c"] is None
    assert result["mean"] == pytest.approx([(x + y) / 2 for x, y in zip(a, b)])
    assert result["all_classes"] == pytest.approx(pooled)
    assert result["average"]["per_class"]["a"] == pytest.approx(np.mean(a))
    assert result["average"]["all_classes"] == pytest.approx(np.mean(pooled))
    table = format_froc_table(result)
    assert "| a " in table and "1/8 FP/img" in table and ALL_CLASSES in table


def test_iou_threshold_is_the_chosen_one():
    # the "b" detection has IoU 0.82 with B1: a miss at 0.85, so "b" is never found
    result = evaluate_froc(GT, DETECTIONS, iou=0.85)
    assert result["per_class"]["b"] == [0.0] * 7


def test_tied_scores_are_one_threshold():
    # a TP and an FP of the same score: both come in together, whichever is listed first
    for tp in ([True, False], [False, True]):
        curve = _curve(np.array([0.5, 0.5]), np.array(tp), n_gt=1, n_images=2)
        assert sensitivity_at(curve, [0.25, 0.5]) == [0.0, 1.0]


def test_tool_prints_writes_and_plots(tmp_path, capsys):
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    (tmp_path / "dt.json").write_text(json.dumps(DETECTIONS))
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import evaluate_detections
    finally:
        sys.path.pop(0)
    out, png = tmp_path / "result.json", tmp_path / "froc.png"
    args = ["--gt", tmp_path / "gt.json", "--dt", tmp_path / "dt.json", "--froc-plot", png, "--output", out]
    assert evaluate_detections.main(evaluate_detections.parse_args([str(a) for a in args])) == 0
    printed = capsys.readouterr().out
    assert "FP/img" in printed and "FROC curves drawn" in printed
    saved = json.loads(out.read_text())
    assert saved["froc"] == json.loads(json.dumps(evaluate_froc(GT, DETECTIONS, iou=0.4)))
    assert "voc2010" in saved
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200


def real_gt_and_detections(n_images=150, seed=0):
    """COCO ground truth from the real VinBigData boxes of ``n_images`` images (normal ones among them), and
    detections: most boxes found again, jittered, plus false positives, all with distinct random scores."""

    rows = real_vinbigdata_rows()
    ids = sorted({r["image_id"] for r in rows})[:n_images]
    chosen = set(ids)
    classes = sorted({(int(r["class_id"]), r["class_name"]) for r in rows if r["class_id"] != "14"})
    images = [{"id": i + 1, "file_name": f"{name}.png", "width": 3000, "height": 3000} for i, name in enumerate(ids)]
    number = {name: i + 1 for i, name in enumerate(ids)}
    annotations = []
    for r in rows:
        if r["image_id"] in chosen and r["class_id"] != "14":
            x0, y0, x1, y1 = (float(r[k]) for k in ("x_min", "y_min", "x_max", "y_max"))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": number[r["image_id"]],
                    "category_id": int(r["class_id"]),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0,
                }
            )
    gt = {"images": images, "annotations": annotations, "categories": [{"id": c, "name": n} for c, n in classes]}
    rng = np.random.default_rng(seed)
    detections = []
    for a in annotations:
        if rng.random() < 0.75:
            x, y, w, h = a["bbox"]
            jitter = rng.normal(0, 0.12, 4) * [w, h, w, h]
            box = [x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)]
            detections.append(det(a["image_id"], a["category_id"], box, 0.0))
    for _ in range(8 * len(annotations)):  # up to about 2 false positives per image and class
        x, y = rng.uniform(0, 2500, 2)
        box = [x, y, *rng.uniform(30, 500, 2)]
        detections.append(det(int(rng.integers(1, n_images + 1)), int(rng.choice([c for c, _ in classes])), box, 0.0))
    for d, score in zip(detections, rng.permutation(len(detections)) / len(detections) + 1e-3):
        d["score"] = float(score)
    return gt, detections


def independent_froc(gt, detections, iou, rates):
    """Sensitivity at each rate per class: greedy by score, each detection to the unmatched box of its
    image and class with the highest IoU >= iou (numpy only)."""

    def iou_xywh(a, b):
        w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
        return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)

    n_images, result = len(gt["images"]), {}
    for category in gt["categories"]:
        boxes = [a for a in gt["annotations"] if a["category_id"] == category["id"]]
        if not boxes:
            result[category["name"]] = None
            continue
        used, tp, fp, points = set(), 0, 0, [(0.0, 0.0)]
        mine = sorted((d for d in detections if d["category_id"] == category["id"]), key=lambda d: -d["score"])
        for d in mine:
            overlaps = [
                (iou_xywh(d["bbox"], a["bbox"]), a["id"])
                for a in boxes
                if a["image_id"] == d["image_id"] and a["id"] not in used
            ]
            best = max(overlaps, default=(0.0, None))
            if best[0] >= iou:
                used.add(best[1])
                tp += 1
            else:
                fp += 1
            points.append((fp / n_images, tp / len(boxes)))
        result[category["name"]] = [100 * max(s for f, s in points if f <= rate) for rate in rates]
    return result


def test_froc_on_the_real_vinbigdata_boxes_matches_an_independent_computation():
    gt, detections = real_gt_and_detections()
    assert len(gt["annotations"]) > 100 and len({a["image_id"] for a in gt["annotations"]}) < len(gt["images"])
    result = evaluate_froc(gt, detections, iou=0.4)
    expected = independent_froc(gt, detections, 0.4, result["fp_rates"])
    assert result["per_class"].keys() == expected.keys()
    for name, values in expected.items():
        assert result["per_class"][name] == (None if values is None else pytest.approx(values)), name
    with_boxes = [v for v in expected.values() if v is not None]
    assert result["mean"] == pytest.approx(np.mean(with_boxes, axis=0).tolist())
    assert 0 < result["mean"][0] < result["mean"][-1] < 100  # the curve rises over the rates
