"""Timing helpers for ``tools/benchmark_sna.py``: the SNA block alone and whole detectors.

Every measurement here follows one method, meant for noisy machines: each case is warmed up,
then all cases of a comparison are run in turn (A B A B ...) ``repeats`` times and the median of
each case is kept. Times come from ``time.perf_counter``, with ``torch.cuda.synchronize`` on both
sides of the timed call on CUDA. Nothing here prints or parses arguments.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .layers import MODES, WEIGHTINGS, SpectralNormAttention
from .modeling.backbone_compile import compile_backbone  # the one place: also MODEL.BACKBONE_COMPILE

__all__ = [
    "Case",
    "synchronize",
    "time_ms",
    "interleaved_samples_ms",
    "interleaved_median_ms",
    "stem_output_shape",
    "memory_floor",
    "forward_backward",
    "benchmark_block",
    "build_detector",
    "build_detector_pair",
    "use_anchors_as_proposals",
    "count_parameters",
    "synthetic_training_batch",
    "benchmark_detectors",
    "inference_case",
    "training_case",
    "machine_info",
    "PRECISIONS",
    "compile_backbone",
    "benchmark_detector_grid",
]


@dataclass(frozen=True)
class Case:
    """One thing to time: ``run()`` is timed; ``prepare()``, if given, runs untimed just before."""

    name: str
    run: Callable[[], object]
    prepare: Callable[[], None] | None = None


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(case: Case, device: torch.device) -> float:
    """Wall time of one ``case.run()`` in milliseconds, after its untimed ``prepare()``."""
    if case.prepare is not None:
        case.prepare()
    synchronize(device)
    start = time.perf_counter()
    case.run()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3


def interleaved_samples_ms(
    cases: Sequence[Case], device: torch.device, *, repeats: int, warmup: int
) -> dict[str, list[float]]:
    """Milliseconds of every case in every timed round, by name.

    ``warmup`` untimed rounds, then ``repeats`` timed rounds; a round runs each case once, in
    the given order, so slow phases of a busy machine hit all cases alike.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"case names must be unique, got {names}")
    for _ in range(warmup):
        for case in cases:
            time_ms(case, device)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for case in cases:
            samples[case.name].append(time_ms(case, device))
    return samples


def interleaved_median_ms(
    cases: Sequence[Case], device: torch.device, *, repeats: int, warmup: int
) -> dict[str, float]:
    """Median over the rounds of :func:`interleaved_samples_ms`, by case name."""
    samples = interleaved_samples_ms(cases, device, repeats=repeats, warmup=warmup)
    return {name: statistics.median(values) for name, values in samples.items()}


# --- the SNA block alone ------------------------------------------------------------------------


def stem_output_shape(height: int, width: int, batch: int, channels: int = 64) -> tuple[int, int, int, int]:
    """Shape of a ResNet stem's output (stride 4: conv 7x7/2 then max-pool 3x3/2, both padded).

    Each stride-2 layer maps n to ceil(n / 2), so 800x1333 gives 200x334.
    """

    def half(n: int) -> int:
        return (n + 1) // 2

    return batch, channels, half(half(height)), half(half(width))


def memory_floor(x: Tensor) -> Tensor:
    """The cheapest block with SNA's memory traffic: a per-position channel mean times ``x``."""
    w = x.mean(1, keepdim=True)
    return x * w


def forward_backward(block: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Gradient of ``block(x).sum()`` with respect to ``x`` (which must require grad)."""
    (grad,) = torch.autograd.grad(block(x).sum(), x)
    return grad


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def benchmark_block(
    shape: Sequence[int],
    device: torch.device,
    *,
    repeats: int,
    warmup: int,
    seed: int = 0,
    squarings: int = 8,
) -> dict[str, Any]:
    """Time SNA (every weighting, power and svd mode) against :func:`memory_floor` on one input.

    The input is ReLU(N(0, 1)) noise of ``shape`` (B, C, H, W), non-negative like a stem's output.
    Forward runs on ``x`` without grad; forward+backward on a copy that requires grad.

    Returns a JSON-ready dict: ``input_shape``, ``power_steps`` (2^squarings), ``floor`` and
    ``sna[weighting][mode]`` with ``forward_ms``,
    ``forward_backward_ms`` and, for SNA, the ratios ``forward_x_floor`` and
    ``forward_backward_x_floor``; ``sna[weighting]["svd_over_power"]`` holds the svd/power ratios.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(tuple(shape), generator=generator).relu_().to(device)
    x_grad = x.detach().clone().requires_grad_(True)
    blocks: dict[str, Callable[[Tensor], Tensor]] = {"floor": memory_floor}
    for weighting in WEIGHTINGS:
        for mode in MODES:
            sna = SpectralNormAttention(mode=mode, weighting=weighting, squarings=squarings)
            blocks[f"{weighting}/{mode}"] = sna.to(device)
    cases = []
    for name, block in blocks.items():
        cases.append(Case(f"{name}/forward", lambda block=block: block(x)))
        cases.append(Case(f"{name}/forward_backward", lambda block=block: forward_backward(block, x_grad)))
    ms = interleaved_median_ms(cases, device, repeats=repeats, warmup=warmup)

    def timings(name: str) -> dict[str, float]:
        return {"forward_ms": ms[f"{name}/forward"], "forward_backward_ms": ms[f"{name}/forward_backward"]}

    floor = timings("floor")
    sna_results: dict[str, dict[str, Any]] = {}
    for weighting in WEIGHTINGS:
        per_mode: dict[str, Any] = {}
        for mode in MODES:
            t = timings(f"{weighting}/{mode}")
            t["forward_x_floor"] = _ratio(t["forward_ms"], floor["forward_ms"])
            t["forward_backward_x_floor"] = _ratio(t["forward_backward_ms"], floor["forward_backward_ms"])
            per_mode[mode] = t
        per_mode["svd_over_power"] = {
            key: _ratio(per_mode["svd"][f"{key}_ms"], per_mode["power"][f"{key}_ms"])
            for key in ("forward", "forward_backward")
        }
        sna_results[weighting] = per_mode
    return {
        "input_shape": list(shape),
        "power_steps": 2**squarings,
        "floor": floor,
        "sna": sna_results,
    }


# --- whole detectors ----------------------------------------------------------------------------


def build_detector(config_file: str | Path, device: str, seed: int = 0) -> nn.Module:
    """A detectron2 model from an sna_det config, randomly initialised from ``seed``, no weights loaded."""
    from detectron2.modeling import build_model

    from .engine.defaults import setup_cfg

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
        "sna_over_baseline": _ratio(sna_ms, baseline_ms),
        "baseline_samples_ms": baseline,
        "sna_samples_ms": sna,
        "sna_over_baseline_per_round": [_ratio(s, b) for b, s in zip(baseline, sna)],
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


def machine_info(device: torch.device) -> dict[str, Any]:
    """torch and detectron2 versions, device name, torch threads, CPUs and 1-minute load average."""
    import detectron2

    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    device_name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return {
        "torch": torch.__version__,
        "detectron2": detectron2.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": device_name,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


# --- detector pairs on an accelerator -----------------------------------------------------------

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
