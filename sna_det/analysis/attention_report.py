"""Attention maps over images, beside the model's detections: the report of ``tools/visualize_attention.py``.

For each image, the panels are the detections (detectron2's Visualizer) and every spatial map of
every attention module (``attention_maps.AttentionMapRecorder``) brought back onto the image and
overlaid on it as a heat map (each map scaled to its own min-max; the panel's label gives that
range in the map's units). Written per image: one PNG per panel, ``<image>/<panel>.png``, all of
the image's size, and ``<image>.png``, the panels side by side (in 256 colours, to stay small);
then ``index.html``, a table with a row per image and a column per panel.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from detectron2.data import Metadata, MetadataCatalog
from detectron2.data import transforms as T
from detectron2.utils.visualizer import Visualizer
from matplotlib import colormaps

from ..engine.inference_model import build_inference_model, read_input_image
from ..utils import atomic_write_text
from ..utils.figure_io import save_png
from .attention_maps import AttentionMapRecorder, map_to_image

__all__ = ["ImagePanels", "overlay_map", "panels_side_by_side", "visualize_attention"]

PANEL_GAP = 4
"""White pixels between panels in the side-by-side PNG."""


@dataclass(frozen=True)
class ImagePanels:
    """What was written for one image: ``panels`` {panel title: PNG path}, ``combined`` the side-by-side
    PNG, ``detections`` the number of detections drawn."""

    image: str
    panels: Dict[str, str]
    combined: str
    detections: int


def overlay_map(image_rgb: np.ndarray, attention_map: np.ndarray, label: str, alpha: float = 0.5) -> np.ndarray:
    """``attention_map`` (H, W) as a heat map (turbo colormap, min-max scaled) over ``image_rgb``
    (H, W, 3) uint8, with ``label`` written in its corner; returns (H, W, 3) uint8."""
    if attention_map.shape != image_rgb.shape[:2]:
        raise ValueError(f"map {attention_map.shape} and image {image_rgb.shape[:2]} differ in size")
    low, high = float(attention_map.min()), float(attention_map.max())
    scaled = (attention_map - low) / (high - low) if high > low else np.zeros_like(attention_map)
    heat = colormaps["turbo"](scaled)[..., :3] * 255.0
    blended = ((1 - alpha) * image_rgb.astype(np.float64) + alpha * heat).round().astype(np.uint8)
    visualizer = Visualizer(blended, scale=1.0)
    visualizer.draw_text(label, (2, 2), horizontal_alignment="left", color="w")
    return visualizer.get_output().get_image()


def panels_side_by_side(panels: Sequence[np.ndarray], gap: int = PANEL_GAP) -> np.ndarray:
    """Panels (H, W_i, 3) in a row with ``gap`` white columns between them: (H, sum W_i + gap (n-1), 3)."""
    height = panels[0].shape[0]
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    row: List[np.ndarray] = []
    for index, panel in enumerate(panels):
        row += ([spacer] if index else []) + [panel]
    return np.concatenate(row, axis=1)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _index_html(rows: Sequence[ImagePanels], output_dir: Path) -> str:
    titles: List[str] = []
    for row in rows:
        titles += [t for t in row.panels if t not in titles]
    head = "".join(f"<th>{html.escape(t)}</th>" for t in titles)
    body = []
    for row in rows:
        cells = []
        for title in titles:
            path = row.panels.get(title)
            if path is None:
                cells.append("<td></td>")
                continue
            src = html.escape(os.path.relpath(path, output_dir))
            cells.append(f'<td><a href="{src}"><img src="{src}" alt="{html.escape(title)}"></a></td>')
        body.append(f"<tr><th>{html.escape(os.path.basename(row.image))}</th>{''.join(cells)}</tr>")
    style = "img{max-width:320px;height:auto}td,th{padding:4px;vertical-align:top;font:13px sans-serif}"
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Attention maps</title><style>{style}</style>"
        f"</head><body>\n<table>\n<tr><th>image</th>{head}</tr>\n" + "\n".join(body) + "\n</table>\n</body></html>\n"
    )


def visualize_attention(
    cfg,
    image_paths: Sequence[str],
    output_dir: str | os.PathLike,
    *,
    metadata: Optional[Metadata] = None,
    score_threshold: float = 0.5,
    alpha: float = 0.5,
) -> List[ImagePanels]:
    """Run the model of ``cfg`` (``build_inference_model``: ``cfg.MODEL.WEIGHTS`` loaded strictly, random
    weights when it is empty) on every image (read as predict reads it, ``read_input_image``; resized as
    for the test) and write its panels and ``index.html`` into ``output_dir`` (see the module docstring).

    Args:
        metadata: class names for the detections (default: those of ``cfg.DATASETS.TEST[0]``).
        score_threshold: detections below this score are not drawn.
        alpha: opacity of the heat maps.
    """
    output_dir = Path(output_dir)
    model = build_inference_model(cfg, allow_no_weights=True)
    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    if metadata is None and len(cfg.DATASETS.TEST):
        metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0])
    padded: List[torch.Size] = []
    backbone = getattr(model, "backbone", None)
    handle = backbone.register_forward_pre_hook(lambda m, inputs: padded.append(inputs[0].shape)) if backbone else None
    rows: List[ImagePanels] = []
    try:
        with AttentionMapRecorder(model) as recorder, torch.no_grad():
            for number, path in enumerate(image_paths):
                image = read_input_image(cfg, path).image
                resized_image = resize.get_transform(image).apply_image(image)
                resized = resized_image.shape[:2]
                recorder.clear()
                padded.clear()
                tensor = torch.as_tensor(np.ascontiguousarray(resized_image.astype("float32").transpose(2, 0, 1)))
                predictions = model([{"image": tensor, "height": image.shape[0], "width": image.shape[1]}])[0]
                image_rgb = np.ascontiguousarray(image[:, :, ::-1] if cfg.INPUT.FORMAT == "BGR" else image)
                instances = predictions["instances"].to("cpu")
                instances = instances[instances.scores >= score_threshold]
                drawn = Visualizer(image_rgb, metadata=metadata, scale=1.0)
                panels = {"detections": drawn.draw_instance_predictions(instances).get_image()}
                for placement, kinds in recorder.maps.items():
                    for kind, maps in kinds.items():
                        on_image = map_to_image(
                            maps[-1][0], resized, padded[-1][-2:] if padded else resized, image.shape[:2]
                        )
                        low, high = float(maps[-1][0].min()), float(maps[-1][0].max())
                        label = f"{placement} {kind}\n{low:.3g} to {high:.3g}"
                        panels[f"{placement} {kind}"] = overlay_map(image_rgb, on_image.numpy(), label, alpha)
                stem = f"{number:04d}_{_slug(Path(path).stem)}"
                files = {}
                for title, panel in panels.items():
                    files[title] = str(output_dir / stem / f"{_slug(title)}.png")
                    save_png(panel, files[title])
                combined = str(output_dir / f"{stem}.png")
                save_png(panels_side_by_side(list(panels.values())), combined, palette=True)
                rows.append(ImagePanels(str(path), files, combined, len(instances)))
    finally:
        if handle is not None:
            handle.remove()
    atomic_write_text(output_dir / "index.html", _index_html(rows, output_dir))
    return rows
