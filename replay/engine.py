"""The replay engine: page state machines under a host memory budget.

Three layers, as in STUMPY:

* ``_replay_chunk`` (numba ``@njit``): a run of events at one budget, resumable
  (all its state is in arrays, so a trace can stream through it in chunks);
* ``_replay_budgets_chunk`` (``parallel=True``): the same for many budgets,
  one budget per thread; ``_replay_given_chunk`` and
  :mod:`replay.lru_ahead`: one exact-LRU budget on two threads (the LRU walk
  ahead of the state machine, :func:`replay_chunk` chooses);
* :func:`run` (plain Python): validates the request, allocates the state
  (:func:`alloc_state`) and shapes the output.

The guest/host state machine is DESIGN.md section 2; the per-page state
byte is described in :mod:`replay.states`. Victims are chosen by one of
three orders:

``ORDER_LRU``
    exact LRU over all resident frames (intrusive doubly-linked list);
``ORDER_CLOCK``
    CLOCK (second chance) over a frame table;
``ORDER_CLASS``
    exact LRU inside reclaim classes, cheapest class first (U, then V and
    clean P, then the rest): a min-heap keyed ``class << 56 | last access``.
    The heap is lazy: every resident page has at least one entry whose key
    is <= its current key. An access only raises a page's key (accesses
    never lower its class), so it costs no heap work; a hint that lowers the
    class pushes a new entry. A popped entry whose page now has a larger key
    is pushed again with that key, one with a smaller key is stale: what
    comes out first with its current key is exactly the cheapest-class LRU
    page. Hot pages cost a re-push once per trip through the heap, not per
    access.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numba as nb
import numpy as np

from replay.guest_ranges import guest_ends_of, guest_of
from replay.lru_ahead import (
    _list_evict_lru,
    _list_push_mru,
    _list_touch,
    _lru_victims,
)
from replay.prefetch import EVENTS_AHEAD, prefetch
from replay.states import (
    C_ACCESSES,
    C_CONTENT_LOST,
    C_DISCARD_FAULTS,
    C_DISCARDS,
    C_GUEST_READS,
    C_HINTS,
    C_HOST_READS,
    C_HOST_WRITES,
    C_PEAK,
    C_REPAIRS,
    C_SUM,
    C_ZERO_FILLS,
    CHANGED,
    CLASS_CHEAP,
    CLASS_REST,
    CLASS_UNUSED,
    COPY,
    DIRTY,
    G_P,
    G_S,
    G_U,
    G_V,
    GUEST_MASK,
    H_P,
    H_R,
    H_Z,
    HONOUR_NONE,
    HOST_MASK,
    HOST_SHIFT,
    N_COUNTERS,
    OP_SET_POT_VOLATILE,
    OP_SET_STABLE,
    OP_SET_STABLE_IF_RESIDENT,
    OP_SET_UNUSED,
    OP_SET_VOLATILE,
    OP_WRITE,
    PAIR_OF,
    PAIRS,
    REF,
)

#: Bumped whenever a change to the engine can change a result.
ENGINE_VERSION = 2

ORDER_LRU, ORDER_CLOCK, ORDER_CLASS = 0, 1, 2
ORDERS = {"lru": ORDER_LRU, "clock": ORDER_CLOCK, "state-priority": ORDER_CLASS}
# Internal: exact LRU with the victims computed ahead (replay.lru_ahead) and
# passed in, the state machine runs alone.
_ORDER_GIVEN = 3
_PREFETCH_VICTIMS = 8  # evictions ahead (measured: 4-16 within noise)

_NPAIRS = len(PAIRS)
_PAIR_OF = PAIR_OF
_CLASS_SHIFT = 56
_STAMP_MASK = (1 << _CLASS_SHIFT) - 1
_NOT_GUEST = 0xFF ^ GUEST_MASK
_NOT_HOST = 0xFF ^ HOST_MASK


# -- the state machine (pure functions of the state byte) ----------------------------------------
@nb.njit(cache=True, inline="always")
def _with(st, guest, host):
    return (st & _NOT_GUEST & _NOT_HOST) | guest | (host << HOST_SHIFT)


@nb.njit(cache=True)
def _hint(st, o):
    """State after hint ``o``; second value 1 when volatile content was lost."""
    g = st & GUEST_MASK
    h = (st & HOST_MASK) >> HOST_SHIFT
    if o == OP_SET_STABLE:
        if g == G_S:
            return st, 0
        lost = 1 if (g == G_V and h == H_Z) else 0
        return _with(st, G_S, h), lost
    if o == OP_SET_UNUSED:
        if g == G_U:
            return st, 0
        # The content is garbage now: the host may drop it and its swap slot.
        st = st & ~(DIRTY | COPY)
        return _with(st, G_U, H_R if h == H_R else H_Z), 0
    if o == OP_SET_VOLATILE or o == OP_SET_POT_VOLATILE:
        # The guest only marks pages in sync with their backing: dirty clears.
        st = st & ~DIRTY
        if h == H_R:
            if o == OP_SET_VOLATILE:
                return _with(st, G_V, H_R), 0
            return _with(st, G_P, H_R), 0
        # Not resident: the preserved copy (if any) is freed, the page is Vz.
        return _with(st & ~COPY, G_V, H_Z), 0
    if o == OP_SET_STABLE_IF_RESIDENT:
        if h == H_R:
            return _with(st, G_S, H_R), 0
        return st, 0
    return st, 0


@nb.njit(cache=True)
def _evict(st):
    """State after the host reclaims the frame; second value 1 if it cost a host write."""
    g = st & GUEST_MASK
    st = st & ~REF
    if g == G_P:
        if st & DIRTY:
            g = G_S
        else:
            return _with(st & ~(CHANGED | COPY), G_V, H_Z), 0
    if g == G_S:
        if st & CHANGED:
            return _with((st & ~CHANGED) | COPY, G_S, H_P), 1
        if st & COPY:
            return _with(st, G_S, H_P), 0
        return _with(st, G_S, H_Z), 0
    return _with(st & ~(CHANGED | COPY), g, H_Z), 0


@nb.njit(cache=True, inline="always")
def _reclaim_class(st):
    g = st & GUEST_MASK
    if g == G_U:
        return CLASS_UNUSED
    if g == G_V or (g == G_P and not (st & DIRTY)):
        return CLASS_CHEAP
    return CLASS_REST


# -- lazy min-heap of (key, page) -----------------------------------------------------------------
@nb.njit(cache=True)
def _sift_up(keys, pages, i):
    k = keys[i]
    p = pages[i]
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= k:
            break
        keys[i] = keys[parent]
        pages[i] = pages[parent]
        i = parent
    keys[i] = k
    pages[i] = p


@nb.njit(cache=True)
def _sift_down(keys, pages, i, size):
    k = keys[i]
    p = pages[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and keys[c + 1] < keys[c]:
            c += 1
        if keys[c] >= k:
            break
        keys[i] = keys[c]
        pages[i] = pages[c]
        i = c
    keys[i] = k
    pages[i] = p


@nb.njit(cache=True, inline="always")
def _heap_pop(keys, pages, size):
    """Remove the least entry: (its key, its page, the new size)."""
    key = keys[0]
    p = pages[0]
    size -= 1
    keys[0] = keys[size]
    pages[0] = pages[size]
    _sift_down(keys, pages, 0, size)
    return key, p, size


@nb.njit(cache=True)
def _heap_key(st, stamp):
    return (np.int64(_reclaim_class(st)) << _CLASS_SHIFT) | stamp


@nb.njit(cache=True, inline="always")
def _is_resident(st):
    return ((st & HOST_MASK) >> HOST_SHIFT) == H_R


@nb.njit(cache=True)
def _heap_push(keys, pages, size, key, p, state, stamp):
    if size == keys.shape[0]:
        # Full of stale entries: one entry per resident page, with its current
        # key, then re-heapify.
        j = 0
        for i in range(size):
            q = pages[i]
            if _is_resident(state[q]) and not (state[q] & REF):
                state[q] |= REF
                keys[j] = _heap_key(state[q], stamp[q])
                pages[j] = q
                j += 1
        for i in range(j):
            state[pages[i]] &= ~REF
        size = j
        for i in range(size // 2 - 1, -1, -1):
            _sift_down(keys, pages, i, size)
    keys[size] = key
    pages[size] = p
    _sift_up(keys, pages, size)
    return size + 1


# -- resident-frame accounting shared by every kernel --------------------------------------------
@nb.njit(cache=True, inline="always")
def _resident_delta(cnt, res_g, mark, g, i, delta):
    """Change guest g's resident frames at event i, keeping the event-weighted sum."""
    cnt[g, C_SUM] += res_g[g] * (i - mark[g])
    mark[g] = i
    res_g[g] += delta


