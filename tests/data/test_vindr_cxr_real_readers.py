"""On the real VinBigData annotations (a subset of its 67,914 rows): no fusion merges one reader's boxes,
the default fusion is ensemble-boxes' WBF at IoU 0.4 where each reader has one box, the report counts
the clusters, and ``--readers`` keeps exactly the chosen readers' rows."""

import csv
import itertools
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from ensemble_boxes import weighted_boxes_fusion
from helpers import run_main
from helpers.real_vinbigdata import real_vinbigdata_rows
from helpers.vindr_cxr_synthetic import KAGGLE_HEADER
from PIL import Image

from sna_det.data.prepare.vindr_cxr import InputProblems, PrepareOptions, prepare_vindr_cxr, read_annotations

SIZE = 4000  # the original size given for every image: above every coordinate of the CSV (at most 3,384)
PNG = 40  # the pre-converted images' size: boxes scale by PNG / SIZE
PER_KIND = 40  # images of each kind in the subset
BOX = ("x_min", "y_min", "x_max", "y_max")
# The only groups of the whole CSV where ensemble-boxes' WBF at IoU 0.4, called on all the boxes of
# the group, fuses two boxes of one reader (found by running it on every group): in the subset too.
MERGED_BY_PLAIN_WBF = [
    ("53e93d9f8cf885a55e00079256595a86", "Nodule/Mass"),
    ("f51434ef988e30a05f8b0986814d9485", "Pneumothorax"),
    ("14600a97b1c302343b1b5850ed53ae13", "Lung Opacity"),
]


def box_of(row: dict) -> tuple:
    return tuple(float(row[k]) for k in BOX)


def groups_of(rows) -> dict:
    """{(image_id, class_name): [rows]} of the finding rows."""
    found = defaultdict(list)
    for row in rows:
        if row["class_name"] != "No finding":
            found[row["image_id"], row["class_name"]].append(row)
    return found


def kind_of(group) -> str:
    per_reader = Counter(r["rad_id"] for r in group)
    if max(per_reader.values()) == 1:
        return "one box per reader"
    return "one reader" if len(per_reader) == 1 else "several readers, one with several boxes"


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A VinBigData copy of PER_KIND images of each kind (sorted ids) plus PER_KIND normals, as
    pre-converted PNGs: (root, its rows, image dir, sizes CSV)."""
    rows = real_vinbigdata_rows()
    chosen, kinds = set(), defaultdict(set)
    for (image_id, _), group in sorted(groups_of(rows).items()):
        kinds[kind_of(group)].add(image_id)
    normals = {r["image_id"] for r in rows} - {i for ids in kinds.values() for i in ids}
    for ids in [*kinds.values(), normals]:
        chosen.update(sorted(ids - chosen)[:PER_KIND])
    chosen.update(image_id for image_id, _ in MERGED_BY_PLAIN_WBF)
    subset = [r for r in rows if r["image_id"] in chosen]
    root = tmp_path_factory.mktemp("vinbigdata")
    with open(root / "train.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=KAGGLE_HEADER)
        writer.writeheader()
        writer.writerows(subset)
    pngs = root / "png"
    pngs.mkdir()
    for image_id in chosen:
        Image.new("L", (PNG, PNG), 128).save(pngs / f"{image_id}.png")
    sizes = root / "sizes.csv"
    sizes.write_text("image_id,width,height\n" + "".join(f"{i},{SIZE},{SIZE}\n" for i in sorted(chosen)))
    return root, subset, pngs, sizes


@pytest.fixture(scope="module")
def fused(real, tmp_path_factory):
    """The default preparation of ``real``: ({(image_id, class): (M, 4) boxes in original pixels}, result)."""
    root, _, pngs, sizes = real
    out = tmp_path_factory.mktemp("prepared")
    result = prepare_vindr_cxr(root, out, PrepareOptions(max_size=0), pngs, sizes)
    boxes = defaultdict(list)
    for split in result.summary:
        data = json.loads((out / "annotations" / f"{split}.json").read_text())
        names = {c["id"]: c["name"] for c in data["categories"]}
        files = {i["id"]: Path(i["file_name"]).stem for i in data["images"]}
        for a in data["annotations"]:
            x, y, w, h = (v * SIZE / PNG for v in a["bbox"])
            boxes[files[a["image_id"]], names[a["category_id"]]].append((x, y, x + w, y + h))
    return {k: np.array(sorted(v)) for k, v in boxes.items()}, result


def readers_order(group) -> list:
    """The rows as the preparer orders them before fusing: by reader, then coordinates."""
    return sorted(group, key=lambda r: (r["rad_id"], box_of(r)))


def test_one_readers_boxes_stay_apart(real, fused):
    boxes, _ = fused
    alone = {k: g for k, g in groups_of(real[1]).items() if kind_of(g) == "one reader"}
    assert len(alone) >= PER_KIND  # e.g. one radiologist's lung opacity in each lung
    for key, group in alone.items():
        np.testing.assert_allclose(boxes[key], sorted(box_of(r) for r in group), atol=1e-6, err_msg=str(key))
    several = {k: g for k, g in groups_of(real[1]).items() if kind_of(g).startswith("several")}
    assert len(several) >= PER_KIND
    for n, (key, group) in enumerate(sorted(several.items())):
        assert len(boxes[key]) >= max(Counter(r["rad_id"] for r in group).values()), key
        if n >= 15:  # the search below is slow: 15 groups
            continue
        # each fused box: the mean of boxes of distinct readers, each box used once
        sources = [mean_of_distinct_readers(box, group) for box in boxes[key]]
        assert None not in sources, key
        assert sum(map(len, sources)) == len(group), key


def mean_of_distinct_readers(box: np.ndarray, group) -> list:
    """Rows of ``group``, at most one per reader, whose mean is ``box`` (0.01 px); None if there are none."""
    by_reader = defaultdict(list)
    for row in group:
        by_reader[row["rad_id"]].append(row)
    for choice in itertools.product(*[[None, *rows] for rows in by_reader.values()]):
        members = [row for row in choice if row is not None]
        if members and np.allclose(np.mean([box_of(r) for r in members], axis=0), box, atol=0.01):
            return members
    return None


def ensemble_boxes_wbf(group) -> np.ndarray:
    """ensemble-boxes' WBF of one group at IoU 0.4, called directly, in pixels; every reader weighs the
    same (scores decrease by 1e-9 only to fix the order ensemble-boxes takes the boxes in)."""
    ordered = readers_order(group)
    unit = [np.array([box_of(r) for r in ordered]) / SIZE]
    scores = [1.0 - 1e-9 * np.arange(len(ordered))]
    out, _, _ = weighted_boxes_fusion(unit, scores, [np.zeros(len(ordered))], iou_thr=0.4, skip_box_thr=0.0)
    return np.array(sorted(map(tuple, out * SIZE)))


def test_wbf_is_ensemble_boxes_where_each_reader_has_one_box(real, fused):
    boxes, _ = fused
    groups = {k: g for k, g in groups_of(real[1]).items() if kind_of(g) == "one box per reader"}
    merged = 0
    for key, group in groups.items():
        expected = ensemble_boxes_wbf(group)
        np.testing.assert_allclose(boxes[key], expected, atol=0.01, err_msg=str(key))  # float32 inside WBF
        merged += len(expected) < len(group)
    assert merged >= 20  # readers' overlapping boxes were fused


def test_ensemble_boxes_alone_would_merge_one_readers_boxes(real, fused):
    """Why the preparer adds the reader rule: called on all the boxes, WBF fuses one reader's boxes."""
    boxes, _ = fused
    groups = groups_of(real[1])
    for key in MERGED_BY_PLAIN_WBF:
        plain = ensemble_boxes_wbf(groups[key])
        assert any(mean_of_distinct_readers(box, groups[key]) is None for box in plain), key
        assert all(mean_of_distinct_readers(box, groups[key]) is not None for box in boxes[key]), key
    # e.g. R9's two lung opacities (195, 564, 1071, 2220) and (231, 810, 996, 1948) with R8's and R10's
    assert len(ensemble_boxes_wbf(groups[MERGED_BY_PLAIN_WBF[2]])) == 1 and len(boxes[MERGED_BY_PLAIN_WBF[2]]) == 2


