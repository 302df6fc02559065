"""The real VinBigData training annotations (67,914 rows, 15,000 images) for tests, without the images.

The CSV ships inside the ``torchxrayvision`` 1.5.7 wheel (``torchxrayvision/data/vinbigdata-train.csv.gz``,
the same rows as Kaggle's ``train.csv``); ``tools/setup_env.sh`` installs that wheel with ``--no-deps``
as test data. The package is located, never imported (importing it would need its dependencies).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
from pathlib import Path

import pytest

__all__ = ["real_vinbigdata_csv", "real_vinbigdata_rows"]


def real_vinbigdata_csv() -> Path:
    """The gzipped CSV's path; the test is skipped, saying why, when torchxrayvision is not installed."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the real VinBigData CSV comes with torchxrayvision (tools/setup_env.sh installs it --no-deps)")
    path = Path(spec.submodule_search_locations[0]) / "data" / "vinbigdata-train.csv.gz"
    assert path.is_file(), f"{path}: not in this torchxrayvision (1.5.7 has it)"
    return path


def real_vinbigdata_rows() -> list:
    """The CSV's rows as dicts (image_id, class_name, class_id, rad_id, x_min, y_min, x_max, y_max)."""
    with gzip.open(real_vinbigdata_csv(), "rt", newline="") as f:
        return list(csv.DictReader(f))
