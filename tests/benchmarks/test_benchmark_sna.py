"""tools/benchmark_sna.py --quick end to end, and the timing helpers it uses."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sna_det.benchmarks.block import stem_output_shape
from sna_det.benchmarks.timing import Case, interleaved_median_ms

TOOL = Path(__file__).resolve().parents[2] / "tools" / "benchmark_sna.py"


def numbers(tree, path=""):
    """(path, value) for every int or float leaf of a JSON tree."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from numbers(value, f"{path}/{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from numbers(value, f"{path}/{i}")
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield path, tree


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("bench") / "bench.json"
    # one thread: no oversubscription when the machine is shared (checks structure, not speed)
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--quick", "--threads", "1", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads(output.read_text())


def test_quick_json_has_every_measurement(quick_run):
    _, results = quick_run
    assert set(results) == {"command", "machine", "settings", "ops", "candidates", "block", "model"}
    assert results["machine"]["threads"] >= 1 and results["machine"]["device"] == "cpu"
    assert results["settings"]["quick"] is True

    block = results["block"]
    assert block["input_shape"] == [2, 64, 64, 80]
    assert set(block["floor"]) == {"forward_ms", "forward_backward_ms"}
    for weighting in ("softmax", "softmax_mean1"):
        for mode in ("power", "svd"):
            assert set(block["sna"][weighting][mode]) == {
                "forward_ms",
                "forward_backward_ms",
                "forward_x_floor",
                "forward_backward_x_floor",
            }
        assert set(block["sna"][weighting]["svd_over_power"]) == {"forward", "forward_backward"}

    model = results["model"]
    for step in ("inference", "train_step"):
        assert {"baseline_ms", "sna_ms", "sna_over_baseline", "sna_over_baseline_per_round"} <= set(model[step])
        assert len(model[step]["sna_samples_ms"]) == results["settings"]["repeats"]
    assert model["parameters"]["sna"] == model["parameters"]["baseline"] > 0

    timings = dict(numbers({"block": block, "model": model}))
    assert len(timings) > 30
    bad = {path: value for path, value in timings.items() if not (math.isfinite(value) and value > 0)}
    assert not bad, bad


def test_quick_prints_markdown_tables(quick_run):
    stdout, results = quick_run
    assert stdout.startswith("# SNA benchmark")
    assert f"torch threads: {results['machine']['threads']}" in stdout
    assert "--quick" in stdout
    assert "| memory floor |" in stdout and "| SNA softmax_mean1, svd |" in stdout
    assert "| inference, 1 image |" in stdout
    assert "SNA block forward per image:" in stdout
    assert "## Operations per SNA forward on CUDA" in stdout and "## Ways to compute the map" in stdout
    assert "## Operations per backbone forward on CUDA" in stdout
    assert "| R18-FPN, SNA in the stem and every block (Table 4) | inference |" in stdout
    assert stdout.count("Target:") == 4


def test_quick_json_op_counts_and_candidates(quick_run):
    _, results = quick_run
    power = results["ops"]["power"]
    assert len(power) == 8  # 2 shapes x inference/training x fp32/bf16
    # the backbones: as many SNA blocks as the configs place, each adding what the block alone counts
    backbones = results["ops"]["backbones"]
    assert [(pair["baseline"]["sna_blocks"], pair["sna"]["sna_blocks"]) for pair in backbones.values()] == [
        (0, 9),  # Table 4: after the stem and in the 8 residual blocks of R18
        (0, 1),  # R50-FPN: after the stem
    ]
    block = power["(2, 64, 256, 256) inference fp32"]
    for pair in backbones.values():
        for phase in ("inference", "training"):
            assert pair["sna"][phase] - pair["baseline"][phase] == pair["sna"]["sna_blocks"] * block
    # a fixed computation: the same operations whatever the input size or phase
    assert len({count for key, count in power.items() if key.endswith("fp32")}) == 1
    candidates = results["candidates"]["candidates"]
    default = candidates["squaring k=8 (256 steps, the default)"]
    assert default["ops"] == power
    for name, candidate in candidates.items():
        assert set(candidate["errors"]) == {"1.05", "1.2", "1.5", "4.0"}, name
    # more squarings, smaller error where the gap is small; the stopping test is the least accurate
    assert default["errors"]["1.05"]["rank_one"] < candidates["squaring k=6 (64 steps)"]["errors"]["1.05"]["rank_one"]
    algorithm1 = candidates["algorithm1 (tol 1e-4, <= 20 steps)"]
    assert algorithm1["errors"]["1.2"]["rank_one"] > 10 * default["errors"]["1.2"]["rank_one"]


def test_detector_grid_quick(tmp_path):
    output = tmp_path / "grid.json"
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--quick", "--threads", "1", "--parts", "detectors", "--grid-size", "64",
         "--output", str(output)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    grid = json.loads(output.read_text())["detectors"]
    assert len(grid) == 2 and all(set(runs) == {"eager fp32"} for runs in grid.values())
    for runs in grid.values():
        for step in ("inference", "train_step"):
            assert runs["eager fp32"][step]["sna_ms"] > 0 and runs["eager fp32"][step]["baseline_ms"] > 0
    assert proc.stdout.count("Goal for") == 2


def test_stem_output_shape_of_coco_input():
    assert stem_output_shape(800, 1333, batch=2, channels=64) == (2, 64, 200, 334)
    # the formula agrees with a real conv 7x7/2 (pad 3) + max-pool 3x3/2 (pad 1) on an odd size
    stem = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 7, 2, 3), torch.nn.MaxPool2d(3, 2, 1))
    assert stem(torch.zeros(1, 1, 37, 50)).shape[-2:] == stem_output_shape(37, 50, 1, 1)[-2:]


def test_interleaved_median_runs_cases_in_turn():
    calls = []
    cases = [Case(name, lambda name=name: calls.append(name)) for name in "ab"]
    ms = interleaved_median_ms(cases, torch.device("cpu"), repeats=3, warmup=1)
    assert calls == list("abababab")
    assert set(ms) == {"a", "b"} and all(value >= 0 for value in ms.values())
