"""Fixtures of the engine tests that start a service: a real PACS (Orthanc with DICOMweb)."""

import pydicom
import pytest
from helpers.orthanc import REFUSED_STUDY, start_orthanc
from pydicom.data import get_testdata_file


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """Orthanc with its DICOMweb plugin on a free loopback port and a temporary storage folder, for the
    whole session; stopped at the end. A machine without it fails the test, naming the package. STOW-RS
    into the study of ``REFUSED_STUDY`` is refused (HTTP 403)."""
    path = get_testdata_file(REFUSED_STUDY, download=False)
    if path is None:
        pytest.fail(f"{REFUSED_STUDY} is not in pydicom-data (pip install pydicom-data)")
    refused = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    try:
        server = start_orthanc(tmp_path_factory.mktemp("orthanc"), refuse_stores_into=refused)
    except RuntimeError as error:
        pytest.fail(str(error))
    yield server
    server.stop()
