"""Fixtures of the data tests: the synthetic VinBigData download."""

import pytest
from helpers.vindr_cxr_synthetic import write_vinbigdata


@pytest.fixture(scope="module")
def vinbigdata(tmp_path_factory):
    """The synthetic VinBigData download (``helpers.vindr_cxr_synthetic``), once per test module; a test
    that changes an input writes its own copy."""
    return write_vinbigdata(tmp_path_factory.mktemp("vinbigdata"))
