"""detectron2's ``DetectionCheckpointer`` with safe loading and atomic saving.

Loading: a checkpoint is read without running code from it. ``.pth`` files go through
``torch.load(weights_only=True)``; ``.pkl`` files (detectron2's model zoo, Caffe2 / Detectron1) are
first unpickled with an allowlist (numpy arrays, dtypes and plain containers) and only then handed
to detectron2's reader. A file that needs anything else is refused with ``UnsafeCheckpointError``
unless ``allow_unsafe`` (``MODEL.ALLOW_UNSAFE_WEIGHTS``) is set for a file you trust.

Saving: each checkpoint is written to a temporary file and renamed, and ``last_checkpoint`` is
replaced atomically, so a run killed while saving leaves the previous checkpoint usable.
"""

from __future__ import annotations

import logging
import os
import pickle
from typing import Any, Dict

import torch
from detectron2.checkpoint import DetectionCheckpointer

from ..utils.atomic_write import atomic_write_text

__all__ = ["SafeCheckpointer", "UnsafeCheckpointError", "check_pickle_is_safe"]

logger = logging.getLogger(__name__)

SAFE_PICKLE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}
"""What a model-zoo ``.pkl`` (a dict of numpy arrays) may reference; nothing that runs other code."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint that cannot be loaded without running code from it."""


class _AllowlistUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in SAFE_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it references {module}.{name}")
        return super().find_class(module, name)


def check_pickle_is_safe(path: str) -> None:
    """Raise ``pickle.UnpicklingError`` if the pickle at ``path`` references a non-allowlisted global."""
    with open(path, "rb") as f:
        _AllowlistUnpickler(f, encoding="latin1").load()


def _refusal(path: str, reason: object) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"{path}: refused, loading it would run code from the file ({reason}). If you trust the file, "
        "set MODEL.ALLOW_UNSAFE_WEIGHTS True."
    )


class SafeCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` that loads without running code from the file and saves atomically."""

    def __init__(self, model: torch.nn.Module, save_dir: str = "", *, allow_unsafe: bool = False, **checkpointables):
        super().__init__(model, save_dir, **checkpointables)
        self.allow_unsafe = allow_unsafe

    def _load_file(self, filename: str) -> Dict[str, Any]:
        if filename.endswith((".pkl", ".pyth")) and not self.allow_unsafe:
            try:
                if filename.endswith(".pkl"):
                    check_pickle_is_safe(filename)
                else:
                    torch.load(filename, map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as error:
                raise _refusal(filename, error) from None
        return super()._load_file(filename)

    def _torch_load(self, f: str) -> Any:
        try:
            return torch.load(f, map_location=torch.device("cpu"), weights_only=True)
        except pickle.UnpicklingError as error:
            if not self.allow_unsafe:
                raise _refusal(f, str(error).splitlines()[0]) from None
            logger.warning(f"{f}: loading with weights_only=False (MODEL.ALLOW_UNSAFE_WEIGHTS)")
            return torch.load(f, map_location=torch.device("cpu"), weights_only=False)

    def save(self, name: str, **kwargs: Any) -> None:
        """Write ``<save_dir>/<name>.pth`` through a temporary file, then tag it as the last checkpoint."""
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        tmp = os.path.join(self.save_dir, f".{basename}.tmp")
        self.logger.info(f"Saving checkpoint to {path}")
        try:
            with open(tmp, "wb") as f:
                torch.save(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        atomic_write_text(os.path.join(self.save_dir, "last_checkpoint"), last_filename_basename)
