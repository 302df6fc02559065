"""The pieces of exact resume: batches that depend on SEED and their number only, grouped as
detectron2 groups them, and augmentation seeded by the sample's position, whatever the caller's state."""

import itertools
import random

import numpy as np
import torch
from detectron2.data.common import AspectRatioGroupedDataset
from detectron2.data.samplers import TrainingSampler

from sna_det.engine.exact_resume import PositionedBatchSampler, SeededSamples, derive_seed, seed_everything
from sna_det.engine.preflight import with_concrete_seed


def first(iterable, n):
    return list(itertools.islice(iterable, n))


def test_batches_are_grouped_by_aspect_ratio_as_detectron2_groups_them():
    rng = np.random.default_rng(0)
    sizes = [(int(w), int(h)) for w, h in rng.integers(100, 300, size=(50, 2))]
    batches = PositionedBatchSampler(TrainingSampler(50, seed=7), 3, seed=11, sizes=sizes)
    ours = [[index for _, _, index in batch] for batch in first(batches, 40)]
    stream = ({"index": i, "width": sizes[i][0], "height": sizes[i][1]} for i in TrainingSampler(50, seed=7))
    theirs = [[d["index"] for d in batch] for batch in first(AspectRatioGroupedDataset(stream, 3), 40)]
    assert ours == theirs
    assert len({len(b) for b in ours}) == 1 and any(sizes[b[0]][0] > sizes[b[0]][1] for b in ours)


def test_a_resumed_stream_skips_exactly_the_batches_used():
    sizes = [(200, 100) if i % 3 else (100, 200) for i in range(20)]
    whole = first(PositionedBatchSampler(TrainingSampler(20, seed=1), 2, seed=5, sizes=sizes), 30)
    resumed = PositionedBatchSampler(TrainingSampler(20, seed=1), 2, seed=5, sizes=sizes)
    resumed.start_batch = 17
    assert first(resumed, 13) == whole[17:]
    positions = [p for batch in whole for _, p, _ in batch]
    assert len(set(positions)) == len(positions) and all(s == 5 for batch in whole for s, _, _ in batch)


def test_positions_count_the_global_stream_over_ranks():
    """Rank r of w sees every w-th sample of the stream, from r: its positions say which."""
    whole = [i for i in itertools.islice(TrainingSampler(10, seed=3)._infinite_indices(), 12)]
    for rank in (0, 1):
        sampler = TrainingSampler(10, seed=3)
        sampler._rank, sampler._world_size = rank, 2
        items = [
            item
            for batch in first(PositionedBatchSampler(sampler, 2, seed=0, rank=rank, world_size=2), 3)
            for item in batch
        ]
        assert [p for _, p, _ in items] == list(range(rank, 12, 2))
        assert [i for _, _, i in items] == whole[rank::2]


class Draws:
    """A stand-in for a MapDataset: what each generator draws while mapping entry ``index``."""

    def __getitem__(self, index):
        return index, random.random(), float(np.random.rand()), float(torch.rand(()))

    def __len__(self):
        return 100


def test_a_sample_is_mapped_the_same_whatever_the_callers_state_which_is_kept():
    samples = SeededSamples(Draws())
    seed_everything(1)
    first_draw = samples[(5, 42, 7)]
    seed_everything(2)
    before = random.random(), float(np.random.rand()), float(torch.rand(()))
    seed_everything(2)
    assert samples[(5, 42, 7)] == first_draw  # another caller state, the same mapping
    after = random.random(), float(np.random.rand()), float(torch.rand(()))
    assert after == before, "the caller's generators continue as if nothing was drawn"
    assert samples[(5, 43, 7)] != first_draw and samples[(6, 42, 7)] != first_draw
    seed_everything(derive_seed(5, 1, 42))  # what the mapping ran under: SAMPLE = 1, the position
    assert (7, random.random(), float(np.random.rand()), float(torch.rand(()))) == first_draw


def test_seed_minus_one_becomes_a_recorded_number():
    from pathlib import Path

    from sna_det.engine import setup_cfg

    demo = Path(__file__).resolve().parents[2] / "configs" / "demo" / "faster_rcnn_R_18_FPN_sna_demo.yaml"
    drawn = with_concrete_seed(setup_cfg(demo, ["SEED", "-1"]))
    assert 0 <= drawn.SEED < 2**31 and drawn.is_frozen()
    assert with_concrete_seed(setup_cfg(demo, ["SEED", "-1"]), 1234).SEED == 1234  # a resumed run's
    assert with_concrete_seed(setup_cfg(demo, ["SEED", "3"]), 1234).SEED == 3  # a number stays
