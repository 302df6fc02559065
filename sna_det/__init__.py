"""sna-det: Spectral Norm Attention (SNA) for detectron2.

``from sna_det.layers import SpectralNormAttention`` needs torch alone (``pip install sna-det``).
With detectron2 installed (``pip install sna-det[detectron2]``), importing the package registers its
backbones (``BACKBONE_REGISTRY``) and datasets (``DatasetCatalog``); it needs detectron2's Python code
only, not its compiled ops.
"""

import warnings
from importlib.util import find_spec

from .layers import SpectralNormAttention
from .utils.cli import quiet_third_party_warnings
from .version import __version__

if find_spec("detectron2") is not None:  # installed: register (a broken install raises, as it should)
    with warnings.catch_warnings():  # only while importing: fvcore's use of the deprecated torch.jit.script
        quiet_third_party_warnings()
        from . import modeling  # noqa: F401  (registers the backbones)
        from .config import add_sna_config
        from .data import datasets  # noqa: F401  (registers the datasets)
        from .data.datasets import DatasetNotPreparedError, check_datasets_ready
        from .evaluation import build_evaluator

__all__ = [
    "DatasetNotPreparedError",
    "SpectralNormAttention",
    "__version__",
    "add_sna_config",
    "build_evaluator",
    "check_datasets_ready",
]


def __getattr__(name: str):
    if name in __all__:
        raise ImportError(f"sna_det.{name} needs detectron2 (pip install 'sna-det[detectron2]', see README)")
    raise AttributeError(f"module 'sna_det' has no attribute {name!r}")
