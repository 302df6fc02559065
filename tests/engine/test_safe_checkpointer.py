"""Checkpoints from others load without running their code; our own saves are atomic."""

import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from sna_det.engine.safe_checkpointer import CheckpointError, SafeCheckpointer, UnsafeCheckpointError


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


def corrupt_files(tmp_path):
    """Files that are not checkpoints, named by what they are."""
    whole = tmp_path / "whole.pth"
    torch.save({"model": small_model().state_dict()}, whole)
    data = whole.read_bytes()
    files = {
        "text.pth": b"these are not weights\n",
        "empty.pth": b"",
        "truncated.pth": data[: len(data) // 2],
        "random.pth": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        "text.pkl": b"these are not weights either\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return [tmp_path / name for name in files]


@pytest.mark.parametrize("allow_unsafe", [False, True])
def test_a_corrupt_file_is_not_called_unsafe(tmp_path, allow_unsafe):
    """Not "would run code": a file that is not a checkpoint says so, with or without ALLOW_UNSAFE_WEIGHTS."""
    for path in corrupt_files(tmp_path):
        with pytest.raises(CheckpointError) as error:
            SafeCheckpointer(small_model(), allow_unsafe=allow_unsafe).load(str(path))
        assert not isinstance(error.value, UnsafeCheckpointError), path.name
        assert str(error.value).startswith(f"{path}: not a readable checkpoint"), str(error.value)
        assert "\n" not in str(error.value)


def test_a_missing_weights_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"^{tmp_path / 'none.pth'}: no such checkpoint file$"):
        SafeCheckpointer(small_model()).load(str(tmp_path / "none.pth"))


@pytest.mark.parametrize(
    "content, says",
    [
        (b"", "is empty"),
        (b"\xff\xfe\x00binary", "is not the name of a checkpoint"),
        (b"model_0000009.pth\n", "names model_0000009.pth, which does not exist"),
    ],
)
def test_a_bad_last_checkpoint_is_one_clear_error(tmp_path, content, says):
    (tmp_path / "last_checkpoint").write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        SafeCheckpointer(small_model(), str(tmp_path)).resume_or_load("", resume=True)
    assert str(error.value).startswith(f"{tmp_path / 'last_checkpoint'}: {says}; remove it")


def test_stale_temporary_files_of_our_saves_are_removed_and_no_others(tmp_path):
    ours = [".model_final.pth.tmp", ".model_0000009.pth.tmp", ".last_checkpoint.abc123.tmp"]
    theirs = [".notes.txt.tmp", ".model_final.pth.tmp.bak", "model_final.pth.tmp", ".other.pth.tmp"]
    for name in ours + theirs:
        (tmp_path / name).write_bytes(b"")
    assert SafeCheckpointer(small_model(), str(tmp_path)).remove_stale_temporary_files() == sorted(ours)
    assert sorted(os.listdir(tmp_path)) == sorted(theirs)
