"""VinDr-CXR preparation: CSVs (both public layouts), DICOM to PNG, reader fusion, split, COCO output."""

from ...dicom import DicomReadError, read_dicom_uint8, stretch_to_uint8
from .annotations import AnnotationTable, FindingBox, VinDrSource, find_source, read_annotations
from .fusion import FUSIONS, FusionCounts, cluster_boxes, fuse_boxes
from .images import convert_image, resized_size
from .prepare import PrepareOptions, PrepareResult, format_prepare_summary, prepare_vindr_cxr
from .problems import PROBLEMS, InputProblems, VinDrInputError
from .split import stratified_split

__all__ = [
    "FUSIONS",
    "PROBLEMS",
    "AnnotationTable",
    "DicomReadError",
    "FindingBox",
    "FusionCounts",
    "InputProblems",
    "PrepareOptions",
    "PrepareResult",
    "VinDrInputError",
    "VinDrSource",
    "cluster_boxes",
    "convert_image",
    "find_source",
    "format_prepare_summary",
    "fuse_boxes",
    "prepare_vindr_cxr",
    "read_annotations",
    "read_dicom_uint8",
    "resized_size",
    "stratified_split",
    "stretch_to_uint8",
]
