"""Power-iteration diagnostics: the measurement against numpy's SVD and the block's own steps, the
training hook (EventStorage, power_iteration.jsonl, resume), the summary and its tool."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.engine import SimpleTrainer
from detectron2.engine.hooks import IterationTimer, PeriodicWriter
from markdown_tables import markdown_rows
from torch import nn

import sna_det.layers.spectral_norm_attention as sna_module
from sna_det import SpectralNormAttention
from sna_det.analysis.power_iteration_stats import (
    format_summary_table,
    measure_power_iteration,
    read_power_iteration_records,
    summarize_power_iteration,
    summary_csv,
)
from sna_det.engine import PowerIterationDiagnostics, insert_before_writers

ROOT = Path(__file__).resolve().parents[1]


def numpy_singular_values(x: torch.Tensor) -> np.ndarray:
    """(B, k) singular values of each image's channel-mean map, by numpy."""
    return np.linalg.svd(x.double().mean(1).numpy(), compute_uv=False)


def test_measurement_matches_numpy_svd():
    x = torch.randn(4, 6, 9, 13, dtype=torch.float64).relu()
    measured = measure_power_iteration(x, max_iters=500, tol=0.0)
    s = numpy_singular_values(x)
    np.testing.assert_allclose(measured.sigma1.numpy(), s[:, 0], rtol=1e-12)
    np.testing.assert_allclose(measured.sigma2.numpy(), s[:, 1], rtol=1e-12)
    np.testing.assert_allclose(measured.sigma1_power.numpy(), s[:, 0], rtol=1e-9)
    np.testing.assert_allclose(measured.rank1_energy.numpy(), s[:, 0] ** 2 / (s**2).sum(1), rtol=1e-12)


def test_iterations_are_the_steps_the_block_takes(monkeypatch):
    """The block's own call of dominant_singular_triple, spied on, took the measured number of steps."""
    seen = []
    original = sna_module.dominant_singular_triple

    def spy(m, max_iters=20, tol=1e-4):
        result = original(m, max_iters=max_iters, tol=tol)
        seen.append(result.iterations.clone())
        return result

    monkeypatch.setattr(sna_module, "dominant_singular_triple", spy)
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.rand(3, 8, 20, 24, generator=g), torch.randn(3, 8, 20, 24, generator=g)])
    block = SpectralNormAttention(max_iters=15, tol=1e-5)
    block(x)
    measured = measure_power_iteration(x, block.max_iters, block.tol)
    assert len(seen) == 1
    torch.testing.assert_close(measured.iterations, seen[0])
    assert measured.iterations.min() >= 1 and measured.iterations.max() <= 15
    assert measured.iterations.unique().numel() > 1, "the images should need different numbers of steps"


def test_iterations_follow_the_spectral_gap():
    """A non-negative rank-one map converges at once; a map with sigma2 close to sigma1 hits the cap."""
    u, v = torch.rand(1, 16, 1) + 0.1, torch.rand(1, 1, 12) + 0.1
    rank_one = (u * v).unsqueeze(1).expand(1, 3, 16, 12)
    assert measure_power_iteration(rank_one.double(), 20, 1e-4).iterations.item() <= 2
    q1, _ = torch.linalg.qr(torch.randn(16, 12, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64))
    spectrum = torch.linspace(1.0, 0.5, 12, dtype=torch.float64)
    spectrum[1] = 0.999
    m = (q1 * spectrum) @ q2.T
    measured = measure_power_iteration(m[None, None], 20, 1e-9)
    assert measured.iterations.item() == 20
    assert measured.sigma1.item() == pytest.approx(1.0) and measured.sigma2.item() == pytest.approx(0.999)


class TwoBlockModel(nn.Module):
    """SNA on the input itself (so its input is known), a conv, SNA again; returns a loss dict."""

    def __init__(self):
        super().__init__()
        self.attn = SpectralNormAttention()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Module()
        self.head.attn = SpectralNormAttention(mode="svd")  # no power iteration: not measured

    def forward(self, x):
        return {"loss": self.head.attn(self.conv(self.attn(x))).square().mean()}


def train(model, batches, hooks, start, stop):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    trainer = SimpleTrainer(model, itertools.cycle(batches), optimizer)
    trainer.register_hooks(hooks)
    trainer.train(start, stop)
    return trainer


def test_hook_logs_sampled_iterations_to_storage_and_file(tmp_path):
    g = torch.Generator().manual_seed(2)
    batches = [torch.rand(2, 3, 10, 14, generator=g) for _ in range(5)]
    model = TwoBlockModel()
    trainer = train(model, batches, [PowerIterationDiagnostics(2, str(tmp_path))], 0, 5)
    records = read_power_iteration_records(tmp_path / "power_iteration.jsonl")
    assert sorted({r["iteration"] for r in records}) == [1, 3]
    assert {r["placement"] for r in records} == {"attn"}
    assert len(records) == 2 * 2 and {(r["height"], r["width"]) for r in records} == {(10, 14)}
    for r in records:
        s = numpy_singular_values(batches[r["iteration"]][r["image"] : r["image"] + 1])[0]
        assert r["sigma1"] == pytest.approx(s[0], rel=1e-5) and r["sigma2"] == pytest.approx(s[1], rel=1e-5)
    history = trainer.storage.history("sna_power/attn/iterations_mean")
    assert [it for _, it in history.values()] == [1, 3]
    for value, iteration in history.values():
        assert value == np.mean([r["iterations"] for r in records if r["iteration"] == iteration])
    sigma2 = trainer.storage.history("sna_power/attn/sigma2_mean").latest()
    assert sigma2 == pytest.approx(np.mean([r["sigma2"] for r in records if r["iteration"] == 3]))
    assert not model.attn._forward_hooks, "the measuring hooks are removed after each sampled step"


