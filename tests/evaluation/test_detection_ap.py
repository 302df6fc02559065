"""Per-class AP at one IoU: hand-computed precision/recall on tiny cases, for both definitions.

COCO-style: precision made non-increasing, then read at the 101 recall thresholds 0, 0.01, ..., 1
(the first detection whose recall reaches the threshold; 0 beyond the last recall), averaged.
VOC2010: the area under the non-increasing precision envelope, summed over the recall steps.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.data import MetadataCatalog
from detectron2.evaluation.pascal_voc_evaluation import voc_ap
from detectron2.structures import Boxes, Instances
from helpers import run_main
from helpers.coco_cases import coco_ground_truth
from helpers.coco_cases import detection as det
from pycocotools.cocoeval import COCOeval

from sna_det.evaluation import PerClassAPEvaluator, evaluate_detections, format_ap_table, load_coco_gt

ROOT = Path(__file__).resolve().parents[2]

# Three images; "a" has 3 boxes (two on image 1, one on image 3), "b" one box on image 2, "c" none.
A1, A2, A3, B1 = [0, 0, 10, 10], [20, 20, 10, 10], [0, 0, 10, 10], [5, 5, 20, 20]
GT = coco_ground_truth([(1, 1, A1), (1, 1, A2), (3, 1, A3), (2, 2, B1)], ["a", "b", "c"])
RECALL_THRESHOLDS = [i / 100 for i in range(101)]


def coco_101(recall, precision):
    """Hand: envelope, then per threshold the precision of the first point with recall >= it."""
    envelope = [max(precision[i:]) for i in range(len(precision))]
    values = []
    for r in RECALL_THRESHOLDS:
        reached = [p for rc, p in zip(recall, envelope) if rc >= r - 1e-12]
        values.append(reached[0] if reached else 0.0)
    return 100 * sum(values) / 101


def test_perfect_detections():
    result = evaluate_detections(GT, [det(1, 1, A1, 0.9), det(1, 1, A2, 0.8), det(3, 1, A3, 0.7), det(2, 2, B1, 0.6)])
    for kind in ("coco", "voc2010"):  # pycocotools' precision is tp / (tp + fp + 2.2e-16): approx
        assert result[kind]["per_class"] == {"a": pytest.approx(100.0), "b": pytest.approx(100.0), "c": None}
        assert result[kind]["mean"] == pytest.approx(100.0)
    assert result["iou"] == 0.4 and result["gt_boxes"] == {"a": 3, "b": 1, "c": 0}


def test_no_detections_is_zero_and_a_class_without_gt_is_null():
    result = evaluate_detections(GT, [])
    for kind in ("coco", "voc2010"):
        assert result[kind] == {"per_class": {"a": 0.0, "b": 0.0, "c": None}, "mean": 0.0}


def test_duplicates_and_an_image_without_predictions():
    # "a": A1 found (0.9), a duplicate of A1 (IoU 0.81, 0.8), A2 found (0.7); image 3 (A3) has no prediction.
    # ranked: TP, FP, TP with 3 ground truth boxes
    recall, precision = [1 / 3, 1 / 3, 2 / 3], [1.0, 1 / 2, 2 / 3]
    # VOC2010: envelope 1 up to recall 1/3, then 2/3 up to 2/3: 1/3 * 1 + 1/3 * 2/3 = 5/9
    voc = 100 * (1 / 3 * 1.0 + 1 / 3 * 2 / 3)
    # COCO: thresholds 0..0.33 (34) -> 1, 0.34..0.66 (33) -> 2/3, 0.67..1 (34) -> 0: (34 + 22) / 101
    coco = 100 * (34 + 33 * 2 / 3) / 101
    assert coco == pytest.approx(coco_101(recall, precision))
    dets = [det(1, 1, A1, 0.9), det(1, 1, [1, 1, 10, 9], 0.8), det(1, 1, A2, 0.7), det(2, 2, [30, 30, 5, 5], 0.5)]
    result = evaluate_detections(GT, dets)
    assert result["voc2010"]["per_class"]["a"] == pytest.approx(voc)
    assert result["coco"]["per_class"]["a"] == pytest.approx(coco)
    assert result["coco"]["per_class"]["b"] == 0.0 and result["voc2010"]["per_class"]["b"] == 0.0  # a miss
    assert result["coco"]["mean"] == pytest.approx(coco / 2) and result["voc2010"]["mean"] == pytest.approx(voc / 2)


def test_score_ties_keep_the_detections_order():
    # "a": a false positive and A1, both score 0.5, the false positive first: FP, TP
    dets = [det(1, 1, [30, 0, 5, 5], 0.5), det(1, 1, A1, 0.5)]
    result = evaluate_detections(GT, dets)
    # recall [0, 1/3], precision [0, 1/2]: VOC 1/3 * 1/2; COCO 34 thresholds <= 1/3 at 1/2
    assert result["voc2010"]["per_class"]["a"] == pytest.approx(100 / 6)
    assert result["coco"]["per_class"]["a"] == pytest.approx(100 * 34 * 0.5 / 101)
    assert result["coco"]["per_class"]["a"] == pytest.approx(coco_101([0, 1 / 3], [0, 0.5]))
    swapped = evaluate_detections(GT, dets[::-1])  # TP first: precision 1 at recall 1/3
    assert swapped["voc2010"]["per_class"]["a"] == pytest.approx(100 / 3)
    assert swapped["coco"]["per_class"]["a"] == pytest.approx(100 * 34 / 101)


def test_iou_exactly_at_the_threshold():
    # B1 = [5, 5, 20, 20] (area 400) and [5, 5, 8, 20] (area 160, inside): IoU = 160 / 400 = 0.4
    result = evaluate_detections(GT, [det(2, 2, [5, 5, 8, 20], 0.9)], iou=0.4)
    assert result["coco"]["per_class"]["b"] == pytest.approx(100.0)  # COCOeval: IoU >= threshold
    assert result["voc2010"]["per_class"]["b"] == 0.0  # VOC: IoU > threshold ("IoU > 0.4")


def test_matches_pycocotools_ap50_and_detectron2s_voc_ap_on_random_detections():
    rng = np.random.default_rng(0)
    gt = {"images": [{"id": i, "width": 100, "height": 100} for i in range(1, 9)], "categories": GT["categories"]}
    gt["annotations"], dets = [], []
    for k in range(1, 31):
        x, y, w, h = rng.uniform(0, 60, 2).tolist() + rng.uniform(5, 40, 2).tolist()
        img, cat = int(rng.integers(1, 9)), int(rng.integers(1, 3))
        gt["annotations"].append(
            {"id": k, "image_id": img, "category_id": cat, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
        )
        for _ in range(2):
            jitter = rng.normal(0, 4, 4)
            dets.append(
                det(
                    img,
                    cat,
                    [x + jitter[0], y + jitter[1], w + abs(jitter[2]), h + abs(jitter[3])],
                    float(rng.uniform()),
                )
            )
    dets += [det(int(rng.integers(1, 9)), 1, rng.uniform(0, 60, 4).tolist(), float(rng.uniform())) for _ in range(10)]
    result = evaluate_detections(gt, dets, iou=0.5)
    reference = COCOeval(load_coco_gt(gt), load_coco_gt(gt).loadRes(dets), "bbox")
    reference.evaluate(), reference.accumulate(), reference.summarize()
    assert result["coco"]["mean"] == pytest.approx(100 * reference.stats[1])  # AP50, area all, 100 dets
    # VOC: the class's ranked TP/FP by a direct greedy matching, then detectron2's voc_ap for the area
    cat_dets = sorted((d for d in dets if d["category_id"] == 1), key=lambda d: -d["score"])
    gts = [a for a in gt["annotations"] if a["category_id"] == 1]
    used, tp = set(), []
    for d in cat_dets:
        ious = [(iou_xywh(d["bbox"], a["bbox"]), a["id"]) for a in gts if a["image_id"] == d["image_id"]]
        best = max(ious, default=(0, None))
        tp.append(best[0] > 0.5 and best[1] not in used)
        if tp[-1]:
            used.add(best[1])
    tp = np.array(tp, float)
    rec, prec = np.cumsum(tp) / len(gts), np.cumsum(tp) / np.arange(1, len(tp) + 1)
    assert result["voc2010"]["per_class"]["a"] == pytest.approx(100 * voc_ap(rec, prec, use_07_metric=False))


def iou_xywh(a, b):
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    inter = max(0, min(ax1, bx1) - max(a[0], b[0])) * max(0, min(ay1, by1) - max(a[1], b[1]))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_bad_detections_are_named(tmp_path):
    with pytest.raises(
        ValueError, match=r"detections: detection 0 lacks field\(s\) \['bbox', 'category_id', 'score'\]"
    ):
        evaluate_detections(GT, [{"image_id": 1}])
    with pytest.raises(ValueError, match=r"detection 1: field bbox \[0, 0, nan, 10\] is not \[x, y"):
        evaluate_detections(GT, [det(1, 1, A1, 0.9), det(1, 1, [0, 0, float("nan"), 10], 0.9)])
    with pytest.raises(ValueError, match=r"detection 0: field bbox \[0, 0, -1, 10\]"):
        evaluate_detections(GT, [det(1, 1, [0, 0, -1, 10], 0.9)])
    with pytest.raises(ValueError, match="detection 0: field score 'high' is not a finite number"):
        evaluate_detections(GT, [det(1, 1, A1, "high")])
    with pytest.raises(ValueError, match="detection 0: field image_id \\[1\\] is not an integer or string"):
        evaluate_detections(GT, [det([1], 1, A1, 0.9)])
    with pytest.raises(ValueError, match="detection 0 is a list, not an object"):
        evaluate_detections(GT, [[1, 1, A1, 0.9]])
    with pytest.raises(ValueError, match="expected a list of COCO results"):
        evaluate_detections(GT, {"image_id": 1})
    (tmp_path / "dt.json").write_bytes(b"\xff[{")
    with pytest.raises(ValueError, match=f"{tmp_path / 'dt.json'}: not a JSON file"):
        evaluate_detections(GT, tmp_path / "dt.json")
    (tmp_path / "dt.json").write_text(json.dumps([det(1, 1, A1, 0.9), det(1, 1, None, 0.9)]))
    with pytest.raises(ValueError, match=f"{tmp_path / 'dt.json'}: detection 1: field bbox None"):
        evaluate_detections(GT, tmp_path / "dt.json")


def test_bad_ground_truth_is_named(tmp_path):
    bad = dict(GT, annotations=[dict(GT["annotations"][0], bbox=[0, 0, 10])])
    with pytest.raises(ValueError, match=r"ground truth: annotations\[0\]: field bbox \[0, 0, 10\]"):
        evaluate_detections(bad, [])
    bad = dict(GT, annotations=[dict(GT["annotations"][0], image_id=9)])
    with pytest.raises(ValueError, match=r"annotations\[0\]: field image_id 9 is not an id of the images"):
        evaluate_detections(bad, [])
    with pytest.raises(ValueError, match=r"categories\[1\]: field name 'a' appears twice"):
        evaluate_detections(dict(GT, categories=[{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]), [])
    (tmp_path / "gt.json").write_text(json.dumps(dict(GT, images={"id": 1})))
    with pytest.raises(ValueError, match=f"{tmp_path / 'gt.json'}: field images is a dict, not a list"):
        evaluate_detections(tmp_path / "gt.json", [])


def test_ground_truth_ids_zero_or_repeated_and_without_area_or_iscrowd_are_evaluated():
    """pycocotools reads annotation id 0 as "unmatched": the ids are renumbered, so A1 is still found."""
    annotations = [{k: v for k, v in a.items() if k not in ("area", "iscrowd")} for a in GT["annotations"]]
    gt = dict(GT, annotations=[dict(a, id=0) for a in annotations])
    result = evaluate_detections(gt, [det(1, 1, A1, 0.9), det(1, 1, A2, 0.8), det(3, 1, A3, 0.7), det(2, 2, B1, 0.6)])
    assert result["coco"]["per_class"] == {"a": pytest.approx(100.0), "b": pytest.approx(100.0), "c": None}


def test_unknown_images_and_categories_are_skipped_and_counted():
    known = [det(1, 1, A1, 0.9), det(2, 2, B1, 0.8)]
    unknown = [det(7, 1, A1, 0.95), det(1, 9, A1, 0.95), det(8, 9, A1, 0.95), det("1", 1, A2, 0.99)]
    result = evaluate_detections(GT, [unknown[0], known[0], *unknown[1:], known[1]])
    assert result["skipped"] == {"unknown image_id": 3, "unknown category_id": 1}  # image first: (8, 9) is an image
    assert result["detections"] == {"read": 6, "evaluated": 2}
    assert (
        result["skipped_examples"]["unknown image_id"][0]
        == "detections: detection 0: unknown image_id: image_id 7 is not in the ground truth"
    )
    assert result["skipped_examples"]["unknown category_id"] == [
        "detections: detection 2: unknown category_id: category_id 9 is not in the ground truth"
    ]
    assert result["images_without_detections"] == 1  # image 3
    # the skipped detections, high scores though they have, change nothing: "a" recall 1/3 at precision 1
    assert result["voc2010"]["per_class"] == {"a": pytest.approx(100 / 3), "b": pytest.approx(100.0), "c": None}
    assert result["coco"]["per_class"]["a"] == pytest.approx(100 * 34 / 101)


def test_empty_predictions_and_images_without_predictions_by_hand():
    empty = evaluate_detections(GT, [])
    assert empty["detections"] == {"read": 0, "evaluated": 0} and empty["images_without_detections"] == 3
    assert empty["skipped"] == {"unknown image_id": 0, "unknown category_id": 0} and empty["skipped_examples"] == {}
    # only image 2 predicted, and rightly: "a" (3 boxes on images 1 and 3) is all missed -> 0; "b" found -> 100
    only_image_2 = evaluate_detections(GT, [det(2, 2, B1, 0.5)])
    assert only_image_2["images_without_detections"] == 2
    for kind in ("coco", "voc2010"):
        assert only_image_2[kind]["per_class"] == {"a": 0.0, "b": pytest.approx(100.0), "c": None}
        assert only_image_2[kind]["mean"] == pytest.approx(50.0)
    # a wrong-class prediction only: "b" found nothing (0), "a" only false positives (0), "c" no GT (null)
    wrong = evaluate_detections(GT, [det(2, 3, B1, 0.5)])
    for kind in ("coco", "voc2010"):
        assert wrong[kind] == {"per_class": {"a": 0.0, "b": 0.0, "c": None}, "mean": 0.0}


def test_table_layout():
    text = format_ap_table(evaluate_detections(GT, [det(1, 1, A1, 0.9)]))
    lines = text.splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "class",
        "GT boxes",
        "AP@0.4 coco",
        "AP@0.4 voc2010",
        "hit@0.4 (Table 4)",
    ]
    assert [line.split("|")[1].strip() for line in lines[2:5]] == ["a", "b", "c"]
    assert lines[4].split("|")[3].strip() == "-"  # c: no ground truth
    assert lines[5].startswith("| Total (mean)")


def test_evaluate_detections_tool(tmp_path):
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    (tmp_path / "dt.json").write_text(json.dumps([det(1, 1, A1, 0.9), det(2, 2, B1, 0.8)]))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "evaluate_detections.py"), "--gt", tmp_path / "gt.json"]
        + ["--dt", tmp_path / "dt.json", "--iou", "0.4", "--output", tmp_path / "ap.json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    written = json.loads((tmp_path / "ap.json").read_text())
    assert set(written) >= {"iou", "coco", "voc2010", "gt_boxes", "skipped"} and written["iou"] == 0.4
    # "a": one of 3 found first: recall 1/3 at precision 1 -> VOC 1/3, COCO 34/101; "b": found
    assert written["voc2010"]["per_class"] == {"a": pytest.approx(100 / 3), "b": 100.0, "c": None}
    assert written["coco"]["per_class"]["a"] == pytest.approx(100 * 34 / 101)
    assert "| a " in proc.stdout and "Total (mean)" in proc.stdout
    assert "detections: 2 read, 2 evaluated, skipped: unknown image_id 0, unknown category_id 0" in proc.stdout
    assert written["images_without_detections"] == 1  # image 3


def per_class_evaluator(tmp_path, name: str) -> PerClassAPEvaluator:
    """The detectron2 evaluator on ``GT`` (registered as ``name``), writing to tmp_path / "out"."""
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    MetadataCatalog.get(name).set(json_file=str(tmp_path / "gt.json"), eval_iou_threshold=0.4)
    evaluator = PerClassAPEvaluator(name, output_dir=str(tmp_path / "out"), distributed=False)
    evaluator.reset()
    return evaluator


def test_dataset_evaluator_maps_classes_and_reports_nan_for_no_gt(tmp_path):
    name = "sna_test_per_class_ap"
    evaluator = per_class_evaluator(tmp_path, name)
    outputs = []
    for image, boxes, classes in ((1, [A1], [0]), (2, [B1], [1]), (3, [], [])):
        instances = Instances((40, 40))
        xyxy = [[x, y, x + w, y + h] for x, y, w, h in boxes]
        instances.pred_boxes = Boxes(torch.tensor(xyxy, dtype=torch.float32).reshape(-1, 4))
        instances.scores = torch.full((len(boxes),), 0.9)
        instances.pred_classes = torch.tensor(classes, dtype=torch.int64)
        outputs.append(({"image_id": image}, {"instances": instances}))
    for item, output in outputs:
        evaluator.process([item], [output])
    (metrics,) = evaluator.evaluate().values()
    assert metrics["AP-b"] == pytest.approx(100.0) and metrics["AP_voc2010-a"] == pytest.approx(100 / 3)
    assert np.isnan(metrics["AP-c"]) and np.isnan(metrics["AP_voc2010-c"])
    assert metrics["AP"] == pytest.approx((100 * 34 / 101 + 100) / 2)
    # hit rate: a 1 of 3 boxes, b 1 of 1, c none
    assert (metrics["hit_rate-a"], metrics["hit_rate-b"]) == (pytest.approx(100 / 3), 100.0)
    assert np.isnan(metrics["hit_rate-c"]) and metrics["hit_rate"] == pytest.approx((100 / 3 + 100) / 2)
    saved = json.loads((tmp_path / "out" / f"per_class_ap_{name}.json").read_text())
    assert saved["coco"]["per_class"]["c"] is None and saved["iou"] == 0.4
    results = json.loads((tmp_path / "out" / f"coco_instances_results_{name}.json").read_text())
    assert sorted(r["category_id"] for r in results) == [1, 2]  # contiguous 0, 1 -> dataset ids 1, 2


def test_dataset_evaluator_without_predictions(tmp_path):
    """No image has an instance (or "instances" at all): AP 0 for the classes with GT, NaN without."""
    name = "sna_test_per_class_ap_empty"
    evaluator = per_class_evaluator(tmp_path, name)
    empty = Instances((40, 40), pred_boxes=Boxes(torch.zeros(0, 4)), scores=torch.zeros(0))
    empty.pred_classes = torch.zeros(0, dtype=torch.int64)
    evaluator.process([{"image_id": 1}, {"image_id": 2}], [{"instances": empty}, {}])
    (metrics,) = evaluator.evaluate().values()
    assert (metrics["AP"], metrics["AP-a"], metrics["AP-b"], metrics["AP_voc2010-a"]) == (0.0, 0.0, 0.0, 0.0)
    assert np.isnan(metrics["AP-c"]) and np.isnan(metrics["AP_voc2010-c"])
    saved = json.loads((tmp_path / "out" / f"per_class_ap_{name}.json").read_text())
    assert saved["detections"] == {"read": 0, "evaluated": 0} and saved["images_without_detections"] == 3
    assert json.loads((tmp_path / "out" / f"coco_instances_results_{name}.json").read_text()) == []


@pytest.mark.parametrize(
    "gt, missing",
    [({"foo": 1}, "images, annotations, categories"), ({"images": [], "categories": []}, "annotations")],
)
def test_evaluate_detections_refuses_ground_truth_that_is_not_coco(tmp_path, capsys, gt, missing):
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text("[]")
    assert (
        run_main(
            "tools/evaluate_detections.py", *["--gt", str(tmp_path / "gt.json"), "--dt", str(tmp_path / "dt.json")]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    expected = f"not COCO ground truth: lacks {missing} (COCO has images, annotations, categories)"
    assert err == [f"error: {tmp_path / 'gt.json'}: {expected}"]
