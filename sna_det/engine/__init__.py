from .cpu_ddp import create_ddp_model, enable_cpu_ddp
from .metrics_file import trim_metrics_for_resume
from .power_iteration_diagnostics import PowerIterationDiagnostics, insert_before_writers
from .safe_checkpointer import SafeCheckpointer, UnsafeCheckpointError

__all__ = [
    "PowerIterationDiagnostics",
    "SafeCheckpointer",
    "UnsafeCheckpointError",
    "create_ddp_model",
    "enable_cpu_ddp",
    "insert_before_writers",
    "trim_metrics_for_resume",
]
