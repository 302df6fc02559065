"""detectron2's ``DetectionCheckpointer`` with safe loading, strict weights and atomic saving.

Loading: a checkpoint is read without running code from it. ``.pth`` files go through
``torch.load(weights_only=True)``; ``.pkl`` files (detectron2's model zoo, Caffe2 / Detectron1) are
first unpickled with an allowlist (numpy arrays, dtypes and plain containers) and only then handed
to detectron2's reader. A file that needs anything else is refused with ``UnsafeCheckpointError``
unless ``allow_unsafe`` (``MODEL.ALLOW_UNSAFE_WEIGHTS``) is set for a file you trust; a file that is
not a checkpoint at all (text, truncated, empty) is a ``CheckpointError`` saying so, allowed or not.

Strict weights: what a file left unloaded is read from detectron2's ``_IncompatibleKeys`` and said in
one line by module (``weights_report``). With ``strict`` (evaluation, export, prediction, and every
``--resume``) a file that leaves any model tensor unloaded or of another shape, or holds tensors
the model does not have, is refused (``WeightsMismatchError``); otherwise (training from
``MODEL.WEIGHTS``) the line is logged, and a tensor of another shape is refused unless its module is
in ``allow_shape_mismatch`` (``MODEL.WEIGHTS_ALLOW_SHAPE_MISMATCH``: by default the class-count heads).
``load_weights_strict(model, path)`` is the one call for tools that only need weights.

Saving: each checkpoint is written to a temporary file and renamed, and ``last_checkpoint`` is
replaced atomically, so a run killed while saving leaves the previous checkpoint usable; the
temporary files such a kill leaves are ours to remove (``remove_stale_temporary_files``).
"""

from __future__ import annotations

import logging
import os
import pickle
import pickletools
import re
import zipfile
from typing import Any, Dict, Optional, Sequence

import torch
from detectron2.checkpoint import DetectionCheckpointer
from torch import nn

from ..utils.atomic_write import atomic_write_text
from ..utils.errors import SnaDetError
from .weights_report import WeightsReport, weights_report

__all__ = [
    "CheckpointError",
    "SafeCheckpointer",
    "UnsafeCheckpointError",
    "WeightsMismatchError",
    "check_pickle_is_safe",
    "load_weights_strict",
]

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

OWN_TEMPORARY_FILE = re.compile(r"^\.(model_(\d+|final)\.pth|last_checkpoint\..+)\.tmp$")
"""The temporary files ``SafeCheckpointer.save`` and ``tag_last_checkpoint`` write (and a kill leaves)."""


class CheckpointError(SnaDetError):
    """A checkpoint (or ``last_checkpoint``) that cannot be used; the message names the file and why."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint that cannot be loaded without running code from it."""


class WeightsMismatchError(CheckpointError):
    """A checkpoint that does not fit the model (tensors missing, of another shape, or left over)."""


class _ForbiddenGlobal(pickle.UnpicklingError):
    pass


class _AllowlistUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in SAFE_PICKLE_GLOBALS:
            raise _ForbiddenGlobal(f"it references {module}.{name}")
        return super().find_class(module, name)


def check_pickle_is_safe(path: str) -> None:
    """Raise ``pickle.UnpicklingError`` if the pickle at ``path`` references a non-allowlisted global
    (other errors: the file is not a pickle)."""
    with open(path, "rb") as f:
        _AllowlistUnpickler(f, encoding="latin1").load()


def _refusal(path: str, reason: object) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"{path}: refused, loading it would run code from the file ({reason}). If you trust the file, "
        "set MODEL.ALLOW_UNSAFE_WEIGHTS True."
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _corrupt(path: str, error: BaseException) -> CheckpointError:
    return CheckpointError(
        f"{path}: not a readable checkpoint (empty, truncated or not a model file: {_first_line(error)})"
    )


