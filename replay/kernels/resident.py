"""Resident frames per guest: the peak and the event-weighted sum (for the mean); pages
per state pair (the state samples).

Each guest's count changes only at the events where it gains or loses a frame;
the sum of its frames over events is kept as areas between those marks
(``mark[g]``: the event of the last change), closed at the end of the trace.
"""

from __future__ import annotations

import numba as nb

from cmmsim.replay.kernels.state_machine import reclaim
from cmmsim.replay.states import C_PEAK, C_SUM, GUEST_MASK, HOST_MASK, HOST_SHIFT, N_HOST_STATES, PAIR_OF


@nb.njit(cache=True, inline="always")
def resident_delta(cnt, res_g, mark, g, i, delta):
    """Change guest g's resident frames at event i, keeping the event-weighted sum."""
    cnt[g, C_SUM] += res_g[g] * (i - mark[g])
    mark[g] = i
    res_g[g] += delta


@nb.njit(cache=True, inline="always")
def peak(cnt, res_g, g):
    """Record guest g's resident frames as its peak if they are."""
    if res_g[g] > cnt[g, C_PEAK]:
        cnt[g, C_PEAK] = res_g[g]


@nb.njit(cache=True)
def resident_close(cnt, res_g, mark, n_events):
    """Finish the event-weighted sums at the end of the trace."""
    for g in range(res_g.shape[0]):
        cnt[g, C_SUM] += res_g[g] * (n_events - mark[g])


@nb.njit(cache=True)
def drop_victim(v, gv, state, cnt, res_g, mark, i):
    """The host reclaims frame v (:func:`cmmsim.replay.kernels.state_machine.reclaim`), and
    v's guest gv loses the frame at event i."""
    reclaim(v, gv, state, cnt)
    resident_delta(cnt, res_g, mark, gv, i, -1)


@nb.njit(cache=True)
def count_states(state, page_guest, out):
    """Add each page to its guest's count of its (guest, host) state pair (``out[g, pair]``)."""
    for p in range(state.shape[0]):
        st = state[p]
        k = PAIR_OF[(st & GUEST_MASK) * N_HOST_STATES + ((st & HOST_MASK) >> HOST_SHIFT)]
        if k >= 0:
            out[page_guest[p], k] += 1
