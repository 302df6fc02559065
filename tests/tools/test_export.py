"""Exported SNA models compute what the eager model computes, on inputs other than the sample:
TorchScript and ONNX (onnxruntime) detectors, the ONNX backbone, torch.export with dynamic H and W,
torch.compile without graph breaks in SNA. Detectors are the demo model (SNA after the stem) and the
paper's Table 4 model (SNA after the stem and in every residual block), small inputs."""

import functools
import re
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.structures import Boxes, Instances
from helpers import load_script
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from torch.export import Dim

from sna_det import SpectralNormAttention, add_sna_config
from sna_det.benchmarks.graph_breaks import explain_graph_breaks
from sna_det.data.prepare.demo import render_demo_image
from sna_det.engine.inference_model import build_inference_model
from sna_det.export import (
    compare_detections,
    default_sample_image,
    detect,
    export_model,
    max_feature_difference,
    normalised_batch,
    preprocess_image,
    read_input_image,
)
from sna_det.utils.cli import CommandError
from sna_det.utils.errors import SnaDetError

ROOT = Path(__file__).resolve().parents[2]
DEMO_SNA = "configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml"
TABLE4_SNA = "configs/vincxr_faster_sna.yaml"  # SNA after the stem and in all 8 residual blocks
SMALL = ["INPUT.MIN_SIZE_TEST", 128, "INPUT.MAX_SIZE_TEST", 192, "MODEL.DEVICE", "cpu",
         "MODEL.RPN.PRE_NMS_TOPK_TEST", 300, "MODEL.RPN.POST_NMS_TOPK_TEST", 100]  # fmt: skip


def export_tool_main():
    """tools/export_model.py's main on a command line (a list of arguments)."""
    module = load_script("tools/export_model.py")
    return lambda argv: module.main(module.parse_args(argv))


