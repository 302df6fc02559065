"""Detections as labelling-tool files, so a model pre-labels the next batch (auto-annotation): labelme
JSONs and a CVAT for images 1.1 XML, which the readers here (``labelme``, ``cvat``) convert back.

- labelme: ``<folder>/<image stem>.json`` per image (a second image of that stem: ``<stem>-2.json``),
  what labelme 5 saves: each detection scoring at least ``score_thr`` a ``rectangle`` (its two corners),
  the score in ``description`` (``score 0.9134``) and ``flags`` (``{"predicted": true}``),
  ``imagePath`` relative to the JSON, ``imageData`` null, the image's width and height;
- CVAT: ``annotations.xml``, one ``<image name>`` per image (its file name, which CVAT matches against
  the task's images), each detection a ``<box source="auto">`` with a ``score`` attribute declared in
  the labels of ``<meta>``.

Boxes are in the image's own pixels (x_min, y_min, x_max, y_max), written as given.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import List, Protocol, Sequence

import numpy as np

from ...utils.atomic_write import atomic_write_json, atomic_write_text

__all__ = ["PRELABEL_FORMATS", "Detections", "cvat_xml", "labelme_json", "write_prelabels"]

PRELABEL_FORMATS = ("labelme", "cvat")
LABELME_VERSION = "5.5.0"


class Detections(Protocol):
    """One image's detections (``engine.predictor.ImagePrediction`` is one)."""

    file_name: str
    width: int
    height: int
    boxes: np.ndarray
    """(N, 4) x_min, y_min, x_max, y_max in the image's pixels."""
    scores: np.ndarray
    """(N,) in [0, 1]."""
    classes: np.ndarray
    """(N,) class indices into ``names``."""


def _kept(d: Detections, score_thr: float) -> List[int]:
    return [i for i in np.argsort(-np.asarray(d.scores), kind="stable").tolist() if d.scores[i] >= score_thr]


def labelme_json(d: Detections, names: Sequence[str], score_thr: float, image_path: str) -> dict:
    """The labelme file of one image (``image_path``: the image relative to the JSON)."""
    shapes = []
    for i in _kept(d, score_thr):
        x0, y0, x1, y1 = (float(v) for v in d.boxes[i])
        shapes.append(
            {
                "label": names[int(d.classes[i])],
                "points": [[x0, y0], [x1, y1]],
                "group_id": None,
                "description": f"score {float(d.scores[i]):.4f}",
                "shape_type": "rectangle",
                "flags": {"predicted": True},
                "mask": None,
            }
        )
    return {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": int(d.height),
        "imageWidth": int(d.width),
    }


def cvat_xml(predictions: Sequence[Detections], names: Sequence[str], score_thr: float) -> str:
    """The CVAT for images 1.1 XML of these images' detections (``ValueError`` for two images of one name)."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    labels = ET.SubElement(ET.SubElement(ET.SubElement(root, "meta"), "task"), "labels")
    for name in names:
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = "rectangle"
        attribute = ET.SubElement(ET.SubElement(label, "attributes"), "attribute")
        for key, value in (("name", "score"), ("mutable", "False"), ("input_type", "text"), ("default_value", "")):
            ET.SubElement(attribute, key).text = value
        ET.SubElement(attribute, "values").text = ""
    seen = {}
    for number, d in enumerate(predictions):
        name = Path(d.file_name).name
        if name in seen:
            raise ValueError(f"{d.file_name}: CVAT names images by file name, and {seen[name]} has it too")
        seen[name] = d.file_name
        image = ET.SubElement(root, "image", id=str(number), name=name, width=str(d.width), height=str(d.height))
        for i in _kept(d, score_thr):
            x0, y0, x1, y1 = (f"{float(v):.2f}" for v in d.boxes[i])
            box = ET.SubElement(image, "box", label=names[int(d.classes[i])], source="auto", occluded="0")
            box.attrib.update(xtl=x0, ytl=y0, xbr=x1, ybr=y1, z_order="0")
            ET.SubElement(box, "attribute", name="score").text = f"{float(d.scores[i]):.4f}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_prelabels(
    fmt: str, folder: str | os.PathLike, predictions: Sequence[Detections], names: Sequence[str], score_thr: float
) -> List[Path]:
    """Write ``fmt`` (``labelme``: a JSON per image; ``cvat``: ``annotations.xml``) into ``folder``,
    atomically; returns the files written. ``file_name`` of each prediction is the image's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "cvat":
        path = folder / "annotations.xml"
        atomic_write_text(path, cvat_xml(predictions, names, score_thr))
        return [path]
    if fmt != "labelme":
        raise ValueError(f"format {fmt!r} is not one of {', '.join(PRELABEL_FORMATS)}")
    written: List[Path] = []
    for d in predictions:
        stem, n = Path(d.file_name).stem, 1
        path = folder / f"{stem}.json"
        while path in written:
            n += 1
            path = folder / f"{stem}-{n}.json"
        image_path = Path(os.path.relpath(os.path.abspath(d.file_name), os.path.abspath(folder))).as_posix()
        atomic_write_json(path, labelme_json(d, names, score_thr, image_path))
        written.append(path)
    return written
