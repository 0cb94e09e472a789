"""``opt-schedule``: an offline schedule whose I/O, writes counted, bounds the optimum from above.

``opt`` is a floor: the least number of costly refaults, no writes counted,
so no strategy does less I/O; but nothing says the floor can be reached.
This is a schedule an offline host can run: the page states and costs are
the engine's (DESIGN.md section 2, every hint honoured as in ``cmm``:
host reads, host writes of changed pages, discard faults and their guest
reads, zero fills), and its victims are the floor's: Belady's MIN on the
renamed access stream (:mod:`cmmsim.replay.strategies.opt`), where a page with no
costly next use goes first. Among those (their next uses are all "never"),
a page that leaves without a write goes before one that needs it: clean
before dirty, the highest page number first within each.

What it bounds. Its I/O is feasible, so the true offline optimum (least
reads plus writes over every victim choice, under the engine's rules) lies
between ``opt`` and this: ``opt <= optimum <= opt-schedule``. It reads
exactly when the floor does (same residency: a costly access it misses is
a host read or a discard fault's guest read), and writes besides; it may
also read where the floor counts a first access (a discarded page-cache
page the guest only ever read: the engine makes the guest re-read it).
It is not a bound on the strategies: one that evicts clean pages first
can write less than MIN's victims do and beat it (docs/costs.md). Finding
the optimum itself with writes is hard: caching where evicting a dirty
item costs more is NP-hard in general (Farach-Colton and Liberatore, "On
local register allocation", J. Algorithms 37, 2000).

Layers: :func:`_schedule_one` (numba, one budget; the victims' keys in bit
trees, :mod:`cmmsim.replay.kernels.bittree`; the page rules from
:mod:`cmmsim.replay.kernels.state_machine`), :func:`_schedule_budgets` (prange
over budgets), :func:`run`; :func:`reference` is the plain-Python twin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from cmmsim.replay.budgets import validated
from cmmsim.replay.kernels import bittree
from cmmsim.replay.kernels.guest_ranges import guest_ends_of, guest_of
from cmmsim.replay.kernels.resident import peak, resident_close, resident_delta
from cmmsim.replay.kernels.state_machine import (
    EVICT_COUNTER,
    hint,
    is_resident,
    page_in,
    reclaim,
    repaired,
)
from cmmsim.replay.result import without_states
from cmmsim.replay.states import (
    C_ACCESSES,
    C_CONTENT_LOST,
    C_HINTS,
    C_HOST_WRITES,
    C_REPAIRS,
    CHANGED,
    DIRTY,
    G_U,
    GUEST_MASK,
    INITIAL_HINTING,
    N_COUNTERS,
    OP_WRITE,
)
from cmmsim.replay.strategies import Strategy
from cmmsim.replay.strategies.opt import _gaps, _index_type, reference_next_uses
from cmmsim.replay.watch import reached, watched

_NEVER, _DEAD = -1, -2
#: Whether the host must write a page that leaves residency in this state (by state byte).
WRITES_ON_EVICT = (EVICT_COUNTER == C_HOST_WRITES).astype(np.uint8)


@dataclass(frozen=True)
class Params:
    pass


@nb.njit(cache=True, inline="always")
def _dead_add(st, p, clean_words, dirty_words, offsets):
    if WRITES_ON_EVICT[st]:
        bittree.add(dirty_words, offsets, p)
    else:
        bittree.add(clean_words, offsets, p)


@nb.njit(cache=True, inline="always")
def _dead_remove(st, p, clean_words, dirty_words, offsets):
    if WRITES_ON_EVICT[st]:
        bittree.remove(dirty_words, offsets, p)
    else:
        bittree.remove(clean_words, offsets, p)


@nb.njit(cache=True)
def _schedule_one(
    page,
    op,
    guest,
    nxt,
    frames,
    ends,
    cnt,
    host,
    res_g,
    mark_g,
    cur,
    state,
    pos_words,
    pos_offsets,
    clean_words,
    dirty_words,
    dead_offsets,
    done,
    slot,
    mask,
):
    # cur: a page's next costly use since its last access, or _DEAD (none), or
    # _NEVER (not yet accessed). Resident pages are keyed in three bit trees:
    # next-use positions (live pages), and dead pages by number, split by
    # whether evicting them needs a write. Residency is the page's state byte;
    # a dead resident page sits in the tree of its state, moved by hints.
    # Progress: the event index in done[slot] every mask + 1 events (cmmsim.replay.watch).
    resident = 0
    res_sum = host[1]
    res_peak = host[0]
    n = page.shape[0]
    for i in range(n):
        if (i & mask) == 0 and reached(done, slot, i):
            break
        p = np.uint64(page[i])  # unsigned: no negative-index fix-up (cmmsim.replay.kernels.lru_list)
        g = guest[i]
        o = op[i]
        st = state[p]
        if o > OP_WRITE:
            cnt[g, C_HINTS] += 1
            new, lost = hint(st, o)
            cnt[g, C_CONTENT_LOST] += lost
            if is_resident(st) and cur[p] == _DEAD and WRITES_ON_EVICT[st] != WRITES_ON_EVICT[new]:
                _dead_remove(st, p, clean_words, dirty_words, dead_offsets)
                _dead_add(new, p, clean_words, dirty_words, dead_offsets)
            state[p] = new
            res_sum += resident
            continue
        cnt[g, C_ACCESSES] += 1
        if is_resident(st):
            if cur[p] >= 0:
                bittree.remove(pos_words, pos_offsets, cur[p])
            else:
                _dead_remove(st, p, clean_words, dirty_words, dead_offsets)
        if (st & GUEST_MASK) == G_U:
            cnt[g, C_REPAIRS] += 1
            st = repaired(st)
        if not is_resident(st):
            if resident >= frames:
                v = bittree.maximum(clean_words, dead_offsets)
                if v >= 0:
                    bittree.remove(clean_words, dead_offsets, v)
                else:
                    v = bittree.maximum(dirty_words, dead_offsets)
                    if v >= 0:
                        bittree.remove(dirty_words, dead_offsets, v)
                    else:
                        j = bittree.maximum(pos_words, pos_offsets)
                        bittree.remove(pos_words, pos_offsets, j)
                        v = page[j]
                gv = guest_of(v, ends)
                reclaim(v, gv, state, cnt)
                resident_delta(cnt, res_g, mark_g, gv, i, -1)
                resident -= 1
            st = page_in(st, g, cnt)
            resident_delta(cnt, res_g, mark_g, g, i, 1)
            peak(cnt, res_g, g)
            resident += 1
            if resident > res_peak:
                res_peak = resident
        if o == OP_WRITE:
            st |= DIRTY | CHANGED
        state[p] = st
        if nxt[i] >= 0:
            cur[p] = nxt[i]
            bittree.add(pos_words, pos_offsets, nxt[i])
        else:
            cur[p] = _DEAD
            _dead_add(st, p, clean_words, dirty_words, dead_offsets)
        res_sum += resident
    host[0] = res_peak
    host[1] = res_sum
    resident_close(cnt, res_g, mark_g, n)


@nb.njit(cache=True, parallel=True, nogil=True)
def _schedule_budgets(
    page,
    op,
    guest,
    nxt,
    frames,
    ends,
    cnt,
    host,
    res_g,
    mark_g,
    cur,
    state,
    pos_words,
    pos_offsets,
    clean_words,
    dirty_words,
    dead_offsets,
    done,
    mask,
):
    for b in nb.prange(frames.shape[0]):
        _schedule_one(
            page,
            op,
            guest,
            nxt,
            frames[b],
            ends,
            cnt[b],
            host[b],
            res_g[b],
            mark_g[b],
            cur[b],
            state[b],
            pos_words[b],
            pos_offsets,
            clean_words[b],
            dirty_words[b],
            dead_offsets,
            done,
            b,
            mask,
        )


def run(scenario, budgets, params, sample_at=None, keep_final=False, on_events=None):
    """The schedule at every budget (no state samples; final states when asked);
    ``on_events``: progress of the budgets' passes (:func:`cmmsim.replay.watch.watched`)."""
    b = validated(budgets, scenario.n_pages)
    nb_, ng, n_pages = len(b), scenario.n_guests, scenario.n_pages
    index = _index_type(len(scenario.page), n_pages)
    nxt = _gaps(scenario.page, scenario.op, n_pages, np.zeros(0, index), nb.get_num_threads())
    cnt = np.zeros((nb_, ng, N_COUNTERS), np.int64)
    host = np.zeros((nb_, 2), np.int64)
    state = np.full((nb_, n_pages), INITIAL_HINTING, np.uint8)
    pos_offsets = bittree.level_offsets(len(scenario.page))
    dead_offsets = bittree.level_offsets(n_pages)
    args = (
        scenario.page,
        scenario.op,
        scenario.guest,
        nxt,
        b.frames,
        guest_ends_of(scenario.page_guest, ng),
        cnt,
        host,
        np.zeros((nb_, ng), np.int64),
        np.zeros((nb_, ng), np.int64),
        np.full((nb_, n_pages), _NEVER, index),
        state,
        np.zeros((nb_, pos_offsets[-1]), np.uint64),
        pos_offsets,
        np.zeros((nb_, dead_offsets[-1]), np.uint64),
        np.zeros((nb_, dead_offsets[-1]), np.uint64),
        dead_offsets,
    )
    n = scenario.n_events
    watched(lambda done, mask: _schedule_budgets(*args, done, mask), nb_, n, on_events)
    final = state if keep_final else np.zeros((0, n_pages), np.uint8)
    return without_states(b.pages, cnt, host, final, ng)


