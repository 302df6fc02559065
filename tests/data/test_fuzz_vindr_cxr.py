"""Fuzzing the VinDr-CXR preparer (``prepare_vindr_cxr``) with hypothesis.

Each example copies a small synthetic VinBigData copy (``vindr_cxr_synthetic.py``) and corrupts it:
CSV rows with random ids, class names and coordinates (random text, NaN, inf, huge, negative), a
missing column, CSV bytes truncated or flipped; DICOMs truncated, with flipped bytes, or with a header
field (Rows, Columns, BitsAllocated, PhotometricInterpretation, ...) changed. The outcome must be a
``VinDrInputError`` naming the CSV, or a complete output whose counts add up (every CSV row and image
accounted for, every written PNG decodes at its listed size, every box finite and inside its image, no
temporary file), and ``strict`` must raise exactly when something was skipped. Deterministic
(``derandomize``); ``max_examples`` examples per test.
"""

import csv
import json
import math
import shutil
from pathlib import Path

import pydicom
import pytest
from helpers.fuzz_corruption import corrupt_bytes, corrupted_copy
from helpers.vindr_cxr_synthetic import CLASS_ID, IMAGES, KAGGLE_HEADER, write_vinbigdata
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from sna_det.data.prepare.vindr_cxr import PrepareOptions, VinDrInputError, prepare_vindr_cxr, read_dicom_uint8

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

odd_number = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e308", "-1e308", "1e999", "-1", "0", "", " 12 ", "9" * 40]),
    st.floats().map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.floats(0, 90).map(str),
    st.text(max_size=6),
)
image_id = st.one_of(st.sampled_from([*IMAGES, "img9", ""]), st.text(max_size=6))
class_name = st.one_of(st.sampled_from([*CLASS_ID, "nodule/MASS", "Rib fracture"]), st.text(max_size=8))
csv_row = st.fixed_dictionaries(
    {
        "image_id": image_id,
        "class_name": class_name,
        "class_id": st.sampled_from(["0", "3", "x"]),
        "rad_id": st.text(max_size=3),
        **{k: odd_number for k in ("x_min", "y_min", "x_max", "y_max")},
    }
)
dicom_field = st.one_of(
    st.tuples(st.just("Rows"), st.sampled_from([0, 1, 63, 65, 128, 65535])),
    st.tuples(st.just("Columns"), st.sampled_from([0, 1, 79, 81, 160, 65535])),
    st.tuples(st.just("BitsAllocated"), st.sampled_from([0, 1, 8, 12, 32])),
    st.tuples(st.just("BitsStored"), st.sampled_from([0, 1, 8, 17, 32])),
    st.tuples(st.just("PhotometricInterpretation"), st.sampled_from(["RGB", "PALETTE COLOR", "", "MONOCHROME3"])),
    st.tuples(st.just("SamplesPerPixel"), st.sampled_from([0, 3])),
    st.tuples(st.just("PixelRepresentation"), st.sampled_from([1, 2])),
    st.tuples(st.just("RescaleSlope"), st.sampled_from(["nan", "inf", "0", "1e308", "-1"])),
    st.tuples(st.just("WindowWidth"), st.sampled_from(["0", "-1", "nan", "1e308"])),
    st.tuples(st.just("PixelData"), st.sampled_from([b"", b"\x00\x01", None])),
)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return write_vinbigdata(tmp_path_factory.mktemp("vindr_template"))


def corrupt_csv(draw, root: Path) -> None:
    path = root / "train.csv"
    kind = draw(st.sampled_from(["rows", "rows", "rows", "missing column", "bytes"]))
    if kind == "bytes":
        path.write_bytes(corrupt_bytes(draw, path.read_bytes()))
        return
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except UnicodeDecodeError:  # already corrupted by an earlier step
        return
    header = list(KAGGLE_HEADER)
    if kind == "missing column":
        header.remove(draw(st.sampled_from(header)))
    else:
        for row in draw(st.lists(csv_row, min_size=1, max_size=4)):
            rows.insert(draw(st.integers(0, len(rows))), row)
    with open(path, "w", newline="", encoding="utf-8", errors="surrogatepass") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def corrupt_dicom(draw, root: Path) -> None:
    path = root / "train" / f"{draw(st.sampled_from(IMAGES))}.dicom"
    if draw(st.booleans()):
        path.write_bytes(corrupt_bytes(draw, path.read_bytes()))
        return
    try:
        ds = pydicom.dcmread(path)
    except Exception:  # already corrupted by an earlier step
        return
    name, value = draw(dicom_field)
    original = path.read_bytes()
    try:
        if value is None:
            del ds[name]
        else:
            setattr(ds, name, value)
        ds.save_as(path)
    except Exception:  # pydicom cannot write what an earlier step left (found by tools/fuzz.py): bytes instead
        path.write_bytes(corrupt_bytes(draw, original))


CORRUPTIONS = {"csv": corrupt_csv, "dicom": corrupt_dicom}
OPTIONS = st.builds(
    PrepareOptions,
    fusion=st.sampled_from(["per-finding", "wbf", "nms", "none"]),
    max_size=st.sampled_from([0, 40]),
    stats_only=st.sampled_from([False, False, False, True]),
    val_fraction=st.sampled_from([0.0, 0.25]),
).filter(lambda o: o.fusion != "per-finding" or o.stats_only)  # per-finding counts only: refused otherwise


