"""The library's errors are not command-line errors, and every command still ends them in one line."""

import pytest

from sna_det.engine.preflight import DatasetNotRegisteredError
from sna_det.engine.safe_checkpointer import CheckpointError, UnsafeCheckpointError, WeightsMismatchError
from sna_det.utils.cli import CommandError, run_tool
from sna_det.utils.errors import ConfigError, SnaDetError


@pytest.mark.parametrize(
    "kind", [ConfigError, CheckpointError, UnsafeCheckpointError, WeightsMismatchError, DatasetNotRegisteredError]
)
def test_library_errors_are_their_own(kind):
    assert issubclass(kind, SnaDetError) and not issubclass(kind, CommandError)


@pytest.mark.parametrize(
    "error, code",
    [
        (ConfigError("MODEL.SNA.RANK 0 must be >= 1"), 1),
        (CheckpointError("model.pth: not a readable checkpoint (truncated)"), 1),
        (DatasetNotRegisteredError("dataset 'zzz' is not registered; register it"), 1),
        (CommandError("--output out: not writable"), 1),
    ],
)
def test_run_tool_ends_each_in_one_line(capsys, error, code):
    def main():
        raise error

    with pytest.raises(SystemExit) as done:
        run_tool(main)
    assert done.value.code == code
    assert capsys.readouterr().err == f"error: {error.args[0]}\n"  # KeyError's quotes are not shown


def test_other_exceptions_keep_their_traceback():
    def main():
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        run_tool(main)