def reference(scenario, budget: int, params):
    """Plain-Python twin: the engine's twin with every hint honoured, its victim
    chosen by scanning the resident pages for the floor's order."""
    from cmmsim.replay.reference import HINTS_ALL, ReferenceHost

    next_use = reference_next_uses(scenario)

    class ScheduleHost(ReferenceHost):
        key: dict[int, int | None]  # a resident page's next costly use, None: none

        def pick_victim(self):
            def order(q):
                k = self.key[q]
                if k is not None:
                    return (0, k)  # farthest costly next use last of all
                pg = self.pages[q]
                writes = (pg.guest == "S" or (pg.guest == "P" and pg.dirty)) and pg.changed
                return (1 if writes else 2, q)

            return max(self.lru, key=order), None

    host = ScheduleHost(scenario.page_guest, budget, HINTS_ALL, "lru")
    host.key = {}
    from cmmsim.tracer.schema import Op

    for i in range(scenario.n_events):
        q, o = int(scenario.page[i]), Op(int(scenario.op[i]))
        if o in (Op.READ, Op.WRITE):
            host.access(q, o == Op.WRITE)
            host.key[q] = next_use[i]
        else:
            host.hint(q, o)
        host.host_sum += host.resident
        for g, res in enumerate(host.resident_of_guest):
            host.counters[g]["sum_resident_pages"] += res
    from cmmsim.replay.reference import ReferenceResult
    from cmmsim.replay.states import COUNTERS

    counters = np.array([[c[k] for k in COUNTERS] for c in host.counters], np.int64)
    counters = counters.reshape(len(host.counters), N_COUNTERS)
    final = np.array([pg.byte() for pg in host.pages], np.uint8)
    return ReferenceResult(counters, host.host_peak, host.host_sum, final)


STRATEGY = Strategy(
    name="opt-schedule",
    params=Params,
    runner=run,
    reference=reference,
    summary="offline schedule: the floor's victims, clean first, writes counted; bounds the optimum from above",
    offline=True,
    upper_bound=True,
)