@nb.njit(cache=True, inline="always")
def _peak(cnt, res_g, g):
    if res_g[g] > cnt[g, C_PEAK]:
        cnt[g, C_PEAK] = res_g[g]


@nb.njit(cache=True)
def _resident_close(cnt, res_g, mark, n_events):
    """Finish the event-weighted sums at the end of the trace."""
    for g in range(res_g.shape[0]):
        cnt[g, C_SUM] += res_g[g] * (n_events - mark[g])


@nb.njit(cache=True)
def _page_in_rule(st):
    """State of a non-resident page after the host gives it a frame, and the
    counters that pays (the second -1 when none)."""
    gs = st & GUEST_MASK
    h = (st & HOST_MASK) >> HOST_SHIFT
    if h == H_P:
        return _with(st & ~CHANGED, G_S, H_R), C_HOST_READS, -1
    if gs == G_V:
        # Discard fault: the guest recreates the page from its own backing
        # (one guest read) and keeps it volatile.
        return _with(st | CHANGED, G_V, H_R), C_DISCARD_FAULTS, C_GUEST_READS
    return _with(st & ~(CHANGED | COPY), gs, H_R), C_ZERO_FILLS, -1


def _transition_tables():
    """:func:`_evict` and :func:`_page_in_rule` for every state byte, as tables.

    An eviction or a page-in then indexes a table instead of branching on the
    state: the victims' states come in no order a branch predictor can learn.
    (The rules stay the definition; a test holds the tables to them.)
    """
    # Counter indices unsigned: no negative-index fix-up (see replay.lru_ahead).
    evict_state = np.empty(256, np.uint8)
    evict_counter = np.empty(256, np.uint64)
    in_state = np.empty(256, np.uint8)
    in_counter = np.empty((256, 2), np.uint64)
    in_second = np.empty(256, np.int64)
    for st in range(256):
        new, wrote = _evict(np.uint8(st))
        evict_state[st] = new
        evict_counter[st] = C_HOST_WRITES if wrote else C_DISCARDS
        new, first, second = _page_in_rule(np.uint8(st))
        in_state[st] = new
        in_counter[st] = first, max(second, 0)
        in_second[st] = second >= 0  # the second counter's increment
    return evict_state, evict_counter, in_state, in_counter, in_second


