"""FROC (sna_det/evaluation/froc.py, tools/evaluate_detections.py --froc) against a hand-computed case."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sna_det.evaluation.froc import ALL_CLASSES, _curve, evaluate_froc, format_froc_table, sensitivity_at

ROOT = Path(__file__).resolve().parents[1]

# Three images, the third without boxes. "a": A1, A2 on image 1, A3 on image 2; "b": B1 on image 2; "c": none.
A1, A2, A3, B1 = [0, 0, 10, 10], [20, 20, 10, 10], [0, 0, 10, 10], [5, 5, 20, 20]
GT = {
    "images": [{"id": i, "file_name": f"{i}.png", "width": 40, "height": 40} for i in (1, 2, 3)],
    "annotations": [
        {"id": k, "image_id": img, "category_id": cat, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
        for k, (img, cat, box) in enumerate([(1, 1, A1), (1, 1, A2), (2, 1, A3), (2, 2, B1)], start=1)
    ],
    "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}],
}


def det(image, category, box, score):
    return {"image_id": image, "category_id": category, "bbox": box, "score": score}


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
    assert evaluate_detections.main([str(a) for a in args]) == 0
    printed = capsys.readouterr().out
    assert "FP/img" in printed and "FROC curves drawn" in printed
    saved = json.loads(out.read_text())
    assert saved["froc"] == json.loads(json.dumps(evaluate_froc(GT, DETECTIONS, iou=0.4)))
    assert "voc2010" in saved
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
