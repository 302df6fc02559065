"""The labelling formats ``datasets/prepare_coco.py`` converts: name -> converter, the options it takes.

Every converter reads its layout into ``annotated`` objects, chooses its splits with ``splits`` and
writes through ``coco_writer``; this table is what a script or a caller dispatches on
(``convert_folder``). A new format is one reader module (an ``annotated.Reader`` and a layout function
for ``coco_writer.layout_converter``) and one entry here.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from .splits import check_val_fraction

__all__ = ["FORMATS", "COMMON_OPTIONS", "Format", "check_options", "convert_folder"]

SPLIT_OPTIONS = ("classes", "val_fraction", "seed")
COMMON_OPTIONS = ("strict", "rebuild", "log", "progress")
"""Keyword arguments every converter takes."""


@dataclass(frozen=True)
class Format:
    """One input format: its converter ``module:function`` in this package and the options it takes."""

    name: str
    converter: str
    options: Tuple[str, ...]
    layout: str
    """One line: what ``--root`` holds."""

    def converter_function(self) -> Callable[..., dict]:
        """``convert_x(root, output_dir, *, <options>, strict, rebuild, log, progress) -> summary``."""
        module, function = self.converter.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), function)


FORMATS: Dict[str, Format] = {
    f.name: f
    for f in (
        Format("voc", "voc:convert_voc_coco", (*SPLIT_OPTIONS, "difficult"), "Annotations/*.xml, JPEGImages/"),
        Format("voc2012", "voc:convert_voc2012", ("difficult", "detection_splits"), "VOCdevkit/VOC2012"),
        Format("yolo", "yolo:convert_yolo", (*SPLIT_OPTIONS, "data_yaml"), "images/, labels/, data.yaml"),
        Format("labelme", "labelme:convert_labelme", SPLIT_OPTIONS, "images with a labelme JSON beside each"),
        Format("via", "via:convert_via", (*SPLIT_OPTIONS, "class_attribute", "class_name"), "train/, val/ VIA JSONs"),
        Format("cvat", "cvat:convert_cvat", SPLIT_OPTIONS, "CVAT for images 1.1 XML(s) and the images"),
        Format("coco", "coco_input:convert_coco", SPLIT_OPTIONS, "a COCO JSON, or Roboflow's train/ valid/ test/"),
    )
}


def check_options(fmt: str, options: Dict[str, object]) -> None:
    """``ValueError`` (one line naming the flag) for an unknown format or an option ``fmt`` does not take;
    ``options`` are those given (``None`` values are not given)."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    for dest, value in options.items():
        if value is not None and dest not in FORMATS[fmt].options:
            takers = [f.name for f in FORMATS.values() if dest in f.options]
            flag = "--" + dest.replace("_", "-")
            raise ValueError(f"{flag} applies to --format {' or '.join(takers)}, not {fmt}")
    if fmt == "via" and options.get("classes") is not None and options.get("class_attribute") is None:
        raise ValueError("--classes applies to VIA with --class-attribute (without it every region is --class-name)")


def convert_folder(
    fmt: str,
    root: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    strict: bool = False,
    rebuild: bool = False,
    log: Optional[Callable[[str], None]] = None,
    progress: bool = False,
    **options: object,
) -> dict:
    """Convert ``root`` (a folder of format ``fmt``) into ``output_dir``; returns the summary
    (``coco_writer.convert_splits``). ``options``: the format's own (``FORMATS[fmt].options``; None: its default)."""
    check_options(fmt, options)
    if options.get("val_fraction") is not None:  # before any folder is read, the same for every format
        check_val_fraction(options["val_fraction"])
    given = {k: v for k, v in options.items() if v is not None}
    return FORMATS[fmt].converter_function()(
        root, output_dir, strict=strict, rebuild=rebuild, log=log, progress=progress, **given
    )
