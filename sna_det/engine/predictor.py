"""A trained detector on images, batched: the logic of ``tools/predict.py``.

The model is the config's (``build_inference_model``: ``MODEL.WEIGHTS`` loaded strictly, as
``train_net.py --eval-only``), with ``tta`` wrapped for test-time augmentation (``build_tta_model``:
``TEST.AUG``'s sizes and flip, the wrapper ``--eval-only`` evaluates), or an exported TorchScript /
ONNX file of ``tools/export_model.py`` (``model.ts``: the detector traced on one image resized for
the test; run one image at a time). It runs on ``MODEL.DEVICE``.

Inputs are image files (``sna_det.data.images``: the one image path; a DICOM rendered as the preparer
renders it, ``INPUT.INTENSITY`` applied) or a registered dataset. A dataset's images go through detectron2's
``IntensityDatasetMapper(cfg, is_train=False)``, the mapper of ``--eval-only``'s test loader, so the detections
are those that evaluation writes. Every image is resized as for the test (``INPUT.MIN_SIZE_TEST`` /
``MAX_SIZE_TEST``); the detections are rescaled by detectron2's ``detector_postprocess`` to the image
the model was given, then to the input's own pixels: a DICOM's, or for a dataset image with
``dicom_width`` / ``dicom_height`` in its COCO entry (a prepared VinDr-CXR folder) the original DICOM's.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.export.flatten import flatten_to_tuple
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, BoxMode, Instances

from ..data.datasets.catalog import dataset_class_names
from ..data.datasets.mapper import IntensityDatasetMapper, read_dataset_image
from ..data.images import find_image_files
from ..modeling.test_time_augmentation import build_tta_model
from ..utils.skip_report import SkipReport
from .exported_model import IDENTITY_FILE, check_model_identity, load_exported
from .inference_model import build_inference_model, read_input_image

__all__ = [
    "ImagePrediction",
    "PredictionInput",
    "Predictor",
    "class_names",
    "command_line_inputs",
    "dataset_inputs",
    "file_inputs",
    "predict",
    "resolve_images",
]


@dataclass
class PredictionInput:
    """One image to predict on, before reading."""

    file_name: str
    image_id: Optional[int] = None
    """The dataset's image id (None for a file given on the command line)."""
    record: Optional[dict] = None
    """The dataset dict (detectron2's format) of a dataset image."""
    own_size: Optional[Tuple[int, int]] = None
    """(width, height) the predictions are given in, when known before reading (a dataset's DICOM size)."""


@dataclass
class ImagePrediction:
    """The detections of one image, in the input's own pixels."""

    file_name: str
    image_id: Optional[int]
    width: int
    height: int
    """The input's own size: the frame of ``boxes``."""
    boxes: np.ndarray
    """(N, 4) x_min, y_min, x_max, y_max (float64)."""
    boxes_xywh: np.ndarray
    """(N, 4) x, y, width, height, as detectron2's COCO results hold them (converted before the rescale)."""
    scores: np.ndarray
    """(N,) in [0, 1]."""
    classes: np.ndarray
    """(N,) contiguous class indices 0..K-1."""
    scale: Tuple[float, float]
    """(own width / model image width, own height / model image height)."""
    model_image: Optional[np.ndarray] = None
    """(H, W, C) uint8 in INPUT.FORMAT, the image the model was given (kept for drawing)."""


def class_names(cfg: CfgNode, dataset: Optional[str] = None) -> List[str]:
    """The model's class names: those of ``dataset`` (else of the config's first test or train dataset;
    ``dataset_class_names``: its thing_classes or its JSON's categories) when it has as many as the model;
    else ``class_0`` ... ``class_{K-1}``."""
    key = "RETINANET" if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else "ROI_HEADS"
    k = cfg.MODEL[key].NUM_CLASSES
    for name in [dataset] if dataset else [*cfg.DATASETS.TEST, *cfg.DATASETS.TRAIN]:
        names = dataset_class_names(name) if name in DatasetCatalog.list() else None
        if names is not None and len(names) == k:
            return list(names)
    return [f"class_{i}" for i in range(k)]


def resolve_images(sources: Sequence[str], max_images: int = 0) -> List[str]:
    """Image paths of ``sources`` in order: each a registered dataset name (its records' ``file_name``) or
    what ``find_image_files`` finds for it (a file, a folder's images recursively, a glob). ``max_images``
    > 0 keeps the first that many. Raises ValueError naming a source that is none of these or holds no image."""
    paths: List[str] = []
    for source in sources:
        if source in DatasetCatalog.list():
            found = [record["file_name"] for record in DatasetCatalog.get(source)]
            if not found:
                raise ValueError(f"{source!r}: the dataset holds no image")
        elif not os.path.exists(source) and not glob.has_magic(source):
            raise ValueError(f"{source!r} is neither a registered dataset nor an existing image file, folder or glob")
        else:
            found = [str(p) for p in find_image_files([source])]
        paths.extend(found)
    return paths[:max_images] if max_images > 0 else paths


