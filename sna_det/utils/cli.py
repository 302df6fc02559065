"""What every command of the project (tools/, datasets/) shares: one-line errors, quiet known
third-party warnings, and a quiet end when the reader of stdout goes away (``| head``).

A tool parses its arguments first (``--help`` then needs no torch), imports the rest, and runs::

    if __name__ == "__main__":
        args = parse_args()
        from sna_det.utils.cli import run_tool
        run_tool(main, args)

Standard library only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple, Type

from .errors import SnaDetError

__all__ = [
    "CommandError",
    "check_writable_dir",
    "option_values",
    "parse_args_with_overrides",
    "quiet_third_party_warnings",
    "run_tool",
]

KNOWN_HARMLESS_WARNINGS = (
    # torch deprecates torch.jit.script*; fvcore and detectron2 use it when imported
    (FutureWarning, r"`torch\.jit\.\w+` is deprecated"),
    # detectron2's anchor generator calls torch.meshgrid without indexing= (the default it wants)
    (UserWarning, r"torch\.meshgrid: in an upcoming release, it will be required to pass the indexing argument"),
)
"""(category, message pattern) of third-party warnings our commands do not show."""
LIBRARY_INTERNALS = r"(detectron2|fvcore|torch\.jit|torch\.fx)(\.|$)"
"""Modules whose warnings are about their own code (deprecations, the tracer's notes on detectron2's Python
control flow while exporting), not about the user's input: not shown."""
USER_INPUT_WARNERS = r"pydicom(\.|$)"
"""Modules whose warnings are about the user's files (a DICOM's odd header): shown once each."""


class CommandError(Exception):
    """A mistake in what the user asked for; its message is the one line the command prints after ``error:``."""


def quiet_third_party_warnings() -> None:
    """Ignore ``KNOWN_HARMLESS_WARNINGS`` and the warnings of ``LIBRARY_INTERNALS``, and show those of
    ``USER_INPUT_WARNERS`` once each, in this process (for the project's commands, not the library)."""
    warnings.filterwarnings("ignore", module=LIBRARY_INTERNALS)
    warnings.filterwarnings("once", module=USER_INPUT_WARNERS)
    for category, message in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def check_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``path`` (and its parents) if needed and prove it writable; ``CommandError`` if not."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise CommandError(f"{what} {folder}: not writable ({error.strerror or error})") from None
    return folder


def option_values(args: argparse.Namespace, *names: str) -> Dict[str, Any]:
    """``{name: args.<name>}`` for the options ``names``: passed on as the keyword arguments of the same names."""
    return {name: getattr(args, name) for name in names}


def parse_args_with_overrides(
    parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None
) -> argparse.Namespace:
    """``parser.parse_args`` for a parser whose last argument is ``opts`` (``nargs=REMAINDER``, the
    config's KEY VALUE overrides), where a flag written after the overrides (``... SOLVER.MAX_ITER 10
    --resume``) is honoured instead of being read as an override; an unknown ``--flag`` there is an
    argparse error (exit 2) naming it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    opts: List[str] = list(args.opts)
    if not any(token.startswith("--") for token in opts):
        return args
    options = {flag: action for action in parser._actions for flag in action.option_strings}
    flags: List[str] = []
    rest: List[str] = []
    i = 0
    while i < len(opts):
        token = opts[i]
        name = token.split("=", 1)[0]
        if not token.startswith("--") or token == "--":
            rest.append(token)
            i += 1
            continue
        if name not in options:
            parser.error(f"unrecognized argument {token} after the config overrides (flags go before KEY VALUE pairs)")
        takes = 0 if options[name].nargs == 0 or "=" in token else 1
        flags.extend(opts[i : i + 1 + takes])
        i += 1 + takes
    return parser.parse_args(argv[: len(argv) - len(opts)] + flags + rest)


def _exit_on_broken_pipe() -> NoReturn:
    """The reader of stdout has gone (``| head``): stop without a traceback, and without the
    interpreter's failing flush of stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1)


def run_tool(
    main: Callable[..., Optional[int]],
    *args: Any,
    input_errors: Tuple[Type[BaseException], ...] = (),
    interrupted: str = "interrupted: run the same command again to continue",
) -> NoReturn:
    """Run ``main(*args)`` and exit with its return code (0 for None): the one error path of every command.

    ``CommandError``, the library's ``SnaDetError`` (``ConfigError``, ``CheckpointError`` ...), and the tool's own
    ``input_errors`` (exceptions whose message names the bad file or field, e.g. a converter's
    ``ValueError``), end as ``error: <message>`` on stderr and exit code 1, with no traceback; Ctrl-C
    ends as the one line ``interrupted`` (e.g. naming the folder left incomplete) and exit code 130; a
    closed stdout ends quietly. Other exceptions are bugs and keep their traceback. Known harmless
    third-party warnings are not shown.
    """
    quiet_third_party_warnings()
    logging.raiseExceptions = False  # a log line to a closed pipe is dropped, not a traceback
    try:
        code = main(*args)
        sys.stdout.flush()
    except (CommandError, SnaDetError, *input_errors) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        _exit_on_broken_pipe()
    sys.exit(code or 0)
