"""Worker processes that end with the process that started them.

A pool's workers (sweeps, parallel trace generation) are separate processes:
when the parent is killed (SIGKILL, an OOM kill, a killed test run) they would
otherwise live on, each holding hundreds of MB, until someone finds them.
"""

from __future__ import annotations

__all__ = ["WATCHDOG_PERIOD_S", "die_with_parent"]

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

#: How often a worker's watchdog looks for its parent, s.
WATCHDOG_PERIOD_S = 0.5


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` (its parent) ends, however that ends.

    On Linux the kernel sends SIGKILL at the parent's death (``prctl
    PR_SET_PDEATHSIG``), even while a kernel holds the interpreter; elsewhere
    (and as a second line) a daemon thread polls the parent's id. A process
    whose parent is already gone ends at once.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_PERIOD_S)
        os._exit(1)

    threading.Thread(target=watch, name="cmmsim-parent-watchdog", daemon=True).start()
