"""A format reader's input files read, each failure one ``ConversionInputError`` naming the file: image
sizes as decoded, numbers, text, JSON, class lists."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Tuple

from PIL import Image

__all__ = ["ConversionInputError", "finite_number", "image_size", "read_class_file", "read_json", "read_text"]


class ConversionInputError(ValueError):
    """Bad input: ``path`` names the file, ``reason`` is a short category used for counting."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str):
        super().__init__(f"{path}: {detail}")
        self.path, self.reason, self.detail = str(path), reason, detail


def image_size(image_file: str | os.PathLike) -> Tuple[int, int]:
    """(width, height) of an image that decodes whole (a truncated JPEG has a header but no pixels).
    Raises ``ConversionInputError`` (missing image, bad image)."""
    image_file = Path(image_file)
    if not image_file.is_file():
        raise ConversionInputError(image_file, "missing image", "image file does not exist")
    try:
        with Image.open(image_file) as image:
            size = image.size
            image.draft(image.mode, (1, 1))  # JPEG: decode at 1/8 scale; every byte is still read
            image.load()
            return size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:  # PIL's for corrupt files
        raise ConversionInputError(image_file, "bad image", f"unreadable image ({error})") from None


NUMBER_REASONS = ("malformed annotation", "not a number")
"""``finite_number``'s reasons for a value that is not a number, and for one that is not finite."""


def finite_number(
    value: object, path: str | os.PathLike, where: str, reasons: Tuple[str, str] = NUMBER_REASONS
) -> float:
    """``value`` (a JSON or text number) as a finite float; ``ConversionInputError`` naming ``where`` if not,
    with ``reasons`` (not a number, not finite)."""
    not_number, not_finite = reasons
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConversionInputError(path, not_number, f"{where} is {value!r}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise ConversionInputError(path, not_number, f"{where} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise ConversionInputError(path, not_finite, f"{where} is {value!r}")
    return number


def read_text(path: str | os.PathLike, reason: str) -> str:
    """The UTF-8 text of a file; ``ConversionInputError`` with ``reason`` if it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConversionInputError(path, reason, f"not UTF-8 text ({error})") from None
    except OSError as error:
        raise ConversionInputError(path, reason, f"cannot be read ({error.strerror or error})") from None


def read_json(path: str | os.PathLike, reason: str = "malformed JSON") -> object:
    """The parsed JSON of a UTF-8 file; ``ConversionInputError`` with ``reason`` if it cannot be read or parsed."""
    try:
        return json.loads(read_text(path, reason))
    except json.JSONDecodeError as error:
        raise ConversionInputError(path, reason, f"not JSON ({error})") from None


def read_class_file(path: str | os.PathLike) -> Tuple[str, ...]:
    """Class names of a text file, one per line, in order, without duplicates; ``ConversionInputError``
    if it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise ConversionInputError(path, "missing class list", "is not a file (--classes takes auto or a file)")
    lines = read_text(path, "unreadable class list").splitlines()
    names = tuple(dict.fromkeys(line.strip() for line in lines if line.strip()))
    if not names:
        raise ConversionInputError(path, "empty class list", "holds no class name (one per line)")
    return names
