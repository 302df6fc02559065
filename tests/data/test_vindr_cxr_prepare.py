"""VinDr-CXR preparation on synthetic copies: layouts, classes, fusion, split, bad input, outputs, registration."""

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from helpers import run_main
from helpers.vindr_cxr_synthetic import (
    HEIGHT,
    IMAGES,
    ROWS,
    WIDTH,
    radiograph,
    write_physionet,
    write_vinbigdata,
)
from PIL import Image

from sna_det import build_evaluator
from sna_det.data.datasets import VINDR_CXR_CLASSES, register_vindr_cxr_datasets
from sna_det.data.prepare.vindr_cxr import (
    PROBLEMS,
    PrepareOptions,
    VinDrInputError,
    format_prepare_summary,
    fuse_boxes,
    prepare_vindr_cxr,
    stratified_split,
)
from sna_det.evaluation import PerClassAPEvaluator

ROOT = Path(__file__).resolve().parents[2]
SMALL = PrepareOptions(max_size=40, val_fraction=0.25)  # 80x64 DICOMs -> 40x32 PNGs: boxes scale by 1/2

# (image, finding) pairs of vindr_cxr_synthetic.ROWS, counted by hand
PAIRS = {"Aortic enlargement": 6, "Cardiomegaly": 4, "Nodule/Mass": 3, "Pleural effusion": 2}
# wbf (the default): as PAIRS, but img1's two nodules (R4, R5) do not overlap and stay two boxes
WBF_COUNTS = {"Aortic enlargement": 6, "Cardiomegaly": 4, "Nodule/Mass": 4, "Pleural effusion": 2}


