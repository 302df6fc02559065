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


TARGETS: Dict[str, Callable] = {
    "vindr-cxr preparer": vindr_cxr_preparer,
    "voc preparer": voc_preparer,
    "evaluator": evaluator,
    "config loader": config_loader,
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
