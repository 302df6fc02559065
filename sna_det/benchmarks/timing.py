"""Timing, one method for noisy machines: each case is warmed up, then all cases of a comparison are
run in turn (A B A B ...) ``repeats`` times and the median of each case is kept. Times come from
``time.perf_counter``, with ``torch.cuda.synchronize`` on both sides of the timed call on CUDA.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

__all__ = ["Case", "interleaved_median_ms", "interleaved_samples_ms", "machine_info", "ratio", "synchronize", "time_ms"]


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


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; NaN when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else math.nan
