"""Noise-aware comparisons: runs grouped across seeds, and the paired bootstrap of AP / hit-rate differences,
on constructed cases with known answers and against pycocotools on explicitly repeated images."""

import json

import numpy as np
import pytest
from helpers import load_script

from sna_det.evaluation import evaluate_detections, load_coco_gt
from sna_det.evaluation.paired_bootstrap import image_matches, paired_bootstrap, weighted_metrics
from sna_det.evaluation.run_comparison import comparison_markdown, group_runs, mean_std

N_IMAGES, CLASSES = 40, ("a", "b", "c")


def dataset(seed=0):
    """Ground truth on N_IMAGES images, and detections: jittered true boxes, misses and false positives."""
    rng = np.random.default_rng(seed)
    gt = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]}
    detections = []
    for image in range(1, N_IMAGES + 1):
        gt["images"].append({"id": image, "file_name": f"{image}.png", "width": 200, "height": 200})
        for _ in range(rng.integers(1, 4)):
            x, y, w, h = (float(v) for v in rng.uniform([0, 0, 20, 20], [150, 150, 50, 50]))
            cat = int(rng.integers(1, 4))
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": image,
                    "category_id": cat,
                    "bbox": [x, y, w, h],
                    "iscrowd": 0,
                }
            )
            if rng.random() < 0.7:  # found, more or less well
                jitter = [float(v) for v in rng.normal(0, 6, 4)]
                box = [x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)]
                detections.append({"image_id": image, "category_id": cat, "bbox": box, "score": float(rng.random())})
        if rng.random() < 0.5:  # a false positive
            box = [float(v) for v in rng.uniform([0, 0, 10, 10], [150, 150, 40, 40])]
            cat = int(rng.integers(1, 4))
            detections.append({"image_id": image, "category_id": cat, "bbox": box, "score": float(rng.random())})
    return gt, detections


def test_unit_weights_equal_evaluate_detections():
    gt, detections = dataset()
    expected = evaluate_detections(gt, detections, iou=0.4)
    got = weighted_metrics(image_matches(load_coco_gt(gt), detections, 0.4))
    assert got["AP"] == pytest.approx(expected["coco"]["mean"], abs=1e-9)
    assert got["hit_rate"] == pytest.approx(expected["hit_rate"]["mean"], abs=1e-9)


def test_weights_equal_pycocotools_on_repeated_images():
    """An image counted k times = its ground truth and detections copied k times (new image ids)."""
    gt, detections = dataset(seed=1)
    weights = np.random.default_rng(5).integers(0, 4, N_IMAGES)
    copied = {"images": [], "annotations": [], "categories": gt["categories"]}
    copied_detections = []
    for image in gt["images"]:
        for copy in range(weights[image["id"] - 1]):
            new_id = image["id"] * 10 + copy
            copied["images"].append({**image, "id": new_id})
            for a in gt["annotations"]:
                if a["image_id"] == image["id"]:
                    copied["annotations"].append({**a, "id": len(copied["annotations"]) + 1, "image_id": new_id})
            copied_detections += [{**d, "image_id": new_id} for d in detections if d["image_id"] == image["id"]]
    expected = evaluate_detections(copied, copied_detections, iou=0.4)
    got = weighted_metrics(image_matches(load_coco_gt(gt), detections, 0.4), weights.astype(float))
    assert got["AP"] == pytest.approx(expected["coco"]["mean"], abs=1e-9)
    assert got["hit_rate"] == pytest.approx(expected["hit_rate"]["mean"], abs=1e-9)


def test_identical_runs_give_zero_interval():
    gt, detections = dataset()
    result = paired_bootstrap(gt, detections, list(detections), samples=200, seed=3)
    for m in result["metrics"].values():
        assert (m["difference"], m["low"], m["high"], m["holds_zero"]) == (0.0, 0.0, 0.0, True)


def test_a_run_better_on_every_image_excludes_zero():
    gt, detections = dataset()
    perfect = [{**a, "score": 1.0} for a in gt["annotations"]]
    worse = [{**d, "bbox": [d["bbox"][0] + 100, *d["bbox"][1:]]} for d in detections]  # every box off target
    result = paired_bootstrap(gt, worse, perfect, samples=200, seed=0)
    for key in ("AP", "hit_rate"):
        m = result["metrics"][key]
        assert m["b"] == pytest.approx(100.0) and m["low"] > 0 and not m["holds_zero"]
        assert m["low"] <= m["difference"] <= m["high"]


