"""Export a detector (or its backbone) for deployment and check that the export computes what the
eager model computes; the logic of ``tools/export_model.py``.

The method is detectron2's ``tracing``: ``detectron2.export.TracingAdapter`` flattens the model's
``Instances`` output into a tuple of tensors and ``torch.jit.trace`` records the computation on
one sample image. The TorchScript file is that trace; the ONNX file is the same trace through
torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) with the image's
height and width as dynamic axes. torch's default ONNX exporter since 2.9 (``dynamo=True``) cannot
export detectron2's detectors, the plain ones included (``tools/onnx_upstream_repro.py``).

What is exported is ``GeneralizedRCNN.inference(..., do_postprocess=False)``, as in detectron2's
tool: input one (3, H, W) float32 image already resized for the test (``preprocess_image``),
output ``Instances`` in that resized image's pixels (boxes (N, 4) x0 y0 x1 y1, scores (N,),
classes (N,)), ``detector_postprocess`` (the rescale to the original size) left to the caller.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import transforms as T
from detectron2.export import TracingAdapter
from detectron2.modeling import GeneralizedRCNN
from detectron2.structures import Instances
from torch import Tensor, nn

from .data.prepare.demo import render_demo_image
from .engine.exported_model import IDENTITY_FILE, load_exported
from .engine.inference_model import read_input_image as read_model_input
from .utils.atomic_write import atomic_write_bytes

__all__ = [
    "FORMATS",
    "MODULES",
    "DetectionDifference",
    "ExportedModel",
    "compare_detections",
    "default_sample_image",
    "detect",
    "export_model",
    "max_feature_difference",
    "normalised_batch",
    "preprocess_image",
    "read_input_image",
    "sample_image",
]

FORMATS = ("torchscript", "onnx")
MODULES = ("detector", "backbone")
"""``detector``: the whole ``GeneralizedRCNN`` (image -> detections); ``backbone``: its backbone
(normalised, padded images (B, 3, H, W) -> FPN features p2..p6), ONNX with dynamic B, H and W."""

ONNX_OPSET = 17
FILE_NAMES = {"torchscript": "model.ts", "onnx": "model.onnx"}


def read_input_image(path: str | os.PathLike, cfg: CfgNode) -> np.ndarray:
    """An image file as (H, W, 3) uint8, the network's input for ``cfg`` (the one image path,
    ``sna_det.engine.inference_model.read_input_image``: a DICOM rendered as the VinDr-CXR preparer
    renders it, with ``INPUT.INTENSITY``). Raises ValueError naming the file when it cannot be read."""
    return read_model_input(cfg, path).image


def default_sample_image() -> np.ndarray:
    """The sample image when none is given: image 0 of the demo's val split (a synthetic 256x256
    radiograph, ``sna_det.data.prepare.demo``), rendered on the fly, as (256, 256, 3) uint8 (gray:
    the same in RGB and BGR). No dataset needs to be prepared."""
    gray, _ = render_demo_image("val", 0)
    return np.repeat(gray[:, :, None], 3, axis=2)


def sample_image(path: Optional[str], cfg: CfgNode) -> np.ndarray:
    """The image at ``path`` (``read_input_image``), or ``default_sample_image()`` when it is None."""
    return read_input_image(path, cfg) if path else default_sample_image()


def preprocess_image(cfg: CfgNode, image: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 in ``cfg.INPUT.FORMAT`` -> (3, H', W') float32, resized as detectron2's
    ``DefaultPredictor`` does (shortest edge ``INPUT.MIN_SIZE_TEST``, longest at most ``MAX_SIZE_TEST``)."""
    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    resized = resize.get_transform(image).apply_image(image)
    return torch.as_tensor(np.ascontiguousarray(resized.astype("float32").transpose(2, 0, 1)))


def _inference(model: GeneralizedRCNN, inputs: List[Dict[str, Tensor]]) -> List[Dict[str, Instances]]:
    return [{"instances": model.inference(inputs, do_postprocess=False)[0]}]


def detect(model: GeneralizedRCNN, image: Tensor) -> Instances:
    """The eager detections of one preprocessed image (3, H, W), in that image's pixels."""
    with torch.no_grad():
        return _inference(model, [{"image": image}])[0]["instances"]


@dataclass
class ExportedModel:
    """A written export: ``path``, and how to read its flat outputs (``run``, a callable that takes
    what ``export_model`` took: one image (3, H, W) for the detector, a batch (B, 3, H, W) for the
    backbone, and returns ``Instances`` or a dict name -> (B, C, h, w) tensor)."""

    path: Path
    run: Callable


def _backbone_output_names(backbone: nn.Module) -> List[str]:
    return list(backbone.output_shape().keys())


