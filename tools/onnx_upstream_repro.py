#!/usr/bin/env python
"""What limits ONNX export, shown on models without SNA: detectron2's own plain Faster R-CNN
(model zoo config, random weights) and a five-line module. Nothing of sna_det is in the exported
models (sna_det only compares outputs).

    python tools/onnx_upstream_repro.py            # about 4 minutes on 2 busy CPU cores

1. detectron2's tools/deploy/export_model.py calls ``torch.onnx.export(TracingAdapter(...), (image,), f)``.
   Since torch 2.9 that is the dynamo exporter (``dynamo=True`` by default): it fails on data-dependent
   control flow in detectron2's box code (``GuardOnDataDependentSymNode``, proposal_utils.py).
2. The TorchScript-based exporter (``dynamo=False``) exports the same detector with dynamic height
   and width, and onnxruntime reproduces eager on another image size: what tools/export_model.py does.
3. The TorchScript-based exporter on the adapter as detectron2's tool leaves it (training mode; the
   detector inside in eval mode) exports, but restores the adapter's training mode recursively: the
   detector is left in training mode, and running it afterwards fails on ``assert not self.training``
   (rcnn.py). tools/export_model.py puts the adapter in eval mode.
4. torch's dynamo exporter also fails on an in-place add to a diagonal view: ``ConversionError`` in
   its decomposition step, on a five-line module. SNA adds ``eps * I`` to its Gram matrix out of
   place (``torch.baddbmm``) for that reason, and the dynamo exporter exports the block.
"""

import argparse
import shutil
import tempfile
import traceback
from pathlib import Path


def inference(model, inputs):
    """detectron2's export_tracing: the detector's output before the final rescale."""
    return [{"instances": model.inference(inputs, do_postprocess=False)[0]}]


def describe_failure(error: BaseException) -> str:
    """The innermost cause's type and first line, and the deepest frame in detectron2/torchvision/this file."""
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    message = next((line for line in str(root).splitlines() if line.strip()), "")
    frames = [
        f for f in traceback.extract_tb(root.__traceback__) if "detectron2/" in f.filename or __file__ in f.filename
    ]
    where = (
        f" at {frames[-1].filename.split('site-packages/')[-1]}:{frames[-1].lineno} `{frames[-1].line}`"
        if frames
        else ""
    )
    return f"{type(error).__name__} <- {type(root).__name__}: {message[:300]}{where}"


def attempt(title: str, export) -> bool:
    print(f"- {title}")
    try:
        export()
    except Exception as error:  # noqa: BLE001  (the point is to show any failure)
        print(f"    FAILS: {describe_failure(error)}")
        return False
    print("    exports")
    return True


def diagonal_add_in_place():
    """A five-line module: a bmm, then an in-place add to the diagonal of its result."""
    import torch

    class DiagonalAddInPlace(torch.nn.Module):
        def forward(self, a):
            gram = torch.bmm(a, a.transpose(1, 2))
            gram.diagonal(dim1=1, dim2=2).add_(1e-3)
            return gram

    return DiagonalAddInPlace()


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (no torch: ``--help`` answers at once)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml", help="model-zoo config")
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    import torch
    from detectron2 import model_zoo
    from detectron2.config import get_cfg
    from detectron2.export import TracingAdapter
    from detectron2.modeling import build_model

    print(f"torch {torch.__version__}; detectron2's model zoo {args.config}, random weights, no SNA")
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(args.config))
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    image = torch.rand(3, 128, 160) * 255

    tmp = Path(tempfile.mkdtemp(prefix="onnx_repro_"))

    def upstream_call(adapter):
        return lambda: torch.onnx.export(adapter, (image,), str(tmp / "model.onnx"))

    attempt("1. as detectron2's export_model.py: torch.onnx.export(adapter, (image,), f), torch's default exporter",
            upstream_call(TracingAdapter(model, [{"image": image}], inference)))  # fmt: skip

    from sna_det.export import compare_detections, detect, export_model

    print("- 2. TorchScript-based exporter (dynamo=False, opset 17, dynamic H and W), run in onnxruntime")
    exported = export_model(model, image, "onnx", tmp / "torchscript_based")
    other = torch.rand(3, 160, 96) * 255
    diff = compare_detections(detect(model, other), exported.run(other))
    print(
        f"    exports; on a 160x96 image (traced on 128x160): eager {diff.eager}, onnxruntime {diff.exported}, "
        f"matched {diff.matched} detections, max box difference {diff.max_box_px:.2g} px, "
        f"max score difference {diff.max_score:.2g}"
    )
    adapter = TracingAdapter(model, [{"image": image}], inference)  # training mode, as detectron2's tool
    print("- 3. TorchScript-based exporter on the adapter in training mode (the detector in eval mode)")
    torch.onnx.export(adapter, (image,), str(tmp / "again.onnx"), dynamo=False)
    print(f"    exports; afterwards the detector's training flag is {model.training}")
    attempt("   then the eager detector on the same image", lambda: inference(model, [{"image": image}]))
    model.eval()
    small = (torch.randn(2, 3, 4),)
    attempt("4. torch.onnx.export(dynamo=True) of a bmm followed by gram.diagonal().add_(eps), no detectron2",
            lambda: torch.onnx.export(diagonal_add_in_place(), small, str(tmp / "m.onnx"), dynamo=True))  # fmt: skip
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    arguments = parse_args()
    from sna_det.utils.cli import run_tool

    run_tool(main, arguments)