(_EVICT_STATE, _EVICT_COUNTER, _PAGE_IN_STATE, _PAGE_IN_COUNTER,
 _PAGE_IN_SECOND) = _transition_tables()


@nb.njit(cache=True)
def _reclaim(v, gv, state, cnt):
    """The host reclaims frame v (of guest gv): a write or a no-I/O discard, by its state."""
    v = np.uint64(v)
    sv = state[v]
    state[v] = _EVICT_STATE[sv]
    cnt[gv, _EVICT_COUNTER[sv]] += 1


@nb.njit(cache=True)
def _drop_victim(v, gv, state, cnt, res_g, mark, i):
    """:func:`_reclaim`, and v's guest gv loses the frame."""
    _reclaim(v, gv, state, cnt)
    _resident_delta(cnt, res_g, mark, gv, i, -1)


@nb.njit(cache=True)
def _page_in(st, g, cnt):
    """State of a non-resident page after the host gives it a frame, with what it
    cost (:func:`_page_in_rule`, from its table)."""
    cnt[g, _PAGE_IN_COUNTER[st, 0]] += 1
    cnt[g, _PAGE_IN_COUNTER[st, 1]] += _PAGE_IN_SECOND[st]
    return _PAGE_IN_STATE[st]


_NO_VICTIMS = np.zeros(0, np.int32)


# -- the kernel -------------------------------------------------------------------------------------
@nb.njit(cache=True)
def _count_states(state, page_guest, out):
    for p in range(state.shape[0]):
        st = state[p]
        k = _PAIR_OF[(st & GUEST_MASK) * 3 + ((st & HOST_MASK) >> HOST_SHIFT)]
        if k >= 0:
            out[page_guest[p], k] += 1


