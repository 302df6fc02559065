"""The spatial-redundancy report of ``tools/analyze_redundancy.py``: Fig. 1 (b)-(e) of the paper as
PNG plots and CSV, one or several datasets on the same plots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from ..data.images import load_grayscale
from ..engine.predictor import resolve_images
from ..utils import atomic_write_text
from ..utils.figure_io import new_figure, save_figure
from .spatial_redundancy import (
    ImageRedundancy,
    analyze_images,
    curve_csv,
    low_rank_reconstruction,
    per_image_csv,
    running_mean,
)

__all__ = [
    "REPORT_FILES",
    "plot_cumulative_evr",
    "plot_mean_max_evr",
    "plot_reconstructions",
    "write_redundancy_report",
]

REPORT_FILES = {
    "per_image_csv": "redundancy_per_image.csv",
    "curve_csv": "mean_max_evr.csv",
    "cumulative_evr_png": "cumulative_evr.png",
    "mean_max_evr_png": "mean_max_evr.png",
    "reconstructions_png": "reconstructions.png",
}


def _finish(axes, xlabel: str, ylabel: str, title: str) -> None:
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.grid(alpha=0.3)
    axes.legend(loc="best")


def plot_cumulative_evr(results: Dict[str, Sequence[ImageRedundancy]], path: str | os.PathLike) -> None:
    """Fig. 1 (d): cumulative EVR of the top singular values, the mean over each dataset's images
    with the 10-90 % band of the images."""
    figure = new_figure(5.0, 3.6)
    axes = figure.add_subplot()
    for label, rows in results.items():
        curves = np.stack([r.cumulative_evr for r in rows])
        k = np.arange(1, curves.shape[1] + 1)
        (line,) = axes.plot(
            k, curves.mean(0), marker=".", label=f"{label} ({len(rows)} image{'s' if len(rows) > 1 else ''})"
        )
        low, high = np.percentile(curves, [10, 90], axis=0)
        axes.fill_between(k, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    _finish(
        axes,
        "number of singular values",
        "cumulative explained variance ratio",
        "Spectrum of the images (mean, 10-90 % band)",
    )
    save_figure(figure, path)


def plot_mean_max_evr(results: Dict[str, Sequence[ImageRedundancy]], path: str | os.PathLike) -> None:
    """Fig. 1 (e): mean of the maximal explained variance (EVR_1) over the first n images, against n."""
    figure = new_figure(5.0, 3.6)
    axes = figure.add_subplot()
    for label, rows in results.items():
        curve = running_mean([r.max_evr for r in rows])
        axes.plot(np.arange(1, len(curve) + 1), curve, marker="." if len(curve) < 30 else None, label=label)
    _finish(axes, "number of images", "mean maximal explained variance ratio", "Mean of EVR_1 over the first n images")
    save_figure(figure, path)


def plot_reconstructions(
    examples: Dict[str, np.ndarray], path: str | os.PathLike, ranks: Sequence[int] = (1, 30)
) -> None:
    """Fig. 1 (a)-(c): each dataset's example image (a row) beside its rank-k reconstructions."""
    figure = new_figure(2.4 * (1 + len(ranks)), 2.5 * len(examples))
    grid = figure.subplots(len(examples), 1 + len(ranks), squeeze=False)
    for row, (label, m) in zip(grid, examples.items()):
        panels = [(f"{label}\n{m.shape[0]} x {m.shape[1]}", m)]
        panels += [(f"rank {k}", low_rank_reconstruction(m, k)) for k in ranks]
        for axes, (title, image) in zip(row, panels):
            axes.imshow(image, cmap="gray", vmin=m.min(), vmax=m.max())
            axes.set_title(title, fontsize=9)
            axes.axis("off")
    save_figure(figure, path)


def write_redundancy_report(
    sources: Dict[str, Sequence[str]],
    output_dir: str | os.PathLike,
    *,
    max_images: int = 100,
    max_side: int = 0,
    top_k: int = 50,
    ranks: Sequence[int] = (1, 30),
    subtract_mean: bool = False,
) -> Dict[str, List[ImageRedundancy]]:
    """Analyze each dataset of ``sources`` ({label: dataset names, folders or image files}) and write
    ``REPORT_FILES`` into ``output_dir``; returns the per-image results by label.

    ``max_images`` > 0 keeps each label's first that many images; ``max_side`` > 0 shrinks larger
    images first (see ``load_grayscale``); ``subtract_mean`` analyzes each image minus its mean
    (``analyze_image``); the example image of each label is its first.
    """
    output_dir = Path(output_dir)
    results: Dict[str, List[ImageRedundancy]] = {}
    examples: Dict[str, np.ndarray] = {}
    for label, label_sources in sources.items():
        paths = resolve_images(label_sources, max_images)
        results[label] = analyze_images(paths, top_k=top_k, max_side=max_side, subtract_mean=subtract_mean)
        examples[label] = load_grayscale(paths[0], max_side)
    atomic_write_text(output_dir / REPORT_FILES["per_image_csv"], per_image_csv(results))
    atomic_write_text(output_dir / REPORT_FILES["curve_csv"], curve_csv(results))
    plot_cumulative_evr(results, output_dir / REPORT_FILES["cumulative_evr_png"])
    plot_mean_max_evr(results, output_dir / REPORT_FILES["mean_max_evr_png"])
    plot_reconstructions(examples, output_dir / REPORT_FILES["reconstructions_png"], ranks)
    return results
