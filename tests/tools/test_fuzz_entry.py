"""`make fuzz` (tools/fuzz.py) at a small budget: every target gets its share of inputs, each input has
one outcome, and a traceback or a wrong output is counted as such (the full budget: docs/troubleshooting.md)."""

import importlib.util
import re
import subprocess
from pathlib import Path

from helpers.fuzz_targets import (
    GENERATOR,
    NAMED,
    OK,
    TARGETS,
    TRACEBACK,
    WRONG,
    ToolFiles,
    WrongOutput,
    _refused,
    _tool_cases,
    classify,
)

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"(?P<name>[\w -]+): (?P<n>\d+) inputs: (?P<ok>\d+) ok, (?P<named>\d+) one-line errors, "
    r"(?P<tracebacks>\d+) tracebacks, (?P<wrong>\d+) wrong outputs"
)


def fuzz_tool():
    spec = importlib.util.spec_from_file_location("fuzz_tool", ROOT / "tools" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_small_budget_runs_every_target_and_counts_each_input_once(capsys):
    code = fuzz_tool().main(["--budget", "10", "--seed", "3"])
    out = capsys.readouterr().out
    counts = {m["name"]: {k: int(v) for k, v in m.groupdict().items() if k != "name"} for m in LINE.finditer(out)}
    assert set(counts) == {*TARGETS, "total"}, out
    for k, name in enumerate(TARGETS):  # 10 = 2 + 2 + 1 + 1 + 1 + 1 + 1 + 1, in the order given
        c = counts[name]
        assert c["n"] == (2 if k < 2 else 1) == c["ok"] + c["named"] + c["tracebacks"] + c["wrong"]
    assert counts["total"]["n"] == 10 and "not generated" not in out
    for name in ("vindr-cxr preparer", "voc preparer", "evaluator", "tool command lines", "disk faults", "tool chains"):
        assert counts[name]["tracebacks"] == counts[name]["wrong"] == 0, out
    assert code == (1 if counts["total"]["tracebacks"] or counts["total"]["wrong"] else 0)


def test_each_outcome_is_told_apart():
    def crash():
        return {}["missing"]

    def wrong():
        raise WrongOutput("check failed: counts")

    assert classify(lambda: OK) == (OK, "") and classify(lambda: NAMED) == (NAMED, "")
    outcome, detail = classify(crash)
    assert outcome == TRACEBACK and detail.startswith("KeyError at tests/tools/test_fuzz_entry.py:")
    assert classify(wrong) == (WRONG, "check failed: counts")
    assert GENERATOR not in (OK, NAMED, TRACEBACK, WRONG)


def test_make_fuzz_runs_the_tool_with_its_budget():
    dry = subprocess.run(["make", "-n", "fuzz", "FUZZ_BUDGET=123"], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0 and "tools/fuzz.py --budget 123" in dry.stdout, dry.stdout + dry.stderr


def test_the_command_line_target_reaches_every_script(tmp_path):
    scripts = {p.relative_to(ROOT).as_posix() for folder in ("tools", "datasets") for p in (ROOT / folder).glob("*.py")}
    cases = _tool_cases(ToolFiles(tmp_path / "in"), tmp_path / "out")
    assert set(cases) == scripts - {"datasets/prepare_voc_coco.py", "datasets/prepare_voc2012_coco.py"}  # presets of
    assert all(cases.values())  # prepare_coco.py


def test_a_bad_command_line_that_exits_0_or_says_it_twice_is_a_wrong_output():
    assert _refused("t.py", ["--x"], 1, "error: x: not a file\n") == NAMED
    assert _refused("t.py", ["--x"], 2, "usage: t.py\nt.py: error: unrecognized arguments: --x\n") == NAMED
    for code, err in ((0, ""), (1, "error: a\nerror: b\n"), (1, "Traceback (most recent call last):\n"), (3, "")):
        try:
            _refused("t.py", ["--x"], code, err)
        except WrongOutput:
            continue
        raise AssertionError(f"exit {code} {err!r} was not a wrong output")