def gray_to_bgr(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


@functools.lru_cache(maxsize=1)
def real_radiograph() -> np.ndarray:
    """pydicom-data's RG1_UNCR.dcm, a real chest CR (1955x1841, MONOCHROME1), as 8 bit by pydicom's
    own modality LUT + VOI window, stretched and inverted so that bone is bright, (H, W, 3) uint8."""
    path = get_testdata_file("RG1_UNCR.dcm", download=False)
    if path is None:
        pytest.fail("RG1_UNCR.dcm is not in pydicom-data (a test dependency: pip install pydicom-data)")
    ds = pydicom.dcmread(path)
    values = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype(np.float64)
    gray = np.rint(255 * (values.max() - values) / (values.max() - values.min())).astype(np.uint8)
    return gray_to_bgr(gray)


def other_images():
    """Images of other sizes and content than the sample (demo val image 0, square): a real radiograph
    (portrait), a demo image stretched to landscape, and a demo image flipped and squeezed."""
    demo5, _ = render_demo_image("val", 5)
    demo9, _ = render_demo_image("val", 9)
    return {
        "radiograph": real_radiograph(),
        "demo landscape": gray_to_bgr(cv2.resize(demo5, (300, 200))),
        "demo portrait": gray_to_bgr(cv2.resize(demo9[::-1], (170, 260))),
    }


def calibrate_batch_norm(model, images) -> None:
    """BatchNorm's running statistics from ``images`` (cumulative average), so that random weights
    give features of unit scale, as trained ones do (untrained running stats are 0 and 1)."""
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.backbone.train()
    with torch.no_grad():
        model.backbone(normalised_batch(model, images))
    model.eval()


@functools.lru_cache(maxsize=2)  # built once per module: the tests only read it
def detector(config: str):
    """A detector of ``config`` with random weights made to detect: BatchNorm calibrated on demo
    images and the radiograph (untrained, 9 SNA blocks in a row amplify the radiograph's features
    to ~1e7), a box predictor whose scores and boxes depend strongly on the features."""
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.merge_from_file(str(ROOT / config))
    cfg.merge_from_list([str(v) for v in SMALL])
    model = build_inference_model(cfg, allow_no_weights=True, compile_backbone=False)
    demo = [gray_to_bgr(render_demo_image("train", i)[0]) for i in range(3)]
    calibrate_batch_norm(model, [preprocess_image(cfg, image) for image in demo + [real_radiograph()]])
    predictor = model.roi_heads.box_predictor  # features of unit scale: logits of std ~2, deltas ~0.5
    torch.nn.init.normal_(predictor.cls_score.weight, std=2.0 / predictor.cls_score.in_features**0.5)
    torch.nn.init.normal_(predictor.bbox_pred.weight, std=0.5 / predictor.bbox_pred.in_features**0.5)
    return cfg, model


@pytest.mark.parametrize("config, fmt", [(DEMO_SNA, "torchscript"), (TABLE4_SNA, "torchscript"), (TABLE4_SNA, "onnx")])
def test_exported_detector_matches_eager_on_other_images(config, fmt, tmp_path):
    cfg, model = detector(config)
    sample = preprocess_image(cfg, default_sample_image())
    exported = export_model(model, sample, fmt, tmp_path)
    assert exported.path == tmp_path / {"torchscript": "model.ts", "onnx": "model.onnx"}[fmt]
    seen = []
    for name, image in other_images().items():
        x = preprocess_image(cfg, image)
        assert x.shape != sample.shape
        eager = detect(model, x)
        diff = compare_detections(eager, exported.run(x))
        assert len(eager) >= 20 and eager.scores.max() - eager.scores.min() > 0.1, name  # real detections
        assert diff.agrees(box_px=0.05, score=1e-4), (name, diff)
        seen.append(eager.pred_boxes.tensor[:5])
    assert not torch.equal(seen[0], seen[1])  # the images give different detections


def test_onnx_backbone_matches_eager_on_another_size(tmp_path):
    """Bottom-up ResNet-18 with SNA after the stem and in every block, and the FPN, through onnxruntime."""
    cfg, model = detector(TABLE4_SNA)
    sample = normalised_batch(model, [preprocess_image(cfg, default_sample_image())])
    exported = export_model(model, sample, "onnx", tmp_path, module="backbone")
    images = other_images()
    batch = normalised_batch(model, [preprocess_image(cfg, images[k]) for k in ("radiograph", "demo portrait")])
    assert batch.shape[0] == 2 and batch.shape[2:] != sample.shape[2:]
    with torch.no_grad():
        eager = model.backbone(batch)
    diffs = max_feature_difference(eager, exported.run(batch))
    assert set(diffs) == {"p2", "p3", "p4", "p5", "p6"}
    for level, (difference, scale) in diffs.items():  # float rounding: ~1e-4 on the radiograph's features up to ~60
        assert difference <= 1e-5 * scale and scale > 1.0, (level, difference, scale)


def test_compare_detections_pairs_by_class_and_box():
    boxes = torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20], [30, 30, 40, 45]])
    eager = Instances((64, 64), pred_boxes=Boxes(boxes), scores=torch.tensor([0.9, 0.9, 0.5]),
                      pred_classes=torch.tensor([1, 2, 1]))  # fmt: skip
    order = torch.tensor([1, 0, 2])  # the two ties in the other order: still the same detections
    moved = boxes[order].clone()
    moved[2, 3] += 0.04
    exported = Instances((64, 64), pred_boxes=Boxes(moved), scores=torch.tensor([0.9, 0.9, 0.50002]),
                         pred_classes=torch.tensor([2, 1, 1]))  # fmt: skip
    diff = compare_detections(eager, exported)
    assert (diff.eager, diff.exported, diff.matched) == (3, 3, 3)
    assert diff.max_box_px == pytest.approx(0.04, abs=1e-6) and diff.max_score == pytest.approx(2e-5, abs=1e-7)
    assert diff.agrees() and not diff.agrees(box_px=0.03)
    exported.pred_classes = torch.tensor([2, 2, 1])  # a class changed: one detection has no counterpart
    assert compare_detections(eager, exported).matched == 2 and not compare_detections(eager, exported).agrees()


