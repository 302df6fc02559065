from .config_setup import CPU_FALLBACK_MESSAGE, choose_main_config, setup_cfg
from .cpu_ddp import create_ddp_model, enable_cpu_ddp
from .defaults import Trainer
from .exact_resume import ExactResume, build_resumable_train_loader
from .inference_model import build_inference_model
from .power_iteration_diagnostics import PowerIterationDiagnostics, insert_before_writers
from .safe_checkpointer import (
    CheckpointError,
    SafeCheckpointer,
    UnsafeCheckpointError,
    WeightsMismatchError,
    load_weights_strict,
)
from .weights_report import WeightsReport

__all__ = [
    "CPU_FALLBACK_MESSAGE",
    "CheckpointError",
    "ExactResume",
    "PowerIterationDiagnostics",
    "SafeCheckpointer",
    "Trainer",
    "UnsafeCheckpointError",
    "WeightsMismatchError",
    "WeightsReport",
    "build_inference_model",
    "build_resumable_train_loader",
    "choose_main_config",
    "create_ddp_model",
    "enable_cpu_ddp",
    "insert_before_writers",
    "load_weights_strict",
    "setup_cfg",
]
