"""Class lists and split names as plain data, shared by dataset preparation (``sna_det.data.prepare``)
and registration (``sna_det.data.datasets``). Standard library only."""

__all__ = ["VINDR_CXR_CLASSES", "VOC_2012_COCO_SPLITS", "VOC_CLASSES"]

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
"""The 20 Pascal VOC classes in the standard order; COCO category ids 1-20."""

VOC_2012_COCO_SPLITS = {
    "voc_2012_coco_train": "train",
    "voc_2012_coco_val": "val",
    "voc_2012_coco_detection_train": "detection_train",
    "voc_2012_coco_detection_val": "detection_val",
    "voc_2012_coco_detection_trainval": "detection_trainval",
}
"""dataset name -> annotation file stem in ``<root>/annotations``: ``ImageSets/Segmentation`` splits
with instance masks, and (``--detection-splits``) ``ImageSets/Main`` splits with boxes only."""

VINDR_CXR_CLASSES = (
    "Aortic enlargement",
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Consolidation",
    "ILD",
    "Infiltration",
    "Lung Opacity",
    "Nodule/Mass",
    "Other lesion",
    "Pleural effusion",
    "Pleural thickening",
    "Pneumothorax",
    "Pulmonary fibrosis",
)
"""The 14 findings of the paper's Table 4, in VinBigData's class_id order (0-13)."""
