"""The tools chained as a user chains them, each consuming the previous tool's file unchanged, on a demo
model trained 2 iterations (once, for this module): train_net -> predict -> evaluate_detections ->
visualize_predictions -> ensemble_detections -> evaluate_detections -> compare_runs; and export_model ->
predict, where the model.ts records its config's identity (class names, NUM_CLASSES, input format) and
predict refuses another config. Faults: a full disk and a read-only folder during predict and export
(one line naming the file, nothing partial left). (The VinDr-CXR submission -> metric chain is
tests/engine/test_predict_vinbigdata.py's.)"""

import errno
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import ROOT, run_main

import sna_det.utils.atomic_write as atomic_write_module
from sna_det.data.prepare.demo import ensure_demo_dataset
from sna_det.evaluation import evaluate_detections

DEMO = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_demo.yaml"
SMALL = [
    *("MODEL.DEVICE cpu INPUT.MIN_SIZE_TRAIN (64,) INPUT.MAX_SIZE_TRAIN 96 INPUT.MIN_SIZE_TEST 64".split()),
    *("INPUT.MAX_SIZE_TEST 96 MODEL.RPN.PRE_NMS_TOPK_TEST 100 MODEL.RPN.POST_NMS_TOPK_TEST 40".split()),
    *("TEST.DETECTIONS_PER_IMAGE 20 DATALOADER.NUM_WORKERS 0 MODEL.ROI_HEADS.SCORE_THRESH_TEST 0.0".split()),
]
N_IMAGES = 6


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(folder, config, OUTPUT_DIR): 6 demo val images as a dataset of the config's own (DATASETS.REGISTER,
    chain_val), the demo detector trained 2 iterations on sna_demo_train and evaluated on chain_val."""
    folder = tmp_path_factory.mktemp("chain")
    demo = ensure_demo_dataset()
    val = json.loads((demo / "val.json").read_text())
    images = val["images"][:N_IMAGES]
    ids = {i["id"] for i in images}
    (folder / "images").mkdir()
    for image in images:
        shutil.copy(demo / "images" / image["file_name"], folder / "images" / image["file_name"])
    gt = {**val, "images": images, "annotations": [a for a in val["annotations"] if a["image_id"] in ids]}
    (folder / "val.json").write_text(json.dumps(gt))
    config = folder / "chain.yaml"
    config.write_text(
        f'_BASE_: "{DEMO}"\nDATASETS:\n  REGISTER:\n'
        f'    chain_val: {{JSON: "{folder / "val.json"}", IMAGES: "{folder / "images"}"}}\n'
        '  TRAIN: ("sna_demo_train",)\n  TEST: ("chain_val",)\n'
    )
    output = folder / "run"
    code = run_main("tools/train_net.py", "--config-file", config, *SMALL, "SOLVER.MAX_ITER", "2",
                    "SOLVER.IMS_PER_BATCH", "2", "SOLVER.WARMUP_ITERS", "1", "OUTPUT_DIR", output)  # fmt: skip
    assert code == 0 and (output / "model_final.pth").is_file()
    return folder, config, output


def test_predict_evaluate_visualize_ensemble_compare(run, tmp_path, capsys):
    folder, config, output = run
    weights = ["MODEL.WEIGHTS", output / "model_final.pth"]
    # predict on a folder: the classes are named as the registered JSON names them (not class_0 ...)
    assert run_main("tools/predict.py", "--config-file", config, "--input", folder / "images",
                    "--output", tmp_path / "predict", *SMALL, *weights) == 0  # fmt: skip
    predictions = tmp_path / "predict" / "predictions.json"
    written = json.loads(predictions.read_text())
    assert [c["name"] for c in written["categories"]] == ["nodule", "mass", "opacity", "cavity"]
    assert len(written["images"]) == N_IMAGES and len(written["annotations"]) > 0
    before = predictions.read_bytes()

    # evaluate_detections on predict's own file = on the same detections in the ground truth's ids,
    # mapped here independently (file name -> image id, class name -> category id)
    assert run_main("tools/evaluate_detections.py", "--gt", folder / "val.json", "--dt", predictions,
                    "--output", tmp_path / "ap.json") == 0  # fmt: skip
    gt = json.loads((folder / "val.json").read_text())
    image_of = {Path(i["file_name"]).name: i["id"] for i in gt["images"]}
    category_of = {c["name"]: c["id"] for c in gt["categories"]}
    file_of = {i["id"]: Path(i["file_name"]).name for i in written["images"]}
    name_of = {c["id"]: c["name"] for c in written["categories"]}
    mapped = [{"image_id": image_of[file_of[a["image_id"]]], "category_id": category_of[name_of[a["category_id"]]],
               "bbox": a["bbox"], "score": a["score"]} for a in written["annotations"]]  # fmt: skip
    expected = evaluate_detections(folder / "val.json", mapped, 0.4)
    result = json.loads((tmp_path / "ap.json").read_text())
    assert result["coco"] == expected["coco"] and result["hit_rate"] == expected["hit_rate"]
    assert result["detections"]["evaluated"] == len(mapped)

    # visualize_predictions reads it as it is, with a progress bar
    capsys.readouterr()
    assert run_main("tools/visualize_predictions.py", "--gt", folder / "val.json", "--dt", predictions, "--image-root",
                    folder / "images", "--score-thr", "0", "--output", tmp_path / "vis") == 0  # fmt: skip
    assert "drawing" in capsys.readouterr().err and len(list((tmp_path / "vis").glob("*.png"))) == N_IMAGES

    # ensemble: predict's file and the evaluation's COCO results of the same model fuse to the same boxes
    results = output / "inference" / "coco_instances_results.json"
    assert run_main("tools/ensemble_detections.py", "--dt", predictions, results, "--gt", folder / "val.json",
                    "--output", tmp_path / "fused.json") == 0  # fmt: skip
    fused = json.loads((tmp_path / "fused.json").read_text())
    assert len(fused) == len(mapped)
    assert run_main("tools/evaluate_detections.py", "--gt", folder / "val.json", "--dt", tmp_path / "fused.json",
                    "--output", tmp_path / "fused_ap.json") == 0  # fmt: skip
    fused_ap = json.loads((tmp_path / "fused_ap.json").read_text())
    assert fused_ap["coco"]["mean"] == pytest.approx(expected["coco"]["mean"], abs=1e-6)

    # compare_runs: the run and a copy of it in a folder of the same name, told apart and equal
    shutil.copytree(output, tmp_path / "copy" / output.name)
    capsys.readouterr()
    assert run_main("tools/compare_runs.py", output, tmp_path / "copy" / output.name, "--gt", folder / "val.json",
                    "--bootstrap", "20") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"chain0/{output.name}" in out or f"{output.parent.name}/{output.name}" in out
    assert f"copy/{output.name}" in out
    assert predictions.read_bytes() == before  # consumed unchanged


def fail_with(error_number: int):
    def fail(*args, **kwargs):
        raise OSError(error_number, __import__("os").strerror(error_number))

    return fail


def test_export_records_the_model_identity_and_predict_refuses_another_config(run, tmp_path, monkeypatch, capsys):
    folder, config, output = run
    weights = ["MODEL.WEIGHTS", output / "model_final.pth"]
    sample = folder / "images" / sorted(p.name for p in (folder / "images").iterdir())[0]
    export = ["tools/export_model.py", "--config-file", config, "--sample-image", sample]
    # no weights: refused unless asked for
    assert run_main(*export, "--output", tmp_path / "untrained", *SMALL) == 1
    assert "no weights: give MODEL.WEIGHTS" in capsys.readouterr().err and not (tmp_path / "untrained").exists()
    # a full disk while writing model.ts: one line naming it, no partial or temporary file
    with monkeypatch.context() as patch:
        patch.setattr(atomic_write_module.os, "fsync", fail_with(errno.ENOSPC))
        assert run_main(*export, "--output", tmp_path / "full", *SMALL, *weights) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"error: {tmp_path / 'full' / 'model.ts'}: cannot be written (No space left on device)"
    assert list((tmp_path / "full").iterdir()) == []
    assert run_main(*export, "--output", tmp_path / "export", *SMALL, *weights) == 0
    model = tmp_path / "export" / "model.ts"
    predict = ["tools/predict.py", "--model", model, "--input", sample]
    assert run_main(*predict, "--config-file", config, "--output", tmp_path / "ok", *SMALL) == 0
    capsys.readouterr()
    for other, field in ((["MODEL.ROI_HEADS.NUM_CLASSES", "3"], "num_classes 4"), (["INPUT.FORMAT", "RGB"],
                         "input_format 'BGR'")):  # fmt: skip
        assert run_main(*predict, "--config-file", config, "--output", tmp_path / "bad", *SMALL, *other) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {model}: exported with {field}, but the config has") and "\n" not in err
    assert not (tmp_path / "bad").exists()


def refuse_new_files_in(folder: Path):
    """tempfile.mkstemp refusing ``folder``: a read-only folder, simulated (tests run as root, whom chmod
    does not stop)."""
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    return mkstemp


def test_predict_on_a_full_disk_names_the_file_and_leaves_nothing(run, tmp_path, monkeypatch, capsys):
    folder, config, output = run
    monkeypatch.setattr(atomic_write_module.os, "fsync", fail_with(errno.ENOSPC))
    code = run_main("tools/predict.py", "--config-file", config, "--input", folder / "images", "--output",
                    tmp_path / "out", *SMALL, "MODEL.WEIGHTS", output / "model_final.pth")  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()[-1]
    out = tmp_path / "out" / "predictions.json"
    assert code == 1 and err == f"error: {out}: cannot be written (No space left on device)"
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("fault", ["ENOSPC", "EACCES"])
def test_ensemble_on_a_full_disk_or_read_only_folder_names_the_file_and_leaves_nothing(run, tmp_path, monkeypatch,
                                                                                       capsys, fault):  # fmt: skip
    folder, _, output = run
    results = output / "inference" / "coco_instances_results.json"
    (tmp_path / "out").mkdir()
    if fault == "ENOSPC":
        monkeypatch.setattr(atomic_write_module.os, "fsync", fail_with(errno.ENOSPC))
    else:
        monkeypatch.setattr(atomic_write_module.tempfile, "mkstemp", refuse_new_files_in(tmp_path / "out"))
    cause = {"ENOSPC": "No space left on device", "EACCES": "Permission denied"}[fault]
    code = run_main("tools/ensemble_detections.py", "--dt", results, results, "--gt", folder / "val.json",
                    "--output", tmp_path / "out" / "fused.json")  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and err == f"error: {tmp_path / 'out' / 'fused.json'}: cannot be written ({cause})"
    assert list((tmp_path / "out").iterdir()) == []
