"""Every attention type side by side on one backbone or detector: parameters, FLOPs, speed.

For ``tools/benchmark_attention.py`` (the paper's Tables 1-2, on the machine at hand). Each type is
the base config with ``MODEL.ATTENTION`` switched; all models are built from the same seed, so
what they share (the whole network but the attention blocks) has the same weights. Timings follow
``sna_det.benchmarks.detectors``: warm-up, then every model in turn, ``repeats`` rounds, medians. Nothing here
prints or parses arguments.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, build_backbone, build_model
from detectron2.utils.events import EventStorage
from tabulate import tabulate
from torch import nn

from ..engine.config_setup import setup_cfg
from ..layers import ATTENTION_TYPES
from .detectors import (
    count_parameters,
    inference_case,
    synthetic_training_batch,
    training_case,
    use_anchors_as_proposals,
)
from .timing import interleaved_samples_ms

__all__ = [
    "AttentionVariant",
    "attention_variant_cfg",
    "benchmark_attention",
    "count_gflops",
    "PLACEMENTS",
    "default_placement",
    "format_attention_table",
    "largest_affinity_gib",
]

PLACEMENTS = ("stem", "blocks", "stem+blocks")


def default_placement(
    attn_type: str, stage_names: Sequence[str], placement: Optional[str] = None
) -> Tuple[bool, List[str]]:
    """(stem, stages) of a ``placement`` ("stem", "blocks": every block of every stage, or both); by
    default as in the project's configs: SNA (and the authors' SNA) after the stem; non-local in the stride-16 stage
    (res4 / dense3); SE, ECA, CBAM and GC in every block."""
    if attn_type == "none":
        return False, []
    if placement is not None:
        if placement not in PLACEMENTS:
            raise ValueError(f"placement {placement!r} is not one of {PLACEMENTS}")
        return "stem" in placement, list(stage_names) if "blocks" in placement else []
    if attn_type in ("sna", "sna_authors"):
        return True, []
    if attn_type == "nonlocal":
        return False, [name for name in stage_names if name in ("res4", "dense3")]
    return False, list(stage_names)


def attention_variant_cfg(base: CfgNode, attn_type: str, stem: bool, stages: Sequence[str]) -> CfgNode:
    """``base`` with ``MODEL.ATTENTION`` set; its backbone must place every type (a ``*_attention_*`` builder)."""
    name = base.MODEL.BACKBONE.NAME
    builder = BACKBONE_REGISTRY.get(name)
    if not hasattr(builder, "attention_stages"):
        placing = sorted(n for n, b in BACKBONE_REGISTRY if hasattr(b, "attention_stages"))
        raise ValueError(f"MODEL.BACKBONE.NAME {name!r} does not place every attention type; use one of {placing}")
    cfg = base.clone()
    cfg.defrost()
    cfg.MODEL.ATTENTION.TYPE = attn_type
    cfg.MODEL.ATTENTION.STEM = stem
    cfg.MODEL.ATTENTION.STAGES = list(stages)
    cfg.freeze()
    return cfg


def _bottom_up(model: nn.Module) -> nn.Module:
    backbone = model.backbone if hasattr(model, "backbone") else model
    return getattr(backbone, "bottom_up", backbone)


def largest_affinity_gib(model: nn.Module, stem: bool, stages: Sequence[str], height: int, width: int) -> float:
    """GiB of the largest (H·W)² fp32 affinity a non-local block at these sites needs for one image.

    Sites at the stem see stride 4, sites in a stage that stage's stride (of a padded input).
    """
    strides = _bottom_up(model)._out_feature_strides
    site_strides = ([4] if stem else []) + [strides[name] for name in stages]
    if not site_strides:
        return 0.0
    positions = max(math.ceil(height / s) * math.ceil(width / s) for s in site_strides)
    return positions**2 * 4 / 2**30


def count_gflops(model: nn.Module, inputs: Any) -> float:
    """Inference GFLOPs by fvcore (through detectron2's ``FlopCountAnalysis``; one multiply-add = 1)."""
    from detectron2.utils.analysis import FlopCountAnalysis

    was_training = model.training
    model.eval()
    analysis = FlopCountAnalysis(model, inputs)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with torch.no_grad():
        total = analysis.total()
    model.train(was_training)
    return total / 1e9


@dataclass
class AttentionVariant:
    """One column of the table: an attention type at a placement, measured or skipped."""

    attn_type: str
    stem: bool
    stages: List[str]
    parameters: Optional[int] = None
    gflops: Optional[float] = None
    """Inference GFLOPs of the backbone (bottom-up and FPN) per image, by fvcore."""
    inference_ms: Optional[float] = None
    train_step_ms: Optional[float] = None
    skipped: Optional[str] = None
    samples: Dict[str, List[float]] = field(default_factory=dict)


def _build(cfg: CfgNode, kind: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if kind == "detector":
        model = build_model(cfg)
        use_anchors_as_proposals(model)
        return model
    return build_backbone(cfg, ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN))).to(cfg.MODEL.DEVICE)


