"""What a config value may be (its type, range, allowed values), as plain data, and the one check of it.

``sna_det.config.config_values()`` (YAML files, command-line overrides) and the LazyConfig set-up
(``sna_det.engine.lazy_config``) check every value they read against such a ``ConfigValue``; the
attention types declare their options with it (``sna_det.layers.attention_factory``). No torch here.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Tuple

__all__ = ["ConfigValue", "closest_names"]


@dataclass(frozen=True)
class ConfigValue:
    """A value of ``kind`` ("int", "float", "bool", "str", "sizes": a non-empty list of ints), finite,
    ``>= minimum`` (``> minimum`` with ``above``), ``<= maximum``, one of ``choices`` when given."""

    kind: str
    minimum: Optional[float] = None
    above: bool = False
    maximum: Optional[float] = None
    choices: Optional[Tuple[Any, ...]] = None

    def accepts(self) -> str:
        """What the value may be, in words: "a number > 0", "one of ['add', 'scale']"."""
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        noun = {"int": "an integer", "float": "a number", "bool": "True or False", "str": "a string"}.get(
            self.kind, "a non-empty list of integers"
        )
        bounds = []
        if self.minimum is not None:
            bounds.append(f"{'>' if self.above else '>='} {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        return noun + (" " + " and ".join(bounds) if bounds else "")

    def problem(self, value: Any) -> Optional[str]:
        """None when ``value`` is acceptable, else what it must be (for a one-line message)."""
        numbers = [value]
        if self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif self.kind == "str":
            ok = isinstance(value, str)
        else:  # sizes
            numbers = list(value) if isinstance(value, (list, tuple)) else []
            ok = bool(numbers) and all(isinstance(n, int) and not isinstance(n, bool) for n in numbers)
        if ok and self.choices is not None:
            ok = value in self.choices
        if ok and self.minimum is not None:
            ok = all(n > self.minimum if self.above else n >= self.minimum for n in numbers)
        if ok and self.maximum is not None:
            ok = all(n <= self.maximum for n in numbers)
        return None if ok else self.accepts()


def closest_names(name: str, known: Iterable[str]) -> str:
    """ " (did you mean 'A' or 'B'?)" for the closest of ``known`` to ``name`` (difflib), else ""."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
