"""Progress of a numba kernel that runs in one call: it stores how far it got, a thread polls.

A kernel cannot call Python, and making each of the strategies' own kernels
resumable in chunks (as :func:`cmmsim.replay.engine.run` feeds the engine)
would mean handing all of its state in and out. Instead a kernel takes an
int64 array ``done`` and a ``mask``: its loop over the events stores its
position ``i`` in its own slot when ``i & mask == 0`` (one slot per budget or
group a ``prange`` runs, so threads never share one; a store every
:data:`STORE_EVERY` events, a branch the predictor always gets right).
:func:`watched` runs the call in a worker thread (the kernel is compiled
``nogil=True``, so the interpreter stays free) and polls the slots from the
calling thread every :data:`POLL_S` seconds, reporting the events done since
the last poll; when the kernel returns, the rest, so every event is reported
once. Without a callback the kernel runs in the calling thread, untouched.

The stores change nothing the kernel computes: the results are the same
integers either way (tests/test_replay_progress.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import numba as nb
import numpy as np

__all__ = ["POLL_S", "STORE_EVERY", "watched"]

#: Events between two stores of a kernel's position in its slot (a power of two).
STORE_EVERY = 1 << 16
#: Seconds between two polls of the slots (the bar's refresh, not the kernel's pace).
POLL_S = 0.2

T = TypeVar("T")


def watched(
    call: Callable[[np.ndarray, int], T],
    slots: int,
    n_events: int,
    on_events: Callable[[int], None] | None,
) -> T:
    """Run ``call(done, mask)`` and report its progress as events of the trace.

    Parameters
    ----------
    call : callable
        ``call(done, mask)`` runs the kernel: it stores its position (events
        into its pass) in ``done[slot]`` whenever ``position & mask == 0``.
    slots : int
        Slots of ``done``, >= 1: the budgets or groups that run side by side,
        each one pass over the trace's events.
    n_events : int
        Events of the trace: what is reported in all, every one once.
    on_events : callable, optional
        Called (in the calling thread) with the events done since its last
        call: the slots' sum, which ends at ``slots x n_events``, scaled to
        ``n_events``; None: the kernel runs in the calling thread and
        nothing is reported.

    Returns
    -------
    Whatever ``call`` returns; an exception it raises is raised here.
    """
    every = int(STORE_EVERY)
    if every < 1 or every & (every - 1):
        raise ValueError(f"STORE_EVERY must be a power of two, got {every}")
    done = np.zeros(max(1, slots), np.int64)
    if on_events is None:
        return call(done, every - 1)
    out: list[T] = []
    failed: list[BaseException] = []
    # numba keeps its thread count per calling thread: the worker takes ours
    # (a sweep worker runs its kernels on one thread).
    threads = nb.get_num_threads()

    def work() -> None:
        try:
            nb.set_num_threads(threads)
            out.append(call(done, every - 1))
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread as is
            failed.append(e)

    # A daemon thread: an interrupted command (Ctrl-C) exits without waiting for the kernel.
    worker = threading.Thread(target=work, name="cmmsim-kernel", daemon=True)
    worker.start()
    reported = 0
    # Every slot passes over all the events: the slots' sum ends at slots x events.
    work_events = max(1, len(done) * int(n_events))
    while worker.is_alive():
        worker.join(POLL_S)
        # The slots are written by other threads as we read: each is an aligned
        # int64 that only grows, so the sum is at most a little behind.
        now = min(n_events, int(done.sum()) * n_events // work_events)
        if now > reported:
            on_events(now - reported)
            reported = now
    if failed:
        raise failed[0]
    if n_events > reported:
        on_events(n_events - reported)
    return out[0]
