"""A reader held to its one-line refusals: each bad file named with its line and what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Type

import pytest


def assert_refuses(read: Callable[[Path], object], path: Path, cases: Sequence[Tuple[Optional[str], Type, str]]):
    """For each (file text, exception type, message pattern) of ``cases``, ``path`` holding that text
    (None: no file at all) makes ``read(path)`` raise that exception with a message matching the pattern."""
    for text, error, pattern in cases:
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)
        with pytest.raises(error, match=pattern):
            read(path)