@pytest.fixture(scope="module")
def prepared(vinbigdata, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    return out, prepare_vindr_cxr(vinbigdata, out, SMALL)


def coco(out: Path, split: str) -> dict:
    return json.loads((out / "annotations" / f"{split}.json").read_text())


def boxes_of(out: Path, image_id: str) -> dict:
    """{category name: [bbox, ...]} of one image, from whichever split holds it."""
    for split in ("train", "val", "test"):
        if not (out / "annotations" / f"{split}.json").exists():
            continue
        data = coco(out, split)
        names = {c["id"]: c["name"] for c in data["categories"]}
        for image in data["images"]:
            if image["file_name"] == f"{image_id}.png":
                found = {}
                for a in data["annotations"]:
                    if a["image_id"] == image["id"]:
                        found.setdefault(names[a["category_id"]], []).append(a["bbox"])
                return found
    raise KeyError(image_id)


def summed(summary: dict) -> dict:
    total = Counter()
    for counts in summary.values():
        total.update(counts)
    return {k: v for k, v in total.items() if v}


# --- the prepared folder ---------------------------------------------------------------------------


def test_default_wbf_gives_one_box_per_cluster(prepared):
    out, result = prepared
    assert summed(result.summary) == WBF_COUNTS
    assert json.loads((out / "summary.json").read_text()) == result.summary
    assert set(result.summary) == {"train", "val"}
    for counts in result.summary.values():
        assert list(counts) == list(VINDR_CXR_CLASSES)
    for split, counts in result.summary.items():
        annotations = coco(out, split)["annotations"]
        assert len(annotations) == sum(counts.values())


def test_fused_box_is_the_readers_mean_rescaled_to_the_png(prepared):
    out, _ = prepared
    # img0, Aortic enlargement: (40, 10, 56, 26) and (42, 12, 58, 28) -> mean (41, 11, 57, 27) -> x 1/2
    assert boxes_of(out, "img0")["Aortic enlargement"] == [[20.5, 5.5, 8.0, 8.0]]
    # img1, Nodule/Mass: (10, 10, 20, 20) and (60, 40, 70, 50) do not overlap: two boxes, x 1/2
    assert boxes_of(out, "img1")["Nodule/Mass"] == [[5.0, 5.0, 5.0, 5.0], [30.0, 20.0, 5.0, 5.0]]
    assert boxes_of(out, "img1")["Cardiomegaly"] == [[9.0, 14.0, 22.0, 12.0]]  # one reader: (18, 28, 62, 52) / 2


def test_images_are_pngs_of_the_registered_size_and_no_finding_images_are_negatives(prepared):
    out, result = prepared
    images = [i for split in result.summary for i in coco(out, split)["images"]]
    assert sorted(i["file_name"] for i in images) == [f"{i}.png" for i in IMAGES]
    for image in images:
        with Image.open(out / "images" / image["file_name"]) as png:
            assert png.mode == "L" and png.size == (image["width"], image["height"]) == (40, 32)
    assert boxes_of(out, "img6") == {} and boxes_of(out, "img7") == {}
    kept = result.report["kept"]
    assert sum(kept["images"].values()) == 8 and sum(kept["images_without_boxes"].values()) == 2
    assert not list(out.rglob("*.tmp"))


def test_report_accounts_for_every_row(prepared):
    _, result = prepared
    read, report = result.report["read"], result.report
    assert read["csv_rows"] == len(ROWS) == 23
    assert read["no_finding_rows"] == 5 and read["finding_rows"] == 18 and read["images"] == 8
    assert report["skipped"] == dict.fromkeys(PROBLEMS, 0)
    assert report["kept"]["finding_rows"] == 18


def test_printed_summary_has_table_4_layout(prepared):
    _, result = prepared
    text = format_prepare_summary(result)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| class"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["class", "train", "val"]
    rows = [line for line in lines if line.startswith("| ") and not line.startswith(("| class", "| -"))]
    assert [r.split("|")[1].strip() for r in rows] == [*VINDR_CXR_CLASSES, "Total"]
    total = [int(c) for c in rows[-1].strip("|").split("|")[1:]]
    assert total == [sum(result.summary["train"].values()), sum(result.summary["val"].values())]
    assert "read: 23 CSV rows" in text


# --- fusion ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fusion, expected",
    [
        ("per-finding", PAIRS),
        ("none", {"Aortic enlargement": 7, "Cardiomegaly": 4, "Nodule/Mass": 4, "Pleural effusion": 3}),
        # img0's aortic boxes overlap by IoU 196/316 = 0.62, img2's effusions by 396/500 = 0.79: merged;
        # img1's two nodules do not overlap: kept apart
        ("wbf", {"Aortic enlargement": 6, "Cardiomegaly": 4, "Nodule/Mass": 4, "Pleural effusion": 2}),
        ("nms", {"Aortic enlargement": 6, "Cardiomegaly": 4, "Nodule/Mass": 4, "Pleural effusion": 2}),
    ],
)
def test_fusion_counts_in_stats_only_mode(vinbigdata, tmp_path, fusion, expected):
    result = prepare_vindr_cxr(vinbigdata, tmp_path, PrepareOptions(fusion=fusion, stats_only=True))
    assert summed(result.summary) == expected
    assert not (tmp_path / "images").exists() and not (tmp_path / "annotations").exists()
    assert json.loads((tmp_path / "summary.json").read_text()) == result.summary


def test_stats_only_matches_the_conversion(vinbigdata, prepared):
    _, converted = prepared
    stats = prepare_vindr_cxr(vinbigdata, None, PrepareOptions(max_size=40, val_fraction=0.25, stats_only=True))
    assert stats.summary == converted.summary


def test_fuse_boxes_by_hand():
    a, b, far = [0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 70]  # IoU(a, b) = 81 / 119 = 0.68
    np.testing.assert_allclose(fuse_boxes(np.array([a, b, far]), "per-finding"), [[17, 17, 27, 30.333333333]])
    np.testing.assert_allclose(fuse_boxes(np.array([a, b, far]), "wbf", 0.5), [[0.5, 0.5, 10.5, 10.5], far], atol=1e-5)
    np.testing.assert_allclose(fuse_boxes(np.array([a, b, far]), "wbf", 0.7), [a, b, far], atol=1e-5)
    np.testing.assert_allclose(fuse_boxes(np.array([b, a, far]), "nms", 0.5), [b, far], atol=1e-5)  # first wins
    np.testing.assert_allclose(fuse_boxes(np.array([a, b, far]), "none"), [a, b, far])
    with pytest.raises(ValueError, match="fusion"):
        fuse_boxes(np.array([a]), "union")
    # a and b drawn by one reader: never one box, whatever their overlap; far (another reader) unchanged
    for method in ("wbf", "nms"):
        np.testing.assert_allclose(fuse_boxes(np.array([a, b, far]), method, 0.5, ["R1", "R1", "R2"]), [a, b, far])
    # R1's second box c cannot join R1's a (IoU 0.82): its own cluster; R2's b joins the cluster it
    # overlaps most, c's (IoU 90.25 / 109.75 = 0.82 against 81 / 119 = 0.68 with a)
    c = [0.5, 0.5, 10.5, 10.5]
    fused = fuse_boxes(np.array([a, c, b]), "wbf", 0.5, ["R1", "R1", "R2"])
    np.testing.assert_allclose(fused, [a, [0.75, 0.75, 10.75, 10.75]])