def assert_complete_output(out: Path, result, options: PrepareOptions) -> None:
    """Every CSV row and image accounted for; PNGs decode at their size; boxes finite and inside."""
    report, read, kept, skipped = result.report, result.report["read"], result.report["kept"], result.report["skipped"]
    assert read["csv_rows"] == (
        read["finding_rows"] + read["no_finding_rows"] + read["other_label_rows"]
        + skipped["NaN box"] + skipped["inverted box"]
    )  # fmt: skip
    lost = report["finding_rows_of_skipped_images"]
    assert read["finding_rows"] == kept["finding_rows"] + skipped["box outside the image"] + lost
    images_out = sum(kept["images"].values()) + report["no_finding_images_dropped"]
    assert read["images"] == (
        images_out + skipped["unknown image id"] + skipped["unreadable image"] + skipped["no valid box"]
    )
    assert json.loads((out / "prepare_report.json").read_text()) == report
    assert json.loads((out / "summary.json").read_text()) == result.summary
    for split, counts in result.summary.items():
        assert kept["boxes"][split] == sum(counts.values())
        if options.stats_only:
            continue
        coco = json.loads((out / "annotations" / f"{split}.json").read_text())
        assert (len(coco["images"]), len(coco["annotations"])) == (kept["images"][split], kept["boxes"][split])
        size = {}
        for image in coco["images"]:
            with Image.open(out / "images" / image["file_name"]) as png:
                png.load()
                assert png.mode == "L" and png.size == (image["width"], image["height"])
            size[image["id"]] = (image["width"], image["height"])
        for a in coco["annotations"]:
            x, y, w, h = a["bbox"]
            width, height = size[a["image_id"]]
            assert all(map(math.isfinite, a["bbox"])) and w > 0 and h > 0
            assert x >= 0 and y >= 0 and x + w <= width * (1 + 1e-9) and y + h <= height * (1 + 1e-9)
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


@FUZZ
@given(data=st.data(), options=OPTIONS)
def test_corrupted_vindr_copy_gives_a_named_error_or_counted_skips(template, data, options):
    kinds = data.draw(st.lists(st.sampled_from(sorted(CORRUPTIONS)), min_size=1, max_size=3))
    with corrupted_copy(template, "vindr", CORRUPTIONS, kinds, data.draw) as (root, out):
        if options.val_fraction == 0 and not options.stats_only:  # no val and no test split: refused at once
            with pytest.raises(ValueError, match="--val-fraction 0 writes no val split"):
                prepare_vindr_cxr(root, out, options)
            assert not out.exists()
            return
        try:
            result = prepare_vindr_cxr(root, out, options)
        except VinDrInputError as error:  # a CSV that cannot be read at all, no image kept, or a split left empty
            if str(error).startswith(f"{out}: split ") and " is empty (" in str(error):
                event("error: a split left empty")
                report = json.loads((out / "prepare_report.json").read_text())
                split = str(error).split("split ", 1)[1].split()[0]
                assert report["kept"]["images"].get(split, 0) == 0 and not (out / "annotations").exists()
                return
            if str(error).startswith(f"{out}: no image kept"):
                event("error: no image kept")
                report = json.loads((out / "prepare_report.json").read_text())
                assert sum(report["kept"]["images"].values()) == 0 and not (out / "annotations").exists()
                assert len(report["skipped_items"]) == sum(report["skipped"].values()) > 0
                return
            assert str(error).startswith(f"{root / 'train.csv'}"), error
            event("error: unreadable CSV")
            assert not (out / "prepare_report.json").exists()
            return
        assert_complete_output(out, result, options)
        for reason, count in result.report["skipped"].items():
            if count:
                event(f"skipped: {reason}")  # which outcomes the examples reached (--hypothesis-show-statistics)
        try:
            prepare_vindr_cxr(root, out.parent / "strict", PrepareOptions(**{**vars(options), "strict": True}))
        except VinDrInputError as error:
            assert sum(result.report["skipped"].values()) > 0, error
            assert "--strict stops at the first bad input" in str(error)
        else:
            assert sum(result.report["skipped"].values()) == 0


def test_a_csv_that_is_not_utf8_is_named(template, tmp_path):
    root = tmp_path / "vindr"
    shutil.copytree(template, root)
    with open(root / "train.csv", "ab") as f:
        f.write(b"img0,Cardiomegaly,3,R9,1,2,\xff\xfe,4\n")
    with pytest.raises(VinDrInputError, match=r"train.csv, near row \d+: not UTF-8 CSV"):
        prepare_vindr_cxr(root, tmp_path / "out", PrepareOptions(stats_only=True))


@pytest.mark.parametrize(
    "field, value, message", [("RescaleSlope", "nan", "not a finite"), ("SamplesPerPixel", 3, "SamplesPerPixel is 3")]
)
def test_dicom_header_that_would_give_a_wrong_image_is_refused(template, tmp_path, field, value, message):
    """A NaN slope made an all-black PNG; 3 samples per pixel (pixel_array (64, 26, 3)) a 26x3 one."""
    ds = pydicom.dcmread(template / "train" / "img1.dicom")  # img1 has RescaleSlope and RescaleIntercept
    setattr(ds, field, value)
    if field == "SamplesPerPixel":  # 64 x 26 x 3 samples fit in the 64 x 80 of the pixel data
        ds.Columns, ds.PlanarConfiguration = 26, 0
    ds.save_as(tmp_path / "img1.dicom")
    with pytest.raises(ValueError, match=message):
        read_dicom_uint8(tmp_path / "img1.dicom")
