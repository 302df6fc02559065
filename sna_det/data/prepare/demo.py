"""A small synthetic detection dataset of radiograph-like images, made on first use.

Grayscale 256x256 images with a smooth, highly redundant background (a body silhouette, two
darker lung fields, faint rib arcs, low-frequency shading and fine noise), the setting SNA was
designed for, and four lesion-like classes of different sizes, shapes and textures:

=============  ====================================  =========================
class          look                                  size (px)
=============  ====================================  =========================
nodule         bright round spot, soft edge          radius 5-9
mass           large irregular blob, speckled        radius 16-28
opacity        elongated hazy band, striped          20-44 long, aspect 2.2-3
cavity         bright ring with a dark centre        radius 9-15
=============  ====================================  =========================

Every image is a pure function of (seed, split, index), so the dataset is identical on every
machine. It is written once as PNGs plus a COCO JSON per split (boxes and polygon masks) into a
cache directory, atomically (a temporary directory renamed into place), so concurrent processes
(DDP workers) can race safely.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "DEMO_CLASSES",
    "DEMO_SPLITS",
    "DEMO_VERSION",
    "default_cache_dir",
    "demo_dataset_dir",
    "ensure_demo_dataset",
    "render_demo_image",
]

DEMO_CLASSES = ("nodule", "mass", "opacity", "cavity")
DEMO_SPLITS = {"train": 320, "val": 64}
"""Images per split."""
DEMO_VERSION = 1
"""Bump when the generator changes, so caches of an older version are not reused."""
IMAGE_SIZE = 256
SEED = 2022


def default_cache_dir() -> Path:
    """``$SNA_DET_CACHE`` or ``~/.cache/sna_det``: where the demo dataset is written."""
    return Path(os.environ.get("SNA_DET_CACHE", Path.home() / ".cache" / "sna_det"))


def _smooth_field(rng: np.random.Generator, grid: int, size: int) -> np.ndarray:
    """A smooth random field in [-1, 1], (size, size): a coarse random grid, bicubic-upsampled."""
    coarse = rng.uniform(-1, 1, (grid, grid)).astype(np.float32)
    img = Image.fromarray(coarse, mode="F").resize((size, size), Image.BICUBIC)
    return np.clip(np.asarray(img), -1, 1)


def _background(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Radiograph-like background in [0, 1] and the mask of the lung fields where lesions go."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    body = np.exp(-(((xx - 0.5) / 0.46) ** 6 + ((yy - 0.55) / 0.55) ** 6))
    lungs = np.zeros((size, size), np.float32)
    for cx in (0.30 + rng.uniform(-0.02, 0.02), 0.70 + rng.uniform(-0.02, 0.02)):
        rx, ry, cy = rng.uniform(0.15, 0.18), rng.uniform(0.30, 0.34), rng.uniform(0.48, 0.52)
        lungs = np.maximum(lungs, np.exp(-((((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) ** 2)))
    ribs = 0.5 + 0.5 * np.sin(2 * np.pi * (yy * rng.uniform(7, 9) + 0.6 * (xx - 0.5) ** 2 * 4))
    img = 0.25 + 0.45 * body - 0.28 * lungs + 0.06 * ribs * lungs
    img += 0.05 * _smooth_field(rng, 6, size) + rng.normal(0, 0.012, (size, size)).astype(np.float32)
    return img, lungs > 0.5


def _polygon_mask(poly: List[Tuple[float, float]], size: int) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon(poly, fill=1)
    return np.asarray(canvas, dtype=bool)


def _radial_polygon(cx: float, cy: float, radii: np.ndarray, angle0: float = 0.0) -> List[Tuple[float, float]]:
    angles = angle0 + np.linspace(0, 2 * np.pi, len(radii), endpoint=False)
    return [(float(cx + r * math.cos(a)), float(cy + r * math.sin(a))) for r, a in zip(radii, angles)]


def _lesion(
    rng: np.random.Generator, category: int, cx: float, cy: float, size: int
) -> Tuple[np.ndarray, List[Tuple[float, float]]]:
    """Intensity to add (size, size) and the outline polygon of one lesion centred at (cx, cy)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    name = DEMO_CLASSES[category]
    if name == "nodule":
        r = rng.uniform(5, 9)
        d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / r**2
        return 0.35 * np.exp(-2.0 * d2) * (d2 < 1.6), _radial_polygon(cx, cy, np.full(24, r))
    if name == "mass":
        r = rng.uniform(16, 28)
        radii = r * (1 + 0.18 * np.sin(np.arange(32) * 2 * np.pi / 32 * rng.integers(2, 5) + rng.uniform(0, 6.3)))
        poly = _radial_polygon(cx, cy, radii)
        inside = _polygon_mask(poly, size)
        speckle = rng.uniform(0.6, 1.0, (size, size)).astype(np.float32)
        return 0.22 * inside * speckle, poly
    if name == "opacity":
        length = rng.uniform(20, 44)
        width = length / rng.uniform(2.2, 3.0)
        theta = rng.uniform(0, np.pi)
        c, s = math.cos(theta), math.sin(theta)
        along = (xx - cx) * c + (yy - cy) * s
        across = -(xx - cx) * s + (yy - cy) * c
        d2 = (along / (length / 2)) ** 2 + (across / (width / 2)) ** 2
        stripes = 0.75 + 0.25 * np.sin(along * 1.3)
        angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        poly = [
            (
                float(cx + length / 2 * math.cos(a) * c - width / 2 * math.sin(a) * s),
                float(cy + length / 2 * math.cos(a) * s + width / 2 * math.sin(a) * c),
            )
            for a in angles
        ]
        return 0.18 * stripes * np.clip(1.2 - d2, 0, 1) * (d2 < 1), poly
    r = rng.uniform(9, 15)  # cavity
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / r
    ring = np.exp(-(((d - 0.8) / 0.14) ** 2)) * 0.35 - 0.10 * (d < 0.6)
    return ring * (d < 1.05), _radial_polygon(cx, cy, np.full(32, r * 1.02))


