"""Fuzzing the VOC2012 -> COCO converter (``convert_voc2012``) with hypothesis.

Each example copies the small tree of ``voc_tree.py``, corrupts one or two of its files (XML
truncated, overwritten with random bytes, a field replaced by random text or an odd number; a PNG
mask or a JPEG truncated, with flipped bytes, random, or replaced by another image; a split list with
odd lines or bytes), converts it, and checks that the outcome is a ``VocInputError`` or a complete
output whose counts add up (every written image decodes at its listed size, every box finite and in
its image, every mask of the image's size and area, no temporary file), and that ``strict`` raises exactly when
something was skipped or reported. Deterministic (``derandomize``); ``max_examples`` examples per test.
"""

import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from helpers.fuzz_corruption import corrupt_bytes, corrupted_copy
from helpers.voc_tree import MAIN_SPLITS, SEGMENTATION_SPLITS, write_voc_tree
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from sna_det.data.prepare.masks import decode_segmentation
from sna_det.data.prepare.voc import VocInputError, convert_voc2012

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
IMAGE_IDS = sorted({i for ids in MAIN_SPLITS.values() for i in ids})
SEGMENTED_IDS = sorted({i for ids in SEGMENTATION_SPLITS.values() for i in ids})
XML_FIELDS = ["size/width", "size/height", "name", "difficult", "bndbox/xmin", "bndbox/ymin", "bndbox/xmax"]
XML_FIELDS += ["bndbox/ymax"]

odd_text = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e308", "1e999", "-1", "0", "0.5", "64.5", " 7 ", "", "9" * 40]),
    st.floats().map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.text(max_size=8),
)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("voc_template") / "VOC2012"
    write_voc_tree(root)
    return root


def corrupt_xml(draw, root: Path) -> None:
    path = root / "Annotations" / f"{draw(st.sampled_from(IMAGE_IDS))}.xml"
    try:
        tree = ET.parse(path)
    except ET.ParseError:  # already corrupted
        tree = None
    if tree is None or draw(st.booleans()):
        path.write_bytes(corrupt_bytes(draw, path.read_bytes()))
        return
    objects = tree.getroot().findall("object")
    field = draw(st.sampled_from(XML_FIELDS))
    if not objects and not field.startswith("size"):
        field = "size/width"
    parent = tree.getroot() if field.startswith("size") else objects[draw(st.integers(0, len(objects) - 1))]
    element = parent.find(field)
    if element is None:  # deleted by an earlier step (found by tools/fuzz.py): corrupt the bytes instead
        path.write_bytes(corrupt_bytes(draw, path.read_bytes()))
        return
    action = draw(st.sampled_from(["text", "text", "delete", "duplicate object"]))
    if action == "text":
        element.text = draw(odd_text)
    elif action == "delete":
        parent.find(field.rsplit("/", 1)[0]).remove(element) if "/" in field else parent.remove(element)
    else:
        tree.getroot().append(objects[draw(st.integers(0, len(objects) - 1))])
    tree.write(path)


def corrupt_png(draw, root: Path) -> None:
    folder = draw(st.sampled_from(["SegmentationObject", "SegmentationClass"]))
    path = root / folder / f"{draw(st.sampled_from(SEGMENTED_IDS))}.png"
    if draw(st.booleans()):
        path.write_bytes(corrupt_bytes(draw, path.read_bytes()))
        return
    try:
        with Image.open(path) as image:
            indices = np.array(image)
    except OSError:  # already corrupted by an earlier draw: the PNG stays broken
        return
    mode = draw(st.sampled_from(["P", "L", "RGB", "I;16", "1"]))
    shape = draw(st.sampled_from([indices.shape, (indices.shape[0], indices.shape[1] + 1), (1, 1)]))
    values = draw(st.lists(st.sampled_from([0, 1, 2, 3, 4, 255]), min_size=1, max_size=3))
    replaced = np.random.default_rng(len(values)).choice(values, size=shape).astype(np.uint8)
    if shape == indices.shape and draw(st.booleans()):  # a few pixels changed only
        replaced = np.where(np.random.default_rng(1).random(shape) < 0.05, replaced, indices)
    picture = Image.fromarray(replaced.astype(np.uint16) if mode == "I;16" else replaced)
    if mode in ("P", "RGB", "1"):
        picture = picture.convert(mode)
    picture.save(path)


def corrupt_jpeg(draw, root: Path) -> None:
    path = root / "JPEGImages" / f"{draw(st.sampled_from(IMAGE_IDS))}.jpg"
    kind = draw(st.sampled_from(["bytes", "bytes", "other size", "delete"]))
    if not path.exists():  # deleted by an earlier corruption
        return
    if kind == "bytes":
        path.write_bytes(corrupt_bytes(draw, path.read_bytes()))
    elif kind == "delete":
        path.unlink()
    else:
        Image.new("RGB", draw(st.sampled_from([(65, 48), (48, 64), (1, 1)]))).save(path)


