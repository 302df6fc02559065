"""tools/visualize_predictions.py (TP / FP / miss per class and image) and tools/browse_dataset.py
(ground truth as prepared and after the train augmentations) on hand-made cases."""

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.coco_cases import coco_ground_truth
from helpers.coco_cases import detection as det
from PIL import Image

from sna_det.analysis.prediction_report import match_image

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_demo.yaml"
G1, G2, G3, G4 = [5, 5, 20, 20], [40, 30, 20, 20], [50, 5, 20, 15], [10, 10, 15, 15]
GT = coco_ground_truth(
    [(1, 1, G1), (1, 1, G2), (1, 2, G3), (2, 1, G4)], ["a", "b"], width=80, height=60, file_name="img{}.png"
)


DETECTIONS = [
    det(1, 1, [6, 6, 20, 20], 0.9),  # a on G1 (IoU 0.82): TP
    det(1, 1, [7, 5, 20, 20], 0.8),  # a on G1 again: TP (the hit rate's matching)
    det(1, 1, [0, 40, 10, 10], 0.7),  # a on nothing: FP
    det(1, 2, G3, 0.6),  # b on G3: TP
    det(1, 1, G2, 0.3),  # below --score-thr 0.5: left out, so G2 is a miss
    det(2, 2, G4, 0.95),  # b where only an "a" box is: FP; G4 (a) a miss
    det(9, 1, G1, 0.9),  # an image the ground truth does not have: left out
]
# image 3 has neither boxes nor detections
EXPECTED = {
    "img1.png": {"a": {"TP": 2, "FP": 1, "miss": 1}, "b": {"TP": 1, "FP": 0, "miss": 0}},
    "img2.png": {"a": {"TP": 0, "FP": 0, "miss": 1}, "b": {"TP": 0, "FP": 1, "miss": 0}},
    "img3.png": {},
}


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    for image in GT["images"]:
        Image.fromarray(rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8)).save(tmp_path / image["file_name"])
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    (tmp_path / "dt.json").write_text(json.dumps(DETECTIONS))
    return tmp_path


def load_tool(name):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def page_counts(index_html: str) -> list:
    """The counts of every image row of index.html, in order (its data-counts attributes)."""
    return [json.loads(html.unescape(m)) for m in re.findall(r'<tr class="image" data-counts="([^"]*)"', index_html)]


def assert_pngs(folder: Path, summary: dict, size):
    for image in summary["images"]:
        with Image.open(folder / image["png"]) as png:
            png.verify()
        with Image.open(folder / image["png"]) as png:
            assert png.format == "PNG" and png.size == size


def test_match_image_uses_the_hit_rate_matching_both_ways():
    outcome = match_image([[0, 0, 10, 10], [20, 20, 30, 30]], [[1, 0, 11, 10], [0, 1, 10, 11], [50, 50, 60, 60]], 0.4)
    assert outcome.tp.tolist() == [True, True, False] and outcome.found.tolist() == [True, False]
    assert outcome.counts == {"TP": 2, "FP": 1, "miss": 1}
    empty = match_image(np.zeros((0, 4)), [[0, 0, 1, 1]], 0.4)
    assert empty.counts == {"TP": 0, "FP": 1, "miss": 0}


def test_counts_pages_and_pngs_of_a_hand_made_case(files, capsys):
    tool = load_tool("visualize_predictions")
    out = files / "out"
    args = ["--gt", files / "gt.json", "--dt", files / "dt.json", "--iou", "0.4", "--score-thr", "0.5"]
    assert tool.main(tool.parse_args([str(a) for a in [*args, "--output", out]])) == 0
    printed = capsys.readouterr().out
    assert "left out: unknown image 1" in printed and "a: TP 2, FP 1, miss 2" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert {i["name"]: i["counts"] for i in summary["images"]} == EXPECTED
    assert summary["totals"] == {"a": {"TP": 2, "FP": 1, "miss": 2}, "b": {"TP": 1, "FP": 1, "miss": 0}}
    index = (out / "index.html").read_text()
    nonzero = [{c: {k: n for k, n in v.items() if n} for c, v in e.items()} for e in EXPECTED.values()]
    assert page_counts(index) == [{c: v for c, v in e.items() if v} for e in nonzero]
    for image in summary["images"]:
        assert f'src="{image["png"]}"' in index
    assert_pngs(out, summary, (80, 60))
    plain = np.asarray(Image.open(files / "img1.png"))
    assert not np.array_equal(np.asarray(Image.open(out / summary["images"][0]["png"]).convert("RGB")), plain)


def test_classes_and_bad_input(files):
    tool = load_tool("visualize_predictions")
    out = files / "only_b"
    args = ["--gt", files / "gt.json", "--dt", files / "dt.json", "--classes", "b", "--output", out]
    assert tool.main(tool.parse_args([str(a) for a in args])) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"] == {"b": {"TP": 1, "FP": 1, "miss": 0}}
    from sna_det.utils.cli import CommandError

    with pytest.raises(CommandError, match=r"--classes: \['c'\] are not classes"):
        tool.main(tool.parse_args([str(a) for a in [*args[:4], "--classes", "c", "--output", out]]))
    (files / "bad.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 1}]))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "visualize_predictions.py"), "--gt", str(files / "gt.json")]
        + ["--dt", str(files / "bad.json"), "--output", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: {files / 'bad.json'}: detection 0: field bbox")
    assert len(proc.stderr.strip().splitlines()) == 1


def browse_config(files: Path) -> Path:
    config = files / "browse.yaml"
    config.write_text(
        f"""_BASE_: "{DEMO}"
MODEL: {{DEVICE: "cpu"}}
DATASETS:
  REGISTER:
    browse_train: {{JSON: "{files / "gt.json"}", IMAGES: "{files}"}}
  TRAIN: ("browse_train",)
  TEST: ()
INPUT: {{MIN_SIZE_TRAIN: [30], MAX_SIZE_TRAIN: 200}}
"""
    )
    return config


@pytest.mark.parametrize("augment, size", [(False, (80, 60)), (True, (40, 30))])
def test_browse_dataset_draws_every_box_of_every_image(files, augment, size):
    tool = load_tool("browse_dataset")
    out = files / f"browse_{augment}"
    args = ["--config-file", str(browse_config(files)), "--output", str(out)] + (["--augment"] if augment else [])
    assert tool.main(tool.parse_args(args)) == 0
    summary = json.loads((out / "summary.json").read_text())
    boxes = {"img1.png": {"a": {"boxes": 2}, "b": {"boxes": 1}}, "img2.png": {"a": {"boxes": 1}}, "img3.png": {}}
    assert {i["name"]: i["counts"] for i in summary["images"]} == boxes
    assert summary["totals"] == {"a": {"boxes": 3}, "b": {"boxes": 1}} and summary["images_without_boxes"] == 1
    assert summary["augmented"] is augment
    assert page_counts((out / "index.html").read_text()) == list(boxes.values())
    assert_pngs(out, summary, size)  # augmented: resized to the train size (short side 30)
