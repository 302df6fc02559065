"""Fixtures of the engine tests that start a service: a real PACS (Orthanc with DICOMweb)."""

import pytest
from helpers.orthanc import start_orthanc


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """Orthanc with its DICOMweb plugin on a free loopback port and a temporary storage folder, for the
    whole session; stopped at the end. A machine without it fails the test, naming the package."""
    try:
        server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    except RuntimeError as error:
        pytest.fail(str(error))
    yield server
    server.stop()
