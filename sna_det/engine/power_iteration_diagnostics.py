"""A detectron2 hook that logs SNA's power-iteration diagnostics while training.

Every ``period`` iterations it reads the input of every SNA block (power mode) during that
iteration's forward pass, and logs, per placement, how far each image's rank-one map is from the
SVD's and sigma1/sigma2 of its channel-mean map (``sna_det.layers.power_iteration_accuracy``):

- to detectron2's EventStorage, so metrics.json and TensorBoard show them, under
  ``sna_power/<placement>/{map_rel_error_mean,map_rel_error_max,sigma1_mean,sigma2_mean,
  sigma_ratio_mean,rank1_energy_mean}`` (detectron2's writers keep the latest value of a key at
  each write, every 20 iterations: with a shorter period, metrics.json shows every other sample);
- per image to ``<output_dir>/power_iteration.jsonl`` (main process only), which
  ``tools/summarize_power_iteration.py`` summarizes. Like detectron2's metrics.json it is a log:
  each sample appends its lines in one write (flushed and synced), so a long run does not rewrite it.

On other iterations the hook does nothing at all: its forward hooks exist only during sampled
iterations, and the block itself is not changed.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from detectron2.engine import HookBase
from detectron2.engine.hooks import PeriodicWriter
from detectron2.utils import comm
from torch import nn

from ..layers.power_iteration_accuracy import (
    POWER_ITERATION_RECORDS,
    PowerIterationMeasurement,
    measure_power_iteration,
    measurement_records,
)
from ..layers.spectral_norm_attention import SpectralNormAttention
from ..modeling.attention_injection import placement_name
from ..utils.json_lines import append_json_lines, trim_json_lines

__all__ = ["PowerIterationDiagnostics", "insert_before_writers", "sna_power_iteration_blocks"]


def sna_power_iteration_blocks(model: nn.Module) -> List[Tuple[str, SpectralNormAttention]]:
    """(placement name, block) for every SNA block of ``model`` that uses the power iteration."""
    return [
        (placement_name(name), module)
        for name, module in model.named_modules()
        if isinstance(module, SpectralNormAttention) and module.mode == "power"
    ]


class PowerIterationDiagnostics(HookBase):
    """Measure SNA's power iteration on iterations ``i`` with ``(i + 1) % period == 0``.

    Args:
        period: sample every ``period`` iterations (> 0).
        output_dir: folder for ``power_iteration.jsonl``; None writes no file (EventStorage only).
            On resume, records of iterations at or after the start iteration (and a line cut short) are
            dropped first (``trim_json_lines``).
    """

    def __init__(self, period: int, output_dir: Optional[str] = None) -> None:
        if period <= 0:
            raise ValueError(f"period must be > 0, got {period}")
        self.period = period
        self.output_file = os.path.join(output_dir, POWER_ITERATION_RECORDS) if output_dir else None
        self._blocks: List[Tuple[str, SpectralNormAttention]] = []
        self._handles: list = []
        self._measured: Dict[str, List[Tuple[PowerIterationMeasurement, int, int]]] = {}

    def before_train(self) -> None:
        self._blocks = sna_power_iteration_blocks(self.trainer.model)
        if self.output_file and comm.is_main_process():
            # a resumed run: drop what the interrupted one wrote after its checkpoint, and a line cut short
            start = self.trainer.start_iter
            trim_json_lines(self.output_file, lambda record: record.get("iteration", -1) < start)

    def _hook(self, placement: str, block: SpectralNormAttention):
        def measure(module: nn.Module, inputs: tuple, output) -> None:
            x = inputs[0]
            if x.numel() == 0:
                return
            measurement = measure_power_iteration(x, block.squarings)
            self._measured.setdefault(placement, []).append((measurement, x.shape[-2], x.shape[-1]))

        return measure

    def before_step(self) -> None:
        if (self.trainer.iter + 1) % self.period == 0:
            self._measured = {}
            self._handles = [block.register_forward_hook(self._hook(p, block)) for p, block in self._blocks]

    def after_step(self) -> None:
        if not self._handles:
            return
        for handle in self._handles:
            handle.remove()
        self._handles = []
        iteration = self.trainer.iter
        storage = self.trainer.storage
        blocks = dict(self._blocks)
        sampled = []
        for placement, measured in self._measured.items():
            squarings = blocks[placement].squarings
            records = [
                record
                for measurement, height, width in measured
                for record in measurement_records(
                    measurement,
                    iteration=iteration,
                    placement=placement,
                    height=height,
                    width=width,
                    squarings=squarings,
                )
            ]
            sampled.extend(records)
            errors = [r["map_rel_error"] for r in records]
            sigma1 = [r["sigma1"] for r in records]
            sigma2 = [r["sigma2"] for r in records]
            ratios = [s1 / s2 for s1, s2 in zip(sigma1, sigma2) if s2 > 0]
            scalars = {
                "map_rel_error_mean": sum(errors) / len(errors),
                "map_rel_error_max": max(errors),
                "sigma1_mean": sum(sigma1) / len(sigma1),
                "sigma2_mean": sum(sigma2) / len(sigma2),
                "rank1_energy_mean": sum(r["rank1_energy"] for r in records) / len(records),
            }
            if ratios:
                scalars["sigma_ratio_mean"] = sum(ratios) / len(ratios)
            storage.put_scalars(**{f"sna_power/{placement}/{k}": v for k, v in scalars.items()}, smoothing_hint=False)
        self._measured = {}
        if self.output_file and comm.is_main_process() and sampled:
            append_json_lines(self.output_file, sampled)


def insert_before_writers(hooks: List[HookBase], hook: HookBase) -> List[HookBase]:
    """Put ``hook`` before detectron2's PeriodicWriter in ``hooks`` (in place), so that its scalars are
    written with the same iteration's record; at the end if there is no writer (non-main processes)."""
    writers = [i for i, h in enumerate(hooks) if isinstance(h, PeriodicWriter)]
    hooks.insert(writers[0] if writers else len(hooks), hook)
    return hooks
