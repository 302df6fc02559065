"""A PACS over DICOMweb (dicomweb-client) as ``tools/predict.py``'s input and output: a study's images
retrieved (QIDO-RS search, WADO-RS retrieve), the SRs and presentation states stored back (STOW-RS).

Authentication from the environment, never the command line: ``SNA_DICOMWEB_TOKEN`` (sent as
``Authorization: Bearer``), else ``SNA_DICOMWEB_USER`` and ``SNA_DICOMWEB_PASSWORD`` (HTTP basic).
Every request has a timeout and is retried a few times (``connect``). Failures are ``DicomwebError`` s
whose message is one line naming the server and what failed.

Storing: instances already on the server (same SOP Instance UID: the UIDs of ``dicom_results`` are the
same for the same model, image and threshold) are not sent again; the rest go in one STOW-RS request,
and what the server refused is named (a refusal leaves the accepted ones, which a new run keeps).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from ..utils import atomic_write_bytes

__all__ = ["AUTH_VARIABLES", "DicomwebError", "connect", "retrieve_study", "store_instances"]

AUTH_VARIABLES = ("SNA_DICOMWEB_TOKEN", "SNA_DICOMWEB_USER", "SNA_DICOMWEB_PASSWORD")
STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"


class DicomwebError(Exception):
    """A DICOMweb request that failed; the message is one line."""


def _session() -> requests.Session:
    """A session with the environment's credentials."""
    session = requests.Session()
    token, user, password = (os.environ.get(name) for name in AUTH_VARIABLES)
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    elif user is not None or password is not None:
        session.auth = (user or "", password or "")
    return session


def connect(url: str, timeout: float = 30.0, retries: int = 3) -> DICOMwebClient:
    """A DICOMweb client of ``url`` (e.g. ``http://host:8042/dicom-web``): ``timeout`` seconds per request;
    a request that fails (no connection, timeout, HTTP 408 / 429 / 503 / 504) is tried ``retries`` more
    times, 0.2, 0.4, 0.8 ... s apart (dicomweb-client's retrying)."""
    if not url.startswith(("http://", "https://")):
        raise DicomwebError(f"--dicomweb {url}: not an http:// or https:// URL")
    client = DICOMwebClient(url.rstrip("/"), session=_session(), timeout=timeout)
    client.set_http_retry_params(retry=True, max_attempts=retries + 1, wait_exponential_multiplier=100)
    return client


def _failure(client: DICOMwebClient, what: str, error: Exception) -> DicomwebError:
    """``error`` of a request as one line."""
    url = client.base_url
    if isinstance(error, requests.HTTPError) and error.response is not None:
        status = error.response.status_code
        hint = f" (credentials: {', '.join(AUTH_VARIABLES)})" if status in (401, 403) else ""
        return DicomwebError(f"DICOMweb server {url}: {what}: HTTP {status} {error.response.reason}{hint}")
    if isinstance(error, (requests.ConnectionError, requests.Timeout)):
        reason = type(error).__name__ if isinstance(error, requests.Timeout) else "cannot connect"
        return DicomwebError(f"DICOMweb server {url}: unreachable ({reason}) while trying to {what}")
    return DicomwebError(f"DICOMweb server {url}: {what}: {' '.join(str(error).split())[:300]}")


def _value(row: Dict[str, dict], tag: str) -> str:
    values = row.get(tag, {}).get("Value", [])
    return str(values[0]) if values else ""


def study_instances(client: DICOMwebClient, study_uid: str) -> List[Tuple[str, str]]:
    """(Series Instance UID, SOP Instance UID) of every instance of the study (QIDO-RS)."""
    try:
        rows = client.search_for_instances(study_instance_uid=study_uid, get_remaining=True)
    except Exception as error:  # requests' and dicomweb-client's errors
        raise _failure(client, f"search study {study_uid}", error) from None
    return [(_value(row, SERIES_UID), _value(row, SOP_UID)) for row in rows]


def retrieve_study(client: DICOMwebClient, study_uid: str, folder: Path) -> Tuple[List[Path], int]:
    """The study's images (instances with pixel data) written to ``folder/<SOPInstanceUID>.dcm``
    (WADO-RS), and how many instances without pixel data (SRs, presentation states) were passed over.

    Raises DicomwebError for an unknown study, an unreachable server or a failed request."""
    instances = study_instances(client, study_uid)
    if not instances:
        raise DicomwebError(f"DICOMweb server {client.base_url}: study {study_uid} not found (QIDO-RS: no instance)")
    folder.mkdir(parents=True, exist_ok=True)
    paths, passed_over = [], 0
    for series_uid, sop_uid in instances:
        try:
            dataset = client.retrieve_instance(study_uid, series_uid, sop_uid)
        except Exception as error:
            raise _failure(client, f"retrieve instance {sop_uid}", error) from None
        if "PixelData" not in dataset:
            passed_over += 1
            continue
        path = folder / f"{sop_uid}.dcm"
        buffer = pydicom.filebase.DicomBytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    if not paths:
        raise DicomwebError(f"DICOMweb server {client.base_url}: study {study_uid} has no image (no pixel data)")
    return paths, passed_over


def store_instances(client: DICOMwebClient, study_uid: str, paths: Sequence[Path]) -> Tuple[int, int]:
    """Store the DICOM files ``paths`` (of study ``study_uid``) on the server (STOW-RS), except those
    already there (same SOP Instance UID); (stored, already there).

    Raises DicomwebError naming what the server refused."""
    present = {sop for _, sop in study_instances(client, study_uid)}
    datasets: List[Dataset] = []
    for path in paths:
        dataset = pydicom.dcmread(str(path))
        if str(dataset.StudyInstanceUID) != study_uid:
            raise DicomwebError(f"{path}: of study {dataset.StudyInstanceUID}, not {study_uid}: not stored")
        if str(dataset.SOPInstanceUID) not in present:
            datasets.append(dataset)
    if not datasets:
        return 0, len(paths)
    try:
        response = client.store_instances(datasets, study_instance_uid=study_uid)
    except Exception as error:
        raise _failure(client, f"store {len(datasets)} instances (STOW-RS; none stored)", error) from None
    failed = list(response.get("FailedSOPSequence", []))
    if failed:
        first, stored = failed[0], len(datasets) - len(failed)
        reason = first.get("FailureReason", None)
        raise DicomwebError(
            f"DICOMweb server {client.base_url}: refused {len(failed)} of {len(datasets)} instances (STOW-RS; first: "
            f"{first.get('ReferencedSOPInstanceUID', '?')}, failure reason "
            f"{f'{reason:#06x}' if isinstance(reason, int) else '?'}); {stored} stored, run again to store the rest"
        )
    return len(datasets), len(paths) - len(datasets)
