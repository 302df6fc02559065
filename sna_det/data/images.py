"""The one image path: which files are images, finding them, and reading one as the network's input.

Every tool that takes images uses it (``tools/predict.py``, ``visualize_attention.py``,
``analyze_redundancy.py``, ``browse_dataset.py``, ``export_model.py``, ``visualize_predictions.py``,
and the VinDr-CXR preparer), so that a model sees the same pixels whichever tool feeds it.

Reading (``read_model_image``):

- an 8-bit picture (PNG, JPEG, BMP, TIFF, WebP in modes L, RGB, P, ...) is its own pixels, turned by
  its EXIF orientation and converted to ``INPUT.FORMAT`` as detectron2's ``read_image`` does;
- a DICOM, or a grayscale picture of more than 8 bits (16-bit PNG or TIFF, float TIFF), is read in its
  own values (a DICOM through ``sna_det.data.dicom``: modality LUT, MONOCHROME1 shown bone bright),
  turned into 8 bits by the ``Intensity`` chosen (``INPUT.INTENSITY``; by default the file's own
  window, then min..max), optionally CLAHE, and for a DICOM resized to a long side of ``max_size``
  (``render_gray``: the rendering of ``datasets/prepare_vindr_cxr.py``, whose PNGs a model trains on).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageOps

from .dicom import DICOM_SUFFIXES, DicomReadError, is_dicom_path, read_dicom_modality, stretch_to_uint8

__all__ = [
    "IMAGE_SUFFIXES",
    "INTENSITY_MODES",
    "PICTURE_SUFFIXES",
    "FILE_WINDOW",
    "HIGH_DEPTH_MODES",
    "Intensity",
    "ModelImage",
    "find_image_files",
    "is_image_path",
    "load_grayscale",
    "read_gray_uint8",
    "read_model_image",
    "render_gray",
    "resized_size",
    "to_uint8",
]

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Pictures PIL reads (what the dataset converters link); any case."""
IMAGE_SUFFIXES = PICTURE_SUFFIXES + DICOM_SUFFIXES
"""What a folder or a glob contributes as images (other files there are left out); any case."""
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
"""PIL modes of grayscale pictures with more than 8 bits: read in their own values."""
INTENSITY_MODES = ("file", "window", "percentile")


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether ``path``'s suffix is one of ``IMAGE_SUFFIXES`` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _images_in(paths: Sequence[str | os.PathLike]) -> List[Path]:
    return [Path(p) for p in sorted(map(str, paths)) if Path(p).is_file() and is_image_path(p)]


