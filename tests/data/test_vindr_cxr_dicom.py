"""DICOM -> 8-bit: window / VOI LUT / rescale / MONOCHROME1 against the formulas computed here with numpy."""

import numpy as np
import pytest
from helpers.vindr_cxr_synthetic import HEIGHT, WIDTH, radiograph, write_dicom
from PIL import Image

from sna_det.data.prepare.vindr_cxr import DicomReadError, convert_image, read_dicom_uint8, resized_size


def stretched(values: np.ndarray) -> np.ndarray:
    """min..max onto 0..255, rounded (the documented last step), by hand."""
    values = values.astype(np.float64)
    return np.rint(255.0 * (values - values.min()) / (values.max() - values.min())).astype(np.uint8)


def test_monochrome2_without_voi_is_the_stored_values_stretched(tmp_path):
    raw = radiograph(0, high=60000)
    write_dicom(tmp_path / "a.dicom", raw)
    image = read_dicom_uint8(tmp_path / "a.dicom")
    assert image.dtype == np.uint8 and image.shape == (HEIGHT, WIDTH)
    np.testing.assert_array_equal(image, stretched(raw))
    assert image.min() == 0 and image.max() == 255


def test_monochrome1_with_window_and_rescale(tmp_path):
    raw = radiograph(1, high=4095)
    slope, intercept, center, width = 2.0, -1000.0, 1000.0, 801.0
    write_dicom(tmp_path / "b.dicom", raw, "MONOCHROME1", window=(center, width), rescale=(slope, intercept))
    hounsfield = raw * slope + intercept
    # DICOM PS3.3 C.11.2.1.2.1, LINEAR: ((x - (c - 0.5)) / (w - 1) + 0.5), saturated outside [0, 1]
    windowed = np.clip((hounsfield - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    assert (windowed == 0).any() and (windowed == 1).any() and ((windowed > 0) & (windowed < 1)).any()
    np.testing.assert_array_equal(read_dicom_uint8(tmp_path / "b.dicom"), 255 - stretched(windowed))


def test_voi_lut_sequence_is_looked_up(tmp_path):
    raw = radiograph(2, high=1500)
    first, lut = 100, (np.arange(1000, dtype=np.float64) ** 2 / 16).astype(np.uint16)
    write_dicom(tmp_path / "c.dicom", raw, voi_lut=(first, lut))
    expected = lut[np.clip(raw.astype(np.int64) - first, 0, len(lut) - 1)]
    np.testing.assert_array_equal(read_dicom_uint8(tmp_path / "c.dicom"), stretched(expected))


def test_twelve_bit_with_rescale_only_and_a_constant_image(tmp_path):
    raw = radiograph(3, high=4095)
    write_dicom(tmp_path / "d.dicom", raw, "MONOCHROME1", rescale=(0.5, -100.0), bits_stored=12)
    np.testing.assert_array_equal(read_dicom_uint8(tmp_path / "d.dicom"), 255 - stretched(raw * 0.5 - 100.0))
    write_dicom(tmp_path / "e.dicom", np.full((HEIGHT, WIDTH), 7, np.uint16))
    assert not read_dicom_uint8(tmp_path / "e.dicom").any()


@pytest.mark.parametrize("size, expected", [((80, 64), (40, 32)), ((64, 80), (32, 40)), ((81, 50), (40, 25))])
def test_resized_size_scales_the_long_side(size, expected):
    assert resized_size(*size, 40) == expected
    assert resized_size(*size, 0) == size
    assert resized_size(*size, 100) == size  # never enlarged by default
    assert resized_size(20, 16, 80, upscale=True) == (80, 64) and resized_size(20, 16, 80) == (20, 16)


def test_convert_writes_a_resized_grayscale_png(tmp_path):
    raw = radiograph(4, high=60000)
    write_dicom(tmp_path / "f.dicom", raw, window=(30000.0, 40000.0))
    sizes = convert_image(tmp_path / "f.dicom", tmp_path / "out" / "f.png", 40)
    assert sizes == (WIDTH, HEIGHT, 40, 32)
    windowed = np.clip((raw - 29999.5) / 39999.0 + 0.5, 0, 1)
    expected = Image.fromarray(stretched(windowed)).resize((40, 32), Image.Resampling.BILINEAR)
    with Image.open(tmp_path / "out" / "f.png") as png:
        assert png.mode == "L" and png.size == (40, 32)
        np.testing.assert_array_equal(np.asarray(png), np.asarray(expected))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["f.png"]  # no temporary file left


def test_not_a_dicom_raises(tmp_path):
    (tmp_path / "g.dicom").write_bytes(b"not a dicom at all")
    with pytest.raises(DicomReadError, match="not a DICOM file"):
        read_dicom_uint8(tmp_path / "g.dicom")
