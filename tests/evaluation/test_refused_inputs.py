"""What the evaluation tools refuse before doing any work (one ``error:`` line, exit 1 or 2, every input
file left byte for byte as it was): an output that is one of the inputs, ground truth that is not
VinDr-CXR's for --metric vinbigdata, out-of-range ensemble thresholds and weights, two runs of one
folder name grouped; and what they accept: predict's own predictions.json."""

import json
import math

import pytest
from helpers import run_main
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from sna_det.data.classes import VINDR_CXR_CLASSES
from sna_det.evaluation.vinbigdata import write_submission
from sna_det.utils.cli import CommandError
from sna_det.utils.paths import check_folder_not_inside, check_outputs_not_inputs

GT = {
    "images": [{"id": 5, "file_name": "sub/a.png", "width": 100, "height": 80}],
    "categories": [{"id": 3, "name": "nodule"}, {"id": 7, "name": "mass"}],
    "annotations": [
        {"id": 1, "image_id": 5, "category_id": 3, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 2, "image_id": 5, "category_id": 7, "bbox": [50, 40, 30, 30], "area": 900, "iscrowd": 0},
    ],
}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    results = [{"image_id": 5, "category_id": 3, "bbox": [11, 10, 20, 20], "score": 0.9}]
    (tmp_path / "dt.json").write_text(json.dumps(results))
    return tmp_path


def unchanged(folder, names):
    return {n: (folder / n).read_bytes() for n in names}


@pytest.mark.parametrize("flag", ["--output", "--froc-plot"])
@pytest.mark.parametrize("victim", ["gt.json", "dt.json"])
def test_evaluate_detections_refuses_to_write_over_its_inputs(files, capsys, flag, victim):
    before = unchanged(files, ["gt.json", "dt.json"])
    other = "dt.json" if victim == "gt.json" else "gt.json"
    # the same file through another spelling (a ``..`` and a link) is the same file
    (files / "link.json").symlink_to(files / victim)
    for spelled in (files / "x" / ".." / victim, files / "link.json"):
        code = run_main(
            "tools/evaluate_detections.py", "--gt", files / "gt.json", "--dt", files / "dt.json", flag, spelled
        )
        err = capsys.readouterr().err.strip()
        assert code == 1 and err.startswith("error: ") and len(err.splitlines()) == 1
        assert f"{flag} is the same file as --{victim[:2]}" in err and other not in err
    assert unchanged(files, ["gt.json", "dt.json"]) == before


def test_ensemble_refuses_to_write_over_its_inputs(files, capsys):
    (files / "b.json").write_text((files / "dt.json").read_text())
    before = unchanged(files, ["gt.json", "dt.json", "b.json"])
    base = ["tools/ensemble_detections.py", "--gt", files / "gt.json", "--dt", files / "dt.json", files / "b.json"]
    for extra in (["--output", files / "b.json"], ["--output", files / "f.json", "--metrics-output", files / "gt.json"],
                  ["--output", files / "f.json", "--metrics-output", files / "f.json"]):  # fmt: skip
        assert run_main(*base, *extra) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and ("same file as" in err or "name the same file" in err)
    assert unchanged(files, ["gt.json", "dt.json", "b.json"]) == before and not (files / "f.json").exists()


def test_the_shared_check_of_paths(tmp_path):
    check_outputs_not_inputs({"--in": tmp_path / "a", "--unset": None}, {"--out": tmp_path / "b", "--none": None})
    with pytest.raises(CommandError, match="--out is the same file as --in"):
        check_outputs_not_inputs({"--in": tmp_path / "a"}, {"--out": tmp_path / "." / "a"})
    check_folder_not_inside(tmp_path / "out", tmp_path / "in", "--output-dir", "--root")
    for inside in (tmp_path / "in", tmp_path / "in" / "prepared"):
        with pytest.raises(CommandError, match="--output-dir is inside --root"):
            check_folder_not_inside(inside, tmp_path / "in", "--output-dir", "--root")


def test_predict_predictions_json_is_evaluated_as_its_coco_results(files):
    """A predictions file (images by file_name, categories by name, its own ids) scores what the same
    detections in the ground truth's ids do (pycocotools at IoU 0.5 as the independent reference)."""
    predictions = {
        "images": [{"id": 0, "file_name": "/elsewhere/a.png", "width": 100, "height": 80}],
        "categories": [{"id": 0, "name": "mass"}, {"id": 1, "name": "nodule"}],
        "annotations": [
            {"id": 1, "image_id": 0, "category_id": 1, "bbox": [11, 10, 20, 20], "score": 0.9},
            {"id": 2, "image_id": 0, "category_id": 0, "bbox": [0, 0, 10, 10], "score": 0.8},
        ],
    }
    (files / "predictions.json").write_text(json.dumps(predictions))
    code = run_main("tools/evaluate_detections.py", "--gt", files / "gt.json", "--dt", files / "predictions.json",
                    "--iou", "0.5", "--output", files / "ap.json")  # fmt: skip
    assert code == 0
    result = json.loads((files / "ap.json").read_text())
    coco_gt = COCO(str(files / "gt.json"))
    same = [{"image_id": 5, "category_id": 3, "bbox": [11, 10, 20, 20], "score": 0.9},
            {"image_id": 5, "category_id": 7, "bbox": [0, 0, 10, 10], "score": 0.8}]  # fmt: skip
    evaluation = COCOeval(coco_gt, coco_gt.loadRes(same), "bbox")
    evaluation.params.iouThrs = [0.5]
    evaluation.evaluate()
    evaluation.accumulate()
    precision = evaluation.eval["precision"][0, :, :, 0, -1]  # (recall, class)
    for k, name in enumerate(["nodule", "mass"]):
        expected = 100 * float(precision[:, k][precision[:, k] > -1].mean()) if (precision[:, k] > -1).any() else 0
        assert result["coco"]["per_class"][name] == pytest.approx(expected)
    assert result["coco"]["per_class"]["nodule"] == pytest.approx(100.0)