def test_per_finding_only_counts(vinbigdata, tmp_path):
    with pytest.raises(ValueError, match="per-finding counts one box per .*--stats-only"):
        prepare_vindr_cxr(vinbigdata, tmp_path / "out", PrepareOptions(fusion="per-finding"))
    assert not (tmp_path / "out").exists()
    report = prepare_vindr_cxr(vinbigdata, None, PrepareOptions(fusion="per-finding", stats_only=True)).report
    # 18 boxes in 15 (image, finding) pairs; img1's two nodules are R4's and R5's, no reader has two boxes
    assert report["fusion"] == {
        "method": "per-finding",
        "iou_thr": 0.4,
        "boxes": 18,
        "clusters": 15,
        "clusters_by_readers": {"1": 12, "2": 3},
        "one_reader_boxes_merged": 0,
    }


def test_nms_and_wbf_boxes_in_the_prepared_json(vinbigdata, tmp_path):
    prepare_vindr_cxr(vinbigdata, tmp_path / "wbf", PrepareOptions(max_size=40, fusion="wbf"))
    prepare_vindr_cxr(vinbigdata, tmp_path / "nms", PrepareOptions(max_size=40, fusion="nms"))
    # img2, Pleural effusion: R2 (5, 35, 25, 60), R3 (6, 36, 24, 58); mean (5.5, 35.5, 24.5, 59), x 1/2
    np.testing.assert_allclose(boxes_of(tmp_path / "wbf", "img2")["Pleural effusion"], [[2.75, 17.75, 9.5, 11.75]])
    np.testing.assert_allclose(boxes_of(tmp_path / "nms", "img2")["Pleural effusion"], [[2.5, 17.5, 10.0, 12.5]])


# --- split ----------------------------------------------------------------------------------------


def test_split_is_seeded_stratified_and_complete():
    rng = np.random.default_rng(0)
    common = {f"c{i}": ["common"] + (["rare"] if i < 4 else []) for i in range(200)}
    images = {**common, **{f"n{i}": [] for i in range(50)}, "x1": ["rarest"], "x2": ["rarest", "common"]}
    split = stratified_split(images, 0.2, seed=3)
    assert split == stratified_split(dict(reversed(list(images.items()))), 0.2, seed=3)  # order-free
    assert split != stratified_split(images, 0.2, seed=4)
    assert set(split) == set(images)
    for name in ("common", "rare", "rarest"):
        holders = {split[i] for i, names in images.items() if name in names}
        assert holders == {"train", "val"}, name
    assert abs(sum(s == "val" for s in split.values()) / len(split) - 0.2) < 0.02
    assert set(stratified_split(images, 0.0, seed=3).values()) == {"train"}
    del rng


# --- layouts --------------------------------------------------------------------------------------

PHYSIONET_TRAIN = [
    ("p0", "Aortic enlargement", "R8", (40, 10, 56, 26)),
    ("p0", "Rib fracture", "R8", (5, 5, 15, 15)),
    ("p1", "nodule/mass", "R9", (10, 10, 20, 20)),
    ("p2", "No finding", "R9", None),
    ("p3", "Lung Opacity", "R10", (30, 30, 50, 50)),
]
PHYSIONET_TEST = [
    ("t0", "Aortic enlargement", "R11", (40, 10, 56, 26)),
    ("t1", "Rib fracture", "R11", (1, 2, 3, 4)),
    ("t2", "No finding", "R11", None),
]


