from .builtin import (
    DEMO_DATASETS,
    VINDR_CXR_CLASSES,
    DatasetNotPreparedError,
    check_datasets_ready,
    register_demo_datasets,
    register_vindr_cxr_datasets,
    vindr_cxr_root,
)

register_demo_datasets()
register_vindr_cxr_datasets()

__all__ = [
    "DEMO_DATASETS",
    "VINDR_CXR_CLASSES",
    "DatasetNotPreparedError",
    "check_datasets_ready",
    "register_demo_datasets",
    "register_vindr_cxr_datasets",
    "vindr_cxr_root",
]