# Kernel state of one budget between chunks: the arrays below plus ``sc``, the
# scalars (resident frames, CLOCK hand, heap size, next sample, and the
# victims the last call took from ``victims`` under _ORDER_GIVEN).
_SC_RESIDENT, _SC_HAND, _SC_HSIZE, _SC_SAMPLE, _SC_TAKEN = range(5)


@nb.njit(cache=True)
def _sizes(n_pages, budget, order):
    """(list nodes, CLOCK frames, heap entries, stamps) one budget's state needs."""
    frames_max = min(budget, n_pages)
    return (n_pages + 1 if order == ORDER_LRU else 1,
            frames_max if order == ORDER_CLOCK else 0,
            2 * frames_max + 64 if order == ORDER_CLASS else 0,
            n_pages if order == ORDER_CLASS else 0)


@nb.njit(cache=True)
def _init_links(links, n_list):
    # -1: not resident (only read by replay.lru_ahead, which has no state bytes).
    links[:] = -1
    head = n_list - 1
    links[2 * head] = head
    links[2 * head + 1] = head


@nb.njit(cache=True, inline="always")
def _replay_chunk(t_ns, page, op, guest, i0, page_guest, ends, budget, honour, order, sample_at,
                  state, cnt, res_g, mark_g, host, samples, links, frames, stamp, hkeys, hpages,
                  sc, victims, acc_pos):
    """Replay events ``i0 ..`` (global indices) at one budget, updating the state in place.

    Under ``_ORDER_GIVEN`` the k-th eviction of the call takes ``victims[k]``.
    ``ends``: one past each guest's last page (:func:`replay.guest_ranges.guest_ends_of`).
    """
    n_pages = page_guest.shape[0]
    frames_max = min(budget, n_pages)
    n_samples = sample_at.shape[0]
    head = (n_pages + 1 if order == ORDER_LRU else 1) - 1
    resident = sc[_SC_RESIDENT]
    hand = sc[_SC_HAND]
    hsize = sc[_SC_HSIZE]
    s = sc[_SC_SAMPLE]
    taken = 0
    # Locals, not host[]: numba cannot keep an array element in a register
    # across the loop's other array stores.
    res_sum = host[1]
    res_peak = host[0]
    n = page.shape[0]
    # acc_pos None: every event; else only those (numba compiles each case
    # apart and drops the other's branches: the every-event loop pays nothing).
    if acc_pos is None:
        n_iter = n
    else:
        n_iter = acc_pos.shape[0]
    jp = -1  # the event before
    for k in range(n_iter):
        if acc_pos is None:
            j = k
            ahead = k + EVENTS_AHEAD
        else:
            j = acc_pos[k]
            ahead = acc_pos[k + EVENTS_AHEAD] if k + EVENTS_AHEAD < n_iter else n
            # The events skipped since the one before (hints that change
            # nothing here) held the same frames.
            res_sum += resident * (j - jp - 1)
            jp = j
        i = i0 + j
        # Indices read from arrays are signed; unsigned copies spare numba's
        # negative-index fix-up at every use (see replay.lru_ahead).
        uj = np.uint64(j)
        if order == _ORDER_GIVEN and ahead < n:
            # The pages a few dozen events on are known: ask for their state
            # bytes now (replay.prefetch; the victims' at each eviction, below).
            prefetch(state, np.uint64(page[np.uint64(ahead)]))
        while s < n_samples and t_ns[uj] >= sample_at[s]:
            _count_states(state, page_guest, samples[s])
            s += 1
        p = np.uint64(page[uj])
        g = guest[uj]
        o = op[uj]
        st = state[p]
        if o <= OP_WRITE:
            cnt[g, C_ACCESSES] += 1
            if (st & GUEST_MASK) == G_U:
                # Access to an unused page: a protocol violation, repaired by
                # an implicit set stable (Ur -> Sr, Uz -> Sz).
                cnt[g, C_REPAIRS] += 1
                st = _with(st, G_S, (st & HOST_MASK) >> HOST_SHIFT)
            h = (st & HOST_MASK) >> HOST_SHIFT
            if h != H_R:
                frame = -1
                gv = -1  # the victim's guest, if a frame is reclaimed
                if resident >= frames_max:
                    # Reclaim one frame first: resident never exceeds the budget.
                    if order == ORDER_LRU:
                        v = _list_evict_lru(links, head)
                    elif order == _ORDER_GIVEN:
                        v = victims[np.uint64(taken)]
                        taken += 1
                        if taken + _PREFETCH_VICTIMS < victims.shape[0]:
                            w = victims[np.uint64(taken + _PREFETCH_VICTIMS)]
                            prefetch(state, np.uint64(w))
                    elif order == ORDER_CLOCK:
                        while state[frames[hand]] & REF:
                            state[frames[hand]] &= ~REF
                            hand += 1
                            if hand == frames_max:
                                hand = 0
                        frame = hand
                        v = frames[frame]
                    else:
                        while True:
                            key, v, hsize = _heap_pop(hkeys, hpages, hsize)
                            if not _is_resident(state[v]):
                                continue
                            cur = _heap_key(state[v], stamp[v])
                            if cur == key:
                                break
                            if cur > key:
                                # Used (or promoted) since this entry: file it anew.
                                hsize = _heap_push(hkeys, hpages, hsize, cur, v, state, stamp)
                    # The victim's guest from the guests' page ranges, not
                    # page_guest: a load at every eviction (host-lru 98 -> 102 M
                    # events/s on the bench stream).
                    gv = guest_of(v, ends)
                    _reclaim(v, gv, state, cnt)
                    resident -= 1
                elif order == ORDER_CLOCK:
                    frame = resident
                st = _page_in(st, g, cnt)
                if gv != g:
                    # The frame passes from gv (if any) to g. (Within one guest its
                    # resident count, hence its frame-time sum, is unchanged.)
                    if gv >= 0:
                        _resident_delta(cnt, res_g, mark_g, gv, i, -1)
                    _resident_delta(cnt, res_g, mark_g, g, i, 1)
                    _peak(cnt, res_g, g)
                resident += 1
                if resident > res_peak:
                    res_peak = resident
                if order == ORDER_LRU:
                    _list_push_mru(links, head, p)
                elif order == ORDER_CLOCK:
                    frames[frame] = p
                    hand = frame + 1
                    if hand == frames_max:
                        hand = 0
            elif order == ORDER_LRU:
                _list_touch(links, head, p)
            elif order == ORDER_CLOCK:
                st |= REF
            if o == OP_WRITE:
                st |= DIRTY | CHANGED
            state[p] = st
            if order == ORDER_CLASS:
                stamp[p] = i
                if h != H_R:
                    hsize = _heap_push(hkeys, hpages, hsize, _heap_key(st, i), p, state, stamp)
        elif (honour >> o) & 1:
            cnt[g, C_HINTS] += 1
            new, lost = _hint(st, o)
            cnt[g, C_CONTENT_LOST] += lost
            state[p] = new
            if (order == ORDER_CLASS and _is_resident(new)
                    and _reclaim_class(new) < _reclaim_class(st)):
                hsize = _heap_push(hkeys, hpages, hsize, _heap_key(new, stamp[p]), p, state,
                                   stamp)
        res_sum += resident
    if acc_pos is not None:
        res_sum += resident * (n - 1 - jp)
    host[0] = res_peak
    host[1] = res_sum
    sc[_SC_RESIDENT] = resident
    sc[_SC_HAND] = hand
    sc[_SC_HSIZE] = hsize
    sc[_SC_SAMPLE] = s
    sc[_SC_TAKEN] = taken


