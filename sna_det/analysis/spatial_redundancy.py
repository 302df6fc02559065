"""Inter-pixel spatial redundancy of images, as in the paper's Fig. 1 (b)-(e).

An image is a matrix M (H, W) (grayscale, see ``sna_det.data.images.load_grayscale``) with singular
values s_1 >= s_2 >= ... The explained variance ratio of the i-th is EVR_i = s_i^2 / sum_j s_j^2
(its share of M's energy, ||M||_F^2; M is not centred, as in SNA's own decomposition). The
paper's figures are:

- (b), (c): the rank-1 and rank-30 reconstructions of M (``low_rank_reconstruction``);
- (d): the cumulative EVR of the top 50 singular values;
- (e): the mean of the maximal explained variance, max_i EVR_i = EVR_1, over the first n images,
  against n (``running_mean``).

A more redundant image has more of its energy in fewer singular values. For bright, smooth images
EVR_1 is mostly the mean brightness; ``subtract_mean=True`` decomposes M - mean(M) instead (the
spectrum of the image's variations around its mean).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np
import torch

from ..data.images import load_grayscale

__all__ = [
    "ImageRedundancy",
    "analyze_image",
    "analyze_images",
    "curve_csv",
    "explained_variance_ratio",
    "low_rank_reconstruction",
    "per_image_csv",
    "running_mean",
    "singular_values",
]


def singular_values(m: np.ndarray) -> np.ndarray:
    """Singular values of a matrix (H, W), descending, float64 (torch.linalg.svdvals)."""
    return torch.linalg.svdvals(torch.as_tensor(np.asarray(m, dtype=np.float64))).numpy()


def explained_variance_ratio(s: np.ndarray) -> np.ndarray:
    """EVR_i = s_i^2 / sum s_j^2 of singular values ``s`` (k,), summing to 1 (all zeros for a zero matrix)."""
    energy = np.square(np.asarray(s, dtype=np.float64))
    total = energy.sum()
    return energy / total if total > 0 else np.zeros_like(energy)


def low_rank_reconstruction(m: np.ndarray, rank: int) -> np.ndarray:
    """The best rank-``rank`` approximation of ``m`` (H, W): the sum of its top singular terms."""
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    u, s, vh = torch.linalg.svd(torch.as_tensor(np.asarray(m, dtype=np.float64)), full_matrices=False)
    k = min(rank, s.shape[0])
    return ((u[:, :k] * s[:k]) @ vh[:k]).numpy()


def running_mean(values: Sequence[float]) -> np.ndarray:
    """Mean of the first n values, for n = 1..len(values): (N,) -> (N,)."""
    values = np.asarray(values, dtype=np.float64)
    return np.cumsum(values) / np.arange(1, len(values) + 1)


@dataclass(frozen=True)
class ImageRedundancy:
    """Spectrum of one image: ``cumulative_evr`` (top_k,) is the cumulative EVR of the top singular
    values (constant after min(H, W)); ``max_evr`` = EVR_1; ``rank_99``: how many singular values
    hold 99 % of the energy."""

    image: str
    height: int
    width: int
    cumulative_evr: np.ndarray
    max_evr: float
    rank_99: int


def analyze_image(name: str, m: np.ndarray, top_k: int = 50, subtract_mean: bool = False) -> ImageRedundancy:
    """Redundancy of the matrix ``m`` (H, W) of the image called ``name`` (of ``m - m.mean()`` if
    ``subtract_mean``)."""
    m = np.asarray(m, dtype=np.float64)
    evr = explained_variance_ratio(singular_values(m - m.mean() if subtract_mean else m))
    cumulative = np.cumsum(evr)
    padded = np.concatenate([cumulative, np.full(max(0, top_k - len(cumulative)), cumulative[-1])])[:top_k]
    rank_99 = int(np.searchsorted(cumulative, 0.99 - 1e-12) + 1) if cumulative[-1] > 0 else 0
    return ImageRedundancy(name, m.shape[0], m.shape[1], padded, float(evr[0]), min(rank_99, len(evr)))


def analyze_images(
    paths: Sequence[str], top_k: int = 50, max_side: int = 0, subtract_mean: bool = False
) -> List[ImageRedundancy]:
    """``analyze_image`` for every image file of ``paths``, in order (see ``load_grayscale`` for ``max_side``)."""
    return [analyze_image(str(p), load_grayscale(p, max_side), top_k, subtract_mean) for p in paths]


def per_image_csv(results: Dict[str, Sequence[ImageRedundancy]]) -> str:
    """CSV text, one row per image: dataset, image, height, width, max_evr, rank_99, cum_evr_1..cum_evr_k."""
    top_k = max((len(r.cumulative_evr) for rows in results.values() for r in rows), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["dataset", "image", "height", "width", "max_evr", "rank_99"] + [f"cum_evr_{i + 1}" for i in range(top_k)]
    )
    for dataset, rows in results.items():
        for r in rows:
            cumulative = [f"{v:.6g}" for v in r.cumulative_evr]
            writer.writerow([dataset, r.image, r.height, r.width, f"{r.max_evr:.6g}", r.rank_99, *cumulative])
    return buffer.getvalue()


def curve_csv(results: Dict[str, Sequence[ImageRedundancy]]) -> str:
    """CSV text of Fig. 1 (e): dataset, images (n), mean_max_evr (mean of EVR_1 over the first n images)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["dataset", "images", "mean_max_evr"])
    for dataset, rows in results.items():
        for n, value in enumerate(running_mean([r.max_evr for r in rows]), start=1):
            writer.writerow([dataset, n, f"{value:.6g}"])
    return buffer.getvalue()
