"""The processes a test started, from /proc (Linux): children of a process, and whether they still run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List


def _stat(pid: int | str) -> List[str]:
    """The fields of /proc/<pid>/stat after the command name: state is [0], parent [1], start time [19]."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children_of(pid: int) -> Dict[int, str]:
    """{pid: start time} of the running (not zombie) processes whose parent is ``pid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(entry.name)
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found[int(entry.name)] = fields[19]
    return found


def alive(processes: Dict[int, str]) -> List[int]:
    """Those of {pid: start time} still running (not gone, not zombies, not another process by then)."""
    running = []
    for pid, start in processes.items():
        try:
            fields = _stat(pid)
        except OSError:
            continue
        if fields[0] != "Z" and fields[19] == start:
            running.append(pid)
    return running


def assert_all_end_within(processes: Dict[int, str], seconds: float) -> None:
    """Wait up to ``seconds`` for every one of ``processes`` to end; fail naming those still running."""
    deadline = time.monotonic() + seconds
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(processes) == [], f"still running {seconds} s after the kill: {alive(processes)}"
