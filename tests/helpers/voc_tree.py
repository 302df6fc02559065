"""A small Pascal VOC 2012 tree written by the tests: XML, JPEG, palette PNG masks with void borders.

``write_voc_tree(root)`` writes the images of ``TREE`` and their ``ImageSets`` lists and returns the
objects it drew, with the masks, so tests can compare the converter's output with what was drawn.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from sna_det.data.classes import VOC_CLASSES

SIZE = (48, 64)  # height, width


def voc_palette() -> List[int]:
    """The VOC colour map (256 RGB triples, flattened): index 255 (void) is light grey-white."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def rect(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    """A mask with rows top..bottom-1 and columns left..right-1 set."""
    mask = np.zeros(SIZE, bool)
    mask[top:bottom, left:right] = True
    return mask


def disk(cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: SIZE[0], : SIZE[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


@dataclass
class DrawnObject:
    name: str
    mask: np.ndarray
    difficult: bool = False
    box: Optional[Tuple[float, float, float, float]] = None
    """VOC box written to the XML; None: the tight box of the mask, 1-based inclusive."""

    def voc_box(self) -> Tuple[float, float, float, float]:
        if self.box is not None:
            return self.box
        rows, cols = np.nonzero(self.mask)
        return (cols.min() + 1, rows.min() + 1, cols.max() + 1, rows.max() + 1)


def _ring(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Pixels next to an instance (8-neighbourhood) but in none: VOC's void border."""
    any_mask = np.any(masks, axis=0) if len(masks) else np.zeros(SIZE, bool)
    padded = np.pad(any_mask, 1)
    grown = np.zeros_like(any_mask)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            grown |= padded[dy : dy + SIZE[0], dx : dx + SIZE[1]]
    return grown & ~any_mask


def _xml(image_id: str, objects: Sequence[DrawnObject], size=SIZE) -> str:
    parts = [f"<annotation><folder>VOC2012</folder><filename>{image_id}.jpg</filename>"]
    parts.append(f"<size><width>{size[1]}</width><height>{size[0]}</height><depth>3</depth></size>")
    parts.append("<segmented>1</segmented>")
    for obj in objects:
        xmin, ymin, xmax, ymax = obj.voc_box()
        parts.append(
            f"<object><name>{obj.name}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>{int(obj.difficult)}</difficult><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "\n".join(parts)


def _write_png(path: Path, indices: np.ndarray) -> None:
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_voc_image(root: Path, image_id: str, objects: Sequence[DrawnObject], *, masks: bool = True) -> None:
    """JPEG, XML and (``masks``) SegmentationObject / SegmentationClass PNGs of one image."""
    rng = np.random.default_rng(zlib.crc32(image_id.encode()))
    for sub in ("JPEGImages", "Annotations"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{image_id}.jpg")
    (root / "Annotations" / f"{image_id}.xml").write_text(_xml(image_id, objects))
    if not masks:
        return
    object_png = np.zeros(SIZE, np.uint8)
    class_png = np.zeros(SIZE, np.uint8)
    for i, obj in enumerate(objects, start=1):
        object_png[obj.mask] = i
        class_png[obj.mask] = VOC_CLASSES.index(obj.name) + 1
    void = _ring([obj.mask for obj in objects])
    object_png[void] = 255
    class_png[void] = 255
    _write_png(root / "SegmentationObject" / f"{image_id}.png", object_png)
    _write_png(root / "SegmentationClass" / f"{image_id}.png", class_png)


def write_split(root: Path, image_sets: str, split: str, image_ids: Sequence[str]) -> None:
    path = root / "ImageSets" / image_sets / f"{split}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}\n" for i in image_ids))


def _chair_with_hole() -> np.ndarray:
    mask = rect(10, 30, 30, 50)
    mask[15:25, 35:45] = False
    return mask


def tree() -> Dict[str, List[DrawnObject]]:
    """image id -> objects, in XML order (object i <-> SegmentationObject index i)."""
    return {
        # several instances of one class, one of them difficult
        "2008_000001": [
            DrawnObject("person", rect(5, 4, 30, 14)),
            DrawnObject("person", disk(20, 30, 7), difficult=True),
            DrawnObject("dog", disk(36, 50, 8)),
        ],
        # a car whose mask is split in two by a pole, and a chair with a hole (not a polygon)
        "2008_000002": [
            DrawnObject("car", rect(32, 4, 44, 12) | rect(32, 15, 44, 26)),
            DrawnObject("chair", _chair_with_hole()),
        ],
        "2008_000003": [DrawnObject("cat", disk(24, 32, 12)), DrawnObject("bottle", rect(2, 58, 5, 60))],
        "2008_000004": [DrawnObject("tvmonitor", rect(8, 8, 40, 56))],
        # detection-only (ImageSets/Main) image: no segmentation PNGs
        "2008_000005": [DrawnObject("horse", rect(4, 4, 40, 40)), DrawnObject("sheep", rect(30, 40, 46, 62), True)],
    }


SEGMENTATION_SPLITS = {"train": ["2008_000001", "2008_000002"], "val": ["2008_000003", "2008_000004"]}
MAIN_SPLITS = {
    "train": ["2008_000001", "2008_000002", "2008_000005"],
    "val": ["2008_000003", "2008_000004"],
    "trainval": ["2008_000001", "2008_000002", "2008_000003", "2008_000004", "2008_000005"],
}


def write_voc_tree(root: Path) -> Dict[str, List[DrawnObject]]:
    """Write the whole tree below ``root`` (the VOC2012 folder); returns ``tree()``."""
    objects = tree()
    segmented = {i for ids in SEGMENTATION_SPLITS.values() for i in ids}
    for image_id, drawn in objects.items():
        write_voc_image(root, image_id, drawn, masks=image_id in segmented)
    for split, ids in SEGMENTATION_SPLITS.items():
        write_split(root, "Segmentation", split, ids)
    for split, ids in MAIN_SPLITS.items():
        write_split(root, "Main", split, ids)
    return objects