def test_report_counts_the_clusters_of_each_fusion(real, fused):
    boxes, result = fused
    groups = groups_of(real[1])
    n_rows = sum(map(len, groups.values()))
    report = result.report["fusion"]
    assert (report["method"], report["iou_thr"]) == ("wbf", 0.4)
    assert report["boxes"] == n_rows and report["clusters"] == sum(map(len, boxes.values()))
    assert report["one_reader_boxes_merged"] == 0
    assert sum(report["clusters_by_readers"].values()) == report["clusters"]
    root, _, pngs, sizes = real
    counted = prepare_vindr_cxr(root, None, PrepareOptions(fusion="per-finding", stats_only=True)).report["fusion"]
    assert counted["clusters"] == len(groups)  # Table 4's counting: one per (image, finding)
    same_reader = sum(len(g) - len({r["rad_id"] for r in g}) for g in groups.values())
    assert counted["one_reader_boxes_merged"] == same_reader > 0
    assert counted["clusters_by_readers"] == {
        str(n): c for n, c in sorted(Counter(len({r["rad_id"] for r in g}) for g in groups.values()).items())
    }


READERS = ("R8", "R9", "R10")


def test_readers_keep_exactly_their_rows(real):
    root, rows, _, _ = real
    table = read_annotations({"train": root / "train.csv"}, InputProblems(), readers=READERS)
    chosen = [r for r in rows if r["rad_id"] in READERS]  # the independent filter
    expected_boxes = Counter(
        (r["image_id"], r["class_name"], r["rad_id"], box_of(r)) for r in chosen if r["class_name"] != "No finding"
    )
    assert Counter((b.image_id, b.class_name, b.rad_id, b.box) for b in table.boxes) == expected_boxes
    assert table.no_finding_rows == sum(r["class_name"] == "No finding" for r in chosen)
    assert set(table.image_split) == {r["image_id"] for r in chosen}
    assert table.other_reader_rows == len(rows) - len(chosen) > 0
    assert table.images_without_selected_reader == len({r["image_id"] for r in rows} - set(table.image_split)) > 0


def test_readers_option_is_recorded_and_an_absent_reader_refused(real, tmp_path, capsys):
    root, rows, _, _ = real
    out = tmp_path / "out"
    args = ["--vindr-root", str(root), "--stats-only", "--output-dir", str(out)]
    assert run_main("datasets/prepare_vindr_cxr.py", *args, "--readers", "R8,R9,R10") == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "prepare_report.json").read_text())
    settings = json.loads((out / "prepare_settings.json").read_text())
    assert report["options"]["readers"] == settings["readers"] == list(READERS)
    chosen = [r for r in rows if r["rad_id"] in READERS]
    without = len({r["image_id"] for r in rows} - {r["image_id"] for r in chosen})
    assert report["read"]["rows_of_other_readers"] == len(rows) - len(chosen)
    assert report["read"]["images_without_selected_reader"] == without
    assert f"{without:,} images without a row of these readers left out" in printed
    assert run_main("datasets/prepare_vindr_cxr.py", *args, "--readers", "R8,R99", "--rebuild") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "field rad_id: --readers R99 has no row" in err[0], err
