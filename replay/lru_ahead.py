"""LRU victims computed ahead of the state machine, so one replay can use two cores.

Under exact LRU the host's resident set is a function of the accesses alone:
hints change a page's state but never whether it holds a frame, and the
victim is the least recently accessed resident page whatever the states are.
So a replay at one budget splits into two loops that can run side by side on
successive chunks of events:

* :func:`walk_victims` (this module): exact LRU alone; for every access that
  faults with the budget full it records the page that loses its frame;
* the engine's kernel with the internal order ``ORDER_GIVEN``: the state
  machine and the counters, taking each victim from that record instead of
  from the time slots.

The LRU order is the engine's own (its time slots, :mod:`cmmsim.replay.kernels.slots`,
one class; ``slot[p] == -1`` marks a page without a frame, in both loops), so
the two ways of running can take turns between chunks of a stream.
:mod:`cmmsim.replay.planner` chooses; :func:`tests.naive.lru_victims` is the twin
the tests hold this kernel to.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from cmmsim.replay.kernels import slots
from cmmsim.replay.kernels.prefetch import EVENTS_AHEAD, prefetch
from cmmsim.replay.states import OP_WRITE


# The kernel allocates nothing, so it runs without reference counting (see
# cmmsim.replay.engine): the caller sizes ``victims`` and ``scratch`` to at least one
# entry per event.
@nb.njit(cache=True, nogil=True, _nrt=False)
def walk_victims(page, op, slot, slot_page, bits, levels, frames_max, counts, victims, scratch, positions):
    """Victims of the accesses among ``page``/``op``, in order; returns how many,
    and how many accesses there were (their positions in ``positions``).

    ``slot``, ``slot_page``, ``bits`` (one class) and ``levels`` are the time slots
    of exact LRU (:mod:`cmmsim.replay.kernels.slots`); ``counts`` (frames in use, the next
    free slot) is read and updated, as are the slots.
    """
    # The accesses first, into scratch, without a branch: a hint among the
    # accesses is a branch the walk mispredicts wherever hints come irregularly
    # (on the bench stream the walk took 0.84x its time for a step this way).
    k = 0
    for j in range(page.shape[0]):
        scratch[k] = page[j]
        positions[k] = j
        k += op[j] <= OP_WRITE
    n_res = counts[0]
    nxt = counts[1]
    n_v = 0
    for j in range(k):
        if j + EVENTS_AHEAD < k:
            prefetch(slot, np.uint64(scratch[j + EVENTS_AHEAD]))
        p = np.uint64(scratch[j])
        if slot[p] >= 0:
            nxt = slots.move(slot, slot_page, bits, levels, nxt, p, 0, 0)
            continue
        if n_res >= frames_max:
            victims[n_v] = slots.evict_least(slot, slot_page, bits, levels)[0]
            n_v += 1
        else:
            n_res += 1
        nxt = slots.place(slot, slot_page, bits, levels, nxt, p, 0)
    counts[0] = n_res
    counts[1] = nxt
    return n_v, k


def lru_victims(page: np.ndarray, op: np.ndarray, n_pages: int, budget: int) -> np.ndarray:
    """The pages exact LRU evicts, in order, for a trace starting with no page resident.

    Parameters
    ----------
    page : ndarray[int]
        Page index of each event, ``0 <= page < n_pages``.
    op : ndarray[uint8]
        Op of each event (:class:`cmmsim.tracer.schema.Op`); hints are skipped.
    n_pages : int
        Pages in the scenario.
    budget : int
        Host frames (>= 1).

    Returns
    -------
    ndarray[int32]
        One page index per eviction.
    """
    page = np.ascontiguousarray(page)
    op = np.ascontiguousarray(op, np.uint8)
    if budget < 1:
        raise ValueError(f"budget must be >= 1 frame, got {budget}")
    if page.shape != op.shape:
        raise ValueError("page and op must have the same length")
    if page.size and (page.min() < 0 or page.max() >= n_pages):
        raise ValueError(f"page indices must lie in [0, {n_pages})")
    frames = min(budget, n_pages)
    victims = np.empty(page.shape[0], np.int32)
    n_v, _ = walk_victims(
        page,
        op,
        *slots.new(n_pages, frames, 1),
        np.int64(frames),
        np.zeros(2, np.int64),
        victims,
        np.empty(page.shape[0], page.dtype),
        np.empty(page.shape[0], np.int32),
    )
    return victims[:n_v].copy()