def test_physionet_layout_uses_the_official_test_split_and_drops_local_labels(tmp_path):
    root = write_physionet(tmp_path / "physionet", PHYSIONET_TRAIN, PHYSIONET_TEST)
    result = prepare_vindr_cxr(root, tmp_path / "out", PrepareOptions(max_size=0, val_fraction=0))
    assert result.report["layout"] == "physionet"
    assert result.report["other_labels_dropped"] == {"Rib fracture": 2}
    assert {f: c for f, c in result.summary["test"].items() if c} == {"Aortic enlargement": 1}
    test_images = sorted(i["file_name"] for i in coco(tmp_path / "out", "test")["images"])
    assert test_images == ["t0.png", "t2.png"]  # t1's only box is a local label: left out, not a negative
    assert result.report["skipped"]["no valid box"] == 1
    assert set(result.summary) == {"train", "test"}  # val fraction 0: allowed with a test split
    assert summed({"train": result.summary["train"]}) == {
        "Aortic enlargement": 1,
        "Nodule/Mass": 1,
        "Lung Opacity": 1,
    }
    assert boxes_of(tmp_path / "out", "p0") == {"Aortic enlargement": [[40.0, 10.0, 16.0, 16.0]]}  # max_size 0


def test_all_labels_keeps_physionet_local_labels_after_the_14(tmp_path):
    root = write_physionet(tmp_path / "physionet", PHYSIONET_TRAIN, PHYSIONET_TEST)
    result = prepare_vindr_cxr(root, tmp_path / "out", PrepareOptions(all_labels=True, stats_only=True))
    assert result.report["classes"] == [*VINDR_CXR_CLASSES, "Rib fracture"]
    assert summed(result.summary)["Rib fracture"] == 2 and result.report["other_labels_dropped"] == {}


