"""Registering datasets in detectron2's catalogs, and checking that their files are on disk."""

from __future__ import annotations

import json
import mmap
import os
import re
from pathlib import Path
from typing import Callable, Iterable

from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog, MetadataCatalog

__all__ = ["DatasetNotPreparedError", "check_datasets_ready", "check_num_classes", "datasets_root", "register_dataset"]


class DatasetNotPreparedError(FileNotFoundError):
    """A registered dataset whose files are not where its registration expects them."""


def datasets_root() -> Path:
    """detectron2's dataset root: ``$DETECTRON2_DATASETS``, default ``datasets`` (relative to the cwd)."""
    return Path(os.environ.get("DETECTRON2_DATASETS", "datasets"))


def register_dataset(name: str, loader: Callable[[], list], **metadata) -> None:
    """Register ``name`` (replacing an earlier registration of it) with a loader and its metadata.

    Metadata with ``json_file`` / ``image_root`` is checked by ``check_datasets_ready``;
    ``how_to_prepare`` is the hint its error gives when they are missing.
    """
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, loader)
    MetadataCatalog.get(name).set(**metadata)


FULLY_READ_BYTES = 64 << 20
"""A COCO JSON up to this size is parsed to check it has images; a larger one is searched for an
empty ``"images": []`` (parsing COCO's 450 MB train JSON twice would cost seconds and gigabytes)."""
EMPTY_IMAGES = re.compile(rb'"images"\s*:\s*\[\s*\]')


def _coco_images_problem(json_file: Path) -> str | None:
    """Why ``json_file`` is not a COCO JSON with at least one image (None if it is, or seems so)."""
    try:
        size = json_file.stat().st_size
        if size <= FULLY_READ_BYTES:
            try:
                data = json.loads(json_file.read_bytes())
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                return f"not JSON ({error})"
            if not isinstance(data, dict) or not isinstance(data.get("images"), list):
                return "not a COCO JSON (no list of images)"
            return None if data["images"] else "holds no image (an empty split)"
        with open(json_file, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if EMPTY_IMAGES.search(data):
                return "holds no image (an empty split)"
            return None if data.find(b'"images"') >= 0 else "not a COCO JSON (no list of images)"
    except OSError as error:
        return f"cannot read ({error.strerror or error})"


def check_datasets_ready(names: Iterable[str]) -> None:
    """Raise ``DatasetNotPreparedError`` naming the first missing file or empty split of these datasets.

    A dataset whose metadata has ``ensure_ready`` (a callable) is made ready by it (the demo data is
    written on first use); others need their metadata's ``json_file`` and ``image_root`` (when set)
    to exist, and a ``json_file`` ending in ``.json`` to be a COCO JSON with at least one image
    (training or testing on an empty split fails later, in detectron2). Unregistered names raise ``KeyError``.
    """
    for name in names:
        if name not in DatasetCatalog.list():
            raise KeyError(f"dataset {name!r} is not registered; registered: {sorted(DatasetCatalog.list())}")
        meta = MetadataCatalog.get(name)
        ensure_ready = meta.get("ensure_ready", None)
        if ensure_ready is not None:
            ensure_ready()
            continue
        for field in ("json_file", "image_root"):
            path = meta.get(field, None)
            if path is not None and not Path(path).exists():
                hint = meta.get("how_to_prepare", "See datasets/README.md for the expected layout.")
                raise DatasetNotPreparedError(f"dataset {name!r}: {field} {path} does not exist. {hint}")
        json_file = meta.get("json_file", None)
        if json_file is not None and str(json_file).endswith(".json"):
            problem = _coco_images_problem(Path(json_file))
            if problem is not None:
                hint = meta.get("how_to_prepare", "See datasets/README.md for the expected layout.")
                raise DatasetNotPreparedError(f"dataset {name!r}: {json_file}: {problem}. {hint}")


def _num_categories(name: str) -> int | None:
    """Classes of a registered dataset: its ``thing_classes``, else the categories of its ``json_file``."""
    meta = MetadataCatalog.get(name)
    if meta.get("thing_classes", None) is not None:
        return len(meta.thing_classes)
    json_file = meta.get("json_file", None)
    if json_file is None:
        return None
    try:
        categories = json.loads(Path(json_file).read_bytes())["categories"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        detail = f"not a COCO JSON with categories ({type(error).__name__}: {error})"
        raise DatasetNotPreparedError(f"dataset {name!r}: {json_file}: {detail}") from None
    return len(categories)


def check_num_classes(cfg: CfgNode, names: Iterable[str]) -> None:
    """``ValueError`` naming both numbers when the model's number of classes (``MODEL.ROI_HEADS.NUM_CLASSES``,
    ``MODEL.RETINANET.NUM_CLASSES`` for RetinaNet) differs from a dataset's."""
    key = "RETINANET" if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else "ROI_HEADS"
    expected = cfg.MODEL[key].NUM_CLASSES
    for name in names:
        found = _num_categories(name)
        if found is not None and found != expected:
            source = MetadataCatalog.get(name).get("json_file", "its metadata")
            raise ValueError(
                f"dataset {name!r} has {found} classes ({source}) but MODEL.{key}.NUM_CLASSES is {expected}; "
                f"set MODEL.{key}.NUM_CLASSES {found}"
            )
