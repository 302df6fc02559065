"""detectron2's ``DatasetMapper`` with the one image path: a dataset's images read as ``tools/predict.py``
reads the same files.

detectron2's ``read_image`` turns a 16-bit PNG or TIFF into RGB by clipping every value above 255 (an
X-ray becomes white) and does not read DICOMs. ``IntensityDatasetMapper`` reads those through
``sna_det.data.images`` (their own values, ``INPUT.INTENSITY``; a DICOM at its own size, the frame of
its boxes) and every other picture with detectron2's own ``read_image``, so that training, evaluation,
``tools/predict.py`` and the analysis tools give a model the same pixels. The Trainer's loaders
(``sna_det.engine``), the predictor's dataset inputs, ``browse_dataset.py --augment`` and the
LazyConfig data (``configs/lazy/common/data/detection.py``) use it.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from PIL import Image

from ..dicom import is_dicom_path
from ..images import FILE_WINDOW, HIGH_DEPTH_MODES, Intensity, read_model_image

__all__ = ["IntensityDatasetMapper", "read_dataset_image", "reads_own_values"]


def reads_own_values(file_name: str | os.PathLike) -> bool:
    """Whether ``file_name`` is a DICOM or a grayscale picture of more than 8 bits (its header only is read);
    False for a file PIL cannot open (detectron2's reader then names the error)."""
    if is_dicom_path(file_name):
        return True
    try:
        with Image.open(file_name) as picture:
            return picture.mode in HIGH_DEPTH_MODES
    except (OSError, ValueError, SyntaxError):
        return False


def read_dataset_image(
    file_name: str | os.PathLike, image_format: str, intensity: Intensity = FILE_WINDOW
) -> np.ndarray:
    """(H, W, C) uint8 in ``image_format`` (``INPUT.FORMAT``): a DICOM or a picture of more than 8 bits by
    ``read_model_image`` with ``intensity`` at its own size, any other picture by detectron2's ``read_image``."""
    if reads_own_values(file_name):
        return read_model_image(file_name, image_format, max_size=0, intensity=intensity).image
    return utils.read_image(file_name, format=image_format)


class IntensityDatasetMapper(DatasetMapper):
    """``DatasetMapper`` (augmentations, annotations, masks, keypoints, proposals: detectron2's) whose
    image is read by ``read_dataset_image`` with ``intensity`` (``INPUT.INTENSITY``)."""

    @configurable
    def __init__(self, is_train: bool, *, intensity: Intensity = FILE_WINDOW, **kwargs):
        super().__init__(is_train, **kwargs)
        self.intensity = intensity

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        return {**super().from_config(cfg, is_train), "intensity": Intensity.from_node(cfg.INPUT.get("INTENSITY"))}

    def __call__(self, dataset_dict: dict) -> dict:
        """detectron2's ``DatasetMapper.__call__``, the image read by ``read_dataset_image``."""
        dataset_dict = copy.deepcopy(dataset_dict)
        image = read_dataset_image(dataset_dict["file_name"], self.image_format, self.intensity)
        utils.check_image_size(dataset_dict, image)
        sem_seg_file = dataset_dict.pop("sem_seg_file_name", None)
        sem_seg_gt = utils.read_image(sem_seg_file, "L").squeeze(2) if sem_seg_file is not None else None
        aug_input = T.AugInput(image, sem_seg=sem_seg_gt)
        transforms = self.augmentations(aug_input)
        image, sem_seg_gt = aug_input.image, aug_input.sem_seg
        image_shape = image.shape[:2]
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if sem_seg_gt is not None:
            dataset_dict["sem_seg"] = torch.as_tensor(sem_seg_gt.astype("long"))
        if self.proposal_topk is not None:
            utils.transform_proposals(dataset_dict, image_shape, transforms, proposal_topk=self.proposal_topk)
        if not self.is_train:
            dataset_dict.pop("annotations", None)
            return dataset_dict
        if "annotations" in dataset_dict:
            self._transform_annotations(dataset_dict, transforms, image_shape)
        return dataset_dict
