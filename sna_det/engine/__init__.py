from .cpu_ddp import create_ddp_model, enable_cpu_ddp
from .metrics_file import trim_metrics_for_resume
from .safe_checkpointer import SafeCheckpointer, UnsafeCheckpointError

__all__ = [
    "SafeCheckpointer",
    "UnsafeCheckpointError",
    "create_ddp_model",
    "enable_cpu_ddp",
    "trim_metrics_for_resume",
]
