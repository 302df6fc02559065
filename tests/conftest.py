"""Shared by every test: the same random numbers, whatever ran before. Shared helpers (the repository
root, running and loading the project's scripts, synthetic and real test data) are in ``tests/helpers``."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test sees the same random numbers, whatever ran before it."""
    torch.manual_seed(0)