@nb.njit(cache=True)
def _replay_finish(state, page_guest, samples, cnt, res_g, mark_g, sc, n_events):
    """Samples due after the last event, and the event-weighted sums."""
    while sc[_SC_SAMPLE] < samples.shape[0]:
        _count_states(state, page_guest, samples[sc[_SC_SAMPLE]])
        sc[_SC_SAMPLE] += 1
    _resident_close(cnt, res_g, mark_g, n_events)


# No reference counting in the replay kernel (_nrt=False; it allocates
# nothing): numba would otherwise incref and decref the arrays passed to each
# helper call (_reclaim, _page_in, _resident_delta, the list and heap
# helpers) with atomic operations, per event. The arrays come from
# alloc_state, the caller keeps them alive.
@nb.njit(cache=True, parallel=True, nogil=True, _nrt=False)
def _replay_budgets_chunk(t_ns, page, op, guest, i0, page_guest, ends, budgets, honour, order,
                          sample_at, state, cnt, res_g, mark_g, host, samples, links, frames,
                          stamp, hkeys, hpages, sc, victims):
    """One chunk of events for every budget (row ``b`` of each state array is budget ``b``)."""
    for b in nb.prange(budgets.shape[0]):
        n_list, n_frames, n_heap, n_stamp = _sizes(page_guest.shape[0], budgets[b], order)
        _replay_chunk(t_ns, page, op, guest, i0, page_guest, ends, budgets[b], honour, order,
                      sample_at, state[b], cnt[b], res_g[b], mark_g[b], host[b], samples[b],
                      links[b, :2 * n_list], frames[b, :n_frames], stamp[b, :n_stamp],
                      hkeys[b, :n_heap], hpages[b, :n_heap], sc[b], victims, None)


