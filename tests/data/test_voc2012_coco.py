"""VOC2012 -> COCO conversion on a tree the tests write, checked with pycocotools and detectron2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_train_loader
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, Boxes, BoxMode, Instances
from detectron2.utils.events import EventStorage
from helpers.voc_tree import (
    MAIN_SPLITS,
    SEGMENTATION_SPLITS,
    SIZE,
    DrawnObject,
    rect,
    write_split,
    write_voc_image,
    write_voc_tree,
)
from PIL import Image
from pycocotools.coco import COCO

from sna_det import build_evaluator
from sna_det.data.datasets import VOC_CLASSES, register_datasets_from_config, register_voc_2012_coco
from sna_det.data.prepare.masks import decode_segmentation, encode_mask
from sna_det.data.prepare.voc import VocInputError, convert_voc2012
from sna_det.engine import setup_cfg

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "VOC2012"
    return root, write_voc_tree(root)


@pytest.fixture
def converted(voc, tmp_path):
    root, drawn = voc
    out = tmp_path / "voc_2012_coco"
    summary = convert_voc2012(root, out, detection_splits=True)
    return out, drawn, summary


def tight_box(mask):
    """COCO [x, y, w, h] of a mask, by pycocotools."""
    return mask_util.toBbox(mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))).tolist()


def annotations_by_file(coco: COCO) -> dict:
    return {coco.imgs[i]["file_name"][:-4]: sorted(coco.imgToAnns[i], key=lambda a: a["id"]) for i in sorted(coco.imgs)}


@pytest.mark.parametrize("split", ["train", "val"])
def test_boxes_masks_and_categories_match_what_was_drawn(converted, split):
    out, drawn, _ = converted
    coco = COCO(str(out / "annotations" / f"{split}.json"))
    assert [(c["id"], c["name"]) for c in coco.loadCats(coco.getCatIds())] == list(enumerate(VOC_CLASSES, 1))
    by_file = annotations_by_file(coco)
    assert list(by_file) == SEGMENTATION_SPLITS[split]
    for image_id, anns in by_file.items():
        image = coco.imgs[anns[0]["image_id"]]
        assert (image["height"], image["width"]) == SIZE and image["file_name"] == f"{image_id}.jpg"
        assert len(anns) == len(drawn[image_id])
        for ann, obj in zip(anns, drawn[image_id]):
            assert VOC_CLASSES[ann["category_id"] - 1] == obj.name
            assert ann["bbox"] == tight_box(obj.mask)  # the XML box is the mask's tight box
            decoded = coco.annToMask(ann).astype(bool)
            assert np.array_equal(decoded, obj.mask)  # exact, so IoU = 1 >= 0.95
            assert ann["area"] == obj.mask.sum()
            assert (ann["iscrowd"], ann.get("difficult", 0)) == (int(obj.difficult), int(obj.difficult))


def test_polygons_where_they_hold_rle_for_the_mask_with_a_hole(converted):
    out, _, summary = converted
    coco = COCO(str(out / "annotations" / "train.json"))
    kinds = {VOC_CLASSES[a["category_id"] - 1]: type(a["segmentation"]).__name__ for a in coco.anns.values()}
    assert kinds == {"person": "list", "dog": "list", "car": "list", "chair": "dict"}
    car = next(a for a in coco.anns.values() if a["category_id"] == VOC_CLASSES.index("car") + 1)
    assert len(car["segmentation"]) == 2  # the two parts on either side of the pole
    assert summary["splits"]["train"]["masks"] == {"polygon": 4, "rle": 1}


def test_summary_counts(converted):
    out, _, summary = converted
    assert json.loads((out / "summary.json").read_text()) == summary
    train, val = summary["splits"]["train"], summary["splits"]["val"]
    assert (train["images_listed"], train["images_written"], train["images_skipped"]) == (2, 2, {})
    assert (train["objects_read"], train["objects_written"], train["difficult"]) == (5, 5, {"ignored": 1})
    assert (val["objects_read"], val["objects_written"], val["masks"]) == (3, 3, {"polygon": 3})
    assert train["problems"] == [] and train["class_disagreements"] == 0
    assert set(summary["splits"]) == {"train", "val", "detection_train", "detection_val", "detection_trainval"}


def test_detection_splits_have_boxes_only(converted):
    out, drawn, summary = converted
    for split, ids in MAIN_SPLITS.items():
        coco = COCO(str(out / "annotations" / f"detection_{split}.json"))
        by_file = annotations_by_file(coco)
        assert list(by_file) == ids
        for image_id, anns in by_file.items():
            assert [a["bbox"] for a in anns] == [tight_box(o.mask) for o in drawn[image_id]]
            assert all("segmentation" not in a and a["area"] == a["bbox"][2] * a["bbox"][3] for a in anns)
    assert summary["splits"]["detection_trainval"]["objects_written"] == sum(len(o) for o in drawn.values())


@pytest.mark.parametrize("policy, iscrowd, written", [("keep", 0, 5), ("drop", None, 4)])
def test_difficult_policy(voc, tmp_path, policy, iscrowd, written):
    root, _ = voc
    summary = convert_voc2012(root, tmp_path / "out", difficult=policy)
    assert summary["splits"]["train"]["objects_written"] == written
    assert summary["splits"]["train"]["difficult"] == {{"keep": "kept", "drop": "dropped"}[policy]: 1}
    anns = json.loads((tmp_path / "out" / "annotations" / "train.json").read_text())["annotations"]
    difficult = [a for a in anns if a.get("difficult")]
    assert [a["iscrowd"] for a in difficult] == ([] if iscrowd is None else [iscrowd])


def test_output_is_deterministic_and_images_are_linked(voc, tmp_path):
    root, _ = voc
    first, second = tmp_path / "a", tmp_path / "b"
    convert_voc2012(root, first, detection_splits=True)
    convert_voc2012(root, second, detection_splits=True)
    for name in sorted(p.name for p in (first / "annotations").iterdir()):
        assert (first / "annotations" / name).read_bytes() == (second / "annotations" / name).read_bytes()
    assert (first / "JPEGImages").resolve() == (root / "JPEGImages").resolve()
    assert not [p for p in first.rglob("*") if p.name.startswith(".")]  # no temporary files left
    convert_voc2012(root, first, rebuild=True)  # again into the same folder: the link is replaced, not nested
    assert (first / "JPEGImages" / "2008_000001.jpg").is_file()


def test_mask_encoding_round_trips_random_shapes():
    """Unions of random disks (mostly polygons) and random noise (holes: RLE) decode to the same pixels."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :50]
    kinds = []
    for i in range(40):
        if i % 2:
            mask = rng.random((40, 50)) < rng.uniform(0.2, 0.8)
        else:
            mask = np.zeros((40, 50), bool)
            for cy, cx, r in rng.uniform((0, 0, 0.5), (40, 50, 9), size=(rng.integers(1, 4), 3)):
                mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        if not mask.any():
            continue
        segmentation, kind = encode_mask(mask)
        kinds.append(kind)
        assert np.array_equal(decode_segmentation(segmentation, *mask.shape), mask), kind
    assert kinds.count("polygon") >= 10 and kinds.count("rle") >= 10


