"""Fuzzing the YOLO, labelme and VIA converters with hypothesis.

Each example copies a folder of the real photo's objects (``format_exports``, boxes and polygons
mixed), corrupts it (a JSON value replaced by a random JSON value or removed; a label line or a
``data.yaml`` key replaced by random text or odd numbers; a file's bytes), converts it, and checks
that the outcome is a ``ConversionInputError`` with nothing written, or a complete output whose
counts add up (every box finite and in its image, every mask of its area), and that ``strict``
raises exactly when something was skipped. Deterministic (``derandomize``).
"""

import json
import math

import pytest
import yaml
from helpers.format_exports import OBJECTS_BY_IMAGE, write_labelme, write_via, write_yolo
from helpers.fuzz_corruption import corrupt_bytes, corrupted_copy
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sna_det.data.prepare.input_files import ConversionInputError
from sna_det.data.prepare.labelme import convert_labelme
from sna_det.data.prepare.masks import decode_segmentation
from sna_det.data.prepare.via import convert_via
from sna_det.data.prepare.yolo import convert_yolo

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
SMALL = {image: objects[:6] for image, objects in OBJECTS_BY_IMAGE.items()}  # a few of each kind, fast
NAMES = sorted({o.name for objects in SMALL.values() for o in objects})
YAML = {"path": "/elsewhere", "train": "images/train", "val": "images/val", "names": NAMES}

json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.one_of(st.integers(-5, 600), st.floats(-5, 600)), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
odd_numbers = st.sampled_from(["nan", "inf", "-1", "0", "1", "0.5", "1.2", "1e9", "3", "x", ""])


def _paths(value, prefix=()):
    """Every (key path) of a JSON value."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


def corrupt_json_value(draw, path):
    try:
        data = json.loads(path.read_text())
    except ValueError:  # already corrupted
        return
    if not isinstance(data, (dict, list)) or not data:
        return
    where = draw(st.sampled_from(list(_paths(data))[1:]))
    parent = data
    for key in where[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[where[-1]]
    else:
        parent[where[-1]] = draw(json_values)
    path.write_text(json.dumps(data))


def labelme_corruption(draw, root):
    path = root / f"{draw(st.sampled_from(sorted(SMALL)))}.json"
    if draw(st.integers(0, 4)) == 0:
        path.write_bytes(corrupt_bytes(draw, path.read_bytes()))
    else:
        corrupt_json_value(draw, path)


def via_corruption(draw, root):
    path = root / draw(st.sampled_from(["train", "val"])) / "via_region_data.json"
    if draw(st.integers(0, 4)) == 0:
        path.write_bytes(corrupt_bytes(draw, path.read_bytes()))
    else:
        corrupt_json_value(draw, path)


def yolo_corruption(draw, root):
    kind = draw(st.sampled_from(["line", "line", "line", "yaml", "bytes"]))
    if kind == "yaml":
        data = yaml.safe_load((root / "data.yaml").read_text())
        data[draw(st.sampled_from(["path", "train", "val", "names", "nc"]))] = draw(json_values)
        (root / "data.yaml").write_text(yaml.safe_dump(data))
        return
    path = root / "labels" / draw(st.sampled_from(["train/room.txt", "val/room_flipped.txt"]))
    if kind == "bytes":
        path.write_bytes(corrupt_bytes(draw, path.read_bytes()))
        return
    try:
        lines = path.read_text().splitlines() or [""]
    except UnicodeDecodeError:  # already corrupted
        return
    fields = draw(st.lists(st.one_of(odd_numbers, st.text(max_size=4)), max_size=9))
    lines[draw(st.integers(0, len(lines) - 1))] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")


FORMATS = {
    "yolo": (lambda root: write_yolo(root, SMALL, polygons=True, yaml_text=yaml.safe_dump(YAML)), convert_yolo,
             yolo_corruption, {}),
    "labelme": (lambda root: write_labelme(root, SMALL, polygons=True), convert_labelme, labelme_corruption, {}),
    "via": (lambda root: write_via(root, SMALL, polygons=True), convert_via, via_corruption,
            {"class_attribute": "class"}),
}  # fmt: skip


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    folders = {}
    for fmt, (write, *_) in FORMATS.items():
        folders[fmt] = tmp_path_factory.mktemp(fmt) / fmt
        write(folders[fmt])
    return folders


def assert_complete_output(out, summary):
    for stem, s in summary["splits"].items():
        coco = json.loads((out / "annotations" / f"{stem}.json").read_text())
        assert s["images_listed"] == s["images_written"] + sum(s["images_skipped"].values())
        assert (len(coco["images"]), len(coco["annotations"])) == (s["images_written"], s["objects_written"])
        assert s["objects_read"] == s["objects_written"] + s["objects_in_skipped_images"]
        size = {i["id"]: (i["width"], i["height"]) for i in coco["images"]}
        assert all((out / "images" / i["file_name"]).is_file() for i in coco["images"])
        for a in coco["annotations"]:
            x, y, w, h = a["bbox"]
            width, height = size[a["image_id"]]
            assert all(map(math.isfinite, a["bbox"])) and w > 0 and h > 0
            assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
            assert 1 <= a["category_id"] <= len(summary["classes"]) and a["area"] > 0
            if "segmentation" in a:
                assert decode_segmentation(a["segmentation"], height, width).sum() == pytest.approx(a["area"])
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@FUZZ
@given(data=st.data())
def test_corrupted_export_gives_a_named_error_or_counted_skips(templates, fmt, data):
    _, convert, corrupt, options = FORMATS[fmt]
    kinds = data.draw(st.lists(st.just("corrupt"), min_size=1, max_size=2))
    with corrupted_copy(templates[fmt], fmt, {"corrupt": corrupt}, kinds, data.draw) as (root, out):
        try:
            summary = convert(root, out, **options)
        except ConversionInputError as error:  # the folder cannot be read as the format, or nothing was kept
            event(f"error: {error.reason}")
            assert str(error).startswith(str(root)) or str(error).startswith(str(out))
            assert not list(out.glob("annotations/*.json"))
            return
        assert_complete_output(out, summary)
        skipped = sum(sum(s["images_skipped"].values()) for s in summary["splits"].values())
        for reason in {r for s in summary["splits"].values() for r in s["images_skipped"]}:
            event(f"skipped: {reason}")
        try:
            convert(root, out.parent / "strict", strict=True, **options)
        except ConversionInputError as error:
            assert skipped > 0 and str(error).startswith(str(root))
        else:
            assert skipped == 0
