"""VinBigData's challenge ``test/`` (DICOMs, no CSV) as the unlabelled split ``challenge_test``, and the
original DICOM size recorded in every prepared image entry, so that boxes map back to the DICOM."""

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from detectron2.data import DatasetCatalog
from helpers.vindr_cxr_synthetic import HEIGHT, IMAGES, WIDTH, write_dicom, write_vinbigdata
from PIL import Image

from sna_det.data.datasets import register_vindr_cxr_datasets
from sna_det.data.prepare.vindr_cxr import PrepareOptions, VinDrInputError, format_prepare_summary, prepare_vindr_cxr

# challenge test images of other sizes than the train DICOMs: (image id, rows, columns)
TEST_IMAGES = [("t0", 90, 60), ("t1", 50, 100), ("t2", 64, 80)]
OPTIONS = PrepareOptions(max_size=40, val_fraction=0.25)


def with_challenge_test(root: Path) -> Path:
    write_vinbigdata(root)
    rng = np.random.default_rng(0)
    for image_id, rows, columns in TEST_IMAGES:
        write_dicom(root / "test" / f"{image_id}.dicom", rng.integers(0, 4096, (rows, columns)).astype(np.uint16))
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = with_challenge_test(tmp_path_factory.mktemp("vinbigdata"))
    out = tmp_path_factory.mktemp("prepared")
    return root, out, prepare_vindr_cxr(root, out, OPTIONS)


def coco(out: Path, split: str) -> dict:
    return json.loads((out / "annotations" / f"{split}.json").read_text())


def test_every_challenge_test_dicom_is_an_unlabelled_image_with_its_dicom_size(prepared):
    root, out, result = prepared
    test = coco(out, "challenge_test")
    assert test["annotations"] == []
    assert len(test["categories"]) == 14
    by_name = {image["file_name"]: image for image in test["images"]}
    assert sorted(by_name) == sorted(f"{i}.png" for i, _, _ in TEST_IMAGES)
    for image_id, _, _ in TEST_IMAGES:
        header = pydicom.dcmread(root / "test" / f"{image_id}.dicom", stop_before_pixels=True)
        entry = by_name[f"{image_id}.png"]
        assert (entry["dicom_width"], entry["dicom_height"]) == (header.Columns, header.Rows)
        with Image.open(out / "images" / f"{image_id}.png") as png:
            assert png.size == (entry["width"], entry["height"])
        assert max(entry["width"], entry["height"]) == 40  # long side max_size
    report = result.report
    assert report["read"]["unlabelled_images"] == {"challenge_test": len(TEST_IMAGES)}
    assert report["kept"]["images"]["challenge_test"] == len(TEST_IMAGES)
    assert "challenge_test" not in result.summary  # Table 4's columns are the labelled splits
    assert f"challenge_test {len(TEST_IMAGES)} images (unlabelled)" in format_prepare_summary(result)


def test_train_and_val_entries_record_the_dicom_size_and_boxes_map_back(prepared):
    _, out, _ = prepared
    images = {}
    for split in ("train", "val"):
        data = coco(out, split)
        for image in data["images"]:
            assert (image["dicom_width"], image["dicom_height"]) == (WIDTH, HEIGHT)
            images[image["file_name"]] = (image, [a for a in data["annotations"] if a["image_id"] == image["id"]])
    assert sorted(images) == sorted(f"{i}.png" for i in IMAGES)
    # img2's two readers' Pleural effusion boxes (5, 35, 25, 60) and (6, 36, 24, 58): their mean, by hand
    image, annotations = images["img2.png"]
    sx, sy = image["dicom_width"] / image["width"], image["dicom_height"] / image["height"]
    (effusion,) = [a for a in annotations if a["category_id"] == 11]
    x, y, w, h = effusion["bbox"]
    assert np.allclose([x * sx, y * sy, (x + w) * sx, (y + h) * sy], [5.5, 35.5, 24.5, 59.0])


def test_registered_as_vindr_cxr_challenge_test(prepared):
    _, out, _ = prepared
    register_vindr_cxr_datasets(out)
    try:
        records = DatasetCatalog.get("vindr_cxr_challenge_test")
        assert sorted(Path(r["file_name"]).stem for r in records) == sorted(i for i, _, _ in TEST_IMAGES)
        assert all(r["annotations"] == [] for r in records)
    finally:
        register_vindr_cxr_datasets(None)


def test_an_image_in_both_train_csv_and_test_folder_is_refused(tmp_path):
    root = with_challenge_test(tmp_path / "src")
    write_dicom(root / "test" / "img0.dicom", np.zeros((8, 8), np.uint16))
    with pytest.raises(VinDrInputError, match="image_id img0 is also in the annotations"):
        prepare_vindr_cxr(root, tmp_path / "out", OPTIONS)
