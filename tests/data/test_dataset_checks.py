"""Your own COCO datasets (DATASETS.REGISTER) checked before anything trains or is written: an image id
twice, an annotation of an unknown category or image, a wrong image folder, RLE masks without
INPUT.MASK_FORMAT bitmask (one line each, the run folder left as it was); an image in both a training
and a test dataset warned about by name; a dataset name mistyped answered with the closest names;
predict naming the classes as the registered JSON does."""

import json
import logging
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
from detectron2.data import DatasetCatalog
from helpers import ROOT, run_main
from PIL import Image

from sna_det.data.datasets import DatasetNotPreparedError, check_datasets_ready
from sna_det.data.datasets.catalog import check_mask_format, images_in_both
from sna_det.engine import setup_cfg
from sna_det.engine.predictor import class_names

DEMO = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_demo.yaml"
MASK_DEMO = ROOT / "configs" / "demo" / "mask_rcnn_R_18_FPN_demo.yaml"
# category ids on purpose not 1..K, and listed out of id order: names go by id, as load_coco_json's
CATEGORIES = [{"id": 9, "name": "mass"}, {"id": 4, "name": "nodule"}]


def coco(images, annotations):
    return {"images": images, "annotations": annotations, "categories": CATEGORIES}


def image(i, name):
    return {"id": i, "file_name": name, "width": 32, "height": 32}


def box(i, image_id, category_id):
    return {"id": i, "image_id": image_id, "category_id": category_id, "bbox": [4, 4, 10, 10], "area": 100,
            "iscrowd": 0}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    (root / "images").mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(np.full((32, 32, 3), 100, np.uint8)).save(root / "images" / name)
    (root / "train.json").write_text(json.dumps(coco([image(1, "a.png"), image(2, "b.png")], [box(1, 1, 4)])))
    (root / "val.json").write_text(json.dumps(coco([image(1, "c.png"), image(2, "b.png")], [box(1, 1, 9)])))
    return root


def own_config(data: Path, train: str = "train.json", images: str = "images", config: Path = DEMO) -> Path:
    """A YAML registering own_train (``train`` in ``images``) and own_val, with 2 classes."""
    path = data / f"config_{Path(train).stem}_{images}_{config.stem}.yaml"
    path.write_text(
        f"""_BASE_: "{config}"
MODEL:
  ROI_HEADS: {{NUM_CLASSES: 2}}
DATASETS:
  REGISTER:
    own_train: {{JSON: "{data / train}", IMAGES: "{data / images}"}}
    own_val: {{JSON: "{data / "val.json"}", IMAGES: "{data / "images"}"}}
  TRAIN: ("own_train",)
  TEST: ("own_val",)
"""
    )
    return path


def cfg_with(data: Path, train: str = "train.json", images: str = "images", config: Path = DEMO, extra=()):
    return setup_cfg(str(own_config(data, train, images, config)), list(extra))


def test_predict_names_the_classes_as_the_registered_json(data):
    """predict --input with a config registering its dataset: the JSON's names in id order (nodule: 4,
    mass: 9), not class_0, class_1; before the dataset was ever loaded."""
    cfg = cfg_with(data)
    assert class_names(cfg) == ["nodule", "mass"]
    assert class_names(cfg) == [c["name"] for c in sorted(CATEGORIES, key=lambda c: c["id"])]
    DatasetCatalog.get("own_train")  # what load_coco_json then calls them: the same
    assert class_names(cfg, "own_train") == ["nodule", "mass"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("dup.json", coco([image(1, "a.png"), image(1, "b.png")], []),
         "images[1]: id 1 appears twice (also images[0])"),
        ("cat.json", coco([image(1, "a.png")], [box(1, 1, 4), box(2, 1, 5)]),
         "annotations[1]: category_id 5 is not an id of the categories ([4, 9])"),
        ("img.json", coco([image(1, "a.png")], [box(1, 7, 4)]),
         "annotations[0]: image_id 7 is not an id of the images"),
        ("file.json", coco([image(1, "a.png"), image(2, "missing.png")], []), "1 of 2 images are not files below"),
    ],
)  # fmt: skip
def test_a_broken_training_json_is_refused_at_the_readiness_check(data, name, content, message):
    (data / name).write_text(json.dumps(content))
    cfg_with(data, train=name)
    with pytest.raises(DatasetNotPreparedError, match="^dataset 'own_train': .*" + message.replace("(", r"\(")
                       .replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):  # fmt: skip
        check_datasets_ready(["own_train"])


def test_a_wrong_images_folder_is_one_line_and_keeps_the_run_folder(data, tmp_path, capsys):
    (data / "other").mkdir(exist_ok=True)  # a folder that exists, without the JSON's images
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("the earlier run's\n")
    code = run_main("tools/train_net.py", "--config-file", own_config(data, images="other"),
                    "OUTPUT_DIR", run, "SOLVER.MAX_ITER", "1")  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("error: dataset 'own_train'") and "2 of 2 images" in err[-1]
    assert "Traceback" not in "\n".join(err) and "check its image folder (IMAGES)" in err[-1]
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]
    assert (run / "config.yaml").read_text() == "the earlier run's\n"


def test_rle_masks_need_the_bitmask_format(data, tmp_path, capsys):
    mask = np.zeros((32, 32), np.uint8, order="F")
    mask[4:14, 4:14] = 1
    rle = mask_util.encode(mask)
    rle["counts"] = rle["counts"].decode()
    content = coco([image(1, "a.png")], [{**box(1, 1, 4), "segmentation": rle}])
    (data / "rle.json").write_text(json.dumps(content))
    cfg = cfg_with(data, train="rle.json", config=MASK_DEMO)
    with pytest.raises(ValueError, match=r"annotations\[0\] has an RLE mask.*set INPUT.MASK_FORMAT bitmask"):
        check_mask_format(cfg, ["own_train"])
    check_mask_format(cfg_with(data, train="rle.json", config=MASK_DEMO, extra=["INPUT.MASK_FORMAT", "bitmask"]),
                      ["own_train"])  # fmt: skip
    code = run_main("tools/train_net.py", "--config-file", own_config(data, "rle.json", config=MASK_DEMO),
                    "OUTPUT_DIR", tmp_path / "run", "SOLVER.MAX_ITER", "1")  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].endswith("set INPUT.MASK_FORMAT bitmask") and not (tmp_path / "run").exists()


def test_images_in_a_training_and_a_test_dataset_are_named(data, caplog):
    cfg_with(data)
    with caplog.at_level(logging.WARNING):
        shared = images_in_both(["own_train"], ["own_val"])
    assert shared == ["b.png"]  # the same file in both (a.png and c.png are not)
    assert "1 images are in both a training and a test dataset (train/test leakage): b.png" in caplog.text
    assert images_in_both(["own_train"], []) == []


def test_a_mistyped_dataset_name_gets_the_closest_names_not_the_whole_list():
    with pytest.raises(KeyError) as raised:
        check_datasets_ready(["sna_demo_trian"])
    message = raised.value.args[0]
    assert "did you mean 'sna_demo_train'" in message and "DatasetCatalog.list()" in message
    assert len(message) < 300 and "coco_2017_val" not in message