def render_demo_image(split: str, index: int, seed: int = SEED) -> Tuple[np.ndarray, List[dict]]:
    """One image (uint8, 256x256) and its objects: ``{"category": int, "polygon": [(x, y), ...]}``."""
    split_code = {"train": 0, "val": 1}[split]
    rng = np.random.default_rng([seed, split_code, index])
    size = IMAGE_SIZE
    img, lungs = _background(rng, size)
    occupied = np.zeros((size, size), bool)
    objects: List[dict] = []
    lung_points = np.argwhere(lungs)
    for _ in range(int(rng.integers(1, 5))):
        category = int(rng.integers(len(DEMO_CLASSES)))
        for _attempt in range(20):
            cy, cx = lung_points[rng.integers(len(lung_points))] + rng.uniform(-0.5, 0.5, 2)
            intensity, poly = _lesion(rng, category, float(cx), float(cy), size)
            mask = _polygon_mask(poly, size)
            xs, ys = zip(*poly)
            inside = min(xs) >= 1 and min(ys) >= 1 and max(xs) <= size - 2 and max(ys) <= size - 2
            if inside and not (mask & occupied).any():
                # the mask and a copy shifted 4 px up-left: a margin on those two sides
                occupied |= np.pad(mask, 4)[8:, 8:][:size, :size] | mask
                img = img + intensity
                objects.append({"category": category, "polygon": poly})
                break
    return np.clip(img * 255, 0, 255).astype(np.uint8), objects


def _coco_json(split: str, count: int, image_dir: Path, seed: int) -> dict:
    images, annotations = [], []
    for index in range(count):
        pixels, objects = render_demo_image(split, index, seed)
        file_name = f"{split}_{index:05d}.png"
        Image.fromarray(pixels, mode="L").save(image_dir / file_name)
        image_id = index + 1
        images.append({"id": image_id, "file_name": file_name, "height": IMAGE_SIZE, "width": IMAGE_SIZE})
        for obj in objects:
            xs, ys = zip(*obj["polygon"])
            x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
            area = float(_polygon_mask(obj["polygon"], IMAGE_SIZE).sum())
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": obj["category"] + 1,
                    "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                    "segmentation": [[round(c, 2) for point in obj["polygon"] for c in point]],
                    "area": area,
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i + 1, "name": name, "supercategory": "lesion"} for i, name in enumerate(DEMO_CLASSES)]
    return {
        "info": {"description": f"sna-det synthetic demo, version {DEMO_VERSION}, seed {seed}"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def demo_dataset_dir(root: Path | None = None, splits: Dict[str, int] | None = None, seed: int = SEED) -> Path:
    """Where ``ensure_demo_dataset`` writes: ``<root>/demo_v<VERSION>_seed<seed>[_<sizes>]``."""
    splits = dict(DEMO_SPLITS if splits is None else splits)
    root = Path(root) if root is not None else default_cache_dir()
    tag = "" if splits == DEMO_SPLITS else "_" + "_".join(f"{k}{v}" for k, v in sorted(splits.items()))
    return root / f"demo_v{DEMO_VERSION}_seed{seed}{tag}"


def ensure_demo_dataset(root: Path | None = None, splits: Dict[str, int] | None = None, seed: int = SEED) -> Path:
    """Write the demo dataset once and return its directory (``demo_dataset_dir``).

    Layout: ``images/*.png`` and one COCO JSON per split, ``<split>.json``. ``splits`` (name ->
    number of images) defaults to ``DEMO_SPLITS``; a non-default size gets its own directory.
    Returns at once when the directory exists.
    """
    splits = dict(DEMO_SPLITS if splits is None else splits)
    target = demo_dataset_dir(root, splits, seed)
    if target.exists():
        return target
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        (tmp / "images").mkdir()
        for split, count in splits.items():
            data = _coco_json(split, count, tmp / "images", seed)
            (tmp / f"{split}.json").write_text(json.dumps(data))
        try:
            tmp.rename(target)
        except OSError:
            if not target.exists():  # not a lost race with another process: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
