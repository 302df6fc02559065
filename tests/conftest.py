import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test sees the same random numbers, whatever ran before it."""
    torch.manual_seed(0)
