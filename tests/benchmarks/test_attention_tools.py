"""tools/benchmark_attention.py and tools/compare_runs.py on tiny inputs, against independent counts."""

import csv
import io
import json
from pathlib import Path

import pytest
import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone
from fvcore.nn import FlopCountAnalysis
from helpers import ROOT, load_script
from helpers.markdown_tables import markdown_rows
from timm.layers import SEModule

from sna_det.benchmarks.attention_types import benchmark_attention, format_attention_table
from sna_det.engine import setup_cfg
from sna_det.evaluation.run_comparison import comparison_csv, comparison_markdown, load_run_metrics

R18 = ROOT / "configs" / "VinDr-CXR" / "faster_rcnn_R_18_FPN.yaml"


@pytest.fixture(scope="module")
def tiny_result():
    return benchmark_attention(
        R18, types=["none", "sna", "se", "nonlocal"], kind="backbone", height=64, width=64, repeats=1, warmup=0
    )


def plain_r18_backbone():
    cfg = setup_cfg(R18)  # the baseline: MODEL.ATTENTION.TYPE none
    return build_backbone(cfg, ShapeSpec(channels=3))


def test_benchmark_counts_match_independent_counts(tiny_result):
    variants = {v["attn_type"]: v for v in tiny_result["variants"]}
    plain = plain_r18_backbone()
    plain_params = sum(p.numel() for p in plain.parameters())
    se_params = sum(sum(p.numel() for p in SEModule(c).parameters()) * 2 for c in (64, 128, 256, 512))  # 2 blocks
    assert variants["none"]["parameters"] == plain_params
    assert variants["sna"]["parameters"] == plain_params
    assert variants["se"]["parameters"] == plain_params + se_params
    assert (variants["sna"]["stem"], variants["se"]["stages"]) == (True, ["res2", "res3", "res4", "res5"])
    assert variants["nonlocal"]["stages"] == ["res4"] and variants["nonlocal"]["skipped"] is None

    flops = FlopCountAnalysis(plain.eval(), torch.randn(2, 3, 64, 64))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert variants["none"]["gflops"] == pytest.approx(flops.total() / 2 / 1e9, rel=1e-6)
    assert variants["se"]["gflops"] > variants["none"]["gflops"]  # the SE MLPs are counted
    for v in variants.values():
        assert v["inference_ms"] > 0 and v["train_step_ms"] > 0 and len(v["samples"]["inference"]) == 1

    rows = markdown_rows(format_attention_table(tiny_result))
    assert rows[0][:3] == ["attention", "where", "params (M)"] and len(rows) == 1 + 4
    assert rows[2][:3] == ["sna", "stem", f"{plain_params / 1e6:.2f} (+0.00)"]
    se = f"{(plain_params + se_params) / 1e6:.2f} (+{se_params / 1e6:.2f})"
    assert rows[3][:3] == ["se", "res2, res3, res4, res5", se]


def test_nonlocal_that_cannot_fit_is_skipped_with_the_reason():
    result = benchmark_attention(
        R18,
        types=["none", "nonlocal"],
        kind="backbone",
        height=64,
        width=64,
        repeats=1,
        warmup=0,
        max_affinity_gib=1e-6,
        placements={"nonlocal": "stem"},
    )
    (nonlocal_variant,) = [v for v in result["variants"] if v["attn_type"] == "nonlocal"]
    expected_gib = (16 * 16) ** 2 * 4 / 2**30  # stem stride 4: 16x16 positions, a 256x256 fp32 affinity
    assert nonlocal_variant["skipped"] == (
        f"non-local needs a {expected_gib:.3g} GiB (H·W)² affinity per image at this input "
        "(limit 1e-06 GiB, --max-affinity-gib)"
    )
    assert nonlocal_variant["parameters"] is None
    assert "skipped: non-local needs" in format_attention_table(result)


def load_tool(name: str):
    return load_script(f"tools/{name}.py")


