"""tools/train_net.py end to end on the demo data: train, evaluate, --eval-only, --resume, DDP."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_sna_demo.yaml"
FAST = [
    "SOLVER.IMS_PER_BATCH",
    "2",
    "SOLVER.WARMUP_ITERS",
    "2",
    "SOLVER.CHECKPOINT_PERIOD",
    "2",
    "DATALOADER.NUM_WORKERS",
    "0",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
    "0.0",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    environment = dict(os.environ, SNA_DET_CACHE=str(tmp_path_factory.mktemp("cache")), PYTHONWARNINGS="ignore")
    environment.pop("CUDA_VISIBLE_DEVICES", None)
    return environment


def train_net(env, *args, check=True):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "train_net.py"), *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"train_net failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def copypaste_ap(log: str) -> dict:
    """The last 'copypaste' AP table detectron2 printed: {metric: value}."""
    names = re.findall(r"copypaste: (AP,AP50.*)", log)[-1].split(",")
    values = re.findall(r"copypaste: ([0-9.,nan]+)\n", log)[-1].split(",")
    return dict(zip(names, map(float, values)))


def iterations(output: Path) -> list:
    """Iterations of the training records in metrics.json (evaluation records left out)."""
    records = [json.loads(line) for line in (output / "metrics.json").read_text().splitlines() if line.strip()]
    return [r["iteration"] for r in records if "total_loss" in r]


@pytest.fixture(scope="module")
def trained(env, tmp_path_factory):
    """`make train` on a machine where VinDr-CXR is not prepared (its default root is empty): the demo."""
    output, empty = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("vindr_cxr_empty")
    opts = [*FAST, "SOLVER.MAX_ITER", 4, "OUTPUT_DIR", output]
    proc = train_net(dict(env, SNA_VINDR_CXR_ROOT=str(empty)), "--main", *opts)
    return output, proc.stdout + proc.stderr, empty


def test_main_command_says_why_it_trains_the_demo(trained):
    _, log, empty = trained
    assert f"configs/vincxr_faster_sna.yaml is not ready: dataset 'vindr_cxr_train': json_file {empty}" in log
    assert "training the demo instead: configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml" in log


def test_trains_on_the_cpu_and_evaluates(trained):
    output, log, _ = trained
    assert "CUDA is not available: running on the CPU" in log
    assert (output / "model_final.pth").exists()
    assert (output / "last_checkpoint").read_text().strip() == "model_final.pth"
    assert iterations(output)[-1] == 3
    assert re.search(r"iter: 3 .*total_loss", log), "progress lines with losses"
    ap = copypaste_ap(log)
    assert set(ap) == {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    predictions = json.loads((output / "inference" / "coco_instances_results.json").read_text())
    assert predictions and {"image_id", "category_id", "bbox", "score"} <= set(predictions[0])
    saved = json.loads((output / "inference" / "results.json").read_text())["sna_demo_val"]["bbox"]
    assert {k: v for k, v in saved.items() if k in ap} == pytest.approx(
        {k: None if math.isnan(v) else v for k, v in ap.items()}, abs=1e-4
    ), "results.json holds the printed metrics, NaN as null"


def test_eval_only_reproduces_the_final_evaluation(env, trained, tmp_path):
    output, log, _ = trained
    proc = train_net(
        env,
        "--config-file",
        DEMO_CONFIG,
        "--eval-only",
        *FAST,
        "MODEL.WEIGHTS",
        output / "model_final.pth",
        "OUTPUT_DIR",
        tmp_path,
    )
    assert copypaste_ap(proc.stdout + proc.stderr) == pytest.approx(copypaste_ap(log), nan_ok=True)
    assert copypaste_ap(log)["AP50"] >= 0


def test_resume_continues_from_the_last_checkpoint(env, trained, tmp_path):
    output, _, _ = trained
    for name in ("model_final.pth", "last_checkpoint", "metrics.json", "config.yaml"):
        (tmp_path / name).write_bytes((output / name).read_bytes())
    proc = train_net(
        env,
        "--config-file",
        DEMO_CONFIG,
        "--resume",
        *FAST,
        "SOLVER.MAX_ITER",
        6,
        "OUTPUT_DIR",
        tmp_path,
        "DATASETS.TEST",
        "()",
    )
    assert "Starting training from iteration 4" in proc.stdout + proc.stderr
    assert iterations(tmp_path) == [3, 5]  # metrics.json appended: iterations 4 and 5 only


def test_two_process_ddp_on_the_cpu(env, tmp_path):
    proc = train_net(
        env,
        "--config-file",
        DEMO_CONFIG,
        "--num-gpus",
        2,
        *FAST,
        "SOLVER.MAX_ITER",
        2,
        "OUTPUT_DIR",
        tmp_path,
        "DATASETS.TEST",
        "()",
    )
    log = proc.stdout + proc.stderr
    assert "World size: 2" in log
    assert (tmp_path / "model_final.pth").exists()


def test_unprepared_dataset_stops_with_a_clear_message(env, tmp_path):
    env = dict(env, SNA_VINDR_CXR_ROOT=str(tmp_path / "nowhere"))
    proc = train_net(
        env, "--config-file", ROOT / "configs" / "vincxr_faster_sna.yaml", "OUTPUT_DIR", tmp_path, check=False
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: dataset 'vindr_cxr_train'")
    assert str(tmp_path / "nowhere") in last and "datasets/README.md" in last
    assert "Traceback" not in proc.stderr


EXACT = [
    *FAST,
    "SOLVER.CHECKPOINT_PERIOD",
    4,
    "SOLVER.MAX_ITER",
    8,
    "INPUT.MIN_SIZE_TRAIN",
    "(128,)",
    "INPUT.MAX_SIZE_TRAIN",
    128,
    "DATASETS.TEST",
    "()",
]
"""A demo schedule of 8 iterations with checkpoints after iterations 3 and 7 (and model_final)."""


def without_timings(output: Path) -> list:
    """metrics.json's records without what depends on the clock (time, data_time, eta ...)."""
    records = [json.loads(line) for line in (output / "metrics.json").read_text().splitlines()]
    return [{k: v for k, v in r.items() if "time" not in k and "eta" not in k} for r in records]


