"""The project's commands fail in one line (``error: ...``, exit 1, no traceback), show no known harmless
third-party warning, end quietly under ``| head``, print --help without torch, and `make train` passes
ARGS to tools/train_net.py as written."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import run_main

from sna_det.engine.safe_checkpointer import CheckpointError

ROOT = Path(__file__).resolve().parents[2]
DEMO = "configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml"
SCRIPTS = sorted(str(p.relative_to(ROOT)) for folder in ("tools", "datasets") for p in (ROOT / folder).glob("*.py"))
"""Every command of the project, found here rather than listed: each is held to the same contract."""


def python(*args, code=None, **kwargs):
    command = [sys.executable, *(["-c", textwrap.dedent(code)] if code else []), *map(str, args)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, **kwargs)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.mark.parametrize("tool", SCRIPTS)
def test_help_needs_no_torch(tool):
    blocked = """
    import importlib.abc, runpy, sys
    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "torch":
                raise ImportError("torch imported by --help")
    sys.meta_path.insert(0, NoTorch())
    sys.argv = [sys.argv[1], "--help"]
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
    proc = python(tool, code=blocked)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("usage: ") and proc.stderr == ""


@pytest.mark.parametrize(
    "opts, fragments",
    [
        (["MODEL.SNA.RANKK", "2"], ["config override: Non-existent key: MODEL.SNA.RANKK"]),
        (["MODEL.SNA.MODE", "foo"], ["MODEL.SNA.MODE 'foo' is not one of ['power', 'svd']"]),
        (["MODEL.SNA.WEIGHTING", "mean"], ["MODEL.SNA.WEIGHTING 'mean' is not one of ['softmax', 'softmax_mean1']"]),
        (["MODEL.SNA.RANK", "0"], ["MODEL.SNA.RANK 0 must be an integer >= 1"]),
        (["MODEL.SNA.RANK", "two"], ["MODEL.SNA.RANK"]),
        (["MODEL.SNA.RANK"], ["odd length"]),
        (["MODEL.ATTENTION.TYPE", "sa"], ["MODEL.ATTENTION.TYPE 'sa' is not one of ['none', 'sna',"]),
        (["MODEL.ATTENTION.STAGES", "['res6']"], ["['res6'] are not stages of 'build_resnet_attention_fpn_backbone'"]),
        (["MODEL.ATTENTION.GC.FUSION", "mul"], ["MODEL.ATTENTION.GC.FUSION 'mul' is not one of ['add', 'scale']"]),
        (["MODEL.BACKBONE.NAME", "build_resnet_sna_backbone"], ["'build_resnet_sna_backbone' is not registered"]),
        (
            ["MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone"],
            ["MODEL.ATTENTION.TYPE 'sna' needs a backbone that places attention", "build_resnet_attention_fpn"],
        ),
        (["MODEL.SNA.VARIANT", "authors_code"], ["MODEL.SNA.VARIANT", "MODEL.ATTENTION.TYPE sna_authors"]),
    ],
)
def test_config_mistakes_name_the_key_and_what_it_takes(opts, fragments):
    from sna_det.config import ConfigError
    from sna_det.engine import setup_cfg

    with pytest.raises(ConfigError) as error:
        setup_cfg(ROOT / DEMO, opts)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize(
    "opts, fragments",
    [
        (["--config-file", "configs/no_such.yaml"], ["configs/no_such.yaml: no such config file"]),
        (["--config-file", DEMO, "MODEL.SNA.MODE", "foo"], ["MODEL.SNA.MODE 'foo' is not one of ['power', 'svd']"]),
    ],
)
def test_train_net_mistakes_are_one_line_before_any_log(opts, fragments):
    proc = python("tools/train_net.py", *opts)
    assert_one_line_error(proc, *fragments)
    assert proc.stdout == ""


