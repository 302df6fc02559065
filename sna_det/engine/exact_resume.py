"""Training that a kill and ``--resume`` do not change: the resumed run computes what the uninterrupted
run computes, bit for bit on the CPU with the same config.

Nothing random carries over from one iteration to the next except through the checkpoint:

- **Data order**: detectron2's ``TrainingSampler`` stream (seeded from ``SEED``), grouped into
  batches by aspect ratio as detectron2 groups them, but from the dataset's recorded sizes, so that
  batch ``k`` is a function of ``SEED`` and ``k`` alone. A resumed run skips the batches already used
  (index arithmetic, no image is read): ``PositionedBatchSampler.start_batch``.
- **Augmentation**: each sample is mapped (read, resized, flipped ...) with Python's, numpy's and
  torch's generators seeded from ``SEED`` and the sample's position in the stream, in whichever
  process maps it; the process's own generators are left as they were (``SeededSamples``). The
  number of data-loader workers therefore changes nothing.
- **The training step** (proposal sampling, dropout ...): the main process's generators are seeded
  from ``SEED``, the iteration and the rank before every iteration (``ExactResume.before_step``).
- **Smoothed metrics**: the recent history of detectron2's ``EventStorage`` (what metrics.json's
  medians are taken over) is saved in the checkpoint and restored (``ExactResume.state_dict``).
- **A kill after the last checkpoint**: the run resumed from the last iteration's checkpoint trains
  nothing; it writes the last iteration's metrics record the kill may have cut, from the restored
  history, and no record after it (``ExactResume.before_train``, ``AppendingJSONWriter``).

The model, optimizer and LR scheduler are in detectron2's checkpoint already. On CUDA the same holds
for everything here; what is not exact there is the arithmetic of non-deterministic kernels
(atomic adds in e.g. ROIAlign's backward, cuDNN's algorithm choice): docs/training.md.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import DatasetFromList, MapDataset, get_detection_dataset_dicts
from detectron2.data.build import _train_loader_from_config, trivial_batch_collator
from detectron2.data.samplers import TrainingSampler
from detectron2.engine import HookBase
from detectron2.utils import comm
from detectron2.utils.events import CommonMetricPrinter, EventWriter, JSONWriter, TensorboardXWriter
from fvcore.common.history_buffer import HistoryBuffer
from torch.utils.data import DataLoader, Dataset

from ..data.datasets.mapper import IntensityDatasetMapper
from ..utils.metrics_json import read_metrics

__all__ = [
    "AppendingJSONWriter",
    "ExactResume",
    "PositionedBatchSampler",
    "SeededSamples",
    "build_resumable_train_loader",
    "default_resumable_writers",
    "derive_seed",
    "seed_everything",
]

logger = logging.getLogger(__name__)

STREAM, SAMPLE, STEP, LOADER = range(4)
"""What a derived seed is for (its first word after SEED)."""

HISTORY_KEPT = 100
"""Values of each EventStorage history kept in a checkpoint (detectron2's writers use the last 20)."""


def derive_seed(seed: int, *path: int) -> int:
    """A 63-bit seed for (``seed``, ``path``), e.g. (SEED, SAMPLE, position): numpy's ``SeedSequence``
    of them, so nearby paths give unrelated seeds. ``seed`` >= 0."""
    return int(np.random.SeedSequence([int(seed), *map(int, path)]).generate_state(1, np.uint64)[0] >> 1)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch's (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class PositionedBatchSampler:
    """This rank's batches of an infinite sampler, as ``[(seed, position, index), ...]`` lists.

    ``position`` counts samples in the global stream (the one detectron2's sampler shards over ranks);
    batches are grouped by aspect ratio as ``AspectRatioGroupedDataset`` does (``width > height`` or
    not) when ``sizes`` is given, from those recorded sizes. Iteration starts at batch ``start_batch``.

    Args:
        sampler: yields this rank's dataset indices for ever (``TrainingSampler`` and the like).
        batch_size: images per batch on this rank.
        sizes: (width, height) of each dataset entry, or None for no grouping.
    """

    def __init__(
        self,
        sampler,
        batch_size: int,
        seed: int,
        sizes: Optional[Sequence[Tuple[int, int]]] = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.seed = seed
        self.sizes = sizes
        self.rank, self.world_size = rank, world_size
        self.start_batch = 0

    def _batches(self) -> Iterator[List[Tuple[int, int, int]]]:
        buckets: List[list] = [[], []]
        for local, index in enumerate(self.sampler):
            item = (self.seed, local * self.world_size + self.rank, int(index))
            bucket = buckets[0 if self.sizes and self.sizes[index][0] > self.sizes[index][1] else 1]
            bucket.append(item)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                del bucket[:]

    def __iter__(self) -> Iterator[List[Tuple[int, int, int]]]:
        batches = self._batches()
        for _ in range(self.start_batch):
            next(batches)
        yield from batches


class SeededSamples(Dataset):
    """``dataset[index]`` (a detectron2 ``MapDataset``) for items ``(seed, position, index)``, mapped
    with every generator seeded from (seed, position); the caller's generator states are restored."""

    def __init__(self, dataset: MapDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: Tuple[int, int, int]) -> Any:
        seed, position, index = item
        sample_seed = derive_seed(seed, SAMPLE, position)
        states = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            seed_everything(sample_seed)
            if hasattr(self.dataset, "_rng"):  # MapDataset's own generator for retries after a failed read
                self.dataset._rng.seed(sample_seed)
            return self.dataset[index]
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


def build_resumable_train_loader(cfg: CfgNode) -> DataLoader:
    """detectron2's training data (``DATASETS.TRAIN``, ``IntensityDatasetMapper``, ``DATALOADER.*``) as a loader
    whose batch ``k`` depends only on ``cfg.SEED`` and ``k``; ``loader.batch_sampler`` is the
    ``PositionedBatchSampler`` (set its ``start_batch`` to resume). ``cfg.SEED`` must be >= 0."""
    if cfg.SEED < 0:
        raise ValueError(f"SEED must be >= 0 for a resumable training, got {cfg.SEED}")
    dicts = get_detection_dataset_dicts(
        cfg.DATASETS.TRAIN,
        filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
        min_keypoints=cfg.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE if cfg.MODEL.KEYPOINT_ON else 0,
        proposal_files=cfg.DATASETS.PROPOSAL_FILES_TRAIN if cfg.MODEL.LOAD_PROPOSALS else None,
    )
    sampler = None
    if cfg.DATALOADER.SAMPLER_TRAIN == "TrainingSampler":  # detectron2 would seed it from the global generator
        sampler = TrainingSampler(len(dicts), seed=derive_seed(cfg.SEED, STREAM) % 2**62)
    options = _train_loader_from_config(cfg, mapper=IntensityDatasetMapper(cfg, True), dataset=dicts, sampler=sampler)
    world_size = comm.get_world_size()
    sizes = None
    if options["aspect_ratio_grouping"]:
        sizes = [(d.get("width", 1), d.get("height", 1)) for d in dicts]
    batches = PositionedBatchSampler(
        options["sampler"],
        options["total_batch_size"] // world_size,
        cfg.SEED,
        sizes,
        rank=comm.get_rank(),
        world_size=world_size,
    )
    samples = SeededSamples(MapDataset(DatasetFromList(dicts, copy=False), options["mapper"]))
    return DataLoader(
        samples,
        batch_sampler=batches,
        num_workers=options["num_workers"],
        collate_fn=trivial_batch_collator,
        generator=torch.Generator().manual_seed(derive_seed(cfg.SEED, LOADER)),  # not the global generator
    )


def _history_state(storage) -> Dict[str, Any]:
    return {
        name: {
            "data": [(float(v), int(i)) for v, i in buffer.values()[-HISTORY_KEPT:]],
            "count": int(buffer._count),
            "global_avg": float(buffer._global_avg),
            "smoothing_hint": bool(storage._smoothing_hints.get(name, True)),
        }
        for name, buffer in storage.histories().items()
    }


class ExactResume(HookBase):
    """Seeds every iteration from (``seed``, iteration, rank), and carries the seed, the number of
    batches used and EventStorage's recent history through checkpoints (its ``state_dict`` is saved by
    detectron2's checkpointer with the trainer's)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._loaded_history: Optional[Dict[str, Any]] = None

    def before_train(self) -> None:
        storage = self.trainer.storage
        for name, saved in (self._loaded_history or {}).items():
            buffer = HistoryBuffer()
            buffer._data = [tuple(pair) for pair in saved["data"]]
            buffer._count, buffer._global_avg = saved["count"], saved["global_avg"]
            storage._history[name] = buffer
            storage._smoothing_hints[name] = saved["smoothing_hint"]
        if self.trainer.start_iter >= self.trainer.max_iter:
            self._resume_after_the_last_step()

    def _resume_after_the_last_step(self) -> None:
        """Resumed from the checkpoint of the last iteration (a kill between its save and the end): no step
        runs. The scalars of that iteration become the storage's latest again, so the writers' last write
        gives the record the uninterrupted run wrote (``AppendingJSONWriter`` skips it if the file has it),
        and the trainer stands at that iteration, so that detectron2's loop ends at ``max_iter`` as the
        uninterrupted run's did (from ``start_iter == max_iter`` it would end at ``max_iter + 1`` and log
        an ETA record there)."""
        last = self.trainer.max_iter - 1
        storage = self.trainer.storage
        for name, saved in (self._loaded_history or {}).items():
            if saved["data"] and int(saved["data"][-1][1]) == last:
                storage._latest_scalars[name] = (float(saved["data"][-1][0]), last)
        self.trainer.iter = last

    def before_step(self) -> None:
        seed_everything(derive_seed(self.seed, STEP, self.trainer.iter, comm.get_rank()))

    def state_dict(self) -> Dict[str, Any]:
        storage = getattr(self.trainer, "storage", None)
        history = _history_state(storage) if storage is not None else (self._loaded_history or {})
        return {"seed": int(self.seed), "batches": int(self.trainer.iter) + 1, "history": history}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if int(state["seed"]) != self.seed:
            logger.warning(
                f"the checkpoint was trained with SEED {state['seed']}, this run has SEED {self.seed}: "
                "the resumed run continues with a different data order and random state"
            )
        self._loaded_history = state.get("history")


class AppendingJSONWriter(JSONWriter):
    """detectron2's ``JSONWriter`` of metrics.json that, continuing the file of an interrupted run
    (``continue_file``, on ``--resume``), never writes an iteration the file already holds: its last
    iteration is read at the first write, after ``trim_metrics_for_resume`` cut it back to the checkpoint."""

    def __init__(self, json_file: str, window_size: int = 20) -> None:
        super().__init__(json_file, window_size)
        self._json_file, self._continues = json_file, False

    def continue_file(self) -> None:
        """Skip, at the first write, the iterations the file holds then."""
        self._continues = True

    def write(self) -> None:
        if self._continues:
            self._continues = False
            written = read_metrics(self._json_file) if os.path.getsize(self._json_file) else {}
            self._last_write = max(self._last_write, max(written, default=-1))
        super().write()


def default_resumable_writers(output_dir: str, max_iter: int) -> List[EventWriter]:
    """detectron2's ``default_writers`` (console, metrics.json, TensorBoard), metrics.json by
    ``AppendingJSONWriter``."""
    os.makedirs(output_dir, exist_ok=True)
    return [
        CommonMetricPrinter(max_iter),
        AppendingJSONWriter(os.path.join(output_dir, "metrics.json")),
        TensorboardXWriter(output_dir),
    ]