def _is_whole_pickle(path: str) -> bool:
    """Does the file hold a complete, well-formed pickle (torch's zip: its ``data.pkl``)? Read with
    ``pickletools.genops``, which parses opcodes and runs nothing."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
                data = archive.read(name)
        else:
            with open(path, "rb") as f:
                data = f.read()
        ops = list(pickletools.genops(data))
        return bool(ops) and ops[-1][0].name == "STOP"
    except Exception:  # anything at all: not a pickle
        return False


def _allowed(key: str, prefixes: Sequence[str]) -> bool:
    return any(p == "*" or key == p or key.startswith(p + ".") for p in prefixes)


class SafeCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` that loads without running code from the file, reports (or, with
    ``strict``, refuses) what a file leaves unloaded, and saves atomically.

    Args:
        allow_unsafe: also load files that need code (``MODEL.ALLOW_UNSAFE_WEIGHTS``).
        strict: every model tensor must be loaded with its shape and every tensor of the file used.
            A ``resume_or_load`` that resumes from ``last_checkpoint`` is always strict.
        allow_shape_mismatch: when not strict, modules (state-key prefixes, ``"*"`` for any) whose
            tensors may have another shape in the file and stay at their initial values.
    """

    def __init__(
        self,
        model: nn.Module,
        save_dir: str = "",
        *,
        allow_unsafe: bool = False,
        strict: bool = False,
        allow_shape_mismatch: Sequence[str] = (),
        **checkpointables,
    ):
        super().__init__(model, save_dir, **checkpointables)
        self.allow_unsafe = allow_unsafe
        self.strict = strict
        self.allow_shape_mismatch = tuple(allow_shape_mismatch)
        self.last_report: Optional[WeightsReport] = None
        self._loading: str = ""
        self._strict_now = strict

    # -- reading files ------------------------------------------------------------------------

    def _load_file(self, filename: str) -> Dict[str, Any]:
        if filename.endswith((".pkl", ".pyth")):
            if not self.allow_unsafe:
                try:
                    if filename.endswith(".pkl"):
                        check_pickle_is_safe(filename)
                    else:
                        torch.load(filename, map_location="cpu", weights_only=True)
                except _ForbiddenGlobal as error:
                    raise _refusal(filename, error) from None
                except pickle.UnpicklingError as error:
                    if filename.endswith(".pyth") and _is_whole_pickle(filename):
                        raise _refusal(filename, str(error).splitlines()[0]) from None
                    raise _corrupt(filename, error) from None
                except Exception as error:  # EOFError, RuntimeError (zip), ValueError ...: not a checkpoint
                    raise _corrupt(filename, error) from None
            try:
                return super()._load_file(filename)
            except (CheckpointError, KeyboardInterrupt):
                raise
            except Exception as error:
                raise _corrupt(filename, error) from None
        try:
            return super()._load_file(filename)
        except (CheckpointError, KeyboardInterrupt):
            raise
        except (AssertionError, KeyError, TypeError, AttributeError) as error:  # detectron2's own checks
            raise _corrupt(filename, error) from None

    def _torch_load(self, f: str) -> Any:
        try:
            loaded = torch.load(f, map_location=torch.device("cpu"), weights_only=True)
        except pickle.UnpicklingError as error:
            if not _is_whole_pickle(f):
                raise _corrupt(f, error) from None
            if not self.allow_unsafe:
                raise _refusal(f, str(error).splitlines()[0]) from None
            logger.warning(f"{f}: loading with weights_only=False (MODEL.ALLOW_UNSAFE_WEIGHTS)")
            try:
                loaded = torch.load(f, map_location=torch.device("cpu"), weights_only=False)
            except Exception as unsafe_error:
                raise _corrupt(f, unsafe_error) from None
        except Exception as error:  # EOFError, RuntimeError (a truncated zip), KeyError (text) ...
            raise _corrupt(f, error) from None
        if not isinstance(loaded, dict):
            raise CheckpointError(f"{f}: not a checkpoint (holds a {type(loaded).__name__}, not a dict of tensors)")
        return loaded

    def get_checkpoint_file(self) -> str:
        """The file ``<save_dir>/last_checkpoint`` names; ``CheckpointError`` when it is empty, not
        text, or names a file that is not there."""
        tag = os.path.join(self.save_dir, "last_checkpoint")
        try:
            with open(tag, "rb") as f:
                name = f.read().decode("utf-8").strip()
        except FileNotFoundError:
            return ""
        except UnicodeDecodeError:
            name = None
        fix = "remove it to start afresh, or write in it the name of a complete model_*.pth of that folder"
        if not name or "\n" in name or "\x00" in name:
            what = "is empty" if name == "" else "is not the name of a checkpoint"
            raise CheckpointError(f"{tag}: {what}; {fix}")
        path = os.path.join(self.save_dir, name)
        if not os.path.isfile(path):
            raise CheckpointError(f"{tag}: names {name}, which does not exist; {fix}")
        return path

    def load(self, path: str, checkpointables: Optional[list] = None) -> Dict[str, Any]:
        if path and "://" not in path and not os.path.isfile(path):
            raise CheckpointError(f"{path}: no such checkpoint file")
        self._loading = path
        return super().load(path, checkpointables)

    def resume_or_load(self, path: str, *, resume: bool = True) -> Dict[str, Any]:
        """As detectron2's; resuming (``last_checkpoint`` present) loads strictly."""
        self._strict_now = self.strict or (resume and self.has_checkpoint())
        try:
            return super().resume_or_load(path, resume=resume)
        finally:
            self._strict_now = self.strict

    # -- what was loaded -----------------------------------------------------------------------

    def _load_model(self, checkpoint: Dict[str, Any]):
        state = checkpoint.get("model")
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) or hasattr(v, "dtype") for v in state.values()
        ):
            raise CheckpointError(
                f"{self._loading}: not a checkpoint of model weights (no dict of tensors under 'model')"
            )
        return super()._load_model(checkpoint)

    def _log_incompatible_keys(self, incompatible) -> None:
        """Instead of detectron2's per-key warnings: one line (``WeightsReport.describe``), and the
        refusals of ``strict`` / ``allow_shape_mismatch``."""
        report = weights_report(self._loading, self.model, incompatible)
        self.last_report = report
        strict = self._strict_now
        if strict and not report.complete:
            raise WeightsMismatchError(f"{report.describe()}: it does not fit this model (config and weights differ)")
        refused = [s for s in report.shape if not _allowed(s[0], self.allow_shape_mismatch)]
        if refused:
            raise WeightsMismatchError(
                f"{report.describe()}: refused, {len(refused)} of another shape outside "
                "MODEL.WEIGHTS_ALLOW_SHAPE_MISMATCH (add their modules there, or \"['*']\", to train them from scratch)"
            )
        for key, in_file, in_model in report.shape + [(k, None, None) for k in report.missing]:
            self.logger.debug(
                f"not loaded: {key}"
                + (f" ({list(in_file)} in the file, {list(in_model)} in the model)" if in_file else "")
            )
        self.logger.info(report.describe())

    # -- saving --------------------------------------------------------------------------------

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

    def remove_stale_temporary_files(self) -> list:
        """Remove the temporary files of saves that a kill interrupted (``OWN_TEMPORARY_FILE`` only:
        nobody else's files); returns their names. Call it before training starts, not during saves."""
        if not self.save_dir or not os.path.isdir(self.save_dir):
            return []
        removed = sorted(n for n in os.listdir(self.save_dir) if OWN_TEMPORARY_FILE.match(n))
        for name in removed:
            os.unlink(os.path.join(self.save_dir, name))
        return removed


def load_weights_strict(model: nn.Module, path: str, *, allow_unsafe: bool = False) -> WeightsReport:
    """Load the model weights of the checkpoint at ``path`` into ``model`` (in place), refusing a file
    that does not fit it exactly: ``WeightsMismatchError`` (one line: how many tensors, which
    modules, the file) when any model tensor is missing from the file or of another shape, or the
    file has tensors the model does not; ``CheckpointError`` / ``UnsafeCheckpointError`` for a file
    that is missing, not a checkpoint, or would run code. For evaluation, export and prediction.
    Returns the report (all loaded)."""
    if not path:
        raise CheckpointError("MODEL.WEIGHTS is empty: no weights to load (give the model_final.pth of a training)")
    checkpointer = SafeCheckpointer(model, allow_unsafe=allow_unsafe, strict=True)
    checkpointer.load(path, checkpointables=[])
    return checkpointer.last_report
