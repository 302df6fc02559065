"""What a VinDr-CXR preparation does (``PrepareOptions``), its range checks, and the settings recorded
with the prepared folder (``prepare_settings``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Tuple

from ...images import Intensity
from .annotations import VinDrSource
from .fusion import COUNTING_ONLY, FUSIONS

__all__ = ["DEFAULT_OPTIONS", "RUN_OPTIONS", "PrepareOptions", "check_options", "prepare_settings"]


@dataclass(frozen=True)
class PrepareOptions:
    """What ``prepare_vindr_cxr`` does; the defaults are the main experiment's setting."""

    fusion: str = "wbf"
    """One of ``fusion.FUSIONS``: how several readers' boxes of a finding on an image are combined
    (one reader's boxes never are); ``per-finding``, Table 4's counting, only with ``stats_only``."""
    iou_thr: float = 0.4
    """IoU threshold of ``wbf`` and ``nms`` (0.4: the VinBigData challenge's)."""
    max_size: int = 1024
    """Long side of the written PNGs at most this many pixels (0: the original size)."""
    upscale: bool = False
    """Enlarge images whose long side is below ``max_size`` to it (by default they keep their size)."""
    intensity: Intensity = Intensity()
    """How a DICOM becomes 8 bits (``sna_det.data.images.Intensity``; recorded unless the default)."""
    val_fraction: float = 0.2
    """Share of the training annotations' images in val, in [0, 1); 0 only with a test split (PhysioNet)."""
    seed: int = 0
    all_labels: bool = False
    """Keep every label of the CSVs (PhysioNet's local labels), not only the paper's 14 findings."""
    drop_no_finding: bool = False
    """Leave out images without any kept box (by default they stay, as negatives)."""
    stats_only: bool = False
    """Read the CSVs only: no image is read or written; boxes are not checked against image sizes."""
    strict: bool = False
    """Stop at the first bad input (``problems.PROBLEMS``) instead of skipping and counting it."""
    workers: int = 1
    """Processes converting images."""
    rebuild: bool = False
    """Start over: remove what an earlier run wrote (a folder prepared with other settings is refused otherwise)."""
    progress: bool = False
    """A progress bar (tqdm: images/s, ETA) on stderr while converting."""
    split_file: Optional[str] = None
    """JSON ``{split name: [image ids]}`` replacing the stratified split (``split_file.py``)."""
    readers: Optional[Tuple[str, ...]] = None
    """Keep only these readers' rows (rad_id: boxes and "No finding"); None: every reader's."""


DEFAULT_OPTIONS = PrepareOptions()
"""The main experiment's setting (``PrepareOptions()``, frozen)."""
RUN_OPTIONS = ("strict", "workers", "rebuild", "progress")
"""Options that change how a run goes, not what it writes: left out of the recorded settings."""


def prepare_settings(options: PrepareOptions, source: VinDrSource, inputs: Optional[dict] = None) -> dict:
    """What the prepared folder's contents depend on: the options but ``RUN_OPTIONS``, the source kind,
    and ``inputs`` (``source_identity``)."""
    settings = {k: v for k, v in asdict(options).items() if k not in RUN_OPTIONS}
    if options.intensity == Intensity():  # the file's own window: folders prepared before it was a choice
        del settings["intensity"]
    settings["source"] = source.layout + (" (pre-converted images)" if source.sizes_csv else "")
    if source.unlabelled_dirs:
        settings["source"] += " + unlabelled " + ", ".join(source.unlabelled_dirs)
    settings.update(inputs or {})
    return settings


def check_options(options: PrepareOptions) -> None:
    """ValueError naming the first option out of range (before anything is read)."""
    if options.fusion not in FUSIONS:
        raise ValueError(f"--fusion {options.fusion!r} is not one of {FUSIONS}")
    if options.fusion in COUNTING_ONLY and not options.stats_only:
        raise ValueError(
            f"--fusion {options.fusion} counts one box per (image, finding), the paper's Table 4, merging one "
            "reader's separate boxes too: it is for --stats-only; convert with wbf (the default) or none"
        )
    if options.readers is not None and (not options.readers or not all(r and r == r.strip() for r in options.readers)):
        raise ValueError(f"--readers {','.join(options.readers)!r} is not a comma-separated list of rad_ids")
    if not 0.0 < options.iou_thr <= 1.0:
        raise ValueError(f"--iou-thr {options.iou_thr} is not in (0, 1]")
    if options.max_size < 0:
        raise ValueError(f"--max-size {options.max_size} is negative (0 keeps the original size)")
    if not 0.0 <= options.val_fraction < 1.0:
        raise ValueError(f"--val-fraction {options.val_fraction} is not in [0, 1) (1 would leave train empty)")
    if options.workers < 1:
        raise ValueError(f"--workers {options.workers} is not at least 1")