def export_model(
    model: GeneralizedRCNN,
    sample: Tensor,
    fmt: str,
    output_dir: str | os.PathLike,
    module: str = "detector",
    identity: Optional[dict] = None,
) -> ExportedModel:
    """Trace ``model`` (or its backbone) on ``sample`` and write ``output_dir/model.ts`` or ``model.onnx``.

    Args:
        sample: detector: one preprocessed image (3, H, W) float32; backbone: normalised, padded
            images (B, 3, H, W) with H and W multiples of ``backbone.size_divisibility``.
        fmt: ``"torchscript"`` or ``"onnx"`` (TorchScript-based exporter, opset 17, dynamic H and W).
        module: ``"detector"`` or ``"backbone"``.
        identity: ``exported_model.model_identity``, recorded in a model.ts as its extra file ``IDENTITY_FILE``.

    The file is written atomically (``atomic_write_bytes``): a full disk or a read-only folder raises
    ``OSError`` naming it and leaves no partial or temporary file. Returns the written file read back:
    TorchScript through ``torch.jit.load``, ONNX through an onnxruntime CPU session.
    """
    if fmt not in FORMATS or module not in MODULES:
        raise ValueError(f"format must be one of {FORMATS} and module one of {MODULES}; got {fmt!r}, {module!r}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / FILE_NAMES[fmt]
    if module == "detector":
        traced: nn.Module = TracingAdapter(model, [{"image": sample}], _inference).eval()
        output_names = None
    else:
        traced = model.backbone.eval()
        output_names = _backbone_output_names(model.backbone)
    buffer = io.BytesIO()
    if fmt == "torchscript":
        with torch.no_grad():
            script = torch.jit.trace(traced, (sample,), check_trace=False, strict=module == "detector")
        extra = {IDENTITY_FILE: json.dumps(identity)} if identity is not None else {}
        torch.jit.save(script, buffer, _extra_files=extra)
    else:
        _export_onnx(traced, sample, buffer, output_names)
    atomic_write_bytes(path, buffer.getvalue())
    return ExportedModel(path, load_exported(path, traced.outputs_schema if module == "detector" else output_names))


def _export_onnx(module: nn.Module, sample: Tensor, path, output_names: Optional[List[str]]) -> None:
    if output_names is None:  # the detector: one image, (3, H, W); N detections
        axes = {"image": {1: "height", 2: "width"}}
    else:  # the backbone: (B, 3, H, W) -> each level (B, C, h, w)
        axes = {"image": {0: "batch", 2: "height", 3: "width"}}
        axes.update({name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in output_names})
    with torch.no_grad():
        torch.onnx.export(
            module, (sample,), path, dynamo=False, opset_version=ONNX_OPSET,
            input_names=["image"], output_names=output_names, dynamic_axes=axes,
        )  # fmt: skip


@dataclass
class DetectionDifference:
    """Exported against eager detections of one image: counts, and over matched pairs the largest
    box coordinate difference (pixels) and score difference. ``matched < max(eager, exported)``
    means some detection has no counterpart of the same class."""

    eager: int
    exported: int
    matched: int
    max_box_px: float
    max_score: float

    def agrees(self, box_px: float = 0.05, score: float = 1e-4) -> bool:
        """Same detections, boxes within ``box_px`` pixels and scores within ``score``."""
        same = self.eager == self.exported == self.matched
        return same and self.max_box_px <= box_px and self.max_score <= score


def compare_detections(eager: Instances, exported: Instances) -> DetectionDifference:
    """Pair each eager detection with an exported one of the same class, nearest boxes first
    (greedy on the largest coordinate difference), and measure the pairs.

    Pairing rather than comparing row by row: two detections whose scores differ by less than
    float rounding may come out in either order.
    """
    a, b = eager.pred_boxes.tensor.double(), exported.pred_boxes.tensor.double()
    distance = (a[:, None, :] - b[None, :, :]).abs().amax(-1) if len(a) and len(b) else a.new_zeros(len(a), len(b))
    distance[eager.pred_classes[:, None] != exported.pred_classes[None, :]] = float("inf")
    pairs: List[Tuple[int, int]] = []
    while distance.numel() and torch.isfinite(distance).any():
        i, j = divmod(int(distance.argmin()), distance.shape[1])
        pairs.append((i, j))
        distance[i, :] = float("inf")
        distance[:, j] = float("inf")
    box = max((float((a[i] - b[j]).abs().max()) for i, j in pairs), default=0.0)
    score = max((abs(float(eager.scores[i]) - float(exported.scores[j])) for i, j in pairs), default=0.0)
    return DetectionDifference(len(a), len(b), len(pairs), box, score)


def max_feature_difference(eager: Dict[str, Tensor], exported: Dict[str, Tensor]) -> Dict[str, Tuple[float, float]]:
    """Per output name: (max |exported - eager|, max |eager|) over the batch."""
    return {k: (float((exported[k] - v).abs().max()), float(v.abs().max())) for k, v in eager.items()}


def normalised_batch(model: GeneralizedRCNN, images: Sequence[Tensor]) -> Tensor:
    """Images (3, H, W) as the backbone sees them: normalised, padded to a common size divisible by
    ``backbone.size_divisibility``, (B, 3, H', W') (``GeneralizedRCNN.preprocess_image``)."""
    return model.preprocess_image([{"image": image} for image in images]).tensor
