from .atomic_write import atomic_write_bytes, atomic_write_json, atomic_write_text
from .skip_report import SkipReport

__all__ = ["SkipReport", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]
