"""The hit rate (the metric behind the paper's Table 4): hand-computed cases, and the real VinBigData
readers' boxes against an independent all-pairs IoU computation."""

import json
from collections import defaultdict

import numpy as np
import pytest
from helpers import run_main
from helpers.real_vinbigdata import real_vinbigdata_rows

from sna_det.evaluation import boxes_hit, evaluate_detections, format_ap_table

BOX = [0, 0, 10, 10]  # xywh, area 100


def gt_of(annotations, categories=("a", "b", "c"), images=(1, 2)):
    return {
        "images": [{"id": i, "file_name": f"{i}.png", "width": 50, "height": 50} for i in images],
        "annotations": [
            {"id": k, "image_id": img, "category_id": cat, "bbox": box, "iscrowd": crowd}
            for k, (img, cat, box, crowd) in enumerate(annotations, start=1)
        ],
        "categories": [{"id": i, "name": n} for i, n in enumerate(categories, start=1)],
    }


def det(image, category, box, score=0.9):
    return {"image_id": image, "category_id": category, "bbox": box, "score": score}


def test_iou_must_exceed_the_threshold():
    gt = gt_of([(1, 1, BOX, 0)])
    at = evaluate_detections(gt, [det(1, 1, [0, 0, 10, 4])], iou=0.4)  # IoU 40/100 = 0.4: not > 0.4
    above = evaluate_detections(gt, [det(1, 1, [0, 0, 10, 4.1])], iou=0.4)  # 41/100
    assert at["hit_rate"]["per_class"]["a"] == 0.0
    assert above["hit_rate"]["per_class"]["a"] == 100.0


def test_hand_computed_rates_and_unweighted_mean():
    # a: 3 boxes (2 on image 1, 1 on image 2); b: 1 box; c: none.
    gt = gt_of([(1, 1, BOX, 0), (1, 1, [30, 30, 10, 10], 0), (2, 1, BOX, 0), (2, 2, [20, 20, 10, 10], 0)])
    detections = [
        det(1, 1, [1, 1, 10, 10], score=0.01),  # hits a's first box (IoU 81/119) despite its tiny score
        det(1, 1, [1, 1, 10, 10], score=0.02),  # a duplicate: no effect on the hit rate (an AP would fall)
        det(2, 2, BOX),  # right image, wrong class: a's box on image 2 is missed
        det(1, 2, [20, 20, 10, 10]),  # right class and place, wrong image: b is missed
    ]
    result = evaluate_detections(gt, detections)
    assert result["hit_rate"]["per_class"] == {"a": pytest.approx(100 / 3), "b": 0.0, "c": None}
    # the mean over the classes with boxes, not over boxes (which would be 1/4 = 25 %)
    assert result["hit_rate"]["mean"] == pytest.approx((100 / 3 + 0) / 2)
    assert "Table 4" in result["hit_rate"]["about"]


def test_one_detection_hits_several_boxes_and_crowd_boxes_do_not_count():
    gt = gt_of([(1, 1, BOX, 0), (1, 1, [0, 0, 10, 9], 0), (1, 1, [40, 40, 5, 5], 1)])
    result = evaluate_detections(gt, [det(1, 1, BOX)])
    assert result["hit_rate"]["per_class"]["a"] == 100.0  # both non-crowd boxes hit, the crowd box ignored
    assert evaluate_detections(gt, [])["hit_rate"]["per_class"]["a"] == 0.0


def test_boxes_hit_direct():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=float)
    assert boxes_hit(gt, np.zeros((0, 4)), 0.4).tolist() == [False, False]
    assert boxes_hit(gt, np.array([[0, 0, 10, 6], [21, 21, 30, 30]]), 0.5).tolist() == [True, True]


def test_table_and_tool_report_the_hit_rate(tmp_path, capsys):
    gt = gt_of([(1, 1, BOX, 0), (2, 2, BOX, 0)])
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps([det(1, 1, BOX)]))
    table = format_ap_table(evaluate_detections(gt, [det(1, 1, BOX)]))
    header = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    assert header[-1] == "hit@0.4 (Table 4)"
    code = run_main(
        "tools/evaluate_detections.py",
        *["--gt", tmp_path / "gt.json", "--dt", tmp_path / "dt.json", "--output", tmp_path / "out.json"],
    )
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "out.json").read_text())["hit_rate"]
    assert saved["per_class"] == {"a": 100.0, "b": 0.0, "c": None} and saved["mean"] == 50.0


def _all_pairs_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes by broadcasting (independent of sna_det's per-box loop)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_real_reader_vs_reader_boxes_match_an_independent_computation():
    """On 400 real VinBigData images, one radiologist's boxes as detections, another's as ground truth."""
    rows = [r for r in real_vinbigdata_rows() if r["class_name"] != "No finding"]
    by_image = defaultdict(list)
    for r in rows:
        by_image[r["image_id"]].append(r)
    images = sorted(i for i, rs in by_image.items() if len({r["rad_id"] for r in rs}) >= 2)[:400]
    classes = sorted({r["class_name"] for r in rows})
    cat = {name: k for k, name in enumerate(classes, start=1)}
    gt = {"images": [], "annotations": [], "categories": [{"id": k, "name": n} for n, k in cat.items()]}
    detections, truth = [], defaultdict(list)
    for number, image_id in enumerate(images, start=1):
        gt["images"].append({"id": number, "file_name": image_id, "width": 4000, "height": 4000})
        readers = sorted({r["rad_id"] for r in by_image[image_id]})
        for r in by_image[image_id]:
            x0, y0, x1, y1 = (float(r[k]) for k in ("x_min", "y_min", "x_max", "y_max"))
            record = {"image_id": number, "category_id": cat[r["class_name"]], "bbox": [x0, y0, x1 - x0, y1 - y0]}
            if r["rad_id"] == readers[0]:
                detections.append({**record, "score": 1.0})
            elif r["rad_id"] == readers[1]:
                gt["annotations"].append({**record, "id": len(gt["annotations"]) + 1, "iscrowd": 0})
                truth[number, r["class_name"]].append([x0, y0, x1, y1])
    dets = defaultdict(list)
    for d in detections:
        x, y, w, h = d["bbox"]
        dets[d["image_id"], classes[d["category_id"] - 1]].append([x, y, x + w, y + h])
    hit, total = defaultdict(int), defaultdict(int)
    for (image, name), boxes in truth.items():
        found = np.array(dets[image, name]).reshape(-1, 4)
        total[name] += len(boxes)
        if len(found):
            hit[name] += int((_all_pairs_iou(np.array(boxes), found).max(axis=1) > 0.4).sum())
    expected = {n: (100.0 * hit[n] / total[n] if total[n] else None) for n in classes}

    result = evaluate_detections(gt, detections, iou=0.4)["hit_rate"]
    assert sum(total.values()) > 500 and len([v for v in expected.values() if v is not None]) >= 12
    assert 0 < min(v for v in expected.values() if v is not None) < max(expected.values()) < 100  # not trivial
    assert result["per_class"] == pytest.approx(expected)
    assert result["mean"] == pytest.approx(np.mean([v for v in expected.values() if v is not None]))
