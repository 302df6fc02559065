"""Weighted boxes fusion of COCO results and predictions files (sna_det/evaluation/ensemble.py,
tools/ensemble_detections.py), against ensemble-boxes called directly (on random boxes and on the readers of
the real VinBigData annotations) and hand-made cases."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ensemble_boxes import weighted_boxes_fusion
from helpers.real_vinbigdata import real_vinbigdata_rows

from sna_det.evaluation import evaluate_detections
from sna_det.evaluation.ensemble import CONF_TYPES, align_detections, fuse_detections, read_detection_file

ROOT = Path(__file__).resolve().parents[2]
SIZES = {1: (200, 100), 2: (50, 80)}  # id: (width, height)
GT = {
    "images": [{"id": i, "file_name": f"dir/{i}.png", "width": w, "height": h} for i, (w, h) in SIZES.items()],
    "categories": [{"id": 3, "name": "nodule"}, {"id": 7, "name": "mass"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 40, 30]},
        {"id": 2, "image_id": 1, "category_id": 7, "bbox": [120, 40, 60, 50]},
        {"id": 3, "image_id": 2, "category_id": 3, "bbox": [5, 5, 20, 20]},
    ],
}


def det(image, category, box, score):
    return {"image_id": image, "category_id": category, "bbox": list(map(float, box)), "score": score}


def key(d):
    return (d["image_id"], d["category_id"], round(d["score"], 6), *np.round(d["bbox"], 3))


def random_model(rng, n=12):
    dets = []
    for _ in range(n):
        image = int(rng.integers(1, 3))
        w, h = SIZES[image]
        x0, y0 = rng.uniform(0, w * 0.6), rng.uniform(0, h * 0.6)
        box = [x0, y0, rng.uniform(3, w - x0), rng.uniform(3, h - y0)]
        dets.append(det(image, int(rng.choice([3, 7])), box, float(rng.uniform(0.05, 1))))
    return dets


def test_fusion_is_ensemble_boxes_on_normalised_boxes_per_image():
    rng = np.random.default_rng(0)
    models = [random_model(rng) for _ in range(3)]
    weights = [2.0, 1.0, 0.5]
    fused = fuse_detections(models, SIZES, weights=weights, iou_thr=0.4, skip_box_thr=0.1, conf_type="max")
    expected = []
    for image, (w, h) in SIZES.items():  # independently: xyxy / size per model, labels as the category ids
        lists = [[], [], []]
        for dets in models:
            mine = [d for d in dets if d["image_id"] == image]
            lists[0].append([[x / w, y / h, (x + bw) / w, (y + bh) / h] for x, y, bw, bh in (d["bbox"] for d in mine)])
            lists[1].append([d["score"] for d in mine])
            lists[2].append([d["category_id"] for d in mine])
        boxes, scores, labels = weighted_boxes_fusion(
            *lists, weights=weights, iou_thr=0.4, skip_box_thr=0.1, conf_type="max"
        )
        for (x0, y0, x1, y1), s, c in zip(boxes, scores, labels):
            expected.append(det(image, int(c), [x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h], float(s)))
    assert len(fused) == len(expected) > 10
    assert sorted(map(key, fused)) == sorted(map(key, expected))
    assert len(fused) < sum(len(m) for m in models), "overlapping boxes were fused"


def test_two_identical_inputs_fuse_to_the_same_boxes():
    model = [det(1, 3, [10, 10, 40, 30], 0.9), det(1, 7, [120, 40, 60, 50], 0.6), det(2, 3, [5, 5, 20, 20], 0.3)]
    fused = fuse_detections([model, model], SIZES, iou_thr=0.55)
    assert sorted(map(key, fused)) == sorted(map(key, model))


def test_disjoint_inputs_keep_every_box_at_half_the_score():
    # WBF "avg": a box found by one of two models scores s * min(2, 1) / 2
    a, b = [det(1, 3, [0, 0, 20, 20], 0.8)], [det(1, 3, [100, 50, 30, 30], 0.6), det(2, 7, [0, 0, 10, 10], 0.4)]
    fused = fuse_detections([a, b], SIZES, iou_thr=0.5)
    halved = [{**d, "score": d["score"] / 2} for d in a + b]
    assert sorted(map(key, fused)) == sorted(map(key, halved))


def test_weights_shift_the_fused_box_towards_the_heavier_model():
    # one box each, IoU 0.68; WBF: coordinates averaged with weight * score: (3 * 0.5 * 0 + 1 * 0.5 * 10) / 2 = 2.5
    a, b = [det(1, 3, [0, 0, 40, 40], 0.5)], [det(1, 3, [10, 0, 40, 40], 0.5)]
    fused = fuse_detections([a, b], SIZES, weights=[3, 1], iou_thr=0.5)
    assert len(fused) == 1 and fused[0]["bbox"] == pytest.approx([2.5, 0, 40, 40])
    with pytest.raises(ValueError, match="2 weights for 3 inputs"):
        fuse_detections([a, b, a], SIZES, weights=[1, 2])


def predictions_file(image_ids, category_ids, detections):
    """A predictions.json of the same images and classes under other ids (as tools/predict.py may number them)."""
    images = [
        {"id": image_ids[i], "file_name": f"/data/{i}.png", "width": w, "height": h} for i, (w, h) in SIZES.items()
    ]
    names = {3: "nodule", 7: "mass"}
    categories = [{"id": category_ids[c], "name": n} for c, n in names.items()]
    annotations = [
        {**d, "image_id": image_ids[d["image_id"]], "category_id": category_ids[d["category_id"]]} for d in detections
    ]
    return {"images": images, "categories": categories, "annotations": annotations}


def test_predictions_files_are_matched_by_file_name_and_class_name():
    dets = [det(1, 3, [10, 10, 40, 30], 0.9), det(2, 3, [5, 5, 20, 20], 0.5)]
    a = read_detection_file(predictions_file({1: 10, 2: 11}, {3: 0, 7: 1}, dets), "a")
    b = read_detection_file(predictions_file({1: 5, 2: 4}, {3: 1, 7: 0}, dets + [det(1, 7, [0, 0, 9, 9], 0.2)]), "b")
    aligned, reference, skipped = align_detections([a, b])  # the first predictions file is the reference
    assert aligned[0] == a.detections and sorted(reference.images) == [10, 11]
    assert sorted(map(key, aligned[1])) == sorted(map(key, a.detections + [det(10, 1, [0, 0, 9, 9], 0.2)]))
    from sna_det.evaluation.ensemble import reference_from_gt

    aligned, _, skipped = align_detections([a, b], reference_from_gt(GT))  # by base name: "dir/1.png" ~ "/data/1.png"
    assert sorted(map(key, aligned[0])) == sorted(map(key, dets)) and skipped.counts["unknown image"] == 0
    with pytest.raises(ValueError, match="carry no image sizes"):
        align_detections([read_detection_file(dets, "results")])


def run_tool(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "ensemble_detections.py"), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_tool_fuses_and_scores_every_input_and_the_fusion(tmp_path):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(GT))
    good = [det(1, 3, [10, 10, 40, 30], 0.9), det(1, 7, [120, 40, 60, 50], 0.7), det(2, 3, [5, 5, 20, 20], 0.6)]
    weak = [det(1, 3, [12, 10, 40, 30], 0.8), det(2, 3, [30, 50, 10, 10], 0.9), det(9, 3, [0, 0, 5, 5], 0.5)]
    (tmp_path / "a.json").write_text(json.dumps(good))
    (tmp_path / "b.json").write_text(json.dumps(weak))
    out, metrics = tmp_path / "fused.json", tmp_path / "metrics.json"
    proc = run_tool(
        "--gt",
        gt,
        "--dt",
        tmp_path / "a.json",
        tmp_path / "b.json",
        "--iou-thr",
        0.5,
        "--output",
        out,
        "--metrics-output",
        metrics,
    )
    assert proc.returncode == 0, proc.stderr
    assert "skipped: unknown image 1, unknown category 0, zero-area box 0" in proc.stdout
    fused = json.loads(out.read_text())
    assert fused == fuse_detections([good, weak[:2]], SIZES, iou_thr=0.5)
    saved = json.loads(metrics.read_text())["inputs"]
    assert list(saved) == ["a.json", "b.json", "fused (WBF)"]
    for name, dets in (("a.json", good), ("b.json", weak), ("fused (WBF)", fused)):
        assert saved[name]["voc2010"] == json.loads(json.dumps(evaluate_detections(GT, dets, 0.4)))["voc2010"]
    assert saved["a.json"]["voc2010"]["mean"] == pytest.approx(100.0)
    assert "| nodule" in proc.stdout and "fused (WBF)" in proc.stdout


def load_tool():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import ensemble_detections
    finally:
        sys.path.pop(0)
    return ensemble_detections


def test_tool_reports_bad_input_in_one_line(tmp_path, capsys):
    from sna_det.utils.cli import CommandError

    tool = load_tool()
    (tmp_path / "a.json").write_text(json.dumps([det(1, 3, [0, 0, 1, 1], 0.5)]))
    (tmp_path / "b.json").write_text(json.dumps([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]))
    proc = run_tool("--dt", tmp_path / "a.json", tmp_path / "b.json", "--output", tmp_path / "f.json")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {tmp_path / 'b.json'}: detection 0 lacks field(s) ['category_id']"
    same = ["--dt", str(tmp_path / "a.json"), str(tmp_path / "a.json"), "--output", str(tmp_path / "f.json")]
    with pytest.raises(CommandError, match="give the ground truth \\(--gt\\)"):
        tool.main(tool.parse_args(same))
    with pytest.raises(SystemExit):
        tool.parse_args([*same, "--weights", "1"])
    assert "1 weights for 2 --dt files" in capsys.readouterr().err
    assert not (tmp_path / "f.json").exists()


def test_tool_conf_types_are_the_librarys():
    assert load_tool().CONF_TYPES == CONF_TYPES


def test_the_three_radiologists_of_real_vinbigdata_images_fused_as_ensemble_boxes_does(tmp_path, capsys):
    """Each image's three readers of the real VinBigData CSV as three 'models' (score 1), fused by the tool."""
    readers = {}
    for r in real_vinbigdata_rows():
        if r["class_id"] != "14":
            readers.setdefault(r["image_id"], {}).setdefault(r["rad_id"], []).append(r)
    names = sorted(name for name, by in readers.items() if len(by) == 3)[:80]
    size = 4000.0  # above every coordinate of the CSV: the fusion in pixels does not depend on it
    gt = {
        "images": [{"id": i, "file_name": f"{n}.png", "width": size, "height": size} for i, n in enumerate(names)],
        "categories": [{"id": c, "name": f"class {c}"} for c in range(14)],
        "annotations": [],
    }
    models = [[], [], []]
    expected = []
    for image, name in enumerate(names):
        lists = ([], [], [])
        for k, rad in enumerate(sorted(readers[name])):
            rows = readers[name][rad]
            boxes = [[float(r[f]) for f in ("x_min", "y_min", "x_max", "y_max")] for r in rows]
            assert max(max(b) for b in boxes) < size
            models[k] += [
                det(image, int(r["class_id"]), [x0, y0, x1 - x0, y1 - y0], 1.0)
                for r, (x0, y0, x1, y1) in zip(rows, boxes)
            ]
            lists[0].append(np.array(boxes) / size)
            lists[1].append(np.ones(len(rows)))
            lists[2].append([int(r["class_id"]) for r in rows])
        for box, score, label in zip(*weighted_boxes_fusion(*lists, iou_thr=0.4)):
            x0, y0, x1, y1 = box * size
            expected.append(det(image, int(label), [x0, y0, x1 - x0, y1 - y0], float(score)))
    paths = []
    for k, model in enumerate(models):
        paths.append(tmp_path / f"reader{k}.json")
        paths[-1].write_text(json.dumps(model))
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    tool = load_tool()
    args = ["--gt", tmp_path / "gt.json", "--dt", *paths, "--iou-thr", "0.4", "--output", tmp_path / "fused.json"]
    assert tool.main(tool.parse_args([str(a) for a in args])) == 0
    fused = json.loads((tmp_path / "fused.json").read_text())
    assert len(fused) == len(expected) and len(fused) < sum(map(len, models))
    assert sorted(map(key, fused)) == sorted(map(key, expected))
