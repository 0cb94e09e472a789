"""Exact LRU at one budget by a marker in time: the victim is the page of an event.

A page's *slot* is the index of its last access in the trace (``last[p]``, -1:
never accessed), and a bitmap over the trace's events marks the live slots
(each page's newest access). Once the host's frames are full, the *marker*
holds the slot of the least recently used resident page: the page at depth B
of the LRU stack, as in :mod:`cmmsim.replay.onepass`. A fault evicts the page
of the event at the marker (``page[marker]``: the trace itself maps slots to
pages) and moves the marker to the next live slot, a forward scan of the
bitmap; a hit on the page at the marker moves it on likewise. Nothing else is
kept per frame: no list links, no slot window, no bit tree.

It gives the engine's exact-LRU replay (:func:`cmmsim.replay.engine.run`, the
same state machine, counters and samples, with or without a tier) bit for bit,
but needs every event of the trace in memory (the victim is read from the
trace), so a streamed replay keeps the time slots (:mod:`cmmsim.replay.kernels.slots`)
and the two-thread walk (:mod:`cmmsim.replay.lru_ahead`). Memory: an int32 slot
per page and a bit per event per budget.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from cmmsim.replay.kernels import tier as host_tier
from cmmsim.replay.kernels.guest_ranges import guest_of
from cmmsim.replay.kernels.prefetch import prefetch
from cmmsim.replay.kernels.scalars import SC_HAND, SC_RESIDENT, SC_SAMPLE
from cmmsim.replay.kernels.state_machine import host_state, reclaim
from cmmsim.replay.kernels.steps import accessed, ask_ahead, frame_passes, hinted, samples_due
from cmmsim.replay.states import (
    CHANGED,
    DIRTY,
    H_R,
    OP_WRITE,
)

__all__ = ["MAX_EVENTS", "live_words", "marker_body", "marker_budgets", "next_live"]

#: The most events a marker replay takes (slots are int32).
MAX_EVENTS = (1 << 31) - 1

_SIX = np.uint64(6)
_LOW6 = np.uint64(63)
_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
# How many live slots past the marker the next victims' state bytes are asked for.
_VICTIMS_AHEAD = 8


def live_words(n_events: int) -> int:
    """Words of the live-slot bitmap of a trace of ``n_events`` events (one spare)."""
    return n_events // 64 + 2


@nb.njit(cache=True, inline="always")
def next_live(live, t):
    """The first slot after ``t`` whose bit is set (there is one: the newest access)."""
    # Unsigned: no negative-index fix-up at each load (see cmmsim.replay.kernels.lru_list).
    s = np.uint64(t + 1)
    w = s >> _SIX
    bits = live[w] & (_ALL << (s & _LOW6))
    while bits == 0:
        w += _ONE
        bits = live[w]
    return np.int64(w << _SIX) + np.int64(trailing_zeros(bits))


@nb.njit(cache=True, nogil=True, _nrt=False)
def marker_body(
    page_all,
    chunk,
    i0,
    page_guest,
    ends,
    frames_max,
    honour,
    sample_at,
    state,
    cnt,
    res_g,
    mark_g,
    host,
    samples,
    last,
    live,
    tier,
    resident,
    marker,
    s,
):
    """Replay ``chunk`` (events ``i0 ..`` of ``page_all``, the whole trace's pages) at one
    budget of ``frames_max`` frames, exact LRU; returns (resident frames, marker, next
    sample) for the next chunk.

    ``marker`` is -1 until the frames first fill. The arrays are one budget's rows of
    :class:`cmmsim.replay.engine.EngineState` (``last``: its ``slot`` row, -1 at the
    start) and its ``live`` bitmap (:func:`live_words`, zeroed at the start). The
    event handling is the engine's (:func:`cmmsim.replay.engine._replay_body`); only
    the victim's choice differs.
    """
    n = chunk.page.shape[0]
    res_peak = host[0]
    res_sum = host[1]
    tiered = host_tier.capacity(tier) > 0
    ahead = np.int64(-1)  # the cursor ahead of the marker (none yet)
    for j in range(n):
        uj = np.uint64(j)
        ask_ahead(chunk.page, j, state, last, True, tiered, tier)
        s = samples_due(chunk.t_ns, uj, s, sample_at, state, page_guest, samples)
        i = i0 + j
        p = np.uint64(chunk.page[uj])
        g = chunk.guest[uj]
        o = chunk.op[uj]
        st = state[p]
        if o <= OP_WRITE:
            st = accessed(st, g, cnt)
            # p moves to the top of the stack: its old slot dies, slot i is the newest.
            tp = np.int64(last[p])
            last[p] = np.int32(i)
            if tp >= 0:
                live[np.uint64(tp) >> _SIX] &= ~(_ONE << (np.uint64(tp) & _LOW6))
            ui = np.uint64(i)
            live[ui >> _SIX] |= _ONE << (ui & _LOW6)
            if host_state(st) != H_R:
                gv = -1
                from_tier = host_tier.take_if_paged_out(tiered, tier, p, st)
                if resident >= frames_max:
                    # The least recently used resident page leaves; the next live
                    # slot's page is the least recent now.
                    v = np.uint64(page_all[np.uint64(marker)])
                    gv = guest_of(v, ends)
                    if tiered:
                        host_tier.page_out(v, gv, state, cnt, tier, ends)
                    else:
                        reclaim(v, gv, state, cnt)
                    marker = next_live(live, marker)
                    # A cursor runs a few live slots ahead of the marker: their
                    # pages are the next victims unless used first.
                    if ahead <= marker:
                        ahead = marker
                        for _ in range(_VICTIMS_AHEAD):
                            if ahead >= i:
                                break
                            ahead = next_live(live, ahead)
                    elif ahead < i:
                        ahead = next_live(live, ahead)
                    w = np.uint64(page_all[np.uint64(ahead)])
                    prefetch(state, w)
                    if tiered:
                        host_tier.prefetch_node(tier, w)
                    resident -= 1
                st = np.uint8(host_tier.page_in_from(from_tier, st, g, cnt))
                frame_passes(cnt, res_g, mark_g, gv, g, i)
                resident += 1
                if resident > res_peak:
                    res_peak = resident
                if marker < 0 and resident >= frames_max:
                    marker = next_live(live, -1)  # full: the oldest live slot
            elif tp == marker:
                # p was the least recent page: the next live slot's page is now.
                marker = next_live(live, tp)
            state[p] = np.uint8(st | o * np.uint8(DIRTY | CHANGED))
        elif (honour >> o) & 1:
            state[p] = hinted(st, o, g, cnt, tiered, tier, p)
        res_sum += resident
    host[0] = res_peak
    host[1] = res_sum
    return resident, marker, s


@nb.njit(cache=True, nogil=True, _nrt=False)
def _marker_budget(page_all, chunk, i0, page_guest, ends, frames, honour, sample_at, es, live, b):
    """One chunk at budget b (row b of ``es``, an :class:`cmmsim.replay.engine.EngineState`;
    the marker in its CLOCK hand, which exact LRU leaves unused)."""
    sc = es.sc[b]
    sc[SC_RESIDENT], sc[SC_HAND], sc[SC_SAMPLE] = marker_body(
        page_all,
        chunk,
        i0,
        page_guest,
        ends,
        frames[b],
        honour,
        sample_at,
        es.state[b],
        es.cnt[b],
        es.res_g[b],
        es.mark_g[b],
        es.host[b],
        es.samples[b],
        es.slot[b],
        live[b],
        es.tier[b],
        sc[SC_RESIDENT],
        sc[SC_HAND],
        sc[SC_SAMPLE],
    )


@nb.njit(cache=True, parallel=True, nogil=True, _nrt=False)
def marker_budgets(page_all, chunk, i0, page_guest, ends, frames, honour, sample_at, es, live):
    """One chunk of events (``chunk``, events ``i0 ..`` of the trace ``page_all``) at every
    budget of ``frames``, one budget per thread; ``live``: a bitmap row per budget."""
    for b in nb.prange(frames.shape[0]):
        # int64, not the prange index's own type: one signature (see cmmsim.replay.engine).
        _marker_budget(page_all, chunk, i0, page_guest, ends, frames, honour, sample_at, es, live, np.int64(b))
