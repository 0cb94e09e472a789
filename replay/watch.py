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

The array has one slot more, the *stop* slot: a kernel reads it where it
stores its position (:func:`reached`) and leaves its loop once it is
negative. :func:`watched` sets it when the calling thread is interrupted
while it waits (Ctrl-C, or an error from the callback), waits for the worker
to leave (within :data:`STORE_EVERY` events of each pass) and raises: a
library caller that interrupts a replay gets its CPU back, not a thread
running to the end of the trace. The stopped kernel's output is dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import numba as nb
import numpy as np

__all__ = ["POLL_S", "STORE_EVERY", "reached", "watched"]

#: Events between two stores of a kernel's position in its slot (a power of two).
STORE_EVERY = 1 << 16
#: Seconds between two polls of the slots (the bar's refresh, not the kernel's pace).
POLL_S = 0.2

T = TypeVar("T")


@nb.njit(cache=True, inline="always")
def reached(done, slot, i):
    """Store position ``i`` in ``done[slot]``; True when the kernel is asked to stop
    (the last slot of ``done`` is negative): it leaves its loop then."""
    done[slot] = i
    return done[done.shape[0] - 1] < 0


def _positions(slots: int) -> np.ndarray:
    """The kernel's position slots (at least one) and the stop slot after them."""
    return np.zeros(max(1, slots) + 1, np.int64)


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
    done = _positions(slots)
    if on_events is None:
        return call(done, every - 1)
    out: list[T] = []
    failed: list[BaseException] = []
    # numba keeps its thread count per calling thread: the worker takes ours
    # (a sweep worker runs its kernels on one thread).
    threads = nb.get_num_threads()

    # The worker's end, waited for with an event: a Thread.join interrupted by a signal
    # (Ctrl-C) marks the thread stopped while it runs on, so a later join returns at once.
    finished = threading.Event()

    def work() -> None:
        try:
            nb.set_num_threads(threads)
            out.append(call(done, every - 1))
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread as is
            failed.append(e)
        finally:
            finished.set()

    # A daemon thread: should the interpreter exit while it runs, it does not wait for it.
    worker = threading.Thread(target=work, name="cmmsim-kernel", daemon=True)
    worker.start()
    reported = 0
    positions = done[:-1]
    # Every slot passes over all the events: the slots' sum ends at slots x events.
    work_events = max(1, len(positions) * int(n_events))
    try:
        ended = False
        while not ended:
            ended = finished.wait(POLL_S)
            # The slots are written by other threads as we read: each is an aligned
            # int64 that only grows, so the sum is at most a little behind.
            now = min(n_events, int(positions.sum()) * n_events // work_events)
            if now > reported:
                on_events(now - reported)
                reported = now
    except BaseException:
        # Interrupted (Ctrl-C) or the callback failed: the kernel stops at its next
        # store, its output is dropped, and the interruption goes on up.
        done[-1] = -1
        finished.wait()
        raise
    if failed:
        raise failed[0]
    if n_events > reported:
        on_events(n_events - reported)
    return out[0]
