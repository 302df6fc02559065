"""Checkpoints from others load without running their code; our own saves are atomic."""

import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from sna_det.engine.safe_checkpointer import SafeCheckpointer, UnsafeCheckpointError


class Payload:
    """Unpickling this creates a marker file: the proof that code from the checkpoint ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class Opaque:
    """An arbitrary class: legitimate, but torch's weights_only loader cannot rebuild it."""

    def __init__(self):
        self.value = 3


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_save_is_atomic_and_loads_back(tmp_path):
    model = small_model()
    checkpointer = SafeCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000009", iteration=9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000009.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000009.pth"
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    extra = SafeCheckpointer(other, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 9
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


def test_pth_needing_code_is_refused_unless_allowed(tmp_path):
    path = tmp_path / "theirs.pth"
    torch.save({"model": small_model().state_dict(), "extra": Opaque()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"theirs\.pth: refused.*MODEL\.ALLOW_UNSAFE_WEIGHTS"):
        SafeCheckpointer(small_model()).load(str(path))
    loaded = SafeCheckpointer(small_model(), allow_unsafe=True).load(str(path))
    assert loaded["extra"].value == 3


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "code_ran"
    for suffix in (".pkl", ".pth", ".pyth"):
        path = tmp_path / f"evil{suffix}"
        if suffix == ".pkl":
            path.write_bytes(pickle.dumps({"model": {"w": Payload(str(marker))}, "__author__": "x"}))
        else:
            torch.save({"model": {"w": Payload(str(marker))}}, path)
        assert not marker.exists()
        with pytest.raises(UnsafeCheckpointError, match=f"evil\\{suffix}: refused"):
            SafeCheckpointer(small_model()).load(str(path))
        assert not marker.exists(), f"code from a {suffix} file ran"


def test_model_zoo_pkl_of_numpy_arrays_loads(tmp_path):
    model = small_model()
    arrays = {k: v.numpy().copy() + 1 for k, v in model.state_dict().items() if v.dtype.is_floating_point}
    path = tmp_path / "zoo.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": arrays, "__author__": "test"}, f)
    target = small_model()
    SafeCheckpointer(target).load(str(path))
    for key, array in arrays.items():
        np.testing.assert_array_equal(target.state_dict()[key].numpy(), array)


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = small_model()
    checkpointer = SafeCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000004")

    def dies_midway(data, f):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save("model_0000009")
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000004.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000004.pth"