def test_seeded_and_reproducible(tmp_path):
    gt, detections = dataset()
    _, other = dataset(seed=2)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "a.json").write_text(json.dumps(detections))
    first = paired_bootstrap(tmp_path / "gt.json", tmp_path / "a.json", other[: len(other) // 2], samples=100, seed=4)
    again = paired_bootstrap(gt, detections, other[: len(other) // 2], samples=100, seed=4)
    assert first == again
    moved = paired_bootstrap(gt, detections, other[: len(other) // 2], samples=100, seed=5)
    assert moved["metrics"]["AP"]["low"] != first["metrics"]["AP"]["low"]
    assert moved["metrics"]["AP"]["difference"] == first["metrics"]["AP"]["difference"]  # the point estimate


def test_interval_is_the_percentiles_of_resampled_differences():
    """The interval, recomputed here by drawing the same images and evaluating each sample with pycocotools."""
    gt, detections = dataset()
    _, other = dataset(seed=7)
    other = [d for d in other if d["image_id"] <= N_IMAGES]
    result = paired_bootstrap(gt, detections, other, samples=20, seed=11)
    rng = np.random.default_rng(11)
    differences = []
    for _ in range(20):
        drawn = rng.integers(0, N_IMAGES, N_IMAGES)
        sample = {"images": [], "annotations": [], "categories": gt["categories"]}
        runs = ([], [])
        for k, index in enumerate(drawn):
            image_id, new_id = int(index) + 1, 1000 + k
            sample["images"].append({"id": new_id, "file_name": "x", "width": 200, "height": 200})
            for a in gt["annotations"]:
                if a["image_id"] == image_id:
                    sample["annotations"].append({**a, "id": len(sample["annotations"]) + 1, "image_id": new_id})
            for run, source in zip(runs, (detections, other)):
                run += [{**d, "image_id": new_id} for d in source if d["image_id"] == image_id]
        a, b = (evaluate_detections(sample, run) for run in runs)
        differences.append((b["coco"]["mean"] - a["coco"]["mean"], b["hit_rate"]["mean"] - a["hit_rate"]["mean"]))
    for key, column in (("AP", 0), ("hit_rate", 1)):
        low, high = np.percentile([d[column] for d in differences], [2.5, 97.5])
        assert (result["metrics"][key]["low"], result["metrics"][key]["high"]) == (
            pytest.approx(low),
            pytest.approx(high),
        )


def test_runs_grouped_by_name_mean_and_std():
    runs = [{"bbox": {"AP": v}} for v in (30.0, 33.0, 31.5, 40.0)]
    names = ["R18", "R18", "R18", "SNA"]
    assert [len(g) for g in group_runs(names, runs).values()] == [3, 1]
    mean, std, n = mean_std([30.0, 33.0, 31.5, None])
    assert (mean, n) == (pytest.approx(np.mean([30, 33, 31.5])), 3) and std == pytest.approx(
        np.std([30, 33, 31.5], ddof=1)
    )
    assert mean_std([4.0]) == (4.0, None, 1) and mean_std([None]) == (None, None, 0)
    markdown = comparison_markdown(names, runs)
    assert "31.50 ± 1.50 (n=3)" in markdown and "| SNA   |" in markdown


def test_compare_runs_tool_prints_intervals(tmp_path, capsys):

    tool = load_script("tools/compare_runs.py")
    gt, detections = dataset()
    perfect = [{**a, "score": 1.0} for a in gt["annotations"]]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    for name, dets in (("base", detections), ("better", perfect)):
        (tmp_path / name / "inference").mkdir(parents=True)
        (tmp_path / name / "inference" / "coco_instances_results_x.json").write_text(json.dumps(dets))
        result = evaluate_detections(gt, dets)
        metrics = {"AP": result["coco"]["mean"], "hit_rate": result["hit_rate"]["mean"]}
        (tmp_path / name / "inference" / "results.json").write_text(json.dumps({"x": {"per_class_ap@0.4": metrics}}))
    args = [str(tmp_path / "base"), str(tmp_path / "better"), "--gt", str(tmp_path / "gt.json"), "--bootstrap", "50"]
    assert tool.main(tool.parse_args(args)) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| better") and " vs base" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[-1] == "yes" and cells[-4] == "yes" and cells[1] == "40"  # both metrics differ, 40 images
    (tmp_path / "better" / "inference" / "coco_instances_results_x.json").unlink()
    with pytest.raises(
        (FileNotFoundError, ValueError), match=r"better/inference: needs one coco_instances_results\*\.json"
    ):
        tool.main(tool.parse_args(args))