# The state machine's side of the two-thread replay: one budget, called
# from the thread that runs it (a parallel region here would launch numba's
# worker threads beside the LRU walker's and they would take turns on two cores).
@nb.njit(cache=True, nogil=True, _nrt=False)
def _replay_given_chunk(t_ns, page, op, guest, i0, page_guest, ends, budgets, honour, sample_at,
                        state, cnt, res_g, mark_g, host, samples, links, frames, stamp, hkeys,
                        hpages, sc, victims, b, acc_pos):
    """One chunk of events at budget b under _ORDER_GIVEN (the list arrays go unused);
    only the events at ``acc_pos`` unless it is None (for when no hint counts)."""
    _replay_chunk(t_ns, page, op, guest, i0, page_guest, ends, budgets[b], honour, _ORDER_GIVEN,
                  sample_at, state[b], cnt[b], res_g[b], mark_g[b], host[b], samples[b],
                  links[b, :2], frames[b, :0], stamp[b, :0], hkeys[b, :0], hpages[b, :0], sc[b],
                  victims, acc_pos)


class EngineState(NamedTuple):
    """Everything a replay at several budgets keeps between chunks (row b: budget b)."""

    state: np.ndarray
    cnt: np.ndarray
    res_g: np.ndarray
    mark_g: np.ndarray
    host: np.ndarray
    samples: np.ndarray
    links: np.ndarray
    frames: np.ndarray
    stamp: np.ndarray
    hkeys: np.ndarray
    hpages: np.ndarray
    sc: np.ndarray


def alloc_state(n_pages: int, n_guests: int, budgets: np.ndarray, order: int, initial: int,
                n_samples: int) -> EngineState:
    """Fresh engine state for ``budgets`` (frames) over ``n_pages`` pages."""
    nb_ = len(budgets)
    sizes = [_sizes(n_pages, int(x), order) for x in budgets]
    wide = [max(s[k] for s in sizes) for k in range(4)]
    links = np.empty((nb_, 2 * wide[0]), np.int32)
    for k, s in enumerate(sizes):
        _init_links(links[k], s[0])
    return EngineState(
        state=np.full((nb_, n_pages), initial, np.uint8),
        cnt=np.zeros((nb_, n_guests, N_COUNTERS), np.int64),
        res_g=np.zeros((nb_, n_guests), np.int64),
        mark_g=np.zeros((nb_, n_guests), np.int64),
        host=np.zeros((nb_, 2), np.int64),
        samples=np.zeros((nb_, n_samples, n_guests, _NPAIRS), np.int64),
        links=links,
        frames=np.empty((nb_, wide[1]), np.int32),
        stamp=np.zeros((nb_, wide[3]), np.int64),
        hkeys=np.empty((nb_, wide[2]), np.int64),
        hpages=np.empty((nb_, wide[2]), np.int32),
        sc=np.zeros((nb_, 5), np.int64),
    )


#: Events per step of the two-thread replay (victims of one step are computed
#: while the state machine runs the previous one): about an eighth of the
#: chunk, within these bounds (a hand-over costs tens of microseconds).
PIPELINE_STEP_MIN, PIPELINE_STEP_MAX = 1 << 16, 1 << 20
_PIPELINE_BUFFERS = 3