def test_pre_converted_pngs_with_a_sizes_csv(vinbigdata, tmp_path):
    pngs = tmp_path / "png"
    pngs.mkdir()
    for image_id in IMAGES:  # a community copy: 40x32 PNGs (half size) plus the DICOM sizes
        Image.fromarray((radiograph(0) // 16).astype(np.uint8)).resize((40, 32)).save(pngs / f"{image_id}.png")
    with open(tmp_path / "meta.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image_id", "dim0", "dim1"])
        writer.writerows([[i, HEIGHT, WIDTH] for i in IMAGES])
    result = prepare_vindr_cxr(vinbigdata, tmp_path / "out", PrepareOptions(max_size=20), pngs, tmp_path / "meta.csv")
    assert summed(result.summary) == WBF_COUNTS
    # original (41, 11, 57, 27) x 20/80 (PNG 20x16 from an 80x64 DICOM)
    assert boxes_of(tmp_path / "out", "img0")["Aortic enlargement"] == [[10.25, 2.75, 4.0, 4.0]]
    with Image.open(tmp_path / "out" / "images" / "img0.png") as png:
        assert png.size == (20, 16)


def test_unknown_layout_and_missing_column_are_named(tmp_path):
    with pytest.raises(VinDrInputError, match="train.csv.*annotations_train.csv"):
        prepare_vindr_cxr(tmp_path, tmp_path / "out", SMALL)
    (tmp_path / "train.csv").write_text("image_id,class_name,x_min,y_min,x_max\n")
    with pytest.raises(VinDrInputError, match=r"train.csv: missing column\(s\) y_max"):
        prepare_vindr_cxr(tmp_path, tmp_path / "out", SMALL)


# --- bad input --------------------------------------------------------------------------------------

ALL_ROWS_BAD = [  # images whose every finding row fails a check: left out, never negatives
    ("img2", "Cardiomegaly", "R1", (float("nan"), 1, 2, 3)),  # img2's rows: a NaN box, an inverted box,
    ("img2", "Nodule/Mass", "R2", (30, 30, 20, 40)),  # a label outside the 14 classes
    ("img2", "Rib fracture", "R3", (1, 2, 3, 4)),
    ("img2", "No finding", "R4", None),  # another reader's "No finding" does not make it a normal either
    ("img3", "Cardiomegaly", "R1", (60, 40, 90, 60)),  # img3's only box lies outside the 80x64 image
    ("img4", "Cardiomegaly", "R1", (20, 30, 60, 50)),  # img4: one good box, one bad: the good one is kept
    ("img4", "Nodule/Mass", "R1", (30, 30, 20, 40)),
    ("img5", "No finding", "R1", None),  # img5: a normal
    ("img6", "Aortic enlargement", "R2", (40, 10, 56, 26)),  # more train images, so that val is not all
    ("img7", "Aortic enlargement", "R2", (40, 10, 56, 26)),
]


def test_an_image_whose_every_finding_row_is_skipped_is_left_out(tmp_path):
    root = write_vinbigdata(
        tmp_path / "vindr", rows=ALL_ROWS_BAD, images=["img2", "img3", "img4", "img5", "img6", "img7"]
    )
    result = prepare_vindr_cxr(root, tmp_path / "out", PrepareOptions(max_size=0, val_fraction=0.25))
    report = result.report
    assert report["skipped"]["no valid box"] == 2
    details = {i["where"]: i["detail"] for i in report["skipped_items"] if i["reason"] == "no valid box"}
    assert details == {
        f"{root / 'train.csv'}, row 2": "image_id img2: all its 3 finding rows were skipped (NaN box 1, "
        "inverted box 1, other label 1), so the image is left out instead of kept as one without findings",
        f"{root / 'train.csv'}, row 6": "image_id img3: all its 1 finding rows were skipped (box outside the image 1), "
        "so the image is left out instead of kept as one without findings",
    }
    kept = sorted(i["file_name"] for split in ("train", "val") for i in coco(tmp_path / "out", split)["images"])
    assert kept == ["img4.png", "img5.png", "img6.png", "img7.png"]
    assert boxes_of(tmp_path / "out", "img4") == {"Cardiomegaly": [[20.0, 30.0, 40.0, 20.0]]}
    assert boxes_of(tmp_path / "out", "img5") == {}  # the only image without boxes: read as normal
    assert sum(report["kept"]["images_without_boxes"].values()) == 1
    stats = prepare_vindr_cxr(root, None, PrepareOptions(stats_only=True)).report  # no image sizes: img3 kept
    assert stats["skipped"]["no valid box"] == 1


BAD_ROWS = [  # appended to ROWS: CSV rows 25-29 (the header is row 1)
    ("img1", "Cardiomegaly", "R6", (float("nan"), 28, 62, 52)),  # NaN box
    ("img2", "Nodule/Mass", "R6", (30, 30, 20, 40)),  # inverted box
    ("img3", "Pleural effusion", "R6", (60, 40, 90, 60)),  # outside: x_max 90 > width 80
    ("img9", "Cardiomegaly", "R6", (20, 30, 60, 50)),  # unknown image id: no img9.dicom
    ("imgX", "Cardiomegaly", "R6", (20, 30, 60, 50)),  # unreadable: imgX.dicom is not a DICOM
]


@pytest.fixture(scope="module")
def bad_copy(tmp_path_factory):
    root = write_vinbigdata(tmp_path_factory.mktemp("bad"), rows=[*ROWS, *BAD_ROWS])
    (root / "train" / "imgX.dicom").write_bytes(b"\x00" * 200)
    return root


def test_bad_input_is_named_counted_and_skipped(bad_copy, tmp_path):
    result = prepare_vindr_cxr(bad_copy, tmp_path, SMALL)
    assert result.report["skipped"] == {**dict.fromkeys(PROBLEMS, 1), "no valid box": 0}
    assert summed(result.summary) == WBF_COUNTS  # the good rows are unaffected
    examples = {}
    for item in result.report["skipped_items"]:
        examples.setdefault(item["reason"], []).append(f"{item['where']}: {item['detail']}")
    assert "train.csv, row 25" in examples["NaN box"][0] and "x_min='nan'" in examples["NaN box"][0]
    assert "train.csv, row 26" in examples["inverted box"][0]
    assert "train.csv, row 27" in examples["box outside the image"][0]
    assert "train.csv, row 28" in examples["unknown image id"][0] and "img9" in examples["unknown image id"][0]
    assert "imgX.dicom" in examples["unreadable image"][0]
    assert result.report["finding_rows_of_skipped_images"] == 2
    assert result.report["kept"]["finding_rows"] == 18
    read = result.report["read"]
    assert read["csv_rows"] == 28 and read["finding_rows"] == 21  # 23 + 5 rows; 2 bad rows never become boxes
    text = format_prepare_summary(result)
    assert "unknown image id 1" in text and "box outside the image 1" in text


@pytest.mark.parametrize(
    "bad, message",
    [
        (0, r"train.csv, row 25: NaN box: fields x_min,y_min,x_max,y_max must be numbers"),
        (1, r"train.csv, row 25: inverted box: fields x_max <= x_min"),
        (2, r"train.csv, row 25: box outside the image: box \(60.0, 40.0, 90.0, 60.0\) vs image 80x64"),
        (3, r"train.csv, row 25: unknown image id: image_id img9: no image file .*img9.dicom"),
        (4, r"imgX.dicom: unreadable image"),
    ],
)
def test_strict_stops_at_the_first_bad_input(tmp_path, bad, message):
    root = write_vinbigdata(tmp_path / "copy", rows=[*ROWS, BAD_ROWS[bad]], images=[*IMAGES])
    (root / "train" / "imgX.dicom").write_bytes(b"\x00" * 200)
    with pytest.raises(VinDrInputError, match=message):
        prepare_vindr_cxr(root, tmp_path / "out", PrepareOptions(max_size=40, strict=True))


def test_drop_no_finding(vinbigdata, tmp_path):
    result = prepare_vindr_cxr(vinbigdata, tmp_path, PrepareOptions(drop_no_finding=True, stats_only=True))
    assert sum(result.report["kept"]["images"].values()) == 6 and result.report["no_finding_images_dropped"] == 2


# --- registration, evaluator type, the script -----------------------------------------------------


def test_registered_from_the_prepared_folder_with_the_per_class_evaluator(prepared):
    out, result = prepared
    try:
        register_vindr_cxr_datasets(out)
        records = DatasetCatalog.get("vindr_cxr_train")
        assert len(records) == result.report["kept"]["images"]["train"]
        assert sum(len(r["annotations"]) for r in records) == sum(result.summary["train"].values())
        meta = MetadataCatalog.get("vindr_cxr_val")
        assert meta.thing_classes == list(VINDR_CXR_CLASSES) and meta.eval_iou_threshold == 0.4
        evaluator = build_evaluator(get_cfg(), "vindr_cxr_val", str(out / "eval"))
        assert isinstance(evaluator, PerClassAPEvaluator)
    finally:
        register_vindr_cxr_datasets(None)


def test_script_prints_the_summary_and_reports_errors(vinbigdata, bad_copy, tmp_path, capsys):
    assert (
        run_main(
            "datasets/prepare_vindr_cxr.py", *["--vindr-root", str(vinbigdata), "--stats-only", "--fusion", "none"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| Aortic enlargement |" in printed and "fusion none" in printed
    argv = ["--vindr-root", str(bad_copy), "--output-dir", str(tmp_path), "--max-size", "40", "--strict"]
    assert run_main("datasets/prepare_vindr_cxr.py", *argv) == 1
    assert "train.csv, row 25: NaN box" in capsys.readouterr().err


def test_two_workers_write_the_same_files(vinbigdata, prepared, tmp_path):
    out, _ = prepared
    prepare_vindr_cxr(vinbigdata, tmp_path, PrepareOptions(max_size=40, val_fraction=0.25, workers=2))
    for split in ("train", "val"):
        assert coco(tmp_path, split) == coco(out, split)
    for name in (f"{image_id}.png" for image_id in IMAGES):
        assert (tmp_path / "images" / name).read_bytes() == (out / "images" / name).read_bytes()


def test_all_labels_folder_registers_its_own_classes(tmp_path):
    root = write_physionet(tmp_path / "physionet", PHYSIONET_TRAIN, PHYSIONET_TEST)
    prepare_vindr_cxr(root, tmp_path / "out", PrepareOptions(all_labels=True, max_size=0, val_fraction=0))
    try:
        register_vindr_cxr_datasets(tmp_path / "out")
        assert MetadataCatalog.get("vindr_cxr_test").thing_classes == [*VINDR_CXR_CLASSES, "Rib fracture"]
        records = DatasetCatalog.get("vindr_cxr_test")
        assert sorted(a["category_id"] for r in records for a in r["annotations"]) == [0, 14]  # contiguous ids
    finally:
        register_vindr_cxr_datasets(None)