def corrupt_split_list(draw, root: Path) -> None:
    path = root / "ImageSets" / draw(st.sampled_from(["Segmentation/train.txt", "Segmentation/val.txt"]))
    if draw(st.booleans()):
        path.write_bytes(corrupt_bytes(draw, path.read_bytes()))
        return
    line = st.one_of(
        st.sampled_from(IMAGE_IDS), st.sampled_from(["", "   ", "2008_000001 -1", "../VOC2012/2008_000001", "\t"])
    )
    lines = draw(st.lists(st.one_of(line, st.text(max_size=12)), max_size=6))
    path.write_text("\n".join(lines).replace("\r", ""), encoding="utf-8", errors="surrogatepass")


CORRUPTIONS = {"xml": corrupt_xml, "png": corrupt_png, "jpeg": corrupt_jpeg, "split list": corrupt_split_list}


def assert_complete_output(out: Path, root: Path, summary: dict) -> None:
    """Counts add up; written images decode at their size; boxes finite and inside; masks decode."""
    assert json.loads((out / "summary.json").read_text()) == summary
    for stem, s in summary["splits"].items():
        coco = json.loads((out / "annotations" / f"{stem}.json").read_text())
        assert s["images_listed"] == s["images_written"] + sum(s["images_skipped"].values())
        assert (len(coco["images"]), len(coco["annotations"])) == (s["images_written"], s["objects_written"])
        dropped = s["difficult"].get("dropped", 0)
        assert s["objects_read"] == s["objects_written"] + s["objects_in_skipped_images"] + dropped
        assert len(s["problems"]) == sum(s["images_skipped"].values()) + s["class_disagreements"]
        size = {}
        for image in coco["images"]:
            with Image.open(root / "JPEGImages" / image["file_name"]) as jpeg:
                jpeg.load()  # the whole file decodes
                assert jpeg.size == (image["width"], image["height"])
            size[image["id"]] = (image["width"], image["height"])
        for a in coco["annotations"]:
            x, y, w, h = a["bbox"]
            width, height = size[a["image_id"]]
            assert all(map(math.isfinite, a["bbox"])) and w > 0 and h > 0
            assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
            assert 1 <= a["category_id"] <= 20 and math.isfinite(a["area"]) and a["area"] > 0
            if "segmentation" in a:
                mask = decode_segmentation(a["segmentation"], height, width)
                assert mask.shape == (height, width) and mask.sum() == a["area"]  # boxes and masks are VOC's own
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary file left


@FUZZ
@given(data=st.data(), detection_splits=st.booleans())
def test_corrupted_voc_tree_gives_a_named_error_or_counted_skips(template, data, detection_splits):
    kinds = data.draw(st.lists(st.sampled_from(sorted(CORRUPTIONS)), min_size=1, max_size=2))
    with corrupted_copy(template, "VOC2012", CORRUPTIONS, kinds, data.draw) as (root, out):
        try:
            summary = convert_voc2012(root, out, detection_splits=detection_splits)
        except VocInputError as error:  # a split list that cannot be read, or nothing left to convert
            event(f"error: {error.reason}")
            if error.reason in ("no image kept", "empty split"):  # e.g. a split list emptied: its summary says why
                assert (out / "summary.json").exists() and not list(out.glob("annotations/*.json"))
                splits = json.loads((out / "summary.json").read_text())["splits"]
                assert any(s["images_written"] == 0 for s in splits.values())
                return
            assert error.reason == "unreadable split list" and "ImageSets/Segmentation" in str(error), error
            assert not (out / "summary.json").exists()
            return
        assert_complete_output(out, root, summary)
        for reason in {r for s in summary["splits"].values() for r in s["images_skipped"]}:
            event(f"skipped: {reason}")  # which outcomes the examples reached (--hypothesis-show-statistics)
        problems = sum(sum(s["images_skipped"].values()) + s["class_disagreements"] for s in summary["splits"].values())
        try:
            convert_voc2012(root, out.parent / "strict", detection_splits=detection_splits, strict=True)
        except VocInputError as error:
            assert problems > 0
            assert error.reason in {r for s in summary["splits"].values() for r in s["images_skipped"]} | {
                "class disagreement"
            }
            assert str(error).startswith(str(root))  # names the file
        else:
            assert problems == 0
            assert (out.parent / "strict" / "summary.json").is_file()


def test_a_truncated_jpeg_is_skipped_not_listed(template, tmp_path):
    """Found by the fuzzing: a JPEG whose header is intact but whose data is cut off was listed."""
    root = tmp_path / "VOC2012"
    shutil.copytree(template, root)
    jpeg = root / "JPEGImages" / "2008_000001.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    with Image.open(jpeg) as image:
        assert image.size == (64, 48)  # the header alone still gives the size
    summary = convert_voc2012(root, tmp_path / "out")
    train = summary["splits"]["train"]
    assert train["images_skipped"] == {"bad image": 1} and train["images_written"] == 1
    assert "2008_000001.jpg" in train["problems"][0]


def test_a_split_list_that_is_not_text_is_named(template, tmp_path):
    root = tmp_path / "VOC2012"
    shutil.copytree(template, root)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_bytes(b"2008_000003\n\xff\xfe\n")
    with pytest.raises(VocInputError, match=r"ImageSets/Segmentation/val.txt: not UTF-8 text") as error:
        convert_voc2012(root, tmp_path / "out")
    assert error.value.reason == "unreadable split list"
    assert not (tmp_path / "out" / "annotations").exists()
