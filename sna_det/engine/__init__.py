from .cpu_ddp import create_ddp_model, enable_cpu_ddp
from .defaults import CPU_FALLBACK_MESSAGE, Trainer, choose_main_config, setup_cfg
from .metrics_file import trim_metrics_for_resume
from .power_iteration_diagnostics import PowerIterationDiagnostics, insert_before_writers
from .safe_checkpointer import SafeCheckpointer, UnsafeCheckpointError

__all__ = [
    "CPU_FALLBACK_MESSAGE",
    "PowerIterationDiagnostics",
    "SafeCheckpointer",
    "Trainer",
    "UnsafeCheckpointError",
    "choose_main_config",
    "create_ddp_model",
    "enable_cpu_ddp",
    "insert_before_writers",
    "setup_cfg",
    "trim_metrics_for_resume",
]
