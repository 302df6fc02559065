"""Tiny synthetic VinDr-CXR copies for the tests: 16-bit DICOMs written with pydicom and the CSVs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

WIDTH, HEIGHT = 80, 64  # Columns, Rows of every synthetic radiograph
KAGGLE_HEADER = ["image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max"]
PHYSIONET_HEADER = ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max"]
CLASS_ID = {"Aortic enlargement": 0, "Cardiomegaly": 3, "Nodule/Mass": 8, "Pleural effusion": 10, "No finding": 14}


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    window: Optional[Tuple[float, float]] = None,
    rescale: Optional[Tuple[float, float]] = None,
    voi_lut: Optional[Tuple[int, np.ndarray]] = None,
    bits_stored: int = 16,
) -> None:
    """A one-frame grayscale DICOM with uint16 ``pixels`` (H, W); window = (center, width),
    rescale = (slope, intercept), voi_lut = (first mapped value, uint16 LUT data)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
        ds.RescaleType = "US"
    if voi_lut is not None:
        first, data = voi_lut
        item = Dataset()
        item.LUTDescriptor = [len(data), first, 16]
        item.LUTData = np.asarray(data, dtype="<u2").tobytes()  # OW
        ds.VOILUTSequence = [item]
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def radiograph(seed: int, high: int = 4095) -> np.ndarray:
    """(HEIGHT, WIDTH) uint16: a smooth gradient plus noise, values in [0, high]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = (x / WIDTH + y / HEIGHT) * high / 2
    return np.clip(base + rng.normal(0, high / 20, base.shape), 0, high).astype(np.uint16)


# The synthetic VinBigData train.csv: (image_id, class_name, rad_id, box). Three readers per image.
# Per (image, finding) pairs: Aortic enlargement 6, Cardiomegaly 4, Nodule/Mass 3, Pleural effusion 2.
ROWS: Sequence[Tuple[str, str, str, Optional[Tuple[float, float, float, float]]]] = [
    ("img0", "Aortic enlargement", "R1", (40, 10, 56, 26)),
    ("img0", "Aortic enlargement", "R2", (42, 12, 58, 28)),
    ("img0", "Cardiomegaly", "R1", (20, 30, 60, 50)),
    ("img0", "No finding", "R3", None),
    ("img1", "Aortic enlargement", "R4", (38, 8, 54, 24)),
    ("img1", "Nodule/Mass", "R4", (10, 10, 20, 20)),
    ("img1", "Nodule/Mass", "R5", (60, 40, 70, 50)),
    ("img1", "Cardiomegaly", "R5", (18, 28, 62, 52)),
    ("img2", "Aortic enlargement", "R1", (40, 10, 56, 26)),
    ("img2", "Pleural effusion", "R2", (5, 35, 25, 60)),
    ("img2", "Pleural effusion", "R3", (6, 36, 24, 58)),
    ("img3", "Aortic enlargement", "R2", (40, 12, 56, 28)),
    ("img3", "Cardiomegaly", "R2", (20, 30, 60, 50)),
    ("img3", "Nodule/Mass", "R3", (30, 5, 40, 15)),
    ("img4", "Aortic enlargement", "R1", (41, 11, 57, 27)),
    ("img4", "Pleural effusion", "R1", (55, 35, 75, 60)),
    ("img4", "Cardiomegaly", "R3", (22, 31, 58, 49)),
    ("img5", "Aortic enlargement", "R2", (39, 9, 55, 25)),
    ("img5", "Nodule/Mass", "R2", (50, 20, 60, 30)),
    ("img6", "No finding", "R1", None),
    ("img6", "No finding", "R2", None),
    ("img6", "No finding", "R3", None),
    ("img7", "No finding", "R1", None),
]
IMAGES = sorted({row[0] for row in ROWS})


def _write_rows(path: Path, header: Sequence[str], rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for image_id, name, rad_id, box in rows:
            coords = dict(zip(("x_min", "y_min", "x_max", "y_max"), box if box is not None else [""] * 4))
            writer.writerow(
                dict(image_id=image_id, class_name=name, class_id=CLASS_ID.get(name, 99), rad_id=rad_id, **coords)
            )


def write_vinbigdata(root: Path, rows=ROWS, images: Sequence[str] = IMAGES) -> Path:
    """VinBigData layout: train.csv + train/<id>.dicom (MONOCHROME1 and 2, some with window and rescale)."""
    _write_rows(root / "train.csv", KAGGLE_HEADER, rows)
    for i, image_id in enumerate(images):
        write_dicom(
            root / "train" / f"{image_id}.dicom",
            radiograph(i),
            photometric="MONOCHROME1" if i % 2 else "MONOCHROME2",
            window=(2048.0, 3000.0) if i % 3 == 0 else None,
            rescale=(1.0, -1024.0) if i % 4 == 1 else None,
        )
    return root


def write_physionet(root: Path, train_rows, test_rows) -> Path:
    """PhysioNet layout: annotations/annotations_{train,test}.csv + {train,test}/<id>.dicom."""
    for split, rows in (("train", train_rows), ("test", test_rows)):
        _write_rows(root / "annotations" / f"annotations_{split}.csv", PHYSIONET_HEADER, rows)
        for i, image_id in enumerate(sorted({r[0] for r in rows})):
            write_dicom(root / split / f"{image_id}.dicom", radiograph(100 + i))
    return root


def prepared_vindr_cxr(tmp: Path) -> Path:
    """``write_vinbigdata`` below ``tmp`` prepared by ``prepare_vindr_cxr`` (64-pixel PNGs, a quarter to val,
    the normal images kept): the prepared folder ``tmp/prepared``."""
    from sna_det.data.prepare.vindr_cxr import PrepareOptions, prepare_vindr_cxr

    out = tmp / "prepared"
    prepare_vindr_cxr(write_vinbigdata(tmp / "vindr"), out, PrepareOptions(max_size=64, val_fraction=0.25))
    return out