def find_image_files(inputs: Sequence[str]) -> List[Path]:
    """The image files of ``inputs`` in order, each once: a file as given (``IMAGE_SUFFIXES``), a folder's
    images (recursively), a glob's images (``**`` recursive), each folder and glob sorted by path.
    ValueError naming an input that gives no image."""
    found: List[Path] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            images = _images_in(path.rglob("*"))
        elif path.is_file():
            if not is_image_path(path):
                raise ValueError(f"{given}: not an image file name ({', '.join(IMAGE_SUFFIXES)})")
            images = [path]
        elif glob.has_magic(given):
            images = _images_in(glob.glob(given, recursive=True))
        else:
            raise ValueError(f"{given}: no such file or folder")
        if not images:
            raise ValueError(f"{given}: holds no image ({', '.join(IMAGE_SUFFIXES)})")
        found.extend(images)
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Intensity:
    """How a DICOM or a grayscale picture of more than 8 bits becomes 8 bits (``INPUT.INTENSITY``).

    ``mode``: ``"file"`` the file's own window (a DICOM's VOI LUT or WindowCenter/WindowWidth; none for
    a picture), then its minimum..maximum onto 0..255; ``"window"``: ``window`` = (center, width) on the
    modality values (DICOM) or the stored values (picture), DICOM's LINEAR function
    (PS3.3 C.11.2.1.2.1); ``"percentile"``: ``percentiles`` = (low, high) percent of the image's values
    onto 0..255, clipped. Then ``clahe``: opencv's CLAHE (``clahe_clip`` clip limit, ``clahe_tiles`` x
    ``clahe_tiles`` tiles) on the 8-bit result. MONOCHROME1 is inverted last (bone bright).
    """

    mode: str = "file"
    window: Tuple[float, ...] = ()
    percentiles: Tuple[float, float] = (0.5, 99.5)
    clahe: bool = False
    clahe_clip: float = 2.0
    clahe_tiles: int = 8

    def __post_init__(self) -> None:
        if self.mode not in INTENSITY_MODES:
            raise ValueError(f"INPUT.INTENSITY.MODE {self.mode!r} is not one of {list(INTENSITY_MODES)}")
        if self.mode == "window" and (len(self.window) != 2 or not float(self.window[1]) >= 1.0):
            raise ValueError(f"INPUT.INTENSITY.WINDOW {list(self.window)}: give [center, width] with width >= 1")
        low, high = (float(p) for p in self.percentiles)
        if self.mode == "percentile" and not 0.0 <= low < high <= 100.0:
            raise ValueError(f"INPUT.INTENSITY.PERCENTILES {[low, high]}: need 0 <= low < high <= 100")
        if self.clahe and not (self.clahe_clip > 0 and self.clahe_tiles >= 1):
            raise ValueError(f"INPUT.INTENSITY: CLAHE_CLIP {self.clahe_clip} must be > 0, CLAHE_TILES >= 1")

    @classmethod
    def from_node(cls, node: Any) -> Intensity:
        """From a config node with MODE, WINDOW, PERCENTILES, CLAHE, CLAHE_CLIP, CLAHE_TILES (``INPUT.INTENSITY``)."""
        if node is None:
            return cls()
        return cls(
            str(node.MODE), tuple(float(v) for v in node.WINDOW), tuple(float(v) for v in node.PERCENTILES),
            bool(node.CLAHE), float(node.CLAHE_CLIP), int(node.CLAHE_TILES),
        )  # fmt: skip

    def as_dict(self) -> dict:
        """JSON-able settings (recorded by the preparer)."""
        return {"mode": self.mode, "window": list(self.window), "percentiles": list(self.percentiles),
                "clahe": self.clahe, "clahe_clip": self.clahe_clip, "clahe_tiles": self.clahe_tiles}  # fmt: skip


FILE_WINDOW = Intensity()
"""The default ``Intensity``: the file's own window, then min..max (``INPUT.INTENSITY.MODE`` "file")."""


