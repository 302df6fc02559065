"""An exported model read back: a ``model.ts`` / ``model.onnx`` of ``tools/export_model.py`` run on the
CPU (``load_exported``), and the identity a model.ts records checked against a config
(``check_model_identity``). The predictor (``engine/predictor.py``) runs exported models through these;
export (``sna_det/export.py``) writes the files and reads them back with the same functions.

A model.ts records ``model_identity`` of its config in the extra file ``IDENTITY_FILE`` of the archive
(``torch.jit.save(_extra_files=...)``); an ONNX file records none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence, Tuple

import torch
from detectron2.config import CfgNode
from torch import Tensor

__all__ = ["IDENTITY_FILE", "check_model_identity", "load_exported", "model_identity"]

IDENTITY_FILE = "sna_det_model.json"
"""The extra file of a model.ts (``torch.jit.save(_extra_files=...)``) recording ``model_identity``."""


def model_identity(cfg: CfgNode, class_names: Sequence[str]) -> dict:
    """What a predictor must agree with to read the model's outputs right: the meta architecture,
    NUM_CLASSES, the class names and the input format (channel order)."""
    key = "RETINANET" if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else "ROI_HEADS"
    return {
        "meta_architecture": cfg.MODEL.META_ARCHITECTURE,
        "num_classes": int(cfg.MODEL[key].NUM_CLASSES),
        "class_names": list(class_names),
        "input_format": cfg.INPUT.FORMAT,
        "mask_on": bool(cfg.MODEL.MASK_ON),
    }


def check_model_identity(path: str | os.PathLike, recorded: str, cfg: CfgNode, class_names: Sequence[str]) -> None:
    """``ValueError`` naming the file and the first field where the identity recorded in an exported
    model (``recorded``: the JSON text of ``IDENTITY_FILE``; "" for an export that records none) differs
    from the one of ``cfg`` and its ``class_names``."""
    if not recorded:
        return
    try:
        exported = json.loads(recorded)
    except json.JSONDecodeError:
        raise ValueError(f"{path}: its {IDENTITY_FILE} is not JSON") from None
    expected = model_identity(cfg, class_names)
    for field, value in expected.items():
        if field in exported and exported[field] != value:
            raise ValueError(
                f"{path}: exported with {field} {exported[field]!r}, but the config has {value!r}: "
                "give the config it was exported from"
            )


def load_exported(path: str | os.PathLike, outputs: object) -> Callable:
    """A callable running the file at ``path`` (``model.ts`` or ``model.onnx``) on CPU.

    ``outputs``: the ``TracingAdapter.outputs_schema`` of a detector export (the callable then
    returns ``Instances``), or the list of a backbone's output names (it returns a dict of tensors).
    """
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

        def flat(x: Tensor) -> Tuple[Tensor, ...]:
            return tuple(torch.from_numpy(v) for v in session.run(None, {"image": x.numpy()}))

    else:
        script = torch.jit.load(str(path), map_location="cpu")

        def flat(x: Tensor) -> Tuple[Tensor, ...]:
            with torch.no_grad():
                out = script(x)  # the detector: a tuple; the backbone: a dict name -> tensor
            return tuple(out[name] for name in outputs) if isinstance(out, dict) else out

    if isinstance(outputs, (list, tuple)):
        return lambda x: dict(zip(outputs, flat(x)))
    return lambda x: outputs(flat(x))[0]["instances"]
