"""sna-det: Spectral Norm Attention (SNA) for detectron2.

Importing the package registers its backbones (``BACKBONE_REGISTRY``) and datasets
(``DatasetCatalog``). It needs detectron2's Python code only, not its compiled ops.
"""

from . import data, modeling  # noqa: F401  (registration side effects)
from .config import add_sna_config
from .data import DatasetNotPreparedError, check_datasets_ready
from .evaluation import build_evaluator
from .layers import SpectralNormAttention
from .version import __version__

__all__ = [
    "DatasetNotPreparedError",
    "SpectralNormAttention",
    "__version__",
    "add_sna_config",
    "build_evaluator",
    "check_datasets_ready",
]