def test_config_file_mistakes_name_the_file(tmp_path):
    from sna_det.config import ConfigError
    from sna_det.engine import setup_cfg

    config = tmp_path / "old.yaml"
    config.write_text(f'_BASE_: "{ROOT / DEMO}"\nMODEL:\n  SNA:\n    STAGES: ["res4"]\n')
    renamed = f"^{config}: Key MODEL.SNA.STAGES was renamed to MODEL.ATTENTION.STAGES"
    with pytest.raises(ConfigError, match=renamed) as e:
        setup_cfg(config)
    assert "also write MODEL.ATTENTION.TYPE sna" in str(e.value)
    config.write_text("MODEL: [unclosed\n")
    with pytest.raises(ConfigError, match=f"^{config}: line 2, column 1: YAML syntax error: expected ',' or ']'"):
        setup_cfg(config)
    config.write_text("MODEL:\n\tDEVICE: cpu\n")  # a tab: YAML's own message, with the line
    with pytest.raises(ConfigError, match=f"^{config}: line 2, column 1: YAML syntax error: found character '\\\\t'"):
        setup_cfg(config)
    including = tmp_path / "including.yaml"
    including.write_text(f'_BASE_: "{config}"\n')
    with pytest.raises(ConfigError, match=f"^{including}: {config}: line 2, column 1: YAML syntax error"):
        setup_cfg(including)
    for text in ("", "# only a comment\n"):
        config.write_text(text)
        with pytest.raises(ConfigError, match=f"^{config}: empty config file"):
            setup_cfg(config)
    with pytest.raises(ConfigError, match=f"^{including}: a file it includes \\(_BASE_\\) is empty"):
        setup_cfg(including)
    config.write_text("- MODEL\n- DEVICE\n")
    with pytest.raises(ConfigError, match=f"^{config}: not a config: a YAML mapping of keys is expected, got a list"):
        setup_cfg(config)
    config.write_text(f'_BASE_: "{tmp_path / "gone.yaml"}"\n')
    with pytest.raises(ConfigError, match=f"^{config}: .*gone.yaml"):
        setup_cfg(config)


def test_main_config_choice_falls_back_only_when_not_prepared(tmp_path):
    """A dataset that is not prepared means the fallback, with the reason; one that is not registered is an error."""
    from sna_det.engine import choose_main_config

    empty = tmp_path / "empty"
    empty.mkdir()
    main = ROOT / "configs" / "vincxr_faster_sna.yaml"
    chosen, why = choose_main_config(main, ROOT / DEMO)  # the default root, not prepared in a clone
    assert chosen == str(ROOT / DEMO)
    assert re.match(r"dataset 'vindr_cxr_train': json_file \S+/annotations/train.json does not exist", why)
    with pytest.raises(FileNotFoundError, match=r"DATASETS.ROOTS.VINDR_CXR was given: prepare it there or correct it"):
        choose_main_config(main, ROOT / DEMO, ["DATASETS.ROOTS.VINDR_CXR", str(empty)])
    with pytest.raises(KeyError, match="'nope' is not registered"):
        choose_main_config(main, ROOT / DEMO, ["DATASETS.TRAIN", "('nope',)"])


def test_unwritable_output_dir_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    output = tmp_path / "a_file" / "run"
    proc = python("tools/train_net.py", "--config-file", DEMO, "OUTPUT_DIR", output, "MODEL.DEVICE", "cpu")
    assert_one_line_error(proc, f"OUTPUT_DIR {output}: not writable")


@pytest.mark.parametrize("tool", ["tools/visualize_attention.py", "tools/benchmark_attention.py"])
def test_other_tools_config_mistakes_are_one_line(tool, tmp_path):
    args = {"tools/visualize_attention.py": ["--input", tmp_path, "--output", tmp_path / "out"]}.get(tool, [])
    proc = python(tool, "--config-file", DEMO, *args, "MODEL.SNA.MODE", "foo")
    assert_one_line_error(proc, "MODEL.SNA.MODE 'foo' is not one of")


@pytest.mark.parametrize("tool", SCRIPTS)
def test_every_script_runs_through_run_tool(tool):
    """The one error path: a script's ``__main__`` block ends in ``sna_det.utils.cli.run_tool``."""
    import ast

    tree = ast.parse((ROOT / tool).read_text())
    guards = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    assert len(guards) == 1, f"{tool} has no single `if __name__ == '__main__':` block"
    calls = [c for c in ast.walk(guards[0]) if isinstance(c, ast.Call) and ast.unparse(c.func).endswith("run_tool")]
    assert calls, f"{tool}: its __main__ block does not call run_tool"


