"""Registering datasets in detectron2's catalogs, and checking that their files are on disk."""

from __future__ import annotations

import json
import os
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


def check_datasets_ready(names: Iterable[str]) -> None:
    """Raise ``DatasetNotPreparedError`` naming the first missing file of any of these datasets.

    A dataset whose metadata has ``ensure_ready`` (a callable) is made ready by it (the demo data is
    written on first use); others need their metadata's ``json_file`` and ``image_root`` (when set)
    to exist. Unregistered names raise ``KeyError``.
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
