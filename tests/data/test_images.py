"""The one image path (sna_det/data/images.py): finding images, 16-bit pictures and DICOMs turned into the
network's 8 bits by INPUT.INTENSITY, each against numpy, pydicom's own windowing or opencv."""

import copy
import io
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_windowing

from sna_det.data.images import (
    IMAGE_SUFFIXES,
    Intensity,
    find_image_files,
    read_gray_uint8,
    read_model_image,
)
from sna_det.data.prepare.annotated import IMAGE_SUFFIXES as CONVERTER_SUFFIXES
from sna_det.data.prepare.vindr_cxr.images import render_png
from sna_det.data.prepare.vindr_cxr.prepare import PrepareOptions, prepare_settings


def real_dicom(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.fail(f"{name} is not in pydicom-data (pip install pydicom-data)")
    return Path(path)


@pytest.fixture(scope="module")
def deep_png(tmp_path_factory) -> Path:
    """A 16-bit grayscale PNG whose values span 0..65535, most of them near 30000."""
    rng = np.random.default_rng(0)
    values = np.clip(rng.normal(30000, 400, size=(40, 56)), 0, 65535).astype(np.uint16)
    values[0, 0], values[-1, -1] = 0, 65535
    path = tmp_path_factory.mktemp("deep") / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # PIL keeps the 16 bits
    return path


def test_suffixes_are_one_list_and_folders_are_searched_recursively(tmp_path):
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom"} <= set(IMAGE_SUFFIXES)
    assert set(CONVERTER_SUFFIXES) == set(IMAGE_SUFFIXES) - {".dcm", ".dicom"}  # converters link pictures
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for name in ("b.PNG", "sub/a.TIF", "sub/deeper/c.DCM", "sub/x.bmp", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    found = find_image_files([str(tmp_path), str(tmp_path / "sub" / "x.bmp")])
    expected = ["b.PNG", "sub/a.TIF", "sub/deeper/c.DCM", "sub/x.bmp"]
    assert [p.relative_to(tmp_path).as_posix() for p in found] == expected
    assert [p.name for p in find_image_files([f"{tmp_path}/**/*.DCM"])] == ["c.DCM"]
    with pytest.raises(ValueError, match="notes.txt: not an image file name"):
        find_image_files([str(tmp_path / "notes.txt")])


def test_a_16_bit_png_keeps_its_16_bits_up_to_the_window(deep_png):
    values = np.asarray(Image.open(deep_png)).astype(np.float64)
    center, width = 30000.0, 1200.0
    image = read_model_image(deep_png, "BGR", intensity=Intensity("window", (center, width))).image
    expected = np.rint(np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1) * 255)  # DICOM's LINEAR
    assert image.shape == (40, 56, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[:, :, 0], expected)
    assert len(np.unique(image)) > 100, "the 1200 values of the window give many grey levels, not 8 bits' cut"
    # the file's own range (default): min..max onto 0..255
    default = read_model_image(deep_png, "RGB").image[:, :, 1]
    np.testing.assert_array_equal(default, np.rint(values / 65535 * 255))
    low, high = np.percentile(values, [1, 99])
    percentile = read_model_image(deep_png, "L", intensity=Intensity("percentile", percentiles=(1, 99))).image
    np.testing.assert_array_equal(percentile[:, :, 0], np.rint(np.clip((values - low) / (high - low), 0, 1) * 255))


@pytest.mark.parametrize("name, window", [("RG1_UNCR.dcm", (12000.0, 9000.0)), ("RG3_UNCR.dcm", (600.0, 700.0))])
def test_a_dicom_window_is_pydicoms_linear_window(name, window):
    path = real_dicom(name)
    ds = pydicom.dcmread(path)
    modality = apply_modality_lut(ds.pixel_array, ds)
    chosen = copy.deepcopy(ds)
    chosen.WindowCenter, chosen.WindowWidth = window
    y = apply_windowing(modality.astype(np.float64), chosen)  # onto 0 .. 2^BitsStored - 1
    top = 2**ds.BitsStored - 1
    expected = 255 - np.rint(y / top * 255)  # MONOCHROME1: bone bright
    got = read_gray_uint8(path, Intensity("window", window)).astype(np.float64)
    assert got.shape == modality.shape
    difference = np.abs(got - expected)
    assert difference.max() <= 1 and (difference == 0).mean() > 0.999  # ties of the rounding only
    # and not the file's own window
    assert not np.array_equal(got, read_gray_uint8(path).astype(np.float64))


def test_clahe_is_opencvs_on_the_chosen_rendering(deep_png):
    plain = read_gray_uint8(deep_png, Intensity("window", (30000, 1200)))
    clahe = read_gray_uint8(deep_png, Intensity("window", (30000, 1200), clahe=True, clahe_clip=3.0, clahe_tiles=4))
    np.testing.assert_array_equal(clahe, cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4)).apply(plain))
    assert not np.array_equal(clahe, plain)


def test_the_preparer_renders_and_records_the_chosen_intensity():
    path, intensity = real_dicom("RG3_UNCR.dcm"), Intensity("window", (600.0, 700.0))
    data, sizes = render_png(path, 256, intensity=intensity)
    written = np.asarray(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(written, read_model_image(path, "L", 256, intensity=intensity).image[:, :, 0])
    assert sizes == (1760, 1760, 256, 256)
    source = SimpleNamespace(layout="vinbigdata", sizes_csv=None, unlabelled_dirs=())
    assert "intensity" not in prepare_settings(PrepareOptions(), source)  # folders prepared before: unchanged
    recorded = prepare_settings(PrepareOptions(intensity=intensity), source)["intensity"]
    assert recorded["mode"] == "window" and list(recorded["window"]) == [600.0, 700.0]


def test_bad_intensity_values_are_refused():
    with pytest.raises(ValueError, match="INPUT.INTENSITY.MODE 'gamma'"):
        Intensity("gamma")
    with pytest.raises(ValueError, match=r"INPUT.INTENSITY.WINDOW \[\]"):
        Intensity("window")
    with pytest.raises(ValueError, match="PERCENTILES"):
        Intensity("percentile", percentiles=(60, 40))
