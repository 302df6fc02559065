"""A real PACS for the tests: Orthanc (Debian's ``orthanc``) with its DICOMweb plugin
(``orthanc-dicomweb``), on a free loopback port, with a temporary storage folder and configuration.

Orthanc 1.10 has no bind-address option: ``RemoteAccessAllowed: false`` makes it answer loopback
clients only, and the tests talk to it at 127.0.0.1. Its DICOM (C-STORE) server is off. Every wait is
bounded; ``stop`` ends the process it started.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ORTHANC = "/usr/sbin/Orthanc"
REFUSED_STUDY = "RG3_UNCR.dcm"
"""The tests' server refuses stores into the study of this pydicom-data file (``start_orthanc``)."""
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
MISSING = (
    "{what} is missing: install it with `apt-get install orthanc orthanc-dicomweb dicom3tools` "
    "(tools/setup_env.sh does when it runs as root with apt)"
)


@dataclass
class OrthancServer:
    process: subprocess.Popen
    port: int
    folder: Path

    @property
    def dicomweb_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_tools() -> list:
    """What of Orthanc, its DICOMweb plugin and dciodvfy is not installed (each as an install hint)."""
    missing = []
    if not Path(ORTHANC).is_file():
        missing.append(MISSING.format(what=f"Orthanc ({ORTHANC}, Debian package orthanc)"))
    if not Path(DICOMWEB_PLUGIN).is_file():
        missing.append(MISSING.format(what=f"Orthanc's DICOMweb plugin ({DICOMWEB_PLUGIN}, orthanc-dicomweb)"))
    if shutil.which("dciodvfy") is None:
        missing.append(MISSING.format(what="dciodvfy (Debian package dicom3tools)"))
    return missing


REFUSE_STORES = """
function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
  return not (method == 'POST' and string.find(uri, '/dicom-web/studies/{study}', 1, true))
end
"""
"""Orthanc's Lua filter of HTTP requests: STOW-RS into that one study (its URL) is refused (HTTP 403)."""


def start_orthanc(folder: Path, refuse_stores_into: str = "", timeout: float = 60.0) -> OrthancServer:
    """Orthanc with DICOMweb on a free loopback port, its storage and config below ``folder``; waits
    (at most ``timeout`` seconds) until its DICOMweb API answers. With ``refuse_stores_into`` (a Study
    Instance UID), a STOW-RS to ``/dicom-web/studies/<it>`` is refused (HTTP 403), as a PACS that does
    not let this client write there. RuntimeError naming what is missing or what Orthanc printed."""
    for problem in missing_tools()[:1]:
        raise RuntimeError(problem)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "Name": "sna-det-tests",
        "StorageDirectory": str(folder / "db"),
        "IndexDirectory": str(folder / "db"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "HttpServerEnabled": True,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Host": "127.0.0.1", "Ssl": False},
        "StorageCompression": False,
    }
    if refuse_stores_into:
        (folder / "refuse.lua").write_text(REFUSE_STORES.replace("{study}", refuse_stores_into))
        config["LuaScripts"] = [str(folder / "refuse.lua")]
    (folder / "orthanc.json").write_text(json.dumps(config, indent=1))
    log = open(folder / "orthanc.log", "wb")
    process = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    server = OrthancServer(process, port, folder)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{server.dicomweb_url}/studies", timeout=2) as response:
                if response.status in (200, 204):
                    return server
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    server.stop()
    tail = (folder / "orthanc.log").read_text(errors="replace")[-1500:]
    raise RuntimeError(f"Orthanc did not answer on port {port} within {timeout:.0f} s; its log ends:\n{tail}")
