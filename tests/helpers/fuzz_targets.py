"""The targets of ``tools/fuzz.py`` (``make fuzz``): generated bad inputs for the two preparers, the
evaluator and the config loader, each run the way its command runs it, with the outcome classified.

Outcomes of one example:

- ``ok``: the input was accepted, and the output passes the fuzz tests' own checks (counts add up,
  images decode at their size, boxes inside their image: ``assert_complete_output`` of
  ``test_fuzz_vindr_cxr.py`` / ``test_fuzz_voc2012_coco.py``, ``assert_result_adds_up``-like checks
  of ``test_fuzz_evaluation.py``);
- ``one-line error``: refused with the exception the command prints as one ``error:`` line (and the
  message is one line);
- ``traceback``: any other exception (the command would end in a traceback);
- ``wrong output``: accepted, but the output fails those checks, or a refusal of several lines;
- ``input not generated``: writing the bad input itself failed (the generator's bug: not an input).

The inputs are those of the fuzz tests (corrupted CSV rows and bytes, DICOM headers and bytes, VOC
XMLs, masks, JPEGs and split lists, random and corrupted ground truth and detections), plus a
corrupted ``prepare_settings.json`` or output folder, odd ``--val-fraction`` values, and, for the
config loader, corrupted bytes of the project's configs, random YAML and random ``KEY VALUE`` overrides.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

from hypothesis import strategies as st

from helpers import load_script
from helpers.fuzz_corruption import corrupt_bytes, corrupted_copy
from helpers.vindr_cxr_synthetic import write_vinbigdata
from helpers.voc_tree import write_voc_tree

# the strategies and checks of the fuzz tests, reused
fuzz_evaluation = load_script("tests/evaluation/test_fuzz_evaluation.py")
fuzz_vindr = load_script("tests/data/test_fuzz_vindr_cxr.py")
fuzz_voc = load_script("tests/data/test_fuzz_voc2012_coco.py")

ROOT = Path(__file__).resolve().parents[2]
OK, NAMED, TRACEBACK, WRONG = "ok", "one-line error", "traceback", "wrong output"
GENERATOR = "input not generated"
OUTCOMES = (OK, NAMED, TRACEBACK, WRONG, GENERATOR)


class WrongOutput(Exception):
    """An accepted input whose output fails the checks, or a refusal that is not one line."""


def _checked(check: Callable[[], None]) -> str:
    try:
        check()
    except AssertionError as error:
        raise WrongOutput(f"check failed: {error}".splitlines()[0] if str(error) else "check failed") from None
    return OK


def _named(error: BaseException) -> str:
    if "\n" in str(error):
        raise WrongOutput(f"a refusal of several lines: {str(error)[:200]!r}")
    return NAMED


@dataclass
class Context:
    """Templates written once per process: a synthetic VinBigData copy, a VOC tree, the configs."""

    folder: Path
    vindr: Path = field(init=False)
    voc: Path = field(init=False)
    configs: Path = field(init=False)
    config_files: List[Path] = field(init=False)
    config_keys: List[str] = field(init=False)

    def __post_init__(self) -> None:
        self.vindr = write_vinbigdata(self.folder / "vindr_template")
        self.voc = self.folder / "voc_template" / "VOC2012"
        write_voc_tree(self.voc)
        self.configs = self.folder / "configs"
        shutil.copytree(ROOT / "configs", self.configs)
        self.config_files = sorted(self.configs.rglob("*.yaml"))
        from detectron2.config import get_cfg

        from sna_det.config import add_sna_config

        cfg = get_cfg()
        add_sna_config(cfg)
        self.config_keys = sorted(_flat_keys(cfg))


def _flat_keys(node, prefix: str = "") -> List[str]:
    keys = []
    for key, value in node.items():
        name = f"{prefix}{key}"
        keys += _flat_keys(value, name + ".") if isinstance(value, dict) else [name]
    return keys


# --- output folders ----------------------------------------------------------------------------------------------


def corrupt_output(draw, out: Path, settings_file: str = "prepare_settings.json") -> None:
    """An output folder a user or an older run left: settings file of random bytes or JSON, or a file in
    place of the folder or of one of its subfolders."""
    kind = draw(st.sampled_from(["settings bytes", "settings json", "folder is a file", "subfolder is a file"]))
    if kind == "folder is a file":
        out.write_bytes(b"x")
        return
    out.mkdir(parents=True, exist_ok=True)
    if kind == "subfolder is a file":
        (out / draw(st.sampled_from(["images", "annotations"]))).write_bytes(b"x")
    elif kind == "settings bytes":
        (out / settings_file).write_bytes(draw(st.binary(max_size=40)))
    else:
        (out / settings_file).write_text(json.dumps(draw(fuzz_evaluation.json_value)))


# --- the targets ---------------------------------------------------------------------------------------------------


def vindr_cxr_preparer(data, ctx: Context) -> str:
    """``prepare_vindr_cxr`` on a corrupted copy; the script prints VinDrInputError, ValueError, OSError as one line."""
    from sna_det.data.prepare.vindr_cxr import PrepareOptions, VinDrInputError, prepare_vindr_cxr

    options = data.draw(fuzz_vindr.OPTIONS)
    options = PrepareOptions(**{**vars(options), "val_fraction": data.draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]))})
    kinds = data.draw(st.lists(st.sampled_from(sorted(fuzz_vindr.CORRUPTIONS)), min_size=1, max_size=3))
    with contextlib.ExitStack() as stack:
        with generating():
            copy = corrupted_copy(ctx.vindr, "vindr", fuzz_vindr.CORRUPTIONS, kinds, data.draw)
            root, out = stack.enter_context(copy)
            if data.draw(st.integers(0, 4)) == 0:
                corrupt_output(data.draw, out)
        try:
            result = prepare_vindr_cxr(root, out, options)
        except (VinDrInputError, ValueError, OSError) as error:
            return _named(error)
        return _checked(lambda: fuzz_vindr.assert_complete_output(out, result, options))


def voc_preparer(data, ctx: Context) -> str:
    """``convert_voc2012`` or ``convert_voc_coco`` on a corrupted tree; the scripts print ValueError, OSError."""
    from sna_det.data.prepare.voc import convert_voc2012, convert_voc_coco

    kinds = data.draw(st.lists(st.sampled_from(sorted(fuzz_voc.CORRUPTIONS)), min_size=1, max_size=2))
    with contextlib.ExitStack() as stack:
        with generating():
            root, out = stack.enter_context(corrupted_copy(ctx.voc, "VOC2012", fuzz_voc.CORRUPTIONS, kinds, data.draw))
            if data.draw(st.integers(0, 4)) == 0:
                corrupt_output(data.draw, out)
        try:
            if data.draw(st.booleans()):
                summary = convert_voc2012(root, out, detection_splits=data.draw(st.booleans()))
            else:
                fraction = data.draw(st.sampled_from([None, 0.0, 0.3, 0.5, 1.0, -1.0, math.nan]))
                summary = convert_voc_coco(root, out, classes="voc", val_fraction=fraction)
        except (ValueError, OSError) as error:
            return _named(error)
        return _checked(lambda: fuzz_voc.assert_complete_output(out, root, summary))


def _ap_in_range(result: dict) -> None:
    for kind in ("coco", "voc2010"):
        assert all(ap is None or 0.0 <= ap <= 100.0 + 1e-9 for ap in result[kind]["per_class"].values())
    assert result["detections"]["read"] == result["detections"]["evaluated"] + sum(result["skipped"].values())


def evaluator(data, ctx: Context) -> str:
    """``evaluate_detections`` (ValueError: one line) on corrupted ground truth and detections, or the
    tool on corrupted files (exit 1 with one ``error:`` line naming a file, or 0 with a result)."""
    from sna_det.evaluation import evaluate_detections

    kind = data.draw(st.sampled_from(["detections", "ground truth", "files"]))
    if kind != "files":
        gt = data.draw(
            fuzz_evaluation.ground_truth() if kind == "detections" else fuzz_evaluation.corrupted_ground_truth()
        )
        detections = data.draw(fuzz_evaluation.corrupted_detections())
        try:
            result = evaluate_detections(gt, detections)
        except ValueError as error:
            return _named(error)
        return _checked(lambda: _ap_in_range(result))
    gt = data.draw(fuzz_evaluation.file_bytes(fuzz_evaluation.ground_truth()))
    detections = data.draw(fuzz_evaluation.file_bytes(fuzz_evaluation.corrupted_detections()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        code, _, err = fuzz_evaluation.run_tool_on(gt, detections, tmp)
        if code == 1:
            lines = err.strip().splitlines()
            if len(lines) != 1 or not lines[0].startswith("error: "):
                raise WrongOutput(f"exit 1 without one error: line: {err[:200]!r}")
            return NAMED
        return _checked(lambda: _ap_in_range(json.loads((tmp / "ap.json").read_text())))


ODD_VALUES = st.one_of(
    st.sampled_from(["", "nan", "inf", "-1", "0", "1e999", "[1,", "(", ")", "'", '"', "[]", "{}", "()", "None"]),
    st.sampled_from(["True", "False", "[1, 2]", "(1,)", "('a',)", "cpu", "cuda:7", "-1e308", "9" * 30, "{a: 1}"]),
    st.integers(-(10**6), 10**6).map(str),
    st.floats().map(repr),
    st.text(max_size=8),
)


def config_loader(data, ctx: Context) -> str:
    """``setup_cfg`` (ConfigError: one line) on a corrupted config file, random YAML, or random overrides."""
    from sna_det.config import ConfigError
    from sna_det.engine import setup_cfg

    kind = data.draw(st.sampled_from(["file bytes", "yaml", "overrides", "overrides"]))
    base = data.draw(st.sampled_from(ctx.config_files))
    original = base.read_bytes()
    key = st.one_of(st.sampled_from(ctx.config_keys), st.sampled_from(["MODEL", "MODEL.", ".", "_BASE_", "SNA.X"]))
    opts: List[str] = []
    with tempfile.NamedTemporaryFile(suffix=".yaml", dir=base.parent, delete=False) as f:
        path = Path(f.name)
    try:
        if kind == "file bytes":
            path.write_bytes(corrupt_bytes(data.draw, original))
        elif kind == "yaml":
            import yaml

            tree = data.draw(
                st.dictionaries(
                    key.map(lambda k: k.split(".")[0]),
                    st.one_of(
                        fuzz_evaluation.json_value, st.dictionaries(key.map(lambda k: k.split(".")[-1]), ODD_VALUES)
                    ),
                    max_size=4,
                )
            )
            path.write_text(yaml.safe_dump(tree))
        else:
            path.write_bytes(original)
            pairs = data.draw(st.lists(st.tuples(key, ODD_VALUES), min_size=1, max_size=3))
            opts = [s for pair in pairs for s in pair]
            if data.draw(st.integers(0, 5)) == 0:
                opts = opts[:-1]  # a key without its value
        try:
            setup_cfg(path, opts)
        except ConfigError as error:
            return _named(error)
        return OK
    finally:
        path.unlink(missing_ok=True)


LAZY_CONFIG = ROOT / "configs" / "lazy" / "faster_rcnn_R_18_FPN_sna_demo.py"
LAZY_KEYS = ["train.max_iter", "train.output_dir", "train.device", "train.seed", "optimizer.lr",
             "optimizer.momentum", "dataloader.train.total_batch_size", "model.roi_heads.num_classes"]  # fmt: skip


def lazy_config_loader(data, ctx: Context) -> str:
    """``setup_lazy_config`` (ConfigError: one line) with random ``key=value`` overrides: known keys with
    odd values, and mistyped keys (``train.max_itr``), which must be refused: accepted is a wrong output."""
    from sna_det.config import ConfigError
    from sna_det.engine.lazy_config import setup_lazy_config

    known = st.sampled_from(LAZY_KEYS)
    mistyped = known.map(lambda k: k[:-1] + "_x")
    pairs = data.draw(st.lists(st.tuples(st.one_of(known, mistyped), ODD_VALUES), min_size=1, max_size=3))
    opts = [f"{k}={v}" for k, v in pairs]
    try:
        setup_lazy_config(LAZY_CONFIG, opts)
    except ConfigError as error:
        return _named(error)
    if any(k.endswith("_x") for k, _ in pairs):
        raise WrongOutput(f"a mistyped LazyConfig key accepted: {opts}")
    return OK


# --- every tool's command line, faults, chains -----------------------------------------------------------------

BAD_UNIT = st.sampled_from(["nan", "-0.1", "1.5", "inf", "-inf", "x", ""])
BAD_LOW = st.sampled_from(["0.9", "-1", "nan"])  # predict's --low with --high 0.5
"""Values of an option in [0, 1] (an IoU, a score) that are not."""


@dataclass
class ToolFiles:
    """Small valid inputs of the tools, written once: ground truth, COCO results, a predictions file, a
    VinBigData submission, a run folder, an image folder, a pickle."""

    folder: Path

    def __post_init__(self) -> None:
        f = self.folder
        f.mkdir(parents=True, exist_ok=True)
        self.gt, self.dt, self.pred, self.sub = f / "gt.json", f / "dt.json", f / "predictions.json", f / "sub.csv"
        images = [{"id": i, "file_name": f"{i}.png", "width": 64, "height": 48} for i in (1, 2)]
        categories = [{"id": 1, "name": "nodule"}, {"id": 2, "name": "mass"}]
        boxes = [{"id": k + 1, "image_id": 1 + k % 2, "category_id": 1 + k // 2, "bbox": [4.0 + k, 5.0, 20.0, 16.0],
                  "area": 320.0, "iscrowd": 0} for k in range(4)]  # fmt: skip
        self.gt.write_text(json.dumps({"images": images, "categories": categories, "annotations": boxes}))
        results = [{**{k: b[k] for k in ("image_id", "category_id", "bbox")}, "score": 0.9 - 0.1 * i}
                   for i, b in enumerate(boxes)]  # fmt: skip
        self.dt.write_text(json.dumps(results))
        annotations = [{**r, "id": i + 1, "area": 320.0} for i, r in enumerate(results)]
        self.pred.write_text(json.dumps({"images": images, "categories": categories, "annotations": annotations}))
        self.sub.write_text("image_id,PredictionString\n1,0 0.5 1 2 30 40\n")
        self.run = f / "run"
        (self.run / "inference").mkdir(parents=True, exist_ok=True)
        (self.run / "inference" / "results.json").write_text(json.dumps({"val": {"bbox": {"AP": 1.0}}}))
        (self.run / "power_iteration.jsonl").write_text("{}\n")
        self.images = f / "images"
        self.images.mkdir(exist_ok=True)
        from PIL import Image

        for image in images:
            Image.new("RGB", (64, 48), (90, 90, 90)).save(self.images / image["file_name"])
        self.pickle = f / "ids.pkl"
        self.pickle.write_bytes(b"\x80\x04]\x94.")  # pickle of []
        self.voc = f / "voc"
        self.voc.mkdir(exist_ok=True)
        self.missing = f / "missing" / "nothing.json"
        self.config = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_demo.yaml"


def _tool_files(ctx: Context) -> ToolFiles:
    if not hasattr(ctx, "tool_files"):
        ctx.tool_files = ToolFiles(ctx.folder / "tool_inputs")
    return ctx.tool_files


def _tool_cases(f: ToolFiles, out: Path) -> Dict[str, List[Callable]]:
    """{script: [draw -> argv]}: command lines each of which is a mistake (so exit 0 is a wrong output)."""
    gt_dt = ["--gt", f.gt, "--dt", f.dt]
    no_config = ["--config-file", f.missing.with_suffix(".yaml")]
    predict_images = ["--config-file", f.config, "--input", f.images, "--output", out / "p"]
    vinbig = ["--format", "vinbigdata"]
    two = ["--dt", f.dt, f.pred, "--output", out / "f.json"]
    unknown_flag = lambda d: ["--no-such-flag"]  # noqa: E731
    return {
        "tools/evaluate_detections.py": [
            lambda d: [*gt_dt, "--iou", d(BAD_UNIT)],
            lambda d: [*gt_dt, "--max-dets", d(st.sampled_from(["0", "-1", "x"]))],
            lambda d: [*gt_dt, d(st.sampled_from(["--output", "--froc-plot"])), d(st.sampled_from([f.gt, f.dt]))],
            lambda d: ["--gt", f.missing, "--dt", f.dt],
            lambda d: ["--gt", f.gt, "--dt", d(st.sampled_from([f.missing, f.sub]))],
            lambda d: ["--metric", "vinbigdata", "--gt", f.gt, "--dt", f.sub],
            unknown_flag,
        ],
        "tools/ensemble_detections.py": [
            lambda d: [*two, d(st.sampled_from(["--iou-thr", "--skip-box-thr"])), d(BAD_UNIT)],
            lambda d: [*two, "--gt", f.gt, "--eval-iou", d(BAD_UNIT)],
            lambda d: [*two, "--weights", "1", d(st.sampled_from(["nan", "-1", "inf", "x"]))],
            lambda d: ["--dt", f.dt, f.pred, "--output", d(st.sampled_from([f.dt, f.pred]))],
            lambda d: ["--dt", f.dt, "--output", out / "f.json"],
            lambda d: ["--dt", f.dt, f.missing, "--output", out / "f.json"],
            lambda d: ["--dt", f.dt, f.dt, "--output", out / "f.json"],  # results lists carry no image sizes
        ],  # fmt: skip
        "tools/visualize_predictions.py": [
            lambda d: [*gt_dt, "--output", out / "v", d(st.sampled_from(["--iou", "--score-thr"])), d(BAD_UNIT)],
            lambda d: [*gt_dt, "--output", out / "v", "--classes", "no-such-class"],
            lambda d: [*gt_dt, "--output", f.gt],
            lambda d: ["--gt", f.gt, "--dt", f.missing, "--output", out / "v"],
        ],
        "tools/compare_runs.py": [
            lambda d: [f.missing.parent],
            lambda d: [f.run, "--output-md", f.run / "inference" / "results.json"],
            lambda d: [f.run, f.run],
            lambda d: [f.run, "--names", "a", "b"],
            lambda d: [f.run, "--gt", f.gt, "--iou", d(BAD_UNIT)],
            lambda d: [f.run, "--gt", f.gt, "--bootstrap", d(st.sampled_from(["0", "-5"]))],
        ],
        "tools/predict.py": [
            lambda d: [*no_config, "--input", f.images, "--output", out / "p"],
            lambda d: ["--config-file", f.config, "--input", f.missing, "--output", out / "p", "MODEL.DEVICE", "cpu"],
            lambda d: ["--config-file", f.config, "--input", "SOLVER.BASE_LR", "--output", out / "p"],
            lambda d: [*predict_images, "--batch-size", d(st.sampled_from(["0", "-1"]))],
            lambda d: [*predict_images, "--normal-probs", f.sub, "--low", d(BAD_LOW), "--high", "0.5", *vinbig],
            lambda d: ["--config-file", f.config, "--dataset", "sna_demo_vall", "--output", out / "p"],
        ],  # fmt: skip
        "tools/export_model.py": [
            lambda d: [*no_config, "--output", out / "e"],
            lambda d: ["--config-file", f.config, "--output", out / "e", "--format", "tflite"],
            lambda d: ["--config-file", f.config, "--output", out / "e", "--sample-image", f.missing],
        ],
        "tools/train_net.py": [
            lambda d: no_config,
            lambda d: ["--config-file", f.config, "SOLVER.MAX_ITR", "1", "OUTPUT_DIR", out / "t"],
            lambda d: ["--config-file", f.config, "--main"],
            lambda d: ["--config-file", f.config, "--num-gpus", "x"],
            lambda d: ["--config-file", f.config, "DATASETS.TRAIN", "('sna_demo_trian',)", "OUTPUT_DIR", out / "t"],
        ],
        "tools/train_classifier.py": [
            lambda d: no_config,
            lambda d: ["--config-file", f.config, "OUTPUT_DIR", out / "c"],  # a detector's config
        ],
        "tools/classify.py": [
            lambda d: [*no_config, "--input", f.images, "--output", out / "c"],
            lambda d: ["--config-file", f.config, "--input", f.images, "--output", out / "c"],  # a detector's
        ],
        "tools/browse_dataset.py": [
            lambda d: [*no_config, "--output", out / "b"],
            lambda d: ["--config-file", f.config, "--dataset", "no_such_dataset", "--output", out / "b"],
        ],
        "tools/visualize_attention.py": [
            lambda d: [*no_config, "--input", f.images, "--output", out / "a"],
            lambda d: ["--config-file", f.config, "--input", f.missing, "--output", out / "a"],
            lambda d: ["--config-file", f.config, "--input", f.images, "--output", f.images],
        ],
        "tools/analyze_redundancy.py": [lambda d: ["--input", f.missing, "--output", out / "r"], unknown_flag],
        "tools/plot_training_curves.py": [lambda d: ["--run", f.missing.parent, "--output", out / "c"]],
        "tools/summarize_power_iteration.py": [
            lambda d: [f.missing.parent],
            lambda d: [f.run, "--csv", f.run / "power_iteration.jsonl"],
        ],
        "tools/benchmark_sna.py": [unknown_flag, lambda d: ["--height", "x"]],
        "tools/benchmark_attention.py": [lambda d: [*no_config], lambda d: ["--config-file", f.config, "--size", "1"]],
        "tools/explain_graph_breaks.py": [lambda d: no_config],
        "tools/onnx_upstream_repro.py": [unknown_flag],
        "tools/fuzz.py": [lambda d: ["--budget", "0"], lambda d: ["--targets", "nothing"]],
        "datasets/prepare_coco.py": [
            lambda d: ["--format", "voc", "--root", f.missing.parent, "--output-dir", out / "c"],
            lambda d: ["--format", "voc", "--root", f.voc, "--output-dir", f.voc / "coco"],
            lambda d: ["--format", "pascal", "--root", f.voc, "--output-dir", out / "c"],
        ],
        "datasets/prepare_vindr_cxr.py": [
            lambda d: ["--vindr-root", f.missing.parent, "--output-dir", out / "v"],
            lambda d: ["--vindr-root", f.voc, "--output-dir", f.voc / "prepared"],
        ],
        "datasets/split_from_pickles.py": [
            lambda d: ["--split", "no-equals-sign", "--output", out / "s.json"],
            lambda d: ["--split", f"test={f.pickle}", "--output", f.pickle],
        ],
    }


def _run_tool(script: str, argv: List) -> tuple:
    """(exit code, stderr) of ``script`` run as its command runs (``run_main``); an exception that
    escapes it (not ``SystemExit``) is a traceback."""
    from helpers import run_main

    err = __import__("io").StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(__import__("io").StringIO()):
        code = run_main(script, *argv)
    return code, err.getvalue()


def _refused(script: str, argv: List, code: int, err: str) -> str:
    """The outcome of a command line known to be a mistake: one ``error:`` line (exit 1) or argparse's
    usage error (exit 2) is a refusal; exit 0 is a silent exit (a wrong output), as is a refusal of
    several error lines or with a traceback."""
    shown = " ".join(map(str, [script, *argv]))[:160]
    if code == 0:
        raise WrongOutput(f"exit 0 on a bad command line: {shown}")
    if "Traceback (most recent call last)" in err:
        raise WrongOutput(f"a traceback on stderr: {shown}")
    errors = [line for line in err.splitlines() if line.startswith("error: ") or ": error: " in line]
    if code not in (1, 2) or len(errors) != 1:
        raise WrongOutput(f"exit {code} with {len(errors)} error lines: {shown}: {err.strip()[-200:]!r}")
    return NAMED


def tool_command_lines(data, ctx: Context) -> str:
    """Every script of tools/ and datasets/ on a command line that is a mistake (out-of-range or NaN
    numbers, an output that is an input, a missing file, a mistyped name or flag): it must refuse."""
    files = _tool_files(ctx)
    with tempfile.TemporaryDirectory(dir=ctx.folder) as tmp:
        cases = _tool_cases(files, Path(tmp))
        script = data.draw(st.sampled_from(sorted(cases)))
        argv = data.draw(st.sampled_from(cases[script]))(data.draw)
        before = {p: p.read_bytes() for p in files.folder.rglob("*") if p.is_file()}
        code, err = _run_tool(script, argv)
        outcome = _refused(script, argv, code, err)
        changed = [p.name for p, b in before.items() if not p.is_file() or p.read_bytes() != b]
        if changed:
            raise WrongOutput(f"an input changed by a refused command: {changed} ({script})")
        return outcome


def disk_faults(data, ctx: Context) -> str:
    """A full disk (ENOSPC) or a read-only folder (EACCES) under the tools that write a result file: one
    line naming the file, exit 1, and no partial or temporary file left."""
    import errno

    import sna_det.utils.atomic_write as atomic_write_module

    files = _tool_files(ctx)
    fault = data.draw(st.sampled_from([errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EIO]))
    where = data.draw(st.sampled_from(["write", "create"]))
    with tempfile.TemporaryDirectory(dir=ctx.folder) as tmp:
        out = Path(tmp)
        script, argv, target = data.draw(st.sampled_from([
            ("tools/evaluate_detections.py", ["--gt", files.gt, "--dt", files.dt, "--output", out / "ap.json"],
             out / "ap.json"),
            ("tools/ensemble_detections.py", ["--dt", files.dt, files.pred, "--gt", files.gt, "--output",
                                              out / "fused.json"], out / "fused.json"),
            ("tools/ensemble_detections.py", ["--dt", files.pred, files.pred, "--output", out / "fused.json"],
             out / "fused.json"),
        ]))  # fmt: skip

        def fail(*args, **kwargs):
            raise OSError(fault, os.strerror(fault))

        name = "fsync" if where == "write" else "mkstemp"
        owner = atomic_write_module.os if where == "write" else atomic_write_module.tempfile
        real = getattr(owner, name)
        setattr(owner, name, fail)
        try:
            code, err = _run_tool(script, argv)
        finally:
            setattr(owner, name, real)
        outcome = _refused(script, argv, code, err)
        line = next(line for line in err.splitlines() if line.startswith("error: "))
        if str(target) not in line or os.strerror(fault) not in line:
            raise WrongOutput(f"the error names neither the file nor the cause: {line!r}")
        left = [p.name for p in out.iterdir()]
        if left:
            raise WrongOutput(f"files left after a failed write: {left}")
        return outcome


def tool_chains(data, ctx: Context) -> str:
    """One tool's output fed unchanged to the next: random detections as a predictions file ->
    ensemble_detections (with or without --gt) -> evaluate_detections / visualize_predictions; each step
    exits 0, or refuses in one line (then the chain stops)."""
    files = _tool_files(ctx)
    detections = data.draw(fuzz_evaluation.corrupted_detections())
    with tempfile.TemporaryDirectory(dir=ctx.folder) as tmp:
        out = Path(tmp)
        gt = json.loads(files.gt.read_text())
        (out / "a.json").write_text(json.dumps({**gt, "annotations": detections}) if isinstance(detections, list)
                                    else json.dumps(detections))  # fmt: skip
        with_gt = data.draw(st.booleans())
        steps = [("tools/ensemble_detections.py", ["--dt", out / "a.json", files.pred, *(["--gt", files.gt] if with_gt
                  else []), "--output", out / "fused.json"])]  # fmt: skip
        consumer = data.draw(st.sampled_from(["evaluate", "visualize"]))
        if consumer == "evaluate":
            steps.append(("tools/evaluate_detections.py", ["--gt", files.gt, "--dt", out / "fused.json", "--output",
                                                           out / "ap.json"]))  # fmt: skip
        else:
            steps.append(("tools/visualize_predictions.py", ["--gt", files.gt, "--dt", out / "fused.json",
                          "--image-root", files.images, "--output", out / "vis"]))  # fmt: skip
        for script, argv in steps:
            code, err = _run_tool(script, argv)
            if code != 0:
                return _refused(script, argv, code, err)
        if consumer == "evaluate":
            return _checked(lambda: _ap_in_range(json.loads((out / "ap.json").read_text())))
        return OK


TARGETS: Dict[str, Callable] = {
    "vindr-cxr preparer": vindr_cxr_preparer,
    "voc preparer": voc_preparer,
    "evaluator": evaluator,
    "config loader": config_loader,
    "lazy config loader": lazy_config_loader,
    "tool command lines": tool_command_lines,
    "disk faults": disk_faults,
    "tool chains": tool_chains,
}


class GeneratorFailed(Exception):
    """Writing the bad input itself failed (a bug of the generator, not of the target): not counted."""


@contextlib.contextmanager
def generating():
    """Exceptions inside become ``GeneratorFailed`` (hypothesis' own pass through)."""
    from hypothesis.errors import HypothesisException

    try:
        yield
    except HypothesisException:
        raise
    except Exception as error:
        raise GeneratorFailed(_where(error)) from error


def _where(error: BaseException) -> str:
    """``Type at <file>:<line> (in sna_det: <file>:<line>): first line of the message``."""
    frames = traceback.extract_tb(error.__traceback__)

    def short(frame) -> str:
        path = Path(frame.filename).resolve()
        where = path.relative_to(ROOT) if ROOT in path.parents else Path(path.parent.name, path.name)
        return f"{where.as_posix()}:{frame.lineno}"

    ours = [f for f in frames if "sna_det" in Path(f.filename).parts]
    via = f" (in sna_det: {short(ours[-1])})" if ours and ours[-1] is not frames[-1] else ""
    message = str(error).splitlines()[0][:200] if str(error) else ""
    return f"{type(error).__name__} at {short(frames[-1])}{via}: {message}"


def classify(run: Callable[[], str]) -> tuple:
    """(outcome, detail): ``run``'s outcome; ``traceback`` with where and what for any other exception;
    (``GENERATOR``, detail) when the input could not be written."""
    try:
        return run(), ""
    except WrongOutput as error:
        return WRONG, str(error)
    except GeneratorFailed as error:
        return GENERATOR, str(error)
    except Exception as error:  # the command would end in a traceback: count it, keep where and the first line
        return TRACEBACK, _where(error)
