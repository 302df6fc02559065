"""Whole detectors with and without attention, timed in pairs (``tools/benchmark_sna.py --parts detectors``):
the same random weights, synthetic images, inference and a training step, eager and compiled, fp32 and bf16."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..layers import SpectralNormAttention
from ..modeling.backbone_compile import compile_backbone  # the one place: also MODEL.BACKBONE_COMPILE
from .timing import Case, interleaved_samples_ms, ratio

__all__ = [
    "PRECISIONS",
    "benchmark_detector_grid",
    "benchmark_detectors",
    "build_detector",
    "build_detector_pair",
    "compile_backbone",
    "count_parameters",
    "inference_case",
    "synthetic_training_batch",
    "training_case",
    "use_anchors_as_proposals",
]


def build_detector(config_file: str | Path, device: str, seed: int = 0) -> nn.Module:
    """A detectron2 model from an sna_det config, randomly initialised from ``seed``, no weights loaded."""
    from detectron2.modeling import build_model

    from ..engine.config_setup import setup_cfg

    cfg = setup_cfg(config_file, ["MODEL.WEIGHTS", "", "MODEL.DEVICE", device], cpu_fallback=False)
    torch.manual_seed(seed)
    return build_model(cfg)


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (trainable or frozen)."""
    return sum(p.numel() for p in model.parameters())


def use_anchors_as_proposals(model: nn.Module) -> None:
    """Zero the RPN's box-delta conv, in place, so that its proposals are the anchors themselves.

    With random weights (and detectron2's pixel std of 1) the features reach ~1e3 and the RPN's
    deltas blow every proposal up to the whole image: NMS then keeps about 3 per image, and the
    ROI heads do almost none of their usual work. Anchors ranked by the (random) objectness give
    the usual ~1000 proposals per image instead, so timings include realistic ROI-head work.
    """
    deltas = model.proposal_generator.rpn_head.anchor_deltas
    nn.init.zeros_(deltas.weight)
    nn.init.zeros_(deltas.bias)


def build_detector_pair(
    baseline_config: str | Path,
    sna_config: str | Path,
    device: str,
    seed: int = 0,
    *,
    anchors_as_proposals: bool = True,
) -> tuple[nn.Module, nn.Module]:
    """(baseline, sna) detectors with identical weights: the baseline's state_dict, loaded strictly.

    ``anchors_as_proposals`` applies :func:`use_anchors_as_proposals` (to both, through the
    state_dict). Raises ``RuntimeError`` if the SNA model has no SNA block or if the state_dicts
    differ in any key (SNA has no parameters or buffers, so they must not).
    """
    baseline = build_detector(baseline_config, device, seed)
    if anchors_as_proposals:
        use_anchors_as_proposals(baseline)
    sna = build_detector(sna_config, device, seed)
    if not any(isinstance(m, SpectralNormAttention) for m in sna.modules()):
        raise RuntimeError(f"{sna_config} builds no SpectralNormAttention block")
    result = sna.load_state_dict(baseline.state_dict(), strict=True)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(f"state_dicts differ: {result}")
    return baseline, sna


def synthetic_training_batch(
    height: int, width: int, device: torch.device, num_images: int = 2, seed: int = 0
) -> list[dict[str, Any]]:
    """Fixed detectron2 training inputs: random pixels (0-255) and three gt boxes per image."""
    from detectron2.structures import Boxes, Instances

    generator = torch.Generator().manual_seed(seed)
    fractions = torch.tensor([[0.10, 0.10, 0.40, 0.50], [0.30, 0.20, 0.90, 0.80], [0.55, 0.60, 0.75, 0.95]])
    boxes = fractions * torch.tensor([width, height, width, height], dtype=torch.float32)
    batch = []
    for _ in range(num_images):
        image = torch.randint(0, 256, (3, height, width), generator=generator).float()
        instances = Instances((height, width))
        instances.gt_boxes = Boxes(boxes.clone())
        instances.gt_classes = torch.tensor([0, 1, 2])
        batch.append({"image": image.to(device), "instances": instances.to(device), "height": height, "width": width})
    return batch


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def inference_case(
    name: str, model: nn.Module, inputs: Any, seed: int, autocast_dtype: torch.dtype | None = None
) -> Case:
    """``model(inputs)`` under no_grad (the model in eval mode), torch seeded before each run;
    under autocast to ``autocast_dtype`` if given (on the device of the model's parameters)."""
    device = next(model.parameters()).device

    def run() -> None:
        with torch.no_grad(), _autocast(device, autocast_dtype):
            model(inputs)

    return Case(name, run, prepare=lambda: torch.manual_seed(seed))


