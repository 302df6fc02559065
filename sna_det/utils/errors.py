"""The library's own errors, apart from the command line's ``CommandError``.

Each message is one line that names the file, config key or dataset and what is wrong. A command
(``sna_det.utils.cli.run_tool``) prints it after ``error:`` and exits 1; code that calls the library
catches ``SnaDetError`` (or the subclass it expects) and decides for itself. Standard library only.
"""

from __future__ import annotations

__all__ = ["ConfigError", "SnaDetError"]


class SnaDetError(Exception):
    """A value given to the library that it cannot use (a config, a checkpoint, a dataset name); the
    message is one line naming it and why."""


class ConfigError(SnaDetError, ValueError):
    """A config key or value the project cannot use; the message names the key and what it accepts."""
