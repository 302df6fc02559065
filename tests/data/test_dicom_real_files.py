"""The one DICOM reader on real public DICOMs (pydicom's test files and pydicom-data), every common
transfer syntax, each result against pydicom's own modality LUT + VOI pipeline."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from sna_det.data.dicom import DicomReadError, read_dicom_uint8, read_dicom_values
from sna_det.data.images import load_grayscale
from sna_det.data.prepare.vindr_cxr import convert_image


def real_file(name: str) -> Path:
    """A file of pydicom's test data or of pydicom-data (a test dependency), never downloaded."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.fail(f"{name} is neither in pydicom's test files nor in pydicom-data (pip install pydicom-data)")
    return Path(path)


def pydicom_display(path: Path) -> np.ndarray:
    """pydicom's own pipeline: pixel_array -> apply_modality_lut -> apply_voi_lut, float64."""
    ds = pydicom.dcmread(path)
    return np.asarray(apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds), dtype=np.float64)


def assert_is_pydicoms_image(image: np.ndarray, path: Path) -> None:
    """``image`` is pydicom's pipeline stretched min..max onto 0..255 and rounded (to the nearest; a value
    exactly between two integers may go either way), inverted for MONOCHROME1: computed here by hand."""
    values = pydicom_display(path)
    exact = 255.0 * (values - values.min()) / (values.max() - values.min())
    if pydicom.dcmread(path, stop_before_pixels=True).PhotometricInterpretation == "MONOCHROME1":
        exact = 255.0 - exact
    assert image.dtype == np.uint8 and image.shape == values.shape
    assert np.abs(image - exact).max() <= 0.5 + 1e-9


# (file, transfer syntax UID): one real file per syntax, grayscale, one frame
REAL_FILES = [
    ("RG3_J2KI.dcm", "1.2.840.10008.1.2.4.91"),  # CR chest, MONOCHROME1, JPEG 2000 lossy, window
    ("RG3_J2KR.dcm", "1.2.840.10008.1.2.4.90"),  # the same, JPEG 2000 lossless
    ("RG3_UNCR.dcm", "1.2.840.10008.1.2.1"),  # the same, uncompressed
    ("JPEG-LL.dcm", "1.2.840.10008.1.2.4.70"),  # JPEG lossless process 14, selection value 1, 16 bit
    ("JPGExtended.dcm", "1.2.840.10008.1.2.4.51"),  # 12-bit JPEG extended (process 4)
    ("MR_small_jpeg_ls_lossless.dcm", "1.2.840.10008.1.2.4.80"),  # JPEG-LS lossless
    ("JPEGLSNearLossless_16.dcm", "1.2.840.10008.1.2.4.81"),  # JPEG-LS near-lossless
    ("MR_small_RLE.dcm", "1.2.840.10008.1.2.5"),  # RLE lossless
    ("MR_small_bigendian.dcm", "1.2.840.10008.1.2.2"),  # explicit VR big endian
    ("MR_small_implicit.dcm", "1.2.840.10008.1.2"),  # implicit VR little endian
    ("image_dfl.dcm", "1.2.840.10008.1.2.1.99"),  # deflated
    ("vlut_04.dcm", "1.2.840.10008.1.2.1"),  # VOI LUT Sequence
    ("mlut_18.dcm", "1.2.840.10008.1.2.1"),  # Modality LUT Sequence
]


@pytest.mark.parametrize("name, syntax", REAL_FILES, ids=[name for name, _ in REAL_FILES])
def test_real_dicom_matches_pydicoms_pipeline(name, syntax, tmp_path):
    path = real_file(name)
    assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    image = read_dicom_uint8(path)
    assert_is_pydicoms_image(image, path)
    # the PNG the preparer writes (no resize: max_size 0) holds exactly these pixels
    sizes = convert_image(path, tmp_path / "x.png", 0)
    with Image.open(tmp_path / "x.png") as png:
        assert png.mode == "L" and sizes == (png.width, png.height) * 2
        np.testing.assert_array_equal(np.asarray(png), image)


def test_lossless_compressions_decode_to_the_uncompressed_pixels():
    """Independent of the pipeline: lossless J2K, RLE, JPEG-LS and byte orders give the same image."""
    np.testing.assert_array_equal(
        read_dicom_uint8(real_file("RG3_J2KR.dcm")), read_dicom_uint8(real_file("RG3_UNCR.dcm"))
    )
    reference = pydicom.dcmread(real_file("MR_small.dcm")).pixel_array
    for name in (
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_bigendian.dcm",
    ):
        np.testing.assert_array_equal(pydicom.dcmread(real_file(name)).pixel_array, reference)
        np.testing.assert_array_equal(read_dicom_uint8(real_file(name)), read_dicom_uint8(real_file("MR_small.dcm")))


def test_monochrome1_chest_is_inverted_and_uses_its_window():
    """RG3 is a real CR chest in MONOCHROME1 with a window: bright = bone after reading."""
    path = real_file("RG3_UNCR.dcm")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1" and "WindowCenter" in ds
    image = read_dicom_uint8(path)
    stored = ds.pixel_array.astype(np.float64)
    # in MONOCHROME1 a larger stored value is darker: the correlation with the stored values is negative
    assert np.corrcoef(image.ravel(), stored.ravel())[0, 1] < -0.9
    values = read_dicom_values(path)
    display = pydicom_display(path)
    np.testing.assert_allclose(values, display.max() + display.min() - display)


def test_analysis_reads_dicoms_through_the_same_reader():
    path = real_file("mlut_18.dcm")
    np.testing.assert_allclose(load_grayscale(path), pydicom_display(path))


@pytest.mark.parametrize(
    "name, message",
    [
        ("emri_small.dcm", "10 frames"),  # multi-frame MR
        ("SC_rgb.dcm", "colour image (PhotometricInterpretation is RGB"),
        ("rtplan.dcm", "no pixel data"),
        ("no_meta.dcm", "not a DICOM file"),
        (
            "MR_truncated.dcm",
            "transfer syntax Explicit VR Little Endian (1.2.840.10008.1.2.1): pixel data does not decode",
        ),
    ],
)
def test_what_cannot_be_read_is_named(name, message):
    with pytest.raises(DicomReadError) as error:
        read_dicom_uint8(real_file(name))
    assert message in str(error.value)


def test_a_missing_decoder_is_named_with_the_transfer_syntax(monkeypatch):
    """Without the JPEG-LS plugin the reason names the syntax and what to install."""
    import sna_det.data.dicom as dicom

    class Unavailable:
        is_available = False

    monkeypatch.setattr(dicom, "get_decoder", lambda uid: Unavailable())
    with pytest.raises(
        DicomReadError, match=r"JPEG-LS Lossless Image Compression \(1.2.840.10008.1.2.4.80\): no installed"
    ):
        read_dicom_uint8(real_file("MR_small_jpeg_ls_lossless.dcm"))


def test_a_small_image_is_not_blown_up_unless_asked(tmp_path):
    path = real_file("MR_small.dcm")  # 64 x 64
    assert convert_image(path, tmp_path / "a.png", 1024) == (64, 64, 64, 64)
    assert convert_image(path, tmp_path / "b.png", 1024, upscale=True) == (64, 64, 1024, 1024)
    assert convert_image(path, tmp_path / "c.png", 32) == (64, 64, 32, 32)
