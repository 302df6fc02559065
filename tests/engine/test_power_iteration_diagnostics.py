"""Power-iteration diagnostics: the measurement against numpy's SVD and the block's own steps, the
training hook (EventStorage, power_iteration.jsonl, resume), the summary and its tool."""

import itertools
import json

import numpy as np
import pytest
import torch
from detectron2.engine import SimpleTrainer
from detectron2.engine.hooks import IterationTimer, PeriodicWriter
from helpers import ROOT, run_script
from helpers.refusals import assert_refuses
from torch import nn

import sna_det.layers.spectral_norm_attention as sna_module
from sna_det import SpectralNormAttention
from sna_det.analysis.power_iteration_stats import (
    format_summary_table,
    read_power_iteration_records,
    summarize_power_iteration,
    summary_csv,
)
from sna_det.engine import PowerIterationDiagnostics, insert_before_writers
from sna_det.layers.power_iteration_accuracy import measure_power_iteration


def numpy_singular_values(x: torch.Tensor) -> np.ndarray:
    """(B, k) singular values of each image's channel-mean map, by numpy."""
    return np.linalg.svd(x.double().mean(1).numpy(), compute_uv=False)


def numpy_rank_one_maps(x: torch.Tensor) -> np.ndarray:
    """(B, H, W) best rank-one approximations of each image's channel-mean map, by numpy."""
    u, s, vh = np.linalg.svd(x.double().mean(1).numpy(), full_matrices=False)
    return s[:, :1, None] * u[:, :, :1] * vh[:, None, 0, :]


def test_measurement_matches_numpy_svd():
    x = torch.randn(4, 6, 9, 13, dtype=torch.float64).relu()
    measured = measure_power_iteration(x, squarings=12)
    s = numpy_singular_values(x)
    np.testing.assert_allclose(measured.sigma1.numpy(), s[:, 0], rtol=1e-12)
    np.testing.assert_allclose(measured.sigma2.numpy(), s[:, 1], rtol=1e-12)
    np.testing.assert_allclose(measured.sigma1_power.numpy(), s[:, 0], rtol=1e-9)
    np.testing.assert_allclose(measured.rank1_energy.numpy(), s[:, 0] ** 2 / (s**2).sum(1), rtol=1e-12)
    assert measured.map_rel_error.max() < 1e-9


