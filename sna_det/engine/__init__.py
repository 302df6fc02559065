from .cpu_ddp import create_ddp_model, enable_cpu_ddp

__all__ = ["create_ddp_model", "enable_cpu_ddp"]