# --- bad input: one corruption per case; the image is skipped and counted, or --strict raises -------------


def _replace_xml(root, image_id, old, new):
    path = root / "Annotations" / f"{image_id}.xml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _rewrite_object_png(root, image_id, change):
    path = root / "SegmentationObject" / f"{image_id}.png"
    with Image.open(path) as image:
        palette, indices = image.getpalette(), np.array(image)
    change(indices)
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette)
    image.save(path)


BAD_INPUTS = {
    "malformed XML": (lambda r: _replace_xml(r, "2008_000002", "</annotation>", ""), "Annotations/2008_000002.xml"),
    "missing image": (lambda r: (r / "JPEGImages" / "2008_000002.jpg").unlink(), "JPEGImages/2008_000002.jpg"),
    "missing mask": (lambda r: (r / "SegmentationObject" / "2008_000002.png").unlink(), "2008_000002.png"),
    "mask index without XML object": (
        lambda r: _rewrite_object_png(r, "2008_000002", lambda m: m.__setitem__((slice(0, 3), slice(0, 3)), 3)),
        "SegmentationObject/2008_000002.png",
    ),
    "XML object without mask": (
        lambda r: _rewrite_object_png(r, "2008_000002", lambda m: m.__setitem__(m == 2, 0)),
        "SegmentationObject/2008_000002.png",
    ),
    "box outside the image": (
        lambda r: _replace_xml(r, "2008_000002", "<xmax>26</xmax>", "<xmax>70</xmax>"),
        "Annotations/2008_000002.xml",
    ),
    "inverted box": (
        lambda r: _replace_xml(r, "2008_000002", "<xmin>5</xmin>", "<xmin>30</xmin>"),
        "Annotations/2008_000002.xml",
    ),
    "unknown class": (lambda r: _replace_xml(r, "2008_000002", "chair", "stool"), "Annotations/2008_000002.xml"),
    "missing XML field": (
        lambda r: _replace_xml(r, "2008_000002", "<ymin>33</ymin>", ""),
        "Annotations/2008_000002.xml",
    ),
    "image size mismatch": (
        lambda r: _replace_xml(r, "2008_000002", "<width>64</width>", "<width>65</width>"),
        "Annotations/2008_000002.xml",
    ),
}


