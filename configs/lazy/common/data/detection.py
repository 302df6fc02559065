# Train and test loaders of a YAML config's DATASETS and INPUT keys, evaluated by the project's evaluator
# of each dataset's evaluator_type (sna_det/evaluation/evaluator.py), as tools/train_net.py does for YAML;
# images read as tools/predict.py reads them (sna_det/data/datasets/mapper.py).
import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import build_detection_test_loader, build_detection_train_loader, get_detection_dataset_dicts
from omegaconf import OmegaConf

from sna_det.data.datasets.mapper import IntensityDatasetMapper
from sna_det.evaluation import build_dataset_evaluator


def detection_dataloader(
    train,
    test,
    *,
    min_size_train,
    max_size_train,
    min_size_test,
    max_size_test,
    batch_size,
    num_workers=4,
    filter_empty=True,
):
    """dataloader.{train,test,evaluator}: DATASETS.TRAIN=train, DATASETS.TEST=test (one name),
    INPUT.MIN_SIZE_TRAIN (a tuple, "choice") ... , SOLVER.IMS_PER_BATCH=batch_size,
    DATALOADER.NUM_WORKERS=num_workers, DATALOADER.FILTER_EMPTY_ANNOTATIONS=filter_empty (False: images
    without boxes, e.g. VinDr-CXR's normals, are trained on)."""
    dataloader = OmegaConf.create()
    dataloader.train = L(build_detection_train_loader)(
        dataset=L(get_detection_dataset_dicts)(names=train, filter_empty=filter_empty),
        mapper=L(IntensityDatasetMapper)(
            is_train=True,
            augmentations=[
                L(T.ResizeShortestEdge)(
                    short_edge_length=tuple(min_size_train), max_size=max_size_train, sample_style="choice"
                ),
                L(T.RandomFlip)(horizontal=True),
            ],
            image_format="BGR",
        ),
        total_batch_size=batch_size,
        num_workers=num_workers,
    )
    dataloader.test = L(build_detection_test_loader)(
        dataset=L(get_detection_dataset_dicts)(names=test, filter_empty=False),
        mapper=L(IntensityDatasetMapper)(
            is_train=False,
            augmentations=[L(T.ResizeShortestEdge)(short_edge_length=min_size_test, max_size=max_size_test)],
            image_format="${...train.mapper.image_format}",
        ),
        num_workers=num_workers,
    )
    dataloader.evaluator = L(build_dataset_evaluator)(
        dataset_name="${..test.dataset.names}", output_dir="${...train.output_dir}/inference"
    )
    return dataloader