def test_svd_mode_refuses_onnx_export(tmp_path):
    block = SpectralNormAttention(mode="svd")
    with pytest.raises(RuntimeError, match="cannot be exported to ONNX.*mode='power'"):
        torch.onnx.export(block, (torch.randn(1, 4, 8, 8),), str(tmp_path / "svd.onnx"), dynamo=False)
    with pytest.raises(CommandError) as stop:
        export_tool_main()(["--config-file", str(ROOT / DEMO_SNA), "--format", "onnx", "--output", str(tmp_path),
              "--allow-untrained", *map(str, SMALL), "MODEL.SNA.MODE", "svd"])  # fmt: skip
    message = str(stop.value)
    assert message.startswith(f"{ROOT / DEMO_SNA}: cannot export:") and "\n" not in message
    assert "mode='power'" in message and not (tmp_path / "model.onnx").exists()


def test_read_input_image_reads_a_dicom_as_pydicom_displays_it():
    """As the VinDr-CXR preparer renders it: pydicom's display image, long side 1024 (PIL's bilinear)."""
    cfg = get_cfg()
    add_sna_config(cfg)
    image = read_input_image(get_testdata_file("RG1_UNCR.dcm", download=False), cfg)
    assert image.shape == (1024, 964, 3) and image.dtype == np.uint8
    expected = np.asarray(Image.fromarray(real_radiograph()[:, :, 0]).resize((964, 1024), Image.Resampling.BILINEAR))
    assert np.abs(image[:, :, 0].astype(int) - expected.astype(int)).max() <= 1  # rounding before the resize


def test_export_tool_bad_input(tmp_path):
    main = export_tool_main()
    missing = tmp_path / "missing.png"
    with pytest.raises(CommandError) as stop:
        main(["--config-file", str(ROOT / DEMO_SNA), "--sample-image", str(missing), "--output", str(tmp_path)])
    assert str(stop.value).startswith(f"{missing}: cannot read the image")
    not_dicom = tmp_path / "scan.dcm"
    not_dicom.write_text("not a DICOM")
    with pytest.raises(CommandError) as stop:
        main(["--config-file", str(ROOT / DEMO_SNA), "--output", str(tmp_path), "--check", str(not_dicom)])
    assert str(stop.value).startswith(f"{not_dicom}: cannot read the image")
    with pytest.raises(CommandError) as stop:
        main(["--config-file", str(tmp_path / "none.yaml"), "--output", str(tmp_path)])
    assert str(stop.value) == f"{tmp_path / 'none.yaml'}: no such config file"
    with pytest.raises(SnaDetError) as stop:  # a library error: run_tool prints it as one line
        main(["--config-file", str(ROOT / DEMO_SNA), "--output", str(tmp_path), "MODEL.WEIGHTS", str(missing)])
    assert str(stop.value) == f"{missing}: no such checkpoint file"
    assert not any(tmp_path.glob("model.*"))


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_torch_export_block_with_dynamic_height_and_width():
    block = SpectralNormAttention()
    program = torch.export.export(
        block, (torch.randn(2, 8, 24, 40),), dynamic_shapes={"x": {0: Dim("b"), 2: Dim("h", min=2), 3: Dim("w", min=2)}}
    )
    for shape in [(1, 8, 40, 24), (3, 8, 17, 17), (2, 8, 64, 9)]:  # taller, square, much wider than the sample
        x = torch.randn(shape).relu()
        assert relative_error(program.module()(x), block(x)) <= 1e-5, shape


def test_torch_export_backbone_with_dynamic_height_and_width():
    cfg, model = detector(TABLE4_SNA)
    backbone = model.backbone
    sample = normalised_batch(model, [preprocess_image(cfg, default_sample_image())])
    h, w = Dim("h", min=1, max=64), Dim("w", min=1, max=64)  # H, W multiples of the FPN's 32
    program = torch.export.export(backbone, (sample,), dynamic_shapes={"x": {2: 32 * h, 3: 32 * w}})
    images = other_images()
    batch = normalised_batch(model, [preprocess_image(cfg, images["demo landscape"])])
    assert batch.shape[2:] != sample.shape[2:]
    with torch.no_grad():
        eager, exported = backbone(batch), program.module()(batch)
    for level in eager:
        assert relative_error(exported[level], eager[level]) <= 1e-5, level