def _instances_schema(cfg: CfgNode):
    """How an exported detector's flat outputs nest: ``TracingAdapter.outputs_schema`` of ``export_model``
    (``[{"instances": Instances}]``, fields sorted by name), rebuilt from the fields the model returns."""
    instances = Instances((1, 1))
    instances.pred_boxes = Boxes(torch.zeros(0, 4))
    instances.scores = torch.zeros(0)
    instances.pred_classes = torch.zeros(0, dtype=torch.int64)
    if cfg.MODEL.MASK_ON:
        instances.pred_masks = torch.zeros(0, 1, 1, 1)
    return flatten_to_tuple([{"instances": instances}])[1]


class Predictor:
    """``predictor(batch)``: detectron2's model inputs (``image`` (C, H, W) uint8 resized for the test,
    ``height``, ``width``) -> one ``Instances`` per input, on the CPU, in (height, width) pixels."""

    def __init__(self, cfg: CfgNode, exported: Optional[str | os.PathLike] = None, tta: bool = False):
        """The config's model (``build_inference_model``; ``tta``: wrapped by ``build_tta_model``), or the
        file ``exported``."""
        self.device = torch.device(cfg.MODEL.DEVICE)
        self.exported = Path(exported) if exported else None
        if self.exported is None:
            model = build_inference_model(cfg)
            self.model = build_tta_model(cfg, model) if tta else model
            return
        if tta:
            raise ValueError(f"{exported}: --tta runs the config's model (MODEL.WEIGHTS), not an exported one")
        if not self.exported.is_file():
            raise ValueError(f"{exported}: --model: no such file")
        schema = _instances_schema(cfg)
        if self.exported.suffix == ".onnx":  # onnxruntime on the CPU
            run = load_exported(self.exported, schema)
            self._run_one = lambda image: run(image.cpu())
        else:
            extra = {IDENTITY_FILE: ""}
            try:
                script = torch.jit.load(str(self.exported), map_location=self.device, _extra_files=extra)
            except RuntimeError as error:
                raise ValueError(f"{exported}: not a TorchScript file ({str(error).splitlines()[0]})") from None
            recorded = extra[IDENTITY_FILE]
            check_model_identity(exported, recorded.decode() if isinstance(recorded, bytes) else recorded, cfg,
                                 class_names(cfg))  # fmt: skip
            self._run_one = lambda image: schema(script(image))[0]["instances"]

    @torch.no_grad()
    def __call__(self, batch: List[dict]) -> List[Instances]:
        if self.exported is None:
            return [output["instances"].to("cpu") for output in self.model(batch)]
        results = []
        for item in batch:
            image = item["image"].to(self.device, torch.float32)
            found = self._run_one(image)
            resized = Instances(tuple(image.shape[1:]), **{k: v.to("cpu") for k, v in found.get_fields().items()})
            results.append(detector_postprocess(resized, item["height"], item["width"]))
        return results


def file_inputs(paths: Sequence[Path]) -> List[PredictionInput]:
    """Image files as inputs (their own size known once read)."""
    return [PredictionInput(str(p)) for p in paths]


def dataset_inputs(name: str) -> List[PredictionInput]:
    """The images of a registered dataset, in its order; the own size of each is the DICOM size recorded
    in the dataset's COCO JSON (``dicom_width``, ``dicom_height``), else the image's."""
    records = DatasetCatalog.get(name)
    dicom_sizes = {}
    json_file = MetadataCatalog.get(name).get("json_file", None)
    if json_file and Path(json_file).is_file():
        for image in json.loads(Path(json_file).read_bytes()).get("images", []):
            if "dicom_width" in image and "dicom_height" in image:
                dicom_sizes[image["id"]] = (int(image["dicom_width"]), int(image["dicom_height"]))
    return [
        PredictionInput(r["file_name"], r["image_id"], r, dicom_sizes.get(r["image_id"], (r["width"], r["height"])))
        for r in records
    ]


UNREADABLE = "unreadable image"
"""The reason ``predict`` counts an image it cannot read under."""


