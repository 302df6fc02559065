"""`make train` (tools/train_net.py --main) with a tiny prepared synthetic VinDr-CXR copy given in ARGS:
configs/vincxr_faster_sna.yaml trains and evaluates on it."""

import json

import pytest
from helpers import run_script
from helpers.vindr_cxr_synthetic import write_vinbigdata

from sna_det.data.datasets import VINDR_CXR_CLASSES
from sna_det.data.prepare.vindr_cxr import PrepareOptions, prepare_vindr_cxr

TINY = [
    *("SOLVER.IMS_PER_BATCH 2 SOLVER.MAX_ITER 3 SOLVER.WARMUP_ITERS 1 SOLVER.CHECKPOINT_PERIOD 100".split()),
    *("DATALOADER.NUM_WORKERS 0 MODEL.ROI_HEADS.SCORE_THRESH_TEST 0.0 MODEL.FPN.OUT_CHANNELS 32".split()),
    *("INPUT.MIN_SIZE_TRAIN (64,) INPUT.MAX_SIZE_TRAIN 64 INPUT.MIN_SIZE_TEST 64 INPUT.MAX_SIZE_TEST 64".split()),
    *("MODEL.RPN.POST_NMS_TOPK_TRAIN 64 MODEL.RPN.POST_NMS_TOPK_TEST 32".split()),
    *("MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE 32".split()),
]


def train_net_on(prepared, output, *args):
    """``tools/train_net.py args...`` on the prepared copy ``prepared`` into ``output``, with no other VinDr-CXR
    copy to find (the configs' default root) and every device visible; its process, after it succeeded."""
    nowhere = str(prepared.parent / "not_here")
    env = {"PYTHONWARNINGS": "ignore", "SNA_VINDR_CXR_ROOT": nowhere, "CUDA_VISIBLE_DEVICES": None}
    proc = run_script(
        "tools/train_net.py", *args, "DATASETS.ROOTS.VINDR_CXR", prepared, "OUTPUT_DIR", output, env=env, timeout=900
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


@pytest.mark.filterwarnings("ignore")
def test_trains_and_evaluates_per_class_ap_at_iou_04(tmp_path):
    prepared = tmp_path / "prepared"
    prepare_vindr_cxr(write_vinbigdata(tmp_path / "vindr"), prepared, PrepareOptions(max_size=64, val_fraction=0.25))
    output = tmp_path / "run"
    proc = train_net_on(prepared, output, "--main", *TINY)
    log = proc.stdout + proc.stderr
    assert "training configs/vincxr_faster_sna.yaml" in proc.stderr and "demo" not in proc.stderr.split("\n")[0]
    assert (output / "model_final.pth").exists()
    assert "Per-class AP at IoU 0.4 on vindr_cxr_val" in log
    table = log[log.index("Per-class AP at IoU 0.4") :]
    for name in VINDR_CXR_CLASSES:
        assert f"| {name} " in table
    assert "| Total (mean)" in table
    saved = json.loads((output / "inference" / "per_class_ap_vindr_cxr_val.json").read_text())
    assert saved["iou"] == 0.4 and list(saved["coco"]["per_class"]) == list(VINDR_CXR_CLASSES)
    val_counts = json.loads((prepared / "summary.json").read_text())["val"]
    assert saved["gt_boxes"] == val_counts
    for kind in ("coco", "voc2010"):  # null exactly for the classes without boxes in val
        assert [v is None for v in saved[kind]["per_class"].values()] == [n == 0 for n in val_counts.values()]
    assert "copypaste: Task: per_class_ap@0.4" in log


@pytest.mark.filterwarnings("ignore")
def test_authors_recipe_on_a_folder_prepared_with_their_protocol(tmp_path):
    """Their split file (any images), every reader's box, small images; their C5 model with their SNA block."""
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["img0", "img1", "img2", "img3"], "test": ["img4", "img5"]}))
    prepared = tmp_path / "prepared"
    options = PrepareOptions(max_size=64, fusion="none", split_file=str(split))
    result = prepare_vindr_cxr(write_vinbigdata(tmp_path / "vindr"), prepared, options)
    assert list(result.summary) == ["train", "test"] and result.report["split_file"]["images_in_no_list"] == 2
    output = tmp_path / "run"
    fpn = TINY.index("MODEL.FPN.OUT_CHANNELS")
    tiny = TINY[:fpn] + TINY[fpn + 2 :] + ["MODEL.DEVICE", "cpu"]  # no FPN in this model
    config = "configs/VinDr-CXR/faster_rcnn_R_18_C5_sna_authors.yaml"
    proc = train_net_on(prepared, output, "--config-file", config, *tiny)
    log = proc.stdout + proc.stderr
    assert "Per-class AP at IoU 0.4 on vindr_cxr_test" in log and "hit@0.4 (Table 4)" in log
    saved = json.loads((output / "inference" / "per_class_ap_vindr_cxr_test.json").read_text())
    test_counts = json.loads((prepared / "summary.json").read_text())["test"]
    assert saved["gt_boxes"] == test_counts  # every reader's box: img4 has 3 boxes, img5 has 2
    assert sum(test_counts.values()) == 5
    assert [v is None for v in saved["hit_rate"]["per_class"].values()] == [n == 0 for n in test_counts.values()]
    results = json.loads((output / "inference" / "results.json").read_text())["vindr_cxr_test"]["per_class_ap@0.4"]
    assert results["hit_rate"] == pytest.approx(saved["hit_rate"]["mean"])