def to_uint8(values: np.ndarray, intensity: Intensity = FILE_WINDOW) -> np.ndarray:
    """(H, W) values (after the file's window for mode "file") -> (H, W) uint8 by ``intensity`` (its
    docstring), rounded to the nearest. ValueError for values that are not a finite (H, W) image."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"pixel values of shape {values.shape} are not a finite (H, W) image")
    if intensity.mode == "file":
        image = stretch_to_uint8(values)
    else:
        if intensity.mode == "window":
            center, width = (float(v) for v in intensity.window)
            unit = (values - (center - 0.5)) / (width - 1.0) + 0.5 if width > 1 else (values >= center) * 1.0
        else:
            low, high = np.percentile(values, intensity.percentiles)
            unit = (values - low) / (high - low) if high > low else np.zeros_like(values)
        image = np.rint(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)
    if intensity.clahe:
        import cv2  # the [data] extra

        tiles = (intensity.clahe_tiles, intensity.clahe_tiles)
        image = cv2.createCLAHE(clipLimit=intensity.clahe_clip, tileGridSize=tiles).apply(image)
    return image


def _open_picture(path: str | os.PathLike) -> Image.Image:
    picture = Image.open(path)
    picture.load()  # a truncated file fails here, as an OSError
    return ImageOps.exif_transpose(picture)


def read_gray_uint8(path: str | os.PathLike, intensity: Intensity = FILE_WINDOW) -> np.ndarray:
    """A DICOM or a picture as (H, W) uint8 grayscale, bone bright (module docstring); an 8-bit picture
    is its luma (PIL's "L"). Raises ``DicomReadError`` / ``ValueError`` / ``OSError`` for a file that
    cannot be read."""
    if is_dicom_path(path):
        values, monochrome1 = read_dicom_modality(path, voi=intensity.mode == "file")
        try:
            image = to_uint8(values, intensity)
        except ValueError as error:
            raise DicomReadError(str(error)) from None
        return 255 - image if monochrome1 else image
    with _open_picture(path) as picture:
        if picture.mode in HIGH_DEPTH_MODES:
            return to_uint8(np.asarray(picture), intensity)
        return np.asarray(picture.convert("L"))


def resized_size(width: int, height: int, max_size: int, upscale: bool = False) -> Tuple[int, int]:
    """(width, height) scaled so that the long side is ``max_size`` (rounded); ``max_size`` 0: unchanged.

    An image whose long side is already at most ``max_size`` keeps its size unless ``upscale``.
    """
    if max_size <= 0 or (max(width, height) <= max_size and not upscale):
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def render_gray(
    path: str | os.PathLike, max_size: int, upscale: bool = False, intensity: Intensity = FILE_WINDOW
) -> Tuple[np.ndarray, Tuple[int, int]]:
    """The one rendering of a radiograph (DICOM or picture): ``read_gray_uint8`` resized to a long side
    of at most ``max_size`` (exactly with ``upscale``; 0 keeps the size), PIL's bilinear filter
    (antialiased when shrinking). Returns ((h, w) uint8, (source width, source height)); boxes
    scale by w / source width, h / source height."""
    image = read_gray_uint8(path, intensity)
    height, width = image.shape
    size = resized_size(width, height, max_size, upscale)
    if size != (width, height):
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    return image, (width, height)


def _in_format(gray: np.ndarray, input_format: str) -> np.ndarray:
    return gray[:, :, None] if input_format == "L" else np.repeat(gray[:, :, None], 3, axis=2)


@dataclass
class ModelImage:
    """An input image as the model gets it, and the input's own size."""

    image: np.ndarray
    """(H, W, C) uint8 in the model's ``INPUT.FORMAT`` (C = 3; 1 for "L")."""
    own_size: Tuple[int, int]
    """(width, height) of the input's own pixels (a DICOM's Columns, Rows), the frame of its predictions."""


def read_model_image(
    path: str | os.PathLike,
    input_format: str,
    max_size: int = 1024,
    upscale: bool = False,
    intensity: Optional[Intensity] = None,
) -> ModelImage:
    """Read one image as the network's input (module docstring); ``max_size`` / ``upscale``: the
    preparer's rendering of DICOMs; ``intensity``: ``INPUT.INTENSITY`` (default: the file's window).

    Raises ValueError naming the file for a file that cannot be read.
    """
    intensity = intensity or FILE_WINDOW
    try:
        if is_dicom_path(path):
            gray, own = render_gray(path, max_size, upscale, intensity)
            return ModelImage(_in_format(gray, input_format), own)
        with _open_picture(path) as picture:
            if picture.mode in HIGH_DEPTH_MODES:
                return ModelImage(_in_format(to_uint8(np.asarray(picture), intensity), input_format), picture.size)
            # as detectron2's convert_PIL_to_numpy
            image = np.asarray(picture.convert("RGB" if input_format in ("BGR", "RGB") else input_format))
    except (OSError, ValueError, SyntaxError) as error:  # PIL's; DicomReadError is a ValueError
        raise ValueError(f"{path}: cannot read the image ({' '.join(str(error).split())})") from None
    image = image[:, :, ::-1] if input_format == "BGR" else image[:, :, None] if input_format == "L" else image
    return ModelImage(np.ascontiguousarray(image), (image.shape[1], image.shape[0]))


def load_grayscale(path: str | os.PathLike, max_side: int = 0) -> np.ndarray:
    """An image as a float64 matrix (H, W) in its own intensity units: luma for colour images,
    the raw values for 8/16-bit grayscale, and for a DICOM the display values of the project's one
    DICOM reader (``sna_det.data.dicom.read_dicom_values``: modality LUT, VOI LUT or window,
    MONOCHROME1 mirrored so that larger is brighter): the values ``read_model_image`` maps to 8 bits.

    ``max_side`` > 0 shrinks the image (box filter) so that its longer side is at most that many
    pixels; 0 keeps it as it is.
    """
    from .dicom import read_dicom_values

    path = Path(path)
    try:
        if is_dicom_path(path):
            image = Image.fromarray(read_dicom_values(path).astype(np.float32))
        else:
            image = _open_picture(path)
            image = image.convert("F") if image.mode not in ("I;16", "I;16B", "I") else image
            image = Image.fromarray(np.asarray(image, dtype=np.float32))
    except Exception as error:  # PIL and pydicom raise many types for unreadable files
        raise ValueError(f"{path}: cannot read the image ({error})") from None
    if max_side > 0 and max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.BOX)
    return np.asarray(image, dtype=np.float64)
