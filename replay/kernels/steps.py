"""The steps of an event that every replay kernel of the engine takes alike: an access
counted and repaired, a frame passed between guests, a hint honoured.

The engine's kernel over time slots (:func:`cmmsim.replay.engine._replay_body`) and
the marker replay (:func:`cmmsim.replay.marker.marker_body`) differ only in how
they choose and keep their victims; these are the rest.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from cmmsim.replay.kernels import tier as host_tier
from cmmsim.replay.kernels.prefetch import EVENTS_AHEAD, prefetch
from cmmsim.replay.kernels.resident import count_states, peak, resident_delta
from cmmsim.replay.kernels.state_machine import hint_by_table
from cmmsim.replay.states import C_ACCESSES, C_CONTENT_LOST, C_HINTS, C_REPAIRS, G_U, GUEST_MASK, OP_WRITE

__all__ = ["accessed", "ask_ahead", "frame_passes", "hinted", "samples_due", "walk_prev"]


@nb.njit(cache=True, inline="always")
def accessed(st, g, cnt):
    """Guest g accesses a page in state ``st``: counted, and an unused page repaired
    (Ur -> Sr, Uz -> Sz: ``G_S`` is 0); returns the state."""
    cnt[g, C_ACCESSES] += 1
    # Without a branch: which pages the guest freed is a coin toss.
    unused = np.uint8((st & GUEST_MASK) == G_U)
    cnt[g, C_REPAIRS] += unused
    return st & ~(unused * np.uint8(GUEST_MASK))


@nb.njit(cache=True, inline="always")
def frame_passes(cnt, res_g, mark_g, gv, g, i):
    """A frame passes from guest gv (-1: a free frame) to guest g at event i. (Within
    one guest its resident count, hence its frame-time sum, is unchanged.)"""
    if gv != g:
        if gv >= 0:
            resident_delta(cnt, res_g, mark_g, gv, i, -1)
        resident_delta(cnt, res_g, mark_g, g, i, 1)
        peak(cnt, res_g, g)


@nb.njit(cache=True, inline="always")
def hinted(st, o, g, cnt, tiered, tier, p):
    """Guest g's hint ``o`` on page p in state ``st``, honoured: counted, and a copy it
    frees leaves the tier (``tiered``: the tier's capacity is > 0); returns the state."""
    cnt[g, C_HINTS] += 1
    new, lost = hint_by_table(st, o)
    cnt[g, C_CONTENT_LOST] += lost
    if tiered:
        host_tier.leave_after_hint(tier, p, st, new)
    return new


@nb.njit(cache=True, inline="always")
def ask_ahead(page, j, state, last, with_last, tiered, tier):
    """Ask the cache for the state byte, the slot (``with_last``: a replay that keeps
    its own ``last``) and (``tiered``) the tier links of the page ``EVENTS_AHEAD``
    events after event j of ``page`` (the marker replays')."""
    if j + EVENTS_AHEAD < page.shape[0]:
        q = np.uint64(page[np.uint64(j + EVENTS_AHEAD)])
        prefetch(state, q)
        if with_last:
            prefetch(last, q)
        if tiered:
            host_tier.prefetch_node(tier, q)


@nb.njit(cache=True, nogil=True, _nrt=False)
def walk_prev(page, op, last, i0, prev):
    """Each event's page's last access before it: ``prev[j]`` for event ``i0 + j`` of the
    trace (``page[j]``, ``op[j]``), -1 for a page not accessed yet. ``last`` (an int32
    per page, -1 at the start) is each page's last access so far, updated here.

    The marker replays need this slot at every event; it depends on the trace alone,
    so one walk serves every budget, and it can run a step ahead on a thread of its own.
    """
    n = page.shape[0]
    for j in range(n):
        if j + EVENTS_AHEAD < n:
            prefetch(last, np.uint64(page[np.uint64(j + EVENTS_AHEAD)]))
        p = np.uint64(page[np.uint64(j)])
        t = last[p]
        prev[j] = t
        # Without a branch: where the hints fall is a coin toss.
        last[p] = np.int32(i0 + j) if op[np.uint64(j)] <= OP_WRITE else t


@nb.njit(cache=True, inline="always")
def samples_due(t_ns, uj, s, sample_at, state, page_guest, samples):
    """Count the pages per state pair for every sample from ``s`` on that is due by
    event ``uj``'s time ``t_ns[uj]``; returns the next sample. The last sample is the
    final state, counted after the last event (``_replay_finish``), never here: it lies
    past the last event, unless that event is at the end of time (2^63 - 1 ns)."""
    while s < sample_at.shape[0] - 1 and t_ns[uj] >= sample_at[s]:
        count_states(state, page_guest, samples[s])
        s += 1
    return s