def replay_chunk(es: EngineState, t_ns, page, op, guest, i0: int, page_guest, budgets,
                 honour: int, order: int, sample_at, *, pipeline: bool | None = None,
                 step: int | None = None) -> None:
    """Replay events ``i0 ..`` (global indices) at every budget, updating ``es`` in place.

    Under exact LRU, with at least two steps of events, and numba running
    exactly two threads (or more threads but one budget), each budget in turn
    runs on two threads (``pipeline=None``; True or False forces the choice):
    one walks the LRU list ahead (:mod:`replay.lru_ahead`), the other runs the
    state machine a step (``step`` events) behind it. On two cores that beats
    two budgets side by side (measured: 0.46 s per budget against 0.70 s on
    the bench stream), the two loops being leaner apart than fused; with more
    threads than two, the budgets run side by side instead. Both ways give
    the same integers and leave the same state, so they can alternate between
    the chunks of a stream.
    """
    if step is None:
        step = min(PIPELINE_STEP_MAX, max(PIPELINE_STEP_MIN, len(page) // 8))
    if pipeline is None:
        threads = nb.get_num_threads()
        pipeline = (order == ORDER_LRU and len(page) >= 2 * step
                    and (threads == 2 or (threads > 2 and len(budgets) == 1)))
    ends = guest_ends_of(page_guest, es.cnt.shape[1])
    if not pipeline or len(page) == 0:
        _replay_budgets_chunk(t_ns, page, op, guest, np.int64(i0), page_guest, ends, budgets,
                              np.int64(honour), np.int64(order), sample_at, *es, _NO_VICTIMS)
        return
    if order != ORDER_LRU:
        raise ValueError("the two-thread replay is for exact LRU only")
    _replay_pipelined(es, t_ns, page, op, guest, i0, page_guest, ends, budgets, honour, sample_at,
                      max(1, int(step)))


def _replay_pipelined(es, t_ns, page, op, guest, i0, page_guest, ends, budgets, honour, sample_at,
                      step):
    size = min(step, len(page))
    bufs = [(np.empty(size, np.int32), np.empty(size, np.int32))
            for _ in range(_PIPELINE_BUFFERS)]  # a step's victims and its accesses' positions
    scratch = np.empty(size, page.dtype)  # the walker's accesses of a step
    with ThreadPoolExecutor(1, thread_name_prefix="cmmsim-lru") as pool:
        for b in range(len(budgets)):
            _replay_pipelined_one(pool, bufs, scratch, b, es, t_ns, page, op, guest, i0,
                                  page_guest, ends, budgets, honour, sample_at, step)


def _replay_pipelined_one(pool, bufs, scratch, b, es, t_ns, page, op, guest, i0, page_guest,
                          ends, budgets, honour, sample_at, step):
    n = len(page)
    frames_max = np.int64(min(int(budgets[b]), len(page_guest)))
    ahead = es.sc[b, _SC_RESIDENT: _SC_RESIDENT + 1].copy()  # the list's own frame count
    starts = range(0, n, step)

    def walk(k):
        s = starts[k]
        victims, positions = bufs[k % len(bufs)]
        return _lru_victims(page[s:s + step], op[s:s + step], es.links[b], frames_max, ahead,
                            victims, scratch, positions)

    # The walker thread owns links and `ahead`, the calling thread everything else.
    # The walker may be up to len(bufs) - 1 steps ahead (it absorbs the two sides'
    # jitter); step k + len(bufs) - 1 is submitted once step k - 1's state machine,
    # the last reader of that buffer, is done.
    pending = {k: pool.submit(walk, k) for k in range(min(len(bufs) - 1, len(starts)))}
    # When the state machine counts no hint (host-lru), it steps through the
    # accesses the walker found and skips the hints without a branch on each.
    accesses_only = honour == HONOUR_NONE
    for k, s in enumerate(starts):
        n_victims, n_accesses = pending.pop(k).result()
        if k + len(bufs) - 1 < len(starts):
            pending[k + len(bufs) - 1] = pool.submit(walk, k + len(bufs) - 1)
        e = s + step
        victims, positions = bufs[k % len(bufs)]
        _replay_given_chunk(t_ns[s:e], page[s:e], op[s:e], guest[s:e], np.int64(i0 + s),
                            page_guest, ends, budgets, np.int64(honour), sample_at, *es,
                            victims[:n_victims], np.int64(b),
                            positions[:n_accesses] if accesses_only else None)
        if es.sc[b, _SC_TAKEN] != n_victims:
            raise RuntimeError(f"replay pipeline out of step: {n_victims} victims listed, "
                               f"{int(es.sc[b, _SC_TAKEN])} taken")


def replay_finish(es: EngineState, page_guest, n_events: int) -> None:
    """Samples due after the last event, and the event-weighted sums (after the last chunk)."""
    for k in range(len(es.sc)):
        _replay_finish(es.state[k], page_guest, es.samples[k], es.cnt[k], es.res_g[k],
                       es.mark_g[k], es.sc[k], n_events)


@dataclass(frozen=True)
class EngineResult:
    """Raw integers of one replay at several budgets.

    Attributes
    ----------
    budgets : ndarray[int64]
        Host budgets, frames.
    counters : ndarray[int64], shape (budgets, guests, len(COUNTERS))
        Per-guest counters (see :data:`replay.states.COUNTERS`).
    host_peak : ndarray[int64], shape (budgets,)
        Peak resident frames on the host.
    host_sum_resident : ndarray[int64], shape (budgets,)
        Sum over events of host resident frames.
    final_states : ndarray[uint8], shape (budgets, pages) or (0, pages)
        Final state bytes, when asked for.
    samples : ndarray[int64], shape (budgets, samples, guests, 8)
        Pages per (guest, state pair) at each sample time.
    series : ndarray[int64], shape (budgets, periods, guests, k), optional
        A strategy's own per-period series (balloons: see
        :data:`replay.strategies.balloon.SERIES`).
    series_t_ns : ndarray[int64], shape (periods,), optional
        End time of each period, ns.
    """

    budgets: np.ndarray
    counters: np.ndarray
    host_peak: np.ndarray
    host_sum_resident: np.ndarray
    final_states: np.ndarray
    samples: np.ndarray
    series: np.ndarray | None = None
    series_t_ns: np.ndarray | None = None


def run(events, budgets, *, honour: int, order: int, initial: int,
        sample_at: np.ndarray | None = None, keep_final: bool = False) -> EngineResult:
    """Replay a scenario's events at every budget.

    Parameters
    ----------
    events : replay.scenario.Scenario
        Merged events (``t_ns``, global ``page`` index, ``op``) and ``page_guest``.
    budgets : sequence of int
        Host memory budgets, frames (each >= 1).
    honour : int
        Bit mask ``1 << op`` of the hint ops the host acts on.
    order : int
        ``ORDER_LRU``, ``ORDER_CLOCK`` or ``ORDER_CLASS``.
    initial : int
        State byte every page starts in.
    sample_at : ndarray[int64], optional
        Times (ns) at which to count pages per state pair.
    keep_final : bool
        Return every page's final state byte.
    """
    b = np.asarray(budgets, dtype=np.int64)
    if b.ndim != 1 or b.size == 0 or (b < 1).any():
        raise ValueError("budgets must be a non-empty list of positive frame counts")
    if order not in (ORDER_LRU, ORDER_CLOCK, ORDER_CLASS):
        raise ValueError(f"unknown victim order {order}")
    if _is_resident(np.uint8(initial)):
        # Every page starts out of host memory: a resident page would need a frame.
        raise ValueError(f"initial state {initial:#x} is host-resident")
    at = np.zeros(0, np.int64) if sample_at is None else np.ascontiguousarray(sample_at, np.int64)
    es = alloc_state(events.n_pages, events.n_guests, b, order, initial, len(at))
    replay_chunk(es, events.t_ns, events.page, events.op, events.guest, 0, events.page_guest, b,
                 honour, order, at)
    replay_finish(es, events.page_guest, len(events.page))
    final = es.state if keep_final else np.zeros((0, events.n_pages), np.uint8)
    return EngineResult(b, es.cnt, es.host[:, 0].copy(), es.host[:, 1].copy(), final, es.samples)