@pytest.mark.parametrize("reason", sorted(BAD_INPUTS))
def test_bad_input_skips_the_image_and_counts_it(voc, tmp_path, reason):
    root, _ = voc
    corrupt, named_file = BAD_INPUTS[reason]
    corrupt(root)
    summary = convert_voc2012(root, tmp_path / "out")
    train = summary["splits"]["train"]
    assert train["images_skipped"] == {reason: 1}
    assert (train["images_written"], train["objects_written"]) == (1, 3)  # 2008_000001 is intact
    in_skipped_image = 0 if reason == "malformed XML" else 2  # objects of an XML that does not parse are unknown
    assert (train["objects_in_skipped_images"], train["objects_read"]) == (in_skipped_image, 3 + in_skipped_image)
    assert len(train["problems"]) == 1 and named_file in train["problems"][0]
    written = json.loads((tmp_path / "out" / "annotations" / "train.json").read_text())
    assert [i["file_name"] for i in written["images"]] == ["2008_000001.jpg"]

    with pytest.raises(VocInputError, match=named_file.replace(".", r"\.")) as error:
        convert_voc2012(root, tmp_path / "strict", strict=True)
    assert error.value.reason == reason
    assert not (tmp_path / "strict" / "annotations" / "train.json").exists()


def test_class_disagreement_is_reported_and_kept(voc, tmp_path):
    root, _ = voc
    _replace_xml(root, "2008_000001", "<name>dog</name>", "<name>cat</name>")
    summary = convert_voc2012(root, tmp_path / "out")
    train = summary["splits"]["train"]
    assert train["class_disagreements"] == 1 and train["images_skipped"] == {}
    assert "object 3 is 'cat' in the XML, 'dog' in SegmentationClass" in train["problems"][0]
    with pytest.raises(VocInputError, match="SegmentationClass/2008_000001.png.*object 3"):
        convert_voc2012(root, tmp_path / "strict", strict=True)


def test_missing_voc_root_is_named(tmp_path):
    with pytest.raises(VocInputError, match="JPEGImages.*VOC2012 folder"):
        convert_voc2012(tmp_path / "nowhere", tmp_path / "out")