def command_line_inputs(dataset: Optional[str], paths: Sequence[str] = ()) -> List[PredictionInput]:
    """A command's ``--dataset NAME`` (checked ready: ``DatasetNotPreparedError``) or else its ``--input``
    files, folders and globs (``find_image_files``: ValueError naming one that gives no image)."""
    from ..data.datasets import check_datasets_ready
    from ..data.images import find_image_files

    if dataset:
        check_datasets_ready([dataset])
        return dataset_inputs(dataset)
    return file_inputs(find_image_files(paths))


class _ReadInputs(torch.utils.data.Dataset):
    """Reads and maps each input (in loader workers); a read failure is returned as ``{"error": message}``."""

    def __init__(self, cfg: CfgNode, inputs: Sequence[PredictionInput], keep_image: bool, dicom_options: dict):
        self.inputs = list(inputs)
        self.format = cfg.INPUT.FORMAT
        self.augmentations = T.AugmentationList(utils.build_augmentation(cfg, is_train=False))
        self.mapper = IntensityDatasetMapper(cfg, is_train=False)
        self.keep_image = keep_image
        self.cfg = cfg
        self.dicom_options = dicom_options

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict:
        given = self.inputs[index]
        try:
            if given.record is not None:  # a dataset image: exactly what the test loader gives
                item = self.mapper(dict(given.record))
                own = given.own_size
                image = None
                if self.keep_image:  # the image as read, before the test resize, for drawing
                    image = read_dataset_image(given.file_name, self.format, self.mapper.intensity)
            else:
                read = read_input_image(self.cfg, given.file_name, **self.dicom_options)
                image, own = read.image, read.own_size
                height, width = image.shape[:2]
                aug = T.AugInput(image)
                self.augmentations(aug)
                tensor = torch.as_tensor(np.ascontiguousarray(aug.image.transpose(2, 0, 1)))
                item = {"image": tensor, "height": height, "width": width, "file_name": given.file_name}
                image = image if self.keep_image else None
        except (OSError, ValueError, SyntaxError) as error:  # PIL's, DicomReadError (a ValueError)
            message = " ".join(str(error).split())
            if not message.startswith(f"{given.file_name}: cannot read the image"):  # read_model_image's own
                message = f"{given.file_name}: cannot read the image ({message})"
            return {"error": message}
        return {"index": index, "input": item, "own_size": own, "model_image": image}


def predict(
    predictor: Predictor,
    cfg: CfgNode,
    inputs: Sequence[PredictionInput],
    batch_size: int = 1,
    keep_images: bool = False,
    max_size: int = 1024,
    upscale: bool = False,
    progress: Optional[Callable] = None,
    skipped: Optional[SkipReport] = None,
) -> Iterator[ImagePrediction]:
    """The predictions of each input, in order; ``batch_size`` images per forward pass, read by
    ``DATALOADER.NUM_WORKERS`` processes; ``max_size`` / ``upscale``: how DICOMs are rendered (the
    preparer's options); ``progress``: called with the number of images done after each batch.

    ``skipped``: an image that cannot be read is left out and counted there (reason "unreadable image",
    with the file and why); without it, ValueError naming the first file that cannot be read.
    """
    dataset = _ReadInputs(cfg, inputs, keep_images, {"max_size": max_size, "upscale": upscale})
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=cfg.DATALOADER.NUM_WORKERS, collate_fn=list, shuffle=False
    )
    for batch in loader:
        read = []
        for item in batch:
            if "error" not in item:
                read.append(item)
            elif skipped is None:
                raise ValueError(item["error"])
            else:
                where, _, why = item["error"].partition(": cannot read the image ")
                skipped.skip(UNREADABLE, where, why.strip("()"))
        if skipped is not None:
            skipped.count_read(len(batch))
            skipped.count_kept(len(read))
        batch, done = read, len(batch)
        for item, instances in zip(batch, predictor([item["input"] for item in batch]) if batch else []):
            given = inputs[item["index"]]
            own_w, own_h = item["own_size"]
            sx, sy = own_w / item["input"]["width"], own_h / item["input"]["height"]
            scale = np.array([sx, sy, sx, sy])
            xyxy = instances.pred_boxes.tensor
            xywh = BoxMode.convert(xyxy, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
            yield ImagePrediction(
                file_name=given.file_name,
                image_id=given.image_id,
                width=own_w,
                height=own_h,
                boxes=xyxy.numpy().astype(np.float64) * scale,
                boxes_xywh=xywh.numpy().astype(np.float64) * scale,
                scores=instances.scores.numpy().astype(np.float64),
                classes=instances.pred_classes.numpy().astype(np.int64),
                scale=(sx, sy),
                model_image=item["model_image"],
            )
        if progress is not None:
            progress(done)