def test_vinbigdata_metric_refuses_ground_truth_that_is_not_vindr_cxr(files, capsys):
    write_submission(files / "s.csv", {"a": "3 0.9 10 10 30 30"})
    code = run_main("tools/evaluate_detections.py", "--metric", "vinbigdata", "--gt", files / "gt.json",
                    "--dt", files / "s.csv", "--output", files / "r.json")  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith(f"error: {files / 'gt.json'}: not VinDr-CXR ground truth")
    assert "lack 14 of the 14 findings" in err and not (files / "r.json").exists()
    # VinDr-CXR's categories, but the submission is of other images: no number either
    vindr = {**GT, "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(VINDR_CXR_CLASSES)]}
    (files / "vindr.json").write_text(json.dumps(vindr))
    write_submission(files / "other.csv", {"zzz": "3 0.9 10 10 30 30"})
    code = run_main("tools/evaluate_detections.py", "--metric", "vinbigdata", "--gt", files / "vindr.json",
                    "--dt", files / "other.csv")  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and "none of the submission's 1 image_ids" in err and "'zzz'" in err


@pytest.mark.parametrize(
    "flags, field",
    [
        (["--iou-thr", "1.5"], "--iou-thr 1.5"),
        (["--iou-thr", "nan"], "--iou-thr nan"),
        (["--skip-box-thr", "-0.1"], "--skip-box-thr -0.1"),
        (["--weights", "1", "nan"], "--weights 1.0 nan"),
        (["--weights", "1", "-1"], "--weights 1.0 -1.0"),
        (["--weights", "0", "0"], "--weights 0.0 0.0"),
    ],
)
def test_ensemble_refuses_out_of_range_thresholds_and_weights(files, capsys, flags, field):
    code = run_main("tools/ensemble_detections.py", "--dt", files / "dt.json", files / "dt.json", "--gt",
                    files / "gt.json", "--output", files / "f.json", *flags)  # fmt: skip
    assert code == 2 and field in capsys.readouterr().err and not (files / "f.json").exists()


def test_fuse_detections_refuses_bad_weights_and_thresholds():
    from sna_det.evaluation.ensemble import fuse_detections

    one = [[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}]] * 2
    for kwargs in ({"weights": [1, math.nan]}, {"weights": [-1, 2]}, {"skip_box_thr": math.nan}, {"iou_thr": 2}):
        with pytest.raises(ValueError, match="weights|thr"):
            fuse_detections(one, {1: (10, 10)}, **kwargs)


def test_compare_runs_tells_apart_runs_whose_folders_share_a_name(tmp_path, capsys):
    """a/run (AP 10) and b/run (AP 30): two rows, not one row "run" of mean 20 ± 14."""
    for parent, ap in (("a", 10.0), ("b", 30.0)):
        (tmp_path / parent / "run" / "inference").mkdir(parents=True)
        results = {"val": {"bbox": {"AP": ap}}}
        (tmp_path / parent / "run" / "inference" / "results.json").write_text(json.dumps(results))
    code = run_main("tools/compare_runs.py", tmp_path / "a" / "run", tmp_path / "b" / "run")
    out = capsys.readouterr().out
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("| a/run") or line.startswith("| b/run")]
    assert len(rows) == 2 and "10" in rows[0] and "30" in rows[1] and "±" not in rows[0] + rows[1]
    assert run_main("tools/compare_runs.py", tmp_path / "a" / "run", tmp_path / "a" / "x" / ".." / "run") == 2
    assert "the same run given twice" in capsys.readouterr().err


def test_every_other_tool_refuses_an_output_that_is_an_input(tmp_path, capsys):
    """Each refused before any work, in one line, the input byte for byte as it was."""
    from helpers import ROOT

    run = tmp_path / "run"
    (run / "inference").mkdir(parents=True)
    (run / "inference" / "results.json").write_text(json.dumps({"val": {"bbox": {"AP": 1.0}}}))
    (run / "power_iteration.jsonl").write_text("{}\n")
    (tmp_path / "ids.pkl").write_bytes(b"not read")
    (tmp_path / "voc").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"png")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    demo = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_demo.yaml"
    cases = [
        (["tools/compare_runs.py", run, "--output-md", run / "inference" / "results.json"], "--output-md is the same"),
        (["tools/summarize_power_iteration.py", run, "--csv", run / "power_iteration.jsonl"], "--csv is the same"),
        (["datasets/split_from_pickles.py", "--split", f"test={tmp_path / 'ids.pkl'}", "--output",
          tmp_path / "ids.pkl"],
         "--output is the same file as --split test"),
        (["datasets/prepare_coco.py", "--format", "voc", "--root", tmp_path / "voc", "--output-dir",
          tmp_path / "voc" / "coco"], "--output-dir is inside --root"),
        (["tools/visualize_attention.py", "--config-file", demo, "--input", tmp_path / "images", "--output",
          tmp_path / "images", "MODEL.DEVICE", "cpu"], "--output is the folder of the input"),
    ]  # fmt: skip
    for argv, message in cases:
        code = run_main(*argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and err[-1].startswith("error: ") and message in err[-1], (argv[0], err[-3:])
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "voc" / "coco").exists()