def benchmark_attention(
    config_file: str | Path,
    *,
    types: Sequence[str] = ATTENTION_TYPES,
    kind: str = "detector",
    height: int = 800,
    width: int = 1333,
    device: str = "cpu",
    repeats: int = 3,
    warmup: int = 1,
    max_affinity_gib: float = 2.0,
    placements: Optional[Dict[str, str]] = None,
    opts: Sequence[str] = (),
    seed: int = 0,
) -> Dict[str, Any]:
    """Measure every attention type of ``types`` on the config's backbone or detector.

    Args:
        config_file: a project config whose backbone places MODEL.ATTENTION (a ``*_attention_*`` builder).
        kind: "detector" (inference of one image, training step on two, RPN proposals = anchors as
            in ``benchmark_sna``) or "backbone" (the bottom-up + FPN alone, a batch of two, the input
            padded to the backbone's size divisibility as the detector pads it).
        height, width: input size in pixels.
        max_affinity_gib: a non-local variant whose (H·W)² affinity would exceed this is skipped.
        placements: type -> "stem", "blocks" or "stem+blocks", overriding ``default_placement``.
        opts: config overrides (``KEY VALUE`` pairs).
    Returns a JSON-ready dict: ``variants`` (one per type: parameters, GFLOPs, ms, or why skipped),
    ``baseline`` (the "none" type, when in ``types``) and the settings.
    """
    if kind not in ("detector", "backbone"):
        raise ValueError(f"kind must be 'detector' or 'backbone', not {kind!r}")
    unknown = sorted(set(types) - set(ATTENTION_TYPES))
    if unknown:
        raise ValueError(f"unknown attention types {unknown}; known: {list(ATTENTION_TYPES)}")
    base = setup_cfg(config_file, [*opts, "MODEL.WEIGHTS", "", "MODEL.DEVICE", device], cpu_fallback=False)
    torch_device = torch.device(device)

    plain = _build(attention_variant_cfg(base, "none", False, []), kind, seed)
    stage_names = [n for n in _bottom_up(plain).stage_names if n in _bottom_up(plain)._out_feature_strides]
    variants, models = [], {}
    for attn_type in types:
        stem, stages = default_placement(attn_type, stage_names, (placements or {}).get(attn_type))
        variant = AttentionVariant(attn_type, stem, list(stages))
        variants.append(variant)
        if attn_type == "nonlocal":
            need = largest_affinity_gib(plain, stem, stages, height, width)
            if need > max_affinity_gib:
                variant.skipped = (
                    f"non-local needs a {need:.3g} GiB (H·W)² affinity per image at this input "
                    f"(limit {max_affinity_gib} GiB, --max-affinity-gib)"
                )
                continue
        model = plain
        if attn_type != "none":
            model = _build(attention_variant_cfg(base, attn_type, stem, stages), kind, seed)
            model.load_state_dict(plain.state_dict(), strict=False)  # all but the attention blocks: the same
        variant.parameters = count_parameters(model)
        models[attn_type] = model

    if kind == "detector":
        image = synthetic_training_batch(height, width, torch_device, num_images=1, seed=seed)[0]
        inference_inputs: Any = [{key: image[key] for key in ("image", "height", "width")}]
        train_inputs: Any = synthetic_training_batch(height, width, torch_device, num_images=2, seed=seed + 1)
        images_per_inference = 1
    else:
        generator = torch.Generator().manual_seed(seed)
        divisor = max(plain.size_divisibility, 1)  # padded as the detector pads its input (FPN: 32)
        padded = [math.ceil(n / divisor) * divisor for n in (height, width)]
        inference_inputs = torch.randn(2, 3, *padded, generator=generator).to(torch_device)
        train_inputs = inference_inputs
        images_per_inference = 2

    for attn_type, model in models.items():  # the backbone's: the heads' FLOPs vary with the proposals kept
        variant = next(v for v in variants if v.attn_type == attn_type)
        if kind == "detector":
            model.eval()
            with torch.no_grad():
                backbone_input = model.preprocess_image(inference_inputs).tensor
            variant.gflops = count_gflops(model.backbone, backbone_input)
        else:
            variant.gflops = count_gflops(model, inference_inputs) / images_per_inference
    for model in models.values():
        model.eval()
    cases = [inference_case(name, model, inference_inputs, seed) for name, model in models.items()]
    inference = interleaved_samples_ms(cases, torch_device, repeats=repeats, warmup=warmup)
    for model in models.values():
        model.train()
    cases = [training_case(name, model, train_inputs, seed) for name, model in models.items()]
    with EventStorage(0):
        train = interleaved_samples_ms(cases, torch_device, repeats=repeats, warmup=warmup)
    for variant in variants:
        if variant.attn_type in models:
            variant.samples = {"inference": inference[variant.attn_type], "train_step": train[variant.attn_type]}
            variant.inference_ms = statistics.median(inference[variant.attn_type]) / images_per_inference
            variant.train_step_ms = statistics.median(train[variant.attn_type])
    return {
        "config_file": str(config_file),
        "kind": kind,
        "height": height,
        "width": width,
        "repeats": repeats,
        "train_images": 2,
        "variants": [vars(v) for v in variants],
    }


