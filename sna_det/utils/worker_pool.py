"""A process pool whose workers end with the process that started them.

``ProcessPoolExecutor``'s workers outlive a parent killed by SIGKILL or SIGTERM: re-parented, they
wait for work on a queue nobody writes any more, for ever. ``worker_pool`` starts each worker with

- ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux, through ctypes): the kernel kills the worker when its
  parent ends, however it ends;
- a watcher thread (every platform, and Linux as a fallback): the worker ends itself within
  ``WATCH_PERIOD_S`` of seeing its parent gone (re-parented, no such process, or a zombie);
- SIGINT ignored: Ctrl-C reaches the whole process group, and the parent alone handles it (it stops
  handing out work and shuts the pool down), so no worker prints a traceback.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

__all__ = ["WATCH_PERIOD_S", "parent_alive", "worker_pool"]

WATCH_PERIOD_S = 0.5
"""Seconds between two looks of a worker's watcher thread at its parent."""
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def parent_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (exists and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile (Linux), or no /proc to tell a zombie (elsewhere: it exists)
        return not sys.platform.startswith("linux")
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _set_parent_death_signal() -> None:
    """Linux: SIGKILL this process when the thread that forked it ends (the parent's main thread)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no libc to call: the watcher thread does it
        pass


def _watch(parent_pid: int, parent_of_worker: int) -> None:
    while True:
        time.sleep(WATCH_PERIOD_S)
        if os.getppid() != parent_of_worker or not parent_alive(parent_pid):
            os._exit(1)


def _end_with_parent(parent_pid: int) -> None:
    """Initializer of each worker (module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_parent_death_signal()
    parent_of_worker = os.getppid()  # the parent (fork), or the fork server that started this worker
    if not parent_alive(parent_pid):  # it ended before the death signal was set
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid, parent_of_worker), daemon=True, name="watch-parent").start()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes that end with this process (module docstring)."""
    return ProcessPoolExecutor(max_workers=workers, initializer=_end_with_parent, initargs=(os.getpid(),))
