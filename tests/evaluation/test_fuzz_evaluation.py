"""Fuzzing the detection evaluator (``evaluate_detections``, ``tools/evaluate_detections.py``) with hypothesis.

Random and corrupted ground truth and detections (wrong types, missing fields, NaN / infinite /
negative / huge boxes, unknown ids, empty lists, bytes that are not JSON) must give a result whose
counts add up or a ValueError naming the file (and the detection or annotation), never an
exception from inside pycocotools or numpy. Deterministic (``derandomize``); the number of examples
per test is ``max_examples`` (``pytest --hypothesis-show-statistics`` prints what ran).
"""

import contextlib
import io
import json
import math
import tempfile
from pathlib import Path

import pytest
from helpers import run_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sna_det.evaluation import evaluate_detections

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

IMAGES, CATEGORIES = (1, 2, 3), (1, 2)
finite = st.floats(min_value=0, max_value=60, allow_nan=False)
box = st.tuples(finite, finite, finite, finite).map(list)
weird_number = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), -1.0, -1e308, 1e308, 10**400, 0, True, None]),
    st.floats(),
    st.integers(),
)
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=8,
)


@st.composite
def ground_truth(draw) -> dict:
    """A valid COCO GT: 3 images, categories "a" and "b", 0-5 boxes (category "b" may have none)."""
    annotations = []
    for k in range(draw(st.integers(0, 5))):
        x, y, w, h = draw(box)
        image, category = draw(st.sampled_from(IMAGES)), draw(st.sampled_from(CATEGORIES))
        annotations.append(
            {"id": k + 1, "image_id": image, "category_id": category, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
        )
    return {
        "images": [{"id": i, "file_name": f"{i}.png", "width": 120, "height": 120} for i in IMAGES],
        "annotations": annotations,
        "categories": [{"id": c, "name": "ab"[c - 1]} for c in CATEGORIES],
    }


known_image, known_category = st.sampled_from(IMAGES), st.sampled_from(CATEGORIES)
not_a_path = json_value.filter(lambda v: not isinstance(v, str))  # a str argument names a file


def detection(image=known_image, category=known_category):
    return st.fixed_dictionaries(
        {"image_id": image, "category_id": category, "bbox": box, "score": st.floats(0, 1, allow_nan=False)}
    )


any_id = st.one_of(st.integers(-3, 6), st.text(max_size=3))  # unknown images and categories too


def assert_result_adds_up(result: dict, gt: dict, detections: list) -> None:
    """Counts by an independent reading of the input; AP None exactly for classes without GT, else in [0, 100]."""
    images = {i["id"] for i in gt["images"]}
    unknown_image = sum(d["image_id"] not in images for d in detections)
    unknown_category = sum(d["image_id"] in images and d["category_id"] not in CATEGORIES for d in detections)
    assert result["skipped"] == {"unknown image_id": unknown_image, "unknown category_id": unknown_category}
    evaluated = [d for d in detections if d["image_id"] in images and d["category_id"] in CATEGORIES]
    assert result["detections"] == {"read": len(detections), "evaluated": len(evaluated)}
    assert result["images_without_detections"] == len(images - {d["image_id"] for d in evaluated})
    for kind in ("coco", "voc2010"):
        for name, category in (("a", 1), ("b", 2)):
            ap = result[kind]["per_class"][name]
            has_gt = any(a["category_id"] == category for a in gt["annotations"])
            assert (ap is None) == (not has_gt)
            if has_gt and not any(d["category_id"] == category for d in evaluated):
                assert ap == 0.0  # every GT box missed
            assert ap is None or 0.0 <= ap <= 100.0 + 1e-9


@FUZZ
@given(
    gt=ground_truth(),
    detections=st.lists(st.one_of(detection(), detection(any_id, any_id)), max_size=8),
)
def test_well_formed_detections_of_unknown_images_or_categories_are_skipped_and_counted(gt, detections):
    result = evaluate_detections(gt, detections)
    assert_result_adds_up(result, gt, detections)
    known = [d for d in detections if d["image_id"] in IMAGES and d["category_id"] in CATEGORIES]
    alone = evaluate_detections(gt, known)  # what is skipped changes no AP
    assert (alone["coco"], alone["voc2010"]) == (result["coco"], result["voc2010"])


@st.composite
def corrupted_detections(draw):
    """A list of detections with some fields replaced by random JSON or odd numbers, or deleted, or
    the list itself replaced by random JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(not_a_path)
    detections = draw(st.lists(detection(), max_size=5))
    for _ in range(draw(st.integers(0, 3))):
        if not detections:
            break
        d = detections[draw(st.integers(0, len(detections) - 1))]
        field = draw(st.sampled_from(["image_id", "category_id", "bbox", "score", "bbox coordinate", "extra"]))
        action = draw(st.sampled_from(["replace", "delete", "number"]))
        if field == "bbox coordinate":
            if isinstance(d.get("bbox"), list) and len(d["bbox"]) == 4:  # not already replaced or deleted
                d["bbox"][draw(st.integers(0, 3))] = draw(weird_number)
        elif field == "extra":  # e.g. "caption" or "segmentation", which pycocotools' loadRes reads first
            d[draw(st.sampled_from(["caption", "segmentation", "keypoints", "id", "area"]))] = draw(json_value)
        elif action == "delete":
            d.pop(field, None)  # a field deleted twice is deleted
        else:
            d[field] = draw(weird_number if action == "number" else json_value)
    if draw(st.booleans()) and detections:
        detections[draw(st.integers(0, len(detections) - 1))] = draw(json_value)
    return detections


def finite_number(value) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond float range
        return False


def finite_box(value) -> bool:
    return isinstance(value, list) and len(value) == 4 and all(map(finite_number, value)) and min(value[2:]) >= 0


def well_formed(detections) -> bool:
    """Independent of the module: a list of objects with ids (int or str), a finite box, a finite score."""

    def is_id(v):
        return isinstance(v, (int, str)) and not isinstance(v, bool)

    return isinstance(detections, list) and all(
        isinstance(d, dict)
        and {"image_id", "category_id", "bbox", "score"} <= set(d)
        and is_id(d["image_id"])
        and is_id(d["category_id"])
        and finite_box(d["bbox"])
        and finite_number(d["score"])
        for d in detections
    )


@FUZZ
@given(gt=ground_truth(), detections=corrupted_detections())
def test_corrupted_detections_give_a_result_or_a_named_error(gt, detections):
    try:
        result = evaluate_detections(gt, detections)
    except ValueError as error:
        assert not well_formed(detections), error
        message = str(error)
        assert message.startswith("detections: ")
        if isinstance(detections, list):
            index = int(message.split("detection ", 1)[1].split()[0].rstrip(":"))
            assert not well_formed([detections[index]])  # the named detection is a broken one
            assert well_formed(detections[:index])  # and the first
        return
    assert well_formed(detections)
    assert_result_adds_up(result, gt, detections)


@st.composite
def corrupted_ground_truth(draw):
    """A valid GT with one part replaced by random JSON or odd numbers, or deleted."""
    gt = draw(ground_truth())
    if draw(st.integers(0, 9)) == 0:
        return draw(not_a_path)
    key = draw(st.sampled_from(["images", "annotations", "categories"]))
    records = gt[key]
    if not records or draw(st.integers(0, 4)) == 0:
        gt[key] = draw(json_value)
        return gt
    record = records[draw(st.integers(0, len(records) - 1))]
    field = draw(st.sampled_from(sorted(record)))
    action = draw(st.sampled_from(["replace", "delete", "number", "duplicate"]))
    if action == "delete":
        del record[field]
    elif action == "duplicate":
        records.append(dict(record))
    elif field == "bbox" and draw(st.booleans()):
        record["bbox"][draw(st.integers(0, 3))] = draw(weird_number)
    else:
        record[field] = draw(weird_number if action == "number" else json_value)
    return gt


@FUZZ
@given(gt=corrupted_ground_truth(), detections=st.lists(detection(), max_size=4))
def test_corrupted_ground_truth_gives_a_result_or_a_named_error(gt, detections):
    try:
        result = evaluate_detections(gt, detections)
    except ValueError as error:
        assert str(error).startswith("ground truth"), error
        return
    # accepted: every annotation has a finite box of a known image and category, and the counts hold
    images = {i["id"] for i in gt.get("images", [])}
    assert all(a["image_id"] in images and finite_box(a["bbox"]) for a in gt.get("annotations", []))
    assert sum(result["gt_boxes"].values()) == len(gt.get("annotations", []))
    for kind in ("coco", "voc2010"):
        assert all(ap is None or 0.0 <= ap <= 100.0 + 1e-9 for ap in result[kind]["per_class"].values())


def file_bytes(valid: st.SearchStrategy) -> st.SearchStrategy:
    """The JSON of ``valid`` (a GT or detections), truncated, with flipped bytes, or random bytes."""

    @st.composite
    def corrupt(draw):
        data = json.dumps(draw(valid)).encode()
        kind = draw(st.sampled_from(["intact", "truncated", "flipped", "random"]))
        if kind == "truncated":
            return data[: draw(st.integers(0, max(0, len(data) - 1)))]
        if kind == "flipped" and data:
            data = bytearray(data)
            for _ in range(draw(st.integers(1, 3))):
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
            return bytes(data)
        if kind == "random":
            return draw(st.binary(max_size=40))
        return data

    return corrupt()


def run_tool_on(gt: bytes, detections: bytes, folder: Path) -> tuple:
    """``tools/evaluate_detections.py`` in this process on these bytes as ``folder/{gt,dt}.json``, its
    result to ``folder/ap.json``: (exit code, stdout, stderr). Also the ``make fuzz`` evaluator target."""
    (folder / "gt.json").write_bytes(gt)
    (folder / "dt.json").write_bytes(detections)
    out, err = io.StringIO(), io.StringIO()
    argv = ["--gt", folder / "gt.json", "--dt", folder / "dt.json", "--output", folder / "ap.json"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_main("tools/evaluate_detections.py", *argv)
    return code, out.getvalue(), err.getvalue()


@FUZZ
@given(gt=file_bytes(ground_truth()), detections=file_bytes(corrupted_detections()))
def test_tool_exits_with_a_named_error_or_writes_a_complete_result(gt, detections):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        code, out, err = run_tool_on(gt, detections, tmp)
        if code == 1:
            assert err.startswith((f"error: {tmp / 'gt.json'}: ", f"error: {tmp / 'dt.json'}: "))
            assert not (tmp / "ap.json").exists()
        else:
            assert code == 0 and err == ""
            written = json.loads((tmp / "ap.json").read_text())
            read = written["detections"]["read"]
            assert read == written["detections"]["evaluated"] + sum(written["skipped"].values())
            assert f"detections: {read:,} read" in out
        assert sorted(p.name for p in tmp.iterdir()) in (["dt.json", "gt.json"], ["ap.json", "dt.json", "gt.json"])


@pytest.mark.parametrize("content", [b"", b"\xff\xfe", b"[", b"NaN", b'{"images": 3}'])
def test_tool_names_the_ground_truth_file(tmp_path, content, capsys):
    (tmp_path / "gt.json").write_bytes(content)
    (tmp_path / "dt.json").write_text("[]")
    assert (
        run_main(
            "tools/evaluate_detections.py", *["--gt", str(tmp_path / "gt.json"), "--dt", str(tmp_path / "dt.json")]
        )
        == 1
    )
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'gt.json'}: ")