def training_case(
    name: str, model: nn.Module, batch: Any, seed: int, autocast_dtype: torch.dtype | None = None
) -> Case:
    """Forward and backward of ``model(batch)``: the sum of its losses (a dict) or of its outputs' means;
    the forward under autocast to ``autocast_dtype`` if given."""
    device = next(model.parameters()).device

    def prepare() -> None:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(seed)  # the same proposal sampling in the ROI heads for both models

    def run() -> None:
        with _autocast(device, autocast_dtype):
            outputs = model(batch)
        sum(v if v.dim() == 0 else v.float().mean() for v in outputs.values()).backward()

    return Case(name, run, prepare=prepare)


def _pair_timings(samples: Mapping[str, list[float]], phase: str) -> dict[str, Any]:
    baseline, sna = samples[f"baseline/{phase}"], samples[f"sna/{phase}"]
    baseline_ms, sna_ms = statistics.median(baseline), statistics.median(sna)
    return {
        "baseline_ms": baseline_ms,
        "sna_ms": sna_ms,
        "sna_over_baseline": ratio(sna_ms, baseline_ms),
        "baseline_samples_ms": baseline,
        "sna_samples_ms": sna,
        "sna_over_baseline_per_round": [ratio(s, b) for b, s in zip(baseline, sna)],
    }


def benchmark_detectors(
    baseline: nn.Module,
    sna: nn.Module,
    height: int,
    width: int,
    device: torch.device,
    *,
    repeats: int,
    warmup: int,
    seed: int = 0,
    inference_images: int = 1,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """Inference (``inference_images`` images, eval, no_grad) and training-step (two images,
    forward+backward) times, under autocast to ``autocast_dtype`` if given.

    Baseline and SNA are interleaved; torch is seeded before every step. Returns a JSON-ready
    dict with ``inference`` and ``train_step``, each with the medians ``baseline_ms``, ``sna_ms``,
    their ratio ``sna_over_baseline``, the samples of every round and the per-round ratios
    ``sna_over_baseline_per_round`` (their spread shows how noisy the machine was).
    """
    from detectron2.utils.events import EventStorage

    models = {"baseline": baseline, "sna": sna}
    images = synthetic_training_batch(height, width, device, num_images=inference_images, seed=seed)
    inference_inputs = [{key: image[key] for key in ("image", "height", "width")} for image in images]
    batch = synthetic_training_batch(height, width, device, num_images=2, seed=seed + 1)

    for model in models.values():
        model.eval()
    cases = [
        inference_case(f"{name}/inference", model, inference_inputs, seed, autocast_dtype)
        for name, model in models.items()
    ]
    inference = interleaved_samples_ms(cases, device, repeats=repeats, warmup=warmup)

    for model in models.values():
        model.train()
    cases = [training_case(f"{name}/train_step", model, batch, seed, autocast_dtype) for name, model in models.items()]
    with EventStorage(0):
        train = interleaved_samples_ms(cases, device, repeats=repeats, warmup=warmup)
    for model in models.values():
        model.zero_grad(set_to_none=True)
        model.eval()

    return {
        "inference": _pair_timings(inference, "inference"),
        "train_step": _pair_timings(train, "train_step"),
    }


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
"""Precision name -> autocast dtype (None: plain float32)."""


def benchmark_detector_grid(
    pairs: Mapping[str, tuple[str | Path, str | Path]],
    height: int,
    width: int,
    device: torch.device,
    *,
    precisions: Sequence[str] = ("fp32", "bf16"),
    compiled: Sequence[bool] = (False, True),
    inference_images: int = 2,
    repeats: int,
    warmup: int,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`benchmark_detectors` for every (baseline, SNA) config pair, precision and compilation.

    Returns ``{pair label: {"<eager|compiled> <precision>": benchmark_detectors' dict}}``. Eager runs
    come first: compiling compiles each model's backbone in place (:func:`compile_backbone`).
    """
    results: dict[str, Any] = {}
    for label, (baseline_config, sna_config) in pairs.items():
        baseline, sna = build_detector_pair(baseline_config, sna_config, str(device), seed)
        results[label] = {}
        for compile_it in sorted(set(compiled)):
            if compile_it:
                compile_backbone(baseline)
                compile_backbone(sna)
            for precision in precisions:
                key = f"{'compiled' if compile_it else 'eager'} {precision}"
                results[label][key] = benchmark_detectors(
                    baseline, sna, height, width, device, repeats=repeats, warmup=max(warmup, compile_it),
                    seed=seed, inference_images=inference_images, autocast_dtype=PRECISIONS[precision],
                )  # fmt: skip
    return results