@pytest.mark.parametrize("tool", SCRIPTS)
def test_unknown_option_is_argparses_usage_error(tool):
    proc = python(tool, "--no-such-option-anywhere")
    assert proc.returncode == 2 and "usage:" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_known_third_party_warnings_are_quiet_in_tools_only():
    code = """
    import sys, torch
    from sna_det.utils.cli import run_tool
    def main():
        torch.meshgrid(torch.arange(2), torch.arange(3))
    if sys.argv[1] == "tool":
        run_tool(main)
    main()
    """
    assert python("tool", code=code).stderr == ""
    assert "torch.meshgrid: in an upcoming release" in python("library", code=code).stderr


def test_a_closed_pipe_ends_quietly():
    code = """
    from sna_det.utils.cli import run_tool
    def main():
        for i in range(10**6):
            print(f"line {i}")
    run_tool(main)
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout.readline() == b"line 0\n"
    proc.stdout.close()  # as `| head -1` does
    assert proc.wait(timeout=300) == 1
    assert proc.stderr.read() == b""


def test_make_train_passes_args_as_written(tmp_path):
    """ARGS with quotes and parentheses reach tools/train_net.py --main unchanged (a stand-in python records them)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    record = tmp_path / "argv"
    fake = venv / "bin" / "python"
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {record}\n')
    fake.chmod(0o755)
    (venv / ".sna-det-ready").touch()  # newer than setup.py: `make setup` has nothing to do
    args = """DATASETS.TEST '("vindr_cxr_val",)' DATASETS.ROOTS.VINDR_CXR "/data/my cxr" SOLVER.MAX_ITER 2"""
    proc = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "train", f"VENV={venv}", f"ARGS={args}"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert record.read_text().splitlines() == [
        "tools/train_net.py",
        "--main",
        "DATASETS.TEST",
        '("vindr_cxr_val",)',
        "DATASETS.ROOTS.VINDR_CXR",
        "/data/my cxr",
        "SOLVER.MAX_ITER",
        "2",
    ]


def test_an_empty_config_file_is_one_line_from_the_command(tmp_path):
    config = tmp_path / "empty.yaml"
    config.write_text("")
    assert_one_line_error(python("tools/train_net.py", "--config-file", config), f"{config}: empty config file")


def load_tool(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("tool", ["train_net", "export_model"])
def test_a_flag_after_the_overrides_is_honoured_not_swallowed(tool):
    module = load_tool(tool)
    needed = ["--output", "out"] if tool == "export_model" else []
    flag = "--resume" if tool == "train_net" else "--format"
    value = [] if tool == "train_net" else ["onnx"]
    args = module.parse_args(["--config-file", DEMO, *needed, "SOLVER.MAX_ITER", "2", flag, *value, "SEED", "-1"])
    assert args.opts == ["SOLVER.MAX_ITER", "2", "SEED", "-1"]
    assert (args.resume is True) if tool == "train_net" else (args.format == "onnx")
    with pytest.raises(SystemExit) as stop:
        module.parse_args(["--config-file", DEMO, *needed, "SOLVER.MAX_ITER", "2", "--resum"])
    assert stop.value.code == 2


def test_an_unregistered_dataset_is_named_with_close_matches_not_all_names():
    from detectron2.data import DatasetCatalog

    from sna_det.engine.preflight import DatasetNotRegisteredError, check_datasets_registered

    with pytest.raises(DatasetNotRegisteredError) as error:
        check_datasets_registered(["sna_demo_train", "vindr_cxr_trian"])
    message = str(error.value)
    assert message.startswith("dataset 'vindr_cxr_trian' is not registered (did you mean 'vindr_cxr_train'")
    assert "DATASETS.REGISTER" in message and f"{len(DatasetCatalog.list())} names are" in message
    assert len(DatasetCatalog.list()) > 20 and "coco_2017_val" not in message  # not the whole list
    with pytest.raises(DatasetNotRegisteredError, match="^dataset 'zzz' is not registered; "):
        check_datasets_registered(["zzz"])


@pytest.mark.parametrize("where", ["folder", "under_a_file"])
def test_evaluate_detections_output_mistakes_are_one_line(tmp_path, capsys, where):
    gt, dt = tmp_path / "gt.json", tmp_path / "dt.json"
    gt.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "width": 10, "height": 10}],
                "annotations": [],
                "categories": [{"id": 1, "name": "a"}],
            }
        )
    )
    dt.write_text("[]")
    (tmp_path / "a_file").write_text("")
    output = tmp_path if where == "folder" else tmp_path / "a_file" / "ap.json"
    code = run_main("tools/evaluate_detections.py", "--gt", gt, "--dt", dt, "--output", output)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert (
        err[0].startswith(f"error: {output}: --output ")
        and ("is a folder" if where == "folder" else "which is a file") in err[0]
    )