def test_map_error_is_the_blocks_map_against_the_svd(monkeypatch):
    """The measured error is that of the map the block computes (spied on), against numpy's SVD."""
    q1, _ = torch.linalg.qr(torch.randn(16, 12, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64))
    spectrum = torch.linspace(1.0, 0.5, 12, dtype=torch.float64)
    spectrum[1] = 0.99  # sigma1/sigma2 = 1.01: 2^3 power steps leave a visible error
    x = ((q1 * spectrum) @ q2.T)[None, None].expand(1, 2, 16, 12).contiguous()
    block = SpectralNormAttention(squarings=3)
    seen = []
    original = sna_module.low_rank_approximation

    def spy(m, *args, **kwargs):
        seen.append(original(m, *args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(sna_module, "low_rank_approximation", spy)
    block(x)
    exact = numpy_rank_one_maps(x)
    expected = np.linalg.norm(seen[0].numpy() - exact) / np.linalg.norm(exact)
    measured = measure_power_iteration(x, block.squarings)
    assert measured.map_rel_error.item() == pytest.approx(expected, rel=1e-9)
    assert 1e-3 < expected < 1, "3 squarings at sigma1/sigma2 = 1.01 should be visibly off"
    assert measure_power_iteration(x, 12).map_rel_error.item() < 1e-6 * expected
    assert measured.sigma1.item() == pytest.approx(1.0) and measured.sigma2.item() == pytest.approx(0.99)


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
    history = trainer.storage.history("sna_power/attn/map_rel_error_mean")
    assert [it for _, it in history.values()] == [1, 3]
    for value, iteration in history.values():
        assert value == pytest.approx(np.mean([r["map_rel_error"] for r in records if r["iteration"] == iteration]))
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


def test_hook_on_resume_drops_a_half_written_last_line(tmp_path):
    """A kill in the middle of an append leaves a line cut short: --resume trims it (as metrics.json's)."""
    batches = [torch.rand(1, 3, 8, 8) for _ in range(3)]
    train(TwoBlockModel(), batches, [PowerIterationDiagnostics(1, str(tmp_path))], 0, 2)
    path = tmp_path / "power_iteration.jsonl"
    whole = path.read_text()
    path.write_text(whole + whole.splitlines()[0][:25])  # the next append, cut short
    train(TwoBlockModel(), batches, [PowerIterationDiagnostics(1, str(tmp_path))], 2, 3)
    assert [r["iteration"] for r in read_power_iteration_records(path)] == [0, 1, 2]
    assert path.read_text().startswith(whole)


def test_hook_goes_before_the_writer():
    writer = PeriodicWriter([], period=20)
    hooks = insert_before_writers([IterationTimer(), writer], PowerIterationDiagnostics(5))
    assert isinstance(hooks[1], PowerIterationDiagnostics) and hooks[2] is writer
    assert isinstance(
        insert_before_writers([IterationTimer()], PowerIterationDiagnostics(5))[-1], PowerIterationDiagnostics
    )
    with pytest.raises(ValueError, match="period"):
        PowerIterationDiagnostics(0)


def record(placement, error, sigma1, sigma2, iteration=0, steps=256):
    return {
        "iteration": iteration,
        "placement": placement,
        "image": 0,
        "height": 8,
        "width": 6,
        "power_steps": steps,
        "sigma1": sigma1,
        "sigma2": sigma2,
        "sigma1_power": sigma1,
        "rank1_energy": 0.5,
        "map_rel_error": error,
    }


def test_summary_statistics_per_placement():
    errors = [1e-7, 2e-7, 2e-7, 3e-7, 2e-5, 4e-7]
    records = [record("stem", e, 4.0 + i, 2.0, iteration=i // 2) for i, e in enumerate(errors)]
    records.append(record("res2.0", 5e-7, 1.0, 0.0))
    stem, res2 = summarize_power_iteration(records)
    assert (stem.placement, stem.images, stem.sampled_iterations) == ("stem", 6, 3)
    assert stem.map_rel_error_median == pytest.approx(2.5e-7) and stem.map_rel_error_max == pytest.approx(2e-5)
    assert stem.sigma1_mean == pytest.approx(6.5) and stem.sigma_ratio_median == pytest.approx(3.25)
    assert stem.sigma_ratio_min == pytest.approx(2.0) and stem.power_steps == "256"
    assert res2.sigma_ratio_median == float("inf")
    table = format_summary_table([stem, res2])
    cells = [[c.strip() for c in line.split("|")[1:7]] for line in table.splitlines()[2:]]
    assert cells[0] == ["stem", "6", "8 x 6", "256", "2.5e-07", "2.0e-05"]
    assert cells[1][:2] == ["res2.0", "1"]
    assert summary_csv([stem]).splitlines()[1].startswith("stem,6,3,8,6,256,2.5")


def test_reader_names_file_and_line(tmp_path):
    cases = [
        (json.dumps(record("stem", 2, 1.0, 0.5)) + "\n{not json\n", ValueError, r"power_iteration.jsonl:2: not JSON"),
        ('{"iteration": 3}\n', ValueError, r":1: missing field\(s\) \['placement'"),
        (None, FileNotFoundError, "DIAGNOSTICS_PERIOD"),
    ]
    assert_refuses(read_power_iteration_records, tmp_path / "power_iteration.jsonl", cases)


def test_train_net_logs_diagnostics_and_the_tool_summarizes_them(tmp_path):
    """tools/train_net.py with MODEL.SNA.DIAGNOSTICS_PERIOD (tiny images, 3 iterations), then the summary tool."""
    env = {"SNA_DET_CACHE": str(tmp_path / "cache"), "PYTHONWARNINGS": "ignore"}
    demo = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_sna_demo.yaml"
    opts = "SOLVER.IMS_PER_BATCH 2 SOLVER.MAX_ITER 3 SOLVER.WARMUP_ITERS 1 DATASETS.TEST () "
    opts += "INPUT.MIN_SIZE_TRAIN (128,) INPUT.MAX_SIZE_TRAIN 128 MODEL.SNA.DIAGNOSTICS_PERIOD 2 "
    opts += f'MODEL.ATTENTION.STAGES ["res4"] OUTPUT_DIR {tmp_path / "run"}'
    run_script("tools/train_net.py", "--config-file", demo, *opts.split(), env=env, check=True, timeout=600)
    records = read_power_iteration_records(tmp_path / "run" / "power_iteration.jsonl")
    assert {r["iteration"] for r in records} == {1}
    assert [r["placement"] for r in records] == ["stem"] * 2 + ["res4.0"] * 2 + ["res4.1"] * 2
    assert {(r["placement"], r["height"]) for r in records} >= {("stem", 32), ("res4.0", 8)}
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.json").read_text().splitlines()]
    logged = [m for m in metrics if "sna_power/stem/map_rel_error_max" in m]
    assert len(logged) == 1 and logged[0]["iteration"] == 1
    stem_errors = [r["map_rel_error"] for r in records if r["placement"] == "stem"]
    assert logged[0]["sna_power/stem/map_rel_error_max"] == pytest.approx(max(stem_errors))
    assert all(r["power_steps"] == 256 for r in records)
    summary = run_script("tools/summarize_power_iteration.py", tmp_path / "run", env=env, check=True).stdout
    assert "6 records read, 6 kept, 1 sampled iterations (1-1)" in summary
    stem_row = next(line for line in summary.splitlines() if line.startswith("| stem "))
    assert [c.strip() for c in stem_row.split("|")[1:7]] == [
        "stem", "2", "32 x 32", "256", f"{np.median(stem_errors):.1e}", f"{max(stem_errors):.1e}"
    ]  # fmt: skip
