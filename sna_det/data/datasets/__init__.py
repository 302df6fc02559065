from .builtin import ROOT_REGISTRARS, register_all_datasets, register_datasets_from_config
from .catalog import DatasetNotPreparedError, check_datasets_ready, check_num_classes, datasets_root, register_dataset
from .coco import COCO_2017_SPLITS, register_coco_2017
from .demo import DEMO_DATASETS, register_demo_datasets
from .own_coco import register_own_datasets
from .vindr_cxr import VINDR_CXR_CLASSES, register_vindr_cxr_datasets, vindr_cxr_root
from .voc_2012_coco import VOC_2012_COCO_SPLITS, VOC_CLASSES, register_voc_2012_coco

register_all_datasets()

__all__ = [
    "COCO_2017_SPLITS",
    "DEMO_DATASETS",
    "ROOT_REGISTRARS",
    "VINDR_CXR_CLASSES",
    "VOC_2012_COCO_SPLITS",
    "VOC_CLASSES",
    "DatasetNotPreparedError",
    "check_datasets_ready",
    "check_num_classes",
    "datasets_root",
    "register_all_datasets",
    "register_coco_2017",
    "register_dataset",
    "register_datasets_from_config",
    "register_demo_datasets",
    "register_own_datasets",
    "register_vindr_cxr_datasets",
    "register_voc_2012_coco",
    "vindr_cxr_root",
]