@pytest.fixture(scope="module")
def weights_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    (folder / "weights.txt").write_text("not weights\n")
    torch.save({"model": {"w": torch.zeros(1000)}}, folder / "whole.pth")
    whole = (folder / "whole.pth").read_bytes()
    (folder / "truncated.pth").write_bytes(whole[: len(whole) // 2])
    return folder


@pytest.mark.parametrize(
    "weights, says",
    [
        ("none.pth", "no such checkpoint file"),
        ("weights.txt", "not a readable checkpoint"),
        ("truncated.pth", "not a readable checkpoint"),
    ],
)
def test_train_net_weights_mistakes_are_one_line_before_anything_is_written(weights_files, tmp_path, weights, says):
    module = load_tool("train_net")
    output = tmp_path / "run"
    args = module.parse_args(
        ["--config-file", DEMO, "MODEL.WEIGHTS", str(weights_files / weights), "OUTPUT_DIR", str(output)]
    )
    with pytest.raises(CheckpointError, match=f"^{weights_files / weights}: {says}"):
        module.run(args)
    assert list(output.iterdir()) == []


@pytest.mark.parametrize(
    "content, says",
    [(b"", "is empty"), (b"\x80\x81binary", "is not the name"), (b"model_0000099.pth", "names model_0000099.pth")],
)
def test_train_net_resume_with_a_bad_last_checkpoint_is_one_line(tmp_path, content, says):
    module = load_tool("train_net")
    (tmp_path / "last_checkpoint").write_bytes(content)
    args = module.parse_args(["--config-file", DEMO, "--resume", "OUTPUT_DIR", str(tmp_path)])
    with pytest.raises(CheckpointError, match=f"^{tmp_path / 'last_checkpoint'}: {says}"):
        module.run(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint"]


def test_a_failed_run_leaves_the_previous_runs_files_untouched(tmp_path):
    """The issue's case: a new run with bad weights into a finished run's folder."""
    previous = {"config.yaml": "SEED: 7\n", "log.txt": "the previous log\n", "metrics.json": '{"iteration": 3}\n'}
    for name, text in previous.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "weights.txt").write_text("not weights\n")
    proc = python(
        "tools/train_net.py", "--config-file", DEMO, "SOLVER.BASE_LR", "0.5", "MODEL.WEIGHTS", tmp_path / "weights.txt",
        "OUTPUT_DIR", tmp_path, "MODEL.DEVICE", "cpu",
    )  # fmt: skip
    assert_one_line_error(proc, f"{tmp_path / 'weights.txt'}: not a readable checkpoint")
    assert {p.name: p.read_text() for p in tmp_path.iterdir() if p.name != "weights.txt"} == previous


def test_tools_show_warnings_about_the_users_files_once_and_none_about_library_internals():
    import warnings

    from sna_det.utils.cli import quiet_third_party_warnings

    with warnings.catch_warnings(record=True) as shown:
        warnings.resetwarnings()
        quiet_third_party_warnings()
        for module in ("detectron2.export.flatten", "fvcore.common.checkpoint", "torch.jit._trace"):
            warnings.warn_explicit("internal note", UserWarning, f"{module}.py", 1, module=module)
        for _ in range(3):  # one DICOM's odd header, met on every read: shown once
            warnings.warn_explicit("Invalid value for VR UI", UserWarning, "valuerep.py", 7, module="pydicom.valuerep")
        warnings.warn_explicit("the user's own", UserWarning, "mine.py", 3, module="mine")
    assert [str(w.message) for w in shown] == ["Invalid value for VR UI", "the user's own"]