def format_attention_table(result: Dict[str, Any]) -> str:
    """A markdown table of ``benchmark_attention``'s result: one row per type, ratios to "none"."""
    variants = result["variants"]
    base = next((v for v in variants if v["attn_type"] == "none" and not v["skipped"]), None)

    def ratio(v: Dict[str, Any], key: str, inverse: bool = False, digits: int = 2) -> str:
        if base is None or v[key] is None or not base[key]:
            return ""
        value = base[key] / v[key] if inverse else v[key] / base[key]
        return f" ({value:.{digits}f}×)"

    rows = []
    for v in variants:
        where = ", ".join((["stem"] if v["stem"] else []) + v["stages"]) or "-"
        if v["skipped"]:
            rows.append([v["attn_type"], where, f"skipped: {v['skipped']}", "", "", ""])
            continue
        params = f"{v['parameters'] / 1e6:.2f}"
        if base is not None and v is not base:
            params += f" ({(v['parameters'] - base['parameters']) / 1e6:+.2f})"
        rows.append(
            [
                v["attn_type"],
                where,
                params,
                f"{v['gflops']:.2f}{ratio(v, 'gflops', digits=3)}",
                f"{1e3 / v['inference_ms']:.2f}{ratio(v, 'inference_ms', inverse=True)}",
                f"{v['train_step_ms']:.0f}{ratio(v, 'train_step_ms')}",
            ]
        )
    headers = ["attention", "where", "params (M)", "backbone GFLOPs", "images/s", "train step (ms)"]
    align = ("left", "left", "right", "right", "right", "right")
    return tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True, colalign=align)