def test_benchmark_tool_writes_json_and_prints_the_table(tmp_path, capsys):
    """A width the FPN cannot halve 5 times (90) is padded, as the detector pads its images."""
    out = tmp_path / "bench.json"
    tool = load_tool("benchmark_attention")
    code = tool.main(
        tool.parse_args(
            ["--config-file", str(R18), "--kind", "backbone", "--size", "64", "90", "--repeats", "1", "--warmup", "0"]
            + ["--types", "none", "eca", "--output", str(out)]
        )
    )
    assert code == 0
    assert ["eca", "res2, res3, res4, res5"] in [row[:2] for row in markdown_rows(capsys.readouterr().out)]
    saved = json.loads(out.read_text())
    assert [v["attn_type"] for v in saved["variants"]] == ["none", "eca"] and saved["machine"]["threads"] >= 1


# --- compare_runs ------------------------------------------------------------------------------------


def write_results_run(path: Path, ap: float, nodule: float) -> Path:
    (path / "inference").mkdir(parents=True)
    results = {
        "vindr_cxr_val": {
            "bbox": {"AP": ap, "AP50": ap + 20, "AP75": ap - 5, "APs": None, "APm": 1.0, "APl": 2.0},
            "per_class_ap@0.4": {"AP": ap + 1, "AP-Nodule/Mass": nodule, "AP-Pneumothorax": None},
        }
    }
    (path / "inference" / "results.json").write_text(json.dumps(results))
    return path


def table_row(markdown: str, first: str) -> list:
    """The cells after ``first`` of the first Markdown table row that starts with it."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            return cells[1:]
    raise AssertionError(f"no row {first!r} in:\n{markdown}")


def test_compare_runs_tables_hold_the_runs_numbers(tmp_path):
    a = write_results_run(tmp_path / "R18", 30.5, 12.25)
    b = tmp_path / "R18_sna"
    b.mkdir()
    records = [
        {"iteration": 9, "total_loss": 1.0},
        {"iteration": 9, "bbox/AP": 1.0, "bbox/AP50": 2.0},  # an earlier evaluation
        {"iteration": 19, "total_loss": 0.5, "sna/iterations_mean": 2.0},
        {"iteration": 19, "bbox/AP": 33.0, "bbox/AP50": 55.0, "per_class_ap@0.4/AP-Nodule/Mass": float("nan")},
    ]
    (b / "metrics.json").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    runs = [load_run_metrics(a), load_run_metrics(b)]
    assert runs[1] == {"bbox": {"AP": 33.0, "AP50": 55.0}, "per_class_ap@0.4": {"AP-Nodule/Mass": None}}

    markdown = comparison_markdown(["R18", "R18+SNA"], runs)
    assert table_row(markdown, "R18") == ["30.50", "50.50", "25.50", "", "1.00", "2.00", "31.50"]
    assert table_row(markdown, "R18+SNA") == ["33.00", "55.00", "", "", "", "", ""]
    assert table_row(markdown, "Nodule/Mass") == ["12.25", ""] and table_row(markdown, "Pneumothorax") == ["", ""]

    rows = list(csv.DictReader(io.StringIO(comparison_csv(["R18", "R18+SNA"], runs))))
    assert rows[0]["bbox/AP"] == "30.5" and rows[0]["per_class_ap@0.4/AP-Nodule/Mass"] == "12.25"
    assert rows[1]["bbox/AP"] == "33.0" and rows[1]["per_class_ap@0.4/AP-Nodule/Mass"] == ""


def test_compare_runs_tool_names_what_is_missing(tmp_path, capsys):
    a = write_results_run(tmp_path / "a", 10.0, 5.0)
    tool = load_tool("compare_runs")
    main = lambda argv: tool.main(tool.parse_args(argv))  # noqa: E731
    assert main([str(a), "--output-csv", str(tmp_path / "t.csv"), "--output-md", str(tmp_path / "t.md")]) == 0
    assert (tmp_path / "t.md").read_text().strip() == capsys.readouterr().out.strip()
    assert (tmp_path / "t.csv").read_text().startswith("run,bbox/AP,")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: neither inference/results.json nor metrics.json"):
        main([str(a), str(tmp_path / "empty")])