def test_compiled_sna_has_no_graph_break_and_matches_eager():
    """torch.compile: dynamo's explain finds the Table 4 backbone (9 SNA blocks) one graph without a
    break; the block compiled by inductor (C++ on the CPU), with dynamic shapes, matches eager on
    three sizes (tools/explain_graph_breaks.py does the whole detector: no break in SNA)."""
    cfg, model = detector(TABLE4_SNA)
    x = normalised_batch(model, [preprocess_image(cfg, default_sample_image())])
    found = explain_graph_breaks(model.backbone, x)
    assert (found.graphs, found.breaks, found.sites, found.stacks) == (1, 0, [], [])
    torch._dynamo.reset()
    block = SpectralNormAttention()
    compiled = torch.compile(block, dynamic=True)
    for shape in [(2, 8, 24, 40), (1, 8, 33, 17), (3, 16, 9, 64)]:
        x = torch.randn(shape).relu()
        assert relative_error(compiled(x), block(x)) <= 1e-5, shape


def branch_on_data(x: torch.Tensor) -> torch.Tensor:
    y = x * 2
    if y.sum() > 0:  # data-dependent: dynamo ends the graph here
        return y + 1
    return y - 1


def test_explain_graph_breaks_names_the_line():
    found = explain_graph_breaks(branch_on_data, torch.ones(3))
    line = branch_on_data.__code__.co_firstlineno + 2
    assert found.breaks == 1 and found.graphs == 2
    assert [(s.file, s.line, s.count) for s in found.sites] == [(__file__, line, 1)]
    assert found.in_file("test_export.py") == 1 and found.in_file("spectral_norm_attention.py") == 0
    assert found.stacks == [{__file__}]


def test_export_tool_writes_the_model_and_checks_it(tmp_path, capsys):
    sample, other = tmp_path / "sample.png", tmp_path / "other.png"
    cv2.imwrite(str(sample), render_demo_image("val", 3)[0])
    cv2.imwrite(str(other), cv2.resize(render_demo_image("val", 4)[0], (320, 200)))
    main = export_tool_main()
    main(["--config-file", str(ROOT / DEMO_SNA), "--format", "torchscript", "--output", str(tmp_path / "out"),
          "--allow-untrained", "--sample-image", str(sample), "--check", str(other), *map(str, SMALL)])  # fmt: skip
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'out' / 'model.ts'} (traced on {sample}, input (3, 128, 128))" in out
    check = re.search(rf"{re.escape(str(other))} \(120x192\): eager (\d+), exported (\d+), matched (\d+) ", out)
    eager, exported, matched = map(int, check.groups())  # 320x200 -> shortest edge 128, longest at most 192
    assert eager == exported == matched > 0
    assert "over 1 images: max box difference" in out
    assert torch.jit.load(str(tmp_path / "out" / "model.ts")) is not None


def test_dynamo_onnx_export_of_the_block_matches_eager_on_another_size(tmp_path):
    """torch's dynamo exporter (its default): the block adds eps * I out of place, which it needs
    (tools/onnx_upstream_repro.py, step 4, shows the in-place add failing)."""
    import onnxruntime

    block = SpectralNormAttention()
    dims = {0: Dim("b"), 2: Dim("h", min=2, max=512), 3: Dim("w", min=2, max=512)}
    path = tmp_path / "sna.onnx"
    torch.onnx.export(block, (torch.randn(2, 8, 24, 40),), str(path), dynamo=True, dynamic_shapes={"x": dims})
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 8, 31, 17).relu()
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert relative_error(torch.from_numpy(out), block(x)) <= 1e-5
