from . import datasets  # noqa: F401  (registers the datasets)
from .datasets import DatasetNotPreparedError, check_datasets_ready
from .demo_dataset import DEMO_CLASSES, ensure_demo_dataset, render_demo_image

__all__ = [
    "DEMO_CLASSES",
    "DatasetNotPreparedError",
    "check_datasets_ready",
    "ensure_demo_dataset",
    "render_demo_image",
]
