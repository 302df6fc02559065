"""Dataset registration, the readiness check and the evaluator chosen from metadata."""

import json
import re

import pytest
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES
from detectron2.evaluation import COCOEvaluator
from PIL import Image

from sna_det import DatasetNotPreparedError, add_sna_config, build_evaluator, check_datasets_ready
from sna_det.data.datasets import (
    VINDR_CXR_CLASSES,
    register_coco_2017,
    register_datasets_from_config,
    register_vindr_cxr_datasets,
)
from sna_det.data.prepare.demo import DEMO_CLASSES


def test_demo_and_vindr_names_are_registered_with_metadata():
    for split in ("train", "val"):
        meta = MetadataCatalog.get(f"sna_demo_{split}")
        assert meta.thing_classes == list(DEMO_CLASSES) and meta.evaluator_type == "coco"
        assert meta.json_file.endswith(f"{split}.json")
    for split in ("train", "val", "test"):
        assert f"vindr_cxr_{split}" in DatasetCatalog.list()
        assert MetadataCatalog.get(f"vindr_cxr_{split}").thing_classes == list(VINDR_CXR_CLASSES)
    assert len(VINDR_CXR_CLASSES) == 14


def test_missing_files_are_named(tmp_path):
    for split in ("train", "val", "test"):  # register again, at a root that is empty
        DatasetCatalog.remove(f"vindr_cxr_{split}")
        MetadataCatalog.remove(f"vindr_cxr_{split}")
    register_vindr_cxr_datasets(tmp_path)
    with pytest.raises(
        DatasetNotPreparedError, match=r"vindr_cxr_val.*json_file .*annotations/val.json does not exist.*README"
    ):
        check_datasets_ready(["vindr_cxr_val"])
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "val.json").write_text('{"images": [], "annotations": [], "categories": []}')
    with pytest.raises(DatasetNotPreparedError, match=r"image_root .*images does not exist"):
        check_datasets_ready(["vindr_cxr_val"])
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetNotPreparedError, match=r"val.json: holds no image \(an empty split\)"):
        check_datasets_ready(["vindr_cxr_val"])  # detectron2 would stop later: "Dataset ... is empty!"
    image = {"id": 1, "file_name": "a.png", "width": 8, "height": 8}
    (tmp_path / "annotations" / "val.json").write_text(json.dumps({"images": [image], "annotations": []}))
    check_datasets_ready(["vindr_cxr_val"])


def test_unregistered_name_gets_the_closest_registered_ones_and_how_to_list_them():
    with pytest.raises(KeyError) as raised:
        check_datasets_ready(["sna_demo_vall"])
    assert "(did you mean 'sna_demo_val'" in raised.value.args[0] and "DatasetCatalog.list()" in raised.value.args[0]
    with pytest.raises(KeyError) as raised:
        check_datasets_ready(["no_such_dataset"])
    assert re.match(r"dataset 'no_such_dataset' is not registered; \d+ names are, listed by", raised.value.args[0])


def test_evaluator_follows_metadata(tmp_path):
    cfg = get_cfg()
    name = "sna_test_coco_like"
    json_file = tmp_path / "gt.json"
    json_file.write_text('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}')
    MetadataCatalog.get(name).set(evaluator_type="coco", json_file=str(json_file), thing_classes=["a"])
    assert isinstance(build_evaluator(cfg, name, str(tmp_path)), COCOEvaluator)
    MetadataCatalog.get("sna_test_unknown").set(evaluator_type="mystery")
    with pytest.raises(NotImplementedError, match="mystery"):
        build_evaluator(cfg, "sna_test_unknown")


def test_coco_2017_names_the_missing_path_then_loads_from_the_config_root(tmp_path):
    cfg = get_cfg()
    add_sna_config(cfg)
    root = tmp_path / "coco"
    cfg.DATASETS.ROOTS.COCO = str(root)
    register_datasets_from_config(cfg)
    try:
        with pytest.raises(
            DatasetNotPreparedError,
            match=r"'coco_2017_val': json_file .*coco/annotations/instances_val2017.json does not exist.*README",
        ):
            check_datasets_ready(["coco_2017_val"])
        (root / "annotations").mkdir(parents=True)
        (root / "val2017").mkdir()
        Image.new("RGB", (40, 30)).save(root / "val2017" / "000000000001.jpg")
        categories = [{"id": c["id"], "name": c["name"]} for c in COCO_CATEGORIES if c["isthing"]]
        dog = next(c["id"] for c in categories if c["name"] == "dog")
        (root / "annotations" / "instances_val2017.json").write_text(
            json.dumps(
                {
                    "images": [{"id": 1, "file_name": "000000000001.jpg", "height": 30, "width": 40}],
                    "annotations": [
                        {"id": 1, "image_id": 1, "category_id": dog, "bbox": [2, 3, 10, 12], "area": 120, "iscrowd": 0}
                    ],
                    "categories": categories,
                }
            )
        )
        check_datasets_ready(["coco_2017_val"])
        (record,) = DatasetCatalog.get("coco_2017_val")
        assert record["file_name"] == str(root / "val2017" / "000000000001.jpg")
        meta = MetadataCatalog.get("coco_2017_val")
        assert len(meta.thing_classes) == 80 and meta.evaluator_type == "coco"
        assert meta.thing_classes[record["annotations"][0]["category_id"]] == "dog"
    finally:
        register_coco_2017(None)
    assert MetadataCatalog.get("coco_2017_val").json_file.endswith("coco/annotations/instances_val2017.json")
