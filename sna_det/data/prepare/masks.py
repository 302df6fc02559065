"""Binary instance masks as COCO segmentations: polygons where they reproduce the mask, else RLE."""

from __future__ import annotations

from typing import List, Tuple, Union

import cv2
import numpy as np
import pycocotools.mask as mask_util

__all__ = ["Segmentation", "decode_segmentation", "encode_mask", "mask_to_polygons"]

Segmentation = Union[List[List[float]], dict]
"""COCO ``segmentation``: a list of polygons ``[x0, y0, x1, y1, ...]`` or a compressed RLE dict."""


def mask_to_polygons(mask: np.ndarray) -> Tuple[List[List[float]], bool]:
    """Outer contours of a binary mask (H×W) along pixel edges, in COCO pixel coordinates.

    The mask is traced at twice its resolution, so each vertex lies a quarter pixel inside the edge
    of a boundary pixel: every pixel centre of the mask is inside a polygon and no other is, and
    pycocotools rasterizes the polygons back to the same pixels. Returns ``(polygons, has_holes)``;
    holes cannot be expressed by COCO polygons (they are unioned), so a caller must check it.
    """
    upsampled = np.kron(np.ascontiguousarray(mask, dtype=np.uint8), np.ones((2, 2), np.uint8))
    contours, hierarchy = cv2.findContours(upsampled, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return [], False
    has_holes = bool((hierarchy.reshape(-1, 4)[:, 3] >= 0).any())
    outer = [c for c, h in zip(contours, hierarchy.reshape(-1, 4)) if h[3] < 0]
    polygons = [((c.reshape(-1, 2).astype(np.float64) + 0.5) / 2).ravel().tolist() for c in outer]
    return [p for p in polygons if len(p) >= 6], has_holes


def decode_segmentation(segmentation: Segmentation, height: int, width: int) -> np.ndarray:
    """The H×W bool mask of a COCO segmentation (polygons or RLE)."""
    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros((height, width), dtype=bool)
        rle = mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_util.frPyObjects(segmentation, height, width)
    else:
        rle = dict(segmentation, counts=segmentation["counts"].encode("ascii"))
    return mask_util.decode(rle).astype(bool)


def encode_mask(mask: np.ndarray) -> Tuple[Segmentation, str]:
    """COCO segmentation of a non-empty binary mask (H×W) and its kind, ``"polygon"`` or ``"rle"``.

    Polygons when they decode back to exactly the same pixels (no holes); otherwise compressed RLE
    (``counts`` as an ASCII string), which is exact for any mask.
    """
    mask = np.asarray(mask, dtype=bool)
    polygons, has_holes = mask_to_polygons(mask)
    if polygons and not has_holes:
        if np.array_equal(decode_segmentation(polygons, *mask.shape), mask):
            return polygons, "polygon"
    rle = mask_util.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}, "rle"