def test_hook_on_resume_drops_records_from_the_start_iteration_on(tmp_path):
    batches = [torch.rand(1, 3, 8, 8) for _ in range(3)]
    train(TwoBlockModel(), batches, [PowerIterationDiagnostics(1, str(tmp_path))], 0, 4)
    path = tmp_path / "power_iteration.jsonl"
    assert [r["iteration"] for r in read_power_iteration_records(path)] == [0, 1, 2, 3]
    train(TwoBlockModel(), batches, [PowerIterationDiagnostics(1, str(tmp_path))], 2, 3)
    assert [r["iteration"] for r in read_power_iteration_records(path)] == [0, 1, 2]


def test_hook_goes_before_the_writer():
    writer = PeriodicWriter([], period=20)
    hooks = insert_before_writers([IterationTimer(), writer], PowerIterationDiagnostics(5))
    assert isinstance(hooks[1], PowerIterationDiagnostics) and hooks[2] is writer
    assert isinstance(
        insert_before_writers([IterationTimer()], PowerIterationDiagnostics(5))[-1], PowerIterationDiagnostics
    )
    with pytest.raises(ValueError, match="period"):
        PowerIterationDiagnostics(0)


def record(placement, iterations, sigma1, sigma2, iteration=0, cap=20):
    return {
        "iteration": iteration,
        "placement": placement,
        "image": 0,
        "height": 8,
        "width": 6,
        "max_iters": cap,
        "iterations": iterations,
        "sigma1": sigma1,
        "sigma2": sigma2,
        "sigma1_power": sigma1,
        "rank1_energy": 0.5,
    }


def test_summary_statistics_per_placement():
    steps = [1, 2, 2, 3, 20, 4]
    records = [record("stem", n, 4.0 + i, 2.0, iteration=i // 2) for i, n in enumerate(steps)]
    records.append(record("res2.0", 5, 1.0, 0.0))
    stem, res2 = summarize_power_iteration(records)
    assert (stem.placement, stem.images, stem.sampled_iterations) == ("stem", 6, 3)
    assert stem.iterations_mean == pytest.approx(32 / 6)
    assert stem.iterations_median == 2.5 and stem.iterations_max == 20
    assert stem.capped_fraction == pytest.approx(1 / 6)
    assert stem.sigma1_mean == pytest.approx(6.5) and stem.sigma_ratio_median == pytest.approx(3.25)
    assert res2.sigma_ratio_median == float("inf")
    rows = markdown_rows(format_summary_table([stem, res2]))
    assert rows[1][:5] == ["stem", "6", "8 x 6", "5.33", "2.5"] and rows[2][:2] == ["res2.0", "1"]
    assert rows[1][7] == "16.7% (cap 20)" and rows[2][10] == "inf"
    assert summary_csv([stem]).splitlines()[1].startswith("stem,6,3,8,6,20,5.333")


def test_reader_names_file_and_line(tmp_path):
    path = tmp_path / "power_iteration.jsonl"
    path.write_text(json.dumps(record("stem", 2, 1.0, 0.5)) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"power_iteration.jsonl:2: not JSON"):
        read_power_iteration_records(path)
    path.write_text('{"iteration": 3}\n')
    with pytest.raises(ValueError, match=r":1: missing field\(s\) \['placement'"):
        read_power_iteration_records(path)
    with pytest.raises(FileNotFoundError, match="DIAGNOSTICS_PERIOD"):
        read_power_iteration_records(tmp_path / "absent.jsonl")


def test_train_net_logs_diagnostics_and_the_tool_summarizes_them(tmp_path):
    """tools/train_net.py with MODEL.SNA.DIAGNOSTICS_PERIOD (tiny images, 3 iterations), then the summary tool."""
    env = dict(os.environ, SNA_DET_CACHE=str(tmp_path / "cache"), PYTHONWARNINGS="ignore")
    demo = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_sna_demo.yaml"
    opts = "SOLVER.IMS_PER_BATCH 2 SOLVER.MAX_ITER 3 SOLVER.WARMUP_ITERS 1 DATASETS.TEST () "
    opts += "INPUT.MIN_SIZE_TRAIN (128,) INPUT.MAX_SIZE_TRAIN 128 MODEL.SNA.DIAGNOSTICS_PERIOD 2 "
    opts += f'MODEL.ATTENTION.STAGES ["res4"] OUTPUT_DIR {tmp_path / "run"}'
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "train_net.py"), "--config-file", str(demo), *opts.split()],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    records = read_power_iteration_records(tmp_path / "run" / "power_iteration.jsonl")
    assert {r["iteration"] for r in records} == {1}
    assert [r["placement"] for r in records] == ["stem"] * 2 + ["res4.0"] * 2 + ["res4.1"] * 2
    assert {(r["placement"], r["height"]) for r in records} >= {("stem", 32), ("res4.0", 8)}
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.json").read_text().splitlines()]
    logged = [m for m in metrics if "sna_power/stem/iterations_mean" in m]
    assert len(logged) == 1 and logged[0]["iteration"] == 1
    stem_steps = [r["iterations"] for r in records if r["placement"] == "stem"]
    assert logged[0]["sna_power/stem/iterations_mean"] == pytest.approx(np.mean(stem_steps))
    summary = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "summarize_power_iteration.py"), str(tmp_path / "run")],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "6 records read, 6 kept, 1 sampled iterations (1-1)" in summary
    assert ["stem", "2", "32 x 32", f"{np.mean(stem_steps):.2f}"] in [row[:4] for row in markdown_rows(summary)]
