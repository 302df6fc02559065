"""Bad input found while preparing VinDr-CXR: named, counted, and (``strict``) fatal at the first."""

from __future__ import annotations

from ....utils.skip_report import SkipReport

__all__ = [
    "BOX_OUTSIDE_IMAGE",
    "INVERTED_BOX",
    "NO_VALID_BOX",
    "NAN_BOX",
    "PROBLEMS",
    "UNKNOWN_IMAGE_ID",
    "UNREADABLE_IMAGE",
    "InputProblems",
    "VinDrInputError",
]

UNREADABLE_IMAGE = "unreadable image"
"""A DICOM (or PNG/JPG) that cannot be read or decoded: the image and its boxes are skipped."""
UNKNOWN_IMAGE_ID = "unknown image id"
"""An image id of the CSV without an image file (or without a row in the sizes CSV): its boxes are skipped."""
NAN_BOX = "NaN box"
"""A finding row whose x_min/y_min/x_max/y_max is empty, NaN or not a number: the row is skipped."""
INVERTED_BOX = "inverted box"
"""x_max <= x_min or y_max <= y_min (inverted or empty): the row is skipped."""
BOX_OUTSIDE_IMAGE = "box outside the image"
"""A coordinate below 0 or beyond the image's width/height (original pixels): the row is skipped."""

NO_VALID_BOX = "no valid box"
"""An image with finding rows that were all skipped (the reasons above, or a label outside the classes):
the image is left out, never kept as an image without findings."""

PROBLEMS = (UNREADABLE_IMAGE, UNKNOWN_IMAGE_ID, NAN_BOX, INVERTED_BOX, BOX_OUTSIDE_IMAGE, NO_VALID_BOX)


class VinDrInputError(ValueError):
    """Input that cannot be prepared; the message names the file and the row or field."""


class InputProblems(SkipReport):
    """``SkipReport`` of the preparer's ``PROBLEMS``; when strict, the first raises ``VinDrInputError``."""

    def __init__(self, strict: bool = False):
        super().__init__(PROBLEMS, strict=strict, error=VinDrInputError)