def assert_same_tensors(a: Path, b: Path) -> None:
    first, second = (torch.load(p, weights_only=True)["model"] for p in (a, b))
    assert first.keys() == second.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def uninterrupted(env, tmp_path_factory):
    output = tmp_path_factory.mktemp("uninterrupted")
    train_net(env, "--config-file", DEMO_CONFIG, *EXACT, "OUTPUT_DIR", output)
    return output


@pytest.mark.parametrize("kill_after", ["model_0000003.pth", "model_final.pth"])
def test_a_killed_run_resumes_to_exactly_the_uninterrupted_run(env, uninterrupted, tmp_path, kill_after):
    """SIGKILL after the first checkpoint (wherever the run then is), or right after the last one (before
    or while the last metrics are written), then --resume: the same model_final.pth tensors, bit for bit,
    and the same metrics.json, as the run never interrupted; with two data-loader workers against none
    (augmentation is seeded by the sample's position)."""
    output = tmp_path / "killed"
    args = ["--config-file", DEMO_CONFIG, *EXACT, "DATALOADER.NUM_WORKERS", 2, "OUTPUT_DIR", output]
    command = [sys.executable, str(ROOT / "tools" / "train_net.py"), *map(str, args)]
    run = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (output / kill_after).exists():  # saved atomically: complete once it exists
        assert run.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, f"no {kill_after} within 10 minutes"
        time.sleep(0.05 if kill_after == "model_0000003.pth" else 0.001)
    if kill_after == "model_0000003.pth":
        time.sleep(float(torch.randint(0, 4, ()).item()) / 10)  # somewhere in iterations 4..7, or a save
    run.kill()  # SIGKILL
    code = run.wait()  # after the last save the run may have ended first: then it resumes a finished run
    assert code == -signal.SIGKILL or (kill_after == "model_final.pth" and code == 0), code
    tag = output / "last_checkpoint"  # absent when the kill came between the first save and its tag
    last = tag.read_text().strip() if tag.exists() else "model_-000001.pth"
    start = int(re.fullmatch(r"model_(-?\d+|final)\.pth", last).group(1).replace("final", "7")) + 1

    proc = train_net(env, "--resume", *args)
    log = proc.stdout + proc.stderr
    assert f"Starting training from iteration {start}" in log
    assert_same_tensors(output / "model_final.pth", uninterrupted / "model_final.pth")
    lines = (output / "metrics.json").read_text().splitlines()
    steps = [json.loads(line)["iteration"] for line in lines]  # every line is JSON
    assert steps == sorted(set(steps)) and steps[-1] == 7
    assert without_timings(output) == without_timings(uninterrupted)
    assert not list(output.glob(".*.tmp"))


def test_a_kill_while_saving_model_final_is_completed_by_resume(env, uninterrupted, tmp_path):
    """Killed while writing model_final.pth after the last iteration's checkpoint: --resume writes it
    (the same tensors as the uninterrupted run's), removes the temporary file, and takes the
    checkpoint's SEED when SEED is -1."""
    for name in ("model_0000007.pth", "metrics.json", "config.yaml"):
        (tmp_path / name).write_bytes((uninterrupted / name).read_bytes())
    (tmp_path / "last_checkpoint").write_text("model_0000007.pth")
    (tmp_path / ".model_final.pth.tmp").write_bytes(b"")  # what the kill left
    (tmp_path / ".notes.tmp").write_bytes(b"")  # not ours: kept
    proc = train_net(env, "--config-file", DEMO_CONFIG, "--resume", *EXACT, "OUTPUT_DIR", tmp_path, "SEED", -1)
    assert "Starting training from iteration 8" in proc.stdout + proc.stderr
    assert_same_tensors(tmp_path / "model_final.pth", uninterrupted / "model_final.pth")
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    assert sorted(p.name for p in tmp_path.glob(".*")) == [".notes.tmp"]
    assert re.search(r"^SEED: 0$", (tmp_path / "config.yaml").read_text(), re.M), "the checkpoint's seed, recorded"


class _Opaque:
    """Any class: rebuilding it needs code from the file."""


def test_weights_that_need_code_are_refused_with_a_clear_message(env, tmp_path):
    weights = tmp_path / "theirs.pth"
    torch.save({"model": {}, "note": _Opaque()}, weights)
    proc = train_net(env, "--config-file", DEMO_CONFIG, "--eval-only", "MODEL.WEIGHTS", weights, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert last.startswith(f"error: {weights}: refused") and "MODEL.ALLOW_UNSAFE_WEIGHTS True" in last
