"""Shared by the fuzz tests: corrupting bytes, and a corrupted copy of a test-written dataset."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterator, Sequence, Tuple

from hypothesis import strategies as st


def corrupt_bytes(draw, data: bytes) -> bytes:
    """``data`` truncated, with 1-4 bytes changed, a random range overwritten, or random bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "random"]))
    if not data or kind == "random":
        return draw(st.binary(max_size=64))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    data = bytearray(data)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    else:
        start = draw(st.integers(0, len(data) - 1))
        data[start : start + 16] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@contextlib.contextmanager
def corrupted_copy(
    template: Path, name: str, corruptions: Dict[str, Callable], kinds: Sequence[str], draw
) -> Iterator[Tuple[Path, Path]]:
    """A temporary copy of ``template`` at ``<tmp>/<name>`` with ``corruptions[kind](draw, root)`` applied for
    each of ``kinds``; yields ``(root, <tmp>/out)`` and removes both afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / name, Path(tmp) / "out"
        shutil.copytree(template, root)
        for kind in kinds:
            corruptions[kind](draw, root)
        yield root, out