def test_script_prints_the_summary_and_fails_cleanly(voc, tmp_path):
    root, _ = voc
    script = ROOT / "datasets" / "prepare_voc2012_coco.py"
    run = [sys.executable, str(script), "--voc-root", str(root), "--output-dir", str(tmp_path / "out")]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "train: 2/2 images written, 0 skipped" in proc.stdout and "masks: 4 polygon, 1 rle" in proc.stdout
    _replace_xml(root, "2008_000003", "<name>cat</name>", "<name>kitten</name>")
    proc = subprocess.run([*run, "--strict"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "annotations_sha256" in proc.stderr  # changed inputs: refused without --rebuild
    proc = subprocess.run([*run, "--strict", "--rebuild"], capture_output=True, text=True, timeout=300)
    last_line = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last_line.startswith("error: ") and "2008_000003.xml: object 1" in last_line
    assert "Traceback" not in proc.stderr


# --- registration, evaluation and training on the converted data -------------------------------------------


def voc_cfg(config: str, out: Path, *opts: str):
    """The project's config (registering the VOC datasets below ``out``), on the CPU, without weights."""
    overrides = ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "DATASETS.ROOTS.VOC_2012_COCO", str(out), *opts]
    return setup_cfg(ROOT / "configs" / config, overrides)


def test_registered_from_config_root(converted):
    out, drawn, _ = converted
    register_datasets_from_config(voc_cfg("VOC-InstanceSegmentation/mask_rcnn_R_50_FPN_sna.yaml", out))
    try:
        dicts = DatasetCatalog.get("voc_2012_coco_train")
        assert MetadataCatalog.get("voc_2012_coco_train").thing_classes == list(VOC_CLASSES)
        assert [Path(d["file_name"]).is_file() for d in dicts] == [True, True]
        crowd = [a for d in dicts for a in d["annotations"] if a["iscrowd"]]
        assert len(crowd) == 1 and all("segmentation" in a for d in dicts for a in d["annotations"])
    finally:
        register_voc_2012_coco(None)


@pytest.mark.parametrize("split", ["train", "val"])
def test_coco_evaluator_gives_100_ap_to_the_ground_truth(converted, tmp_path, split):
    """Predictions equal to the drawn objects, difficult ones left out (they are ignored), score AP 100."""
    out, drawn, _ = converted
    cfg = voc_cfg("VOC-InstanceSegmentation/mask_rcnn_R_50_FPN_sna.yaml", out)
    register_datasets_from_config(cfg)
    try:
        evaluator = build_evaluator(cfg, f"voc_2012_coco_{split}", str(tmp_path / "eval"))
        evaluator.reset()
        for d in DatasetCatalog.get(f"voc_2012_coco_{split}"):
            objects = [o for o in drawn[Path(d["file_name"]).stem] if not o.difficult]
            instances = Instances(SIZE)
            boxes = [BoxMode.convert(tight_box(o.mask), BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) for o in objects]
            instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
            instances.scores = torch.ones(len(objects))
            instances.pred_classes = torch.tensor([VOC_CLASSES.index(o.name) for o in objects])
            instances.pred_masks = BitMasks(torch.from_numpy(np.stack([o.mask for o in objects])))
            evaluator.process([{"image_id": d["image_id"]}], [{"instances": instances}])
        results = evaluator.evaluate()
    finally:
        register_voc_2012_coco(None)
    assert results["bbox"]["AP"] == pytest.approx(100.0) and results["segm"]["AP"] == pytest.approx(100.0)


def test_mask_rcnn_trains_a_step_on_the_converted_data(converted):
    out, _, _ = converted
    cfg = voc_cfg(
        "VOC-InstanceSegmentation/mask_rcnn_R_50_FPN_sna.yaml",
        out,
        *("INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "96", "SOLVER.IMS_PER_BATCH", "2"),
        *("DATALOADER.NUM_WORKERS", "0"),
    )
    register_datasets_from_config(cfg)
    try:
        model = build_model(cfg)
        batch = next(iter(build_detection_train_loader(cfg)))
    finally:
        register_voc_2012_coco(None)
    assert {Path(b["file_name"]).stem for b in batch} <= set(SEGMENTATION_SPLITS["train"])
    assert all(b["instances"].has("gt_masks") for b in batch)
    model.train()
    with EventStorage(0):
        losses = model(batch)
    assert {"loss_mask", "loss_cls", "loss_box_reg"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()


def test_an_image_without_objects_is_written_empty(tmp_path):
    root = tmp_path / "VOC2012"
    write_voc_image(root, "2008_000010", [DrawnObject("bird", rect(3, 3, 9, 9))])
    write_voc_image(root, "2008_000011", [])
    write_split(root, "Segmentation", "train", ["2008_000010", "2008_000011"])
    write_split(root, "Segmentation", "val", ["2008_000010"])  # an empty val list is refused
    summary = convert_voc2012(root, tmp_path / "out")
    assert summary["splits"]["train"]["images_written"] == 2 and summary["splits"]["val"]["images_listed"] == 1
    coco = json.loads((tmp_path / "out" / "annotations" / "train.json").read_text())
    assert [len([a for a in coco["annotations"] if a["image_id"] == i["id"]]) for i in coco["images"]] == [1, 0]
