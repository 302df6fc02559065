"""Registering datasets in detectron2's catalogs, and checking that their files are on disk."""

from __future__ import annotations

import difflib
import json
import logging
import mmap
import os
import re
from pathlib import Path
from typing import Callable, Iterable

from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog, MetadataCatalog

__all__ = [
    "DatasetNotPreparedError",
    "check_datasets_ready",
    "check_mask_format",
    "check_num_classes",
    "dataset_class_names",
    "datasets_root",
    "images_in_both",
    "register_dataset",
    "unregistered_message",
]

LIST_DATASETS = 'python -c "import sna_det; from detectron2.data import DatasetCatalog; print(*DatasetCatalog.list())"'
"""The command that lists every registered dataset name."""


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


def unregistered_message(name: str) -> str:
    """``dataset 'x' is not registered``, the closest registered names (``difflib``) and the command
    that lists them all."""
    registered = DatasetCatalog.list()
    close = difflib.get_close_matches(name, registered, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return f"dataset {name!r} is not registered{hint}; {len(registered)} names are, listed by: {LIST_DATASETS}"


def _read_coco(json_file: Path, name: str) -> dict:
    try:
        data = json.loads(json_file.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetNotPreparedError(f"dataset {name!r}: {json_file}: cannot read ({error})") from None
    return data


def check_coco_dataset(name: str, json_file: str | os.PathLike, image_root: str | os.PathLike) -> None:
    """``DatasetNotPreparedError`` naming the file, record and field when a COCO dataset would train
    wrongly or fail later: an image id twice, an annotation of an unknown image or category id, an
    image that is not a file below ``image_root`` (a wrong IMAGES folder)."""
    data = _read_coco(Path(json_file), name)
    where = f"dataset {name!r}: {json_file}"
    images, categories = data.get("images"), data.get("categories")
    if not isinstance(images, list) or not isinstance(categories, list):
        raise DatasetNotPreparedError(f"{where}: not a COCO JSON (images and categories lists)")
    seen: dict = {}
    for i, image in enumerate(images):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DatasetNotPreparedError(f"{where}: images[{i}] is not an object with id and file_name")
        if image["id"] in seen:
            raise DatasetNotPreparedError(
                f"{where}: images[{i}]: id {image['id']!r} appears twice (also images[{seen[image['id']]}])"
            )
        seen[image["id"]] = i
    known = {c.get("id") for c in categories if isinstance(c, dict)}
    for i, annotation in enumerate(data.get("annotations", [])):
        if not isinstance(annotation, dict):
            raise DatasetNotPreparedError(f"{where}: annotations[{i}] is not an object")
        if annotation.get("image_id") not in seen:
            raise DatasetNotPreparedError(
                f"{where}: annotations[{i}]: image_id {annotation.get('image_id')!r} is not an id of the images"
            )
        if annotation.get("category_id") not in known:
            raise DatasetNotPreparedError(
                f"{where}: annotations[{i}]: category_id {annotation.get('category_id')!r} is not an id of the "
                f"categories ({sorted(known, key=str)})"
            )
    root = Path(image_root)
    missing = [image["file_name"] for image in images if not (root / str(image["file_name"])).is_file()]
    if missing:
        raise DatasetNotPreparedError(
            f"{where}: {len(missing):,} of {len(images):,} images are not files below {root} "
            f"(e.g. {root / str(missing[0])}); check its image folder (IMAGES)"
        )


def check_datasets_ready(names: Iterable[str]) -> None:
    """Raise ``DatasetNotPreparedError`` naming the first missing file or empty split of these datasets.

    A dataset whose metadata has ``ensure_ready`` (a callable) is made ready by it (the demo data is
    written on first use); others need their metadata's ``json_file`` and ``image_root`` (when set)
    to exist, and a ``json_file`` ending in ``.json`` to be a COCO JSON with at least one image
    (training or testing on an empty split fails later, in detectron2); with ``check_coco`` in its
    metadata (your own datasets) the JSON is checked record by record (``check_coco_dataset``).
    Unregistered names raise ``KeyError`` (``unregistered_message``).
    """
    for name in names:
        if name not in DatasetCatalog.list():
            raise KeyError(unregistered_message(name))
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
            if meta.get("check_coco", False):
                check_coco_dataset(name, json_file, meta.get("image_root", ""))


def dataset_class_names(name: str) -> list | None:
    """Class names of a registered dataset: its ``thing_classes``, else the names of its ``json_file``'s
    categories in id order (as ``load_coco_json`` names them); None when it has neither."""
    meta = MetadataCatalog.get(name)
    if meta.get("thing_classes", None) is not None:
        return list(meta.thing_classes)
    json_file = meta.get("json_file", None)
    if json_file is None:
        return None
    try:
        categories = json.loads(Path(json_file).read_bytes())["categories"]
        return [str(c["name"]) for c in sorted(categories, key=lambda c: c["id"])]
    except (OSError, ValueError, KeyError, TypeError) as error:
        detail = f"not a COCO JSON with categories ({type(error).__name__}: {error})"
        raise DatasetNotPreparedError(f"dataset {name!r}: {json_file}: {detail}") from None


def _num_categories(name: str) -> int | None:
    """Number of classes of a registered dataset (``dataset_class_names``)."""
    names = dataset_class_names(name)
    return None if names is None else len(names)


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


def _is_rle(segmentation) -> bool:
    return isinstance(segmentation, dict) and "counts" in segmentation


def check_mask_format(cfg: CfgNode, names: Iterable[str]) -> None:
    """``ValueError`` naming the file when a mask model (MODEL.MASK_ON) would train on RLE masks with
    ``INPUT.MASK_FORMAT polygon`` (detectron2 reads RLE as a bitmask only)."""
    if not cfg.MODEL.MASK_ON or cfg.INPUT.MASK_FORMAT == "bitmask":
        return
    for name in names:
        json_file = MetadataCatalog.get(name).get("json_file", None)
        if not MetadataCatalog.get(name).get("check_coco", False) or json_file is None:
            continue
        data = _read_coco(Path(json_file), name)
        index = next((i for i, a in enumerate(data.get("annotations", [])) if _is_rle(a.get("segmentation"))), None)
        if index is not None:
            raise ValueError(
                f"dataset {name!r}: {json_file}: annotations[{index}] has an RLE mask, which INPUT.MASK_FORMAT "
                f"{cfg.INPUT.MASK_FORMAT} cannot read; set INPUT.MASK_FORMAT bitmask"
            )


def _image_files(name: str) -> dict:
    """{resolved image path: file_name} of a registered COCO dataset with ``check_coco``; {} for others."""
    meta = MetadataCatalog.get(name)
    if not meta.get("check_coco", False):
        return {}
    root = Path(meta.get("image_root", ""))
    images = _read_coco(Path(meta.json_file), name).get("images", [])
    return {(root / str(i["file_name"])).resolve(): str(i["file_name"]) for i in images if isinstance(i, dict)}


def images_in_both(train: Iterable[str], test: Iterable[str]) -> list:
    """The images (file names) of your own datasets (``DATASETS.REGISTER``) found in a training and a
    test dataset (the same file), logged as a warning that names them: train/test leakage."""
    train_files: dict = {}
    for name in train:
        train_files.update(_image_files(name))
    shared = []
    for name in test:
        for path, file_name in _image_files(name).items():
            if path in train_files:
                shared.append(file_name)
    if shared:
        logging.getLogger(__name__).warning(
            f"{len(shared):,} images are in both a training and a test dataset (train/test leakage): "
            f"{', '.join(shared[:5])}{', ...' if len(shared) > 5 else ''}"
        )
    return shared
