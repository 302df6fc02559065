"""Training curves from metrics.json: reading (resume duplicates, evaluation records, bad lines) and
tools/plot_training_curves.py with two runs overlaid."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import run_script
from PIL import Image

from sna_det.analysis.training_curves import matching_keys, metric_series
from sna_det.utils.metrics_json import read_metrics


def write_run(folder: Path, scale: float, resumed: bool = False) -> dict:
    """A metrics.json like detectron2's: training records every 20 iterations, an evaluation record at
    the end; ``resumed`` repeats iteration 39 with new values, as a resumed run appends. Returns
    {key: {iteration: value}} of what a reader should see."""
    folder.mkdir(parents=True)
    lines, expected = [], {}
    for iteration in range(19, 100, 20):
        record = {
            "iteration": iteration,
            "total_loss": scale * 3 / (iteration + 1),
            "loss_cls": scale / (iteration + 1),
            "loss_box_reg": scale * 2 / (iteration + 1),
            "lr": 0.02,
            "sna_power/stem/iterations_mean": 2.0 + iteration % 3,
        }
        lines.append(record)
    lines.append({"iteration": 99, "bbox/AP": 40.0 * scale, "bbox/AP50": 80.0 * scale, "bbox/AP75": float("nan")})
    if resumed:
        lines.append({"iteration": 39, "total_loss": 9.0, "loss_cls": 3.0, "loss_box_reg": 6.0, "lr": 0.02})
    for record in lines:
        for key, value in record.items():
            if key != "iteration" and not (isinstance(value, float) and math.isnan(value)):
                expected.setdefault(key, {})[record["iteration"]] = value
    (folder / "metrics.json").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return expected


def test_read_metrics_merges_records_and_resumes(tmp_path):
    expected = write_run(tmp_path / "run", 1.0, resumed=True)
    records = read_metrics(tmp_path / "run")
    assert list(records) == [19, 39, 59, 79, 99]
    iterations, values = metric_series(records, "total_loss")
    assert iterations.tolist() == [19, 39, 59, 79, 99]
    assert values[1] == 9.0, "the resumed run's line replaces the earlier one"
    np.testing.assert_allclose(values, [expected["total_loss"][i] for i in iterations])
    assert metric_series(records, "bbox/AP")[0].tolist() == [99]
    assert metric_series(records, "bbox/AP75")[0].size == 0, "NaN is not plotted"
    assert records[99]["loss_cls"] == pytest.approx(1 / 100), "training and evaluation records of one iteration merge"
    assert matching_keys({"a": records}, ("total_loss", "loss_*")) == ["total_loss", "loss_box_reg", "loss_cls"]


def test_tool_overlays_two_runs(tmp_path):
    expected = {"sna": write_run(tmp_path / "sna", 1.0), "baseline": write_run(tmp_path / "base", 2.0, resumed=True)}
    out = tmp_path / "curves"
    proc = run_script(
        "tools/plot_training_curves.py",
        *["--run", f"sna={tmp_path / 'sna'}", "--run", f"baseline={tmp_path / 'base' / 'metrics.json'}"],
        *["--keys", "sna_power/*", "--output", out],
        check=True,
    )
    assert f"wrote {out / 'losses.png'}: total_loss, loss_box_reg, loss_cls" in proc.stdout
    assert f"wrote {out / 'ap.png'}: bbox/AP, bbox/AP50" in proc.stdout
    # 3 keys in one row of 3.6 x 2.7 inches plus the title, 2 AP keys, 1 extra key, at 100 dpi
    for name, size in (("losses.png", (1080, 300)), ("ap.png", (720, 300)), ("metrics.png", (360, 270))):
        with Image.open(out / name) as image:
            assert image.size == size
            assert np.asarray(image.convert("L")).std() > 10, f"{name} is not blank"
    with open(out / "training_curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    points = {(r["run"], r["key"], int(r["iteration"])): float(r["value"]) for r in rows}
    wanted = {
        (run, key, iteration): value
        for run, series in expected.items()
        for key, values in series.items()
        if key not in ("lr",)
        for iteration, value in values.items()
    }
    assert points == wanted


def test_tool_rejects_duplicate_labels(tmp_path):
    write_run(tmp_path / "a" / "run", 1.0)
    write_run(tmp_path / "b" / "run", 1.0)
    proc = run_script(
        "tools/plot_training_curves.py",
        *["--run", tmp_path / "a" / "run", "--run", tmp_path / "b" / "run", "--output", tmp_path],
    )  # a second interpreter: the label check ends in SystemExit("error: ..."), which Python prints
    assert proc.returncode != 0 and "two runs labelled 'run'; give them labels" in proc.stderr
    assert not (tmp_path / "losses.png").exists()
