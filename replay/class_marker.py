"""State-priority reclaim at one budget by a marker in time per class.

The victim of ``cmm``'s ``state-priority`` reclaim is the least recently used page
of the cheapest class with a resident page (U, then V and clean P, then the rest;
:func:`cmmsim.replay.kernels.state_machine.reclaim_class`). As in
:mod:`cmmsim.replay.marker`, a page's *slot* is the index of its last access in
the trace (``last[p]``), and the trace maps a slot back to its page
(``page[slot]``). Each class keeps a bitmap over the trace's events, a bit at the
slot of each resident page of the class, and:

* a count of its bits, so the cheapest class with a page is found without a scan;
* a *marker*: the class's victim is its first set bit at or above the marker (a
  forward scan), and the marker moves past it;
* a heap of the slots that joined the class below its marker (a hint moved an
  older page into it), each with its page. They are its least slots, so they are
  its first victims; an entry whose bit has gone since is skipped.

A use moves the page's bit from its old slot in its old class to the newest slot
in its new class; a hint that changes a resident page's class moves its bit to
the other class at the same slot (to the heap if that lies below the marker).
When an empty class gains a slot its marker moves up to the event at hand, so the
markers move back only when a heap overflows (:func:`_push`) and a class scans
each part of the trace about once; the heap holds what lies behind.

The order is the time slots' (:mod:`cmmsim.replay.kernels.slots`), so the integers
are the engine's state-priority replay's bit for bit (``tests/test_class_marker.py``);
only the upkeep differs: no slot window, no slot-to-page array, no compaction of
slots, no bit tree. Like the marker replay it needs every event of the trace in
memory; a stream keeps the time slots. Memory per budget: an int32 slot per page,
three bits per event, and heaps of :func:`heap_entries` int64 entries per class at
its own ``frames`` (at most ``HEAP_MAX`` each; reserved at the largest budget's size,
touched as they fill; stale entries fill them before a compaction, so count on all
of it), besides the time
slots' window and bit trees, which :func:`cmmsim.replay.engine.alloc_state` still
allocates unused.

Each event needs its page's last access before it, and that depends on the trace
alone: :func:`replay_walked` has it found once for every budget, on a thread of its
own a step ahead of the budgets when one is free, or before each step when each
thread replays several budgets (:func:`walk_mode`); otherwise each budget keeps its
own ``last``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from cmmsim.replay.kernels import tier as host_tier
from cmmsim.replay.kernels.guest_ranges import guest_of
from cmmsim.replay.kernels.scalars import SC_RESIDENT, SC_SAMPLE
from cmmsim.replay.kernels.state_machine import host_state, is_resident, reclaim, reclaim_class
from cmmsim.replay.kernels.steps import accessed, ask_ahead, frame_passes, hinted, samples_due, walk_prev
from cmmsim.replay.marker import next_live
from cmmsim.replay.states import CHANGED, DIRTY, H_R, OP_WRITE

__all__ = [
    "HEAP_MAX",
    "N_CLASSES",
    "WALK_AHEAD",
    "WALK_MIN_EVENTS",
    "WALK_OWN",
    "WALK_SHARED",
    "Walk",
    "class_marker_body",
    "class_marker_budgets",
    "heap_entries",
    "new_classes",
    "new_heaps",
    "replay_walked",
    "walk_mode",
    "walk_step",
]

#: The engine's state-priority classes (U, V/clean P, the rest).
N_CLASSES = 3

_SIX = np.uint64(6)
_LOW6 = np.uint64(63)
_ONE = np.uint64(1)
# A heap entry: the slot above, the page below.
_SLOT_SHIFT = 32
_PAGE_MASK = (1 << 32) - 1
# Each state byte's class, as a table: which class a page is in is what a branch
# predictor cannot learn.
_CLASS_OF = np.array([reclaim_class(np.uint8(st)) for st in range(256)], np.int64)


def new_classes(n_budgets: int) -> np.ndarray:
    """Each budget's class scalars: per class its marker, then its count, then its
    heap's size."""
    return np.zeros((n_budgets, 3 * N_CLASSES), np.int64)


#: The most entries of a class's heap (512 KiB): a heap that overflows hands its
#: slots back to its class's scan (:func:`_push`).
HEAP_MAX = 1 << 16


@nb.njit(cache=True)
def heap_entries(frames):
    """Entries of a class's heap at a budget of ``frames``: at most ``frames`` slots are
    in the class, and twice that leaves half free after a compaction (:func:`_push`);
    at most :data:`HEAP_MAX`."""
    return min(2 * frames + 64, HEAP_MAX)


def new_heaps(n_budgets: int, frames: int) -> np.ndarray:
    """The classes' heaps of each budget (``frames``: the largest budget; a budget uses
    the first :func:`heap_entries` of its own frames). Uninitialized: a heap touches its
    entries only as it fills, but stale entries fill it up to its size before a
    compaction, so a long trace with many hints touches all of it."""
    return np.empty((n_budgets, N_CLASSES, heap_entries(frames)), np.int64)


@nb.njit(cache=True, inline="always")
def _clear(bits, x):
    ux = np.uint64(x)
    bits[ux >> _SIX] &= ~(_ONE << (ux & _LOW6))


@nb.njit(cache=True, inline="always")
def _set(bits, x):
    ux = np.uint64(x)
    bits[ux >> _SIX] |= _ONE << (ux & _LOW6)


@nb.njit(cache=True, inline="always")
def _is_set(bits, x):
    ux = np.uint64(x)
    return (bits[ux >> _SIX] >> (ux & _LOW6)) & _ONE


# The heap's helpers are calls of their own: the heap is seldom used.
@nb.njit(cache=True, _nrt=False)
def _sift_down(heap, i, size):
    x = heap[i]
    while True:
        k = 2 * i + 1
        if k >= size:
            break
        if k + 1 < size and heap[k + 1] < heap[k]:
            k += 1
        if heap[k] >= x:
            break
        heap[i] = heap[k]
        i = k
    heap[i] = x


@nb.njit(cache=True, _nrt=False)
def _push(heap, size, x, bits, marker):
    """Add entry x (a slot below the class's marker and its page) to a class's heap;
    returns (the new size, the class's marker).

    A full heap first keeps one entry per slot still in the class (the class's bits
    mark the slots kept, then are restored). If more than half of it is still in the
    class, the heap empties instead and the marker comes back to the least of those
    slots and x: the class's scan then finds them all, at the price of scanning that
    stretch again, once per half a heap of slots that joined below the marker. So a
    heap keeps to its size whatever the trace, and a push costs O(1) amortized.
    """
    if size == heap.shape[0]:
        j = 0
        for k in range(size):
            y = heap[k]
            if _is_set(bits, y >> _SLOT_SHIFT):
                _clear(bits, y >> _SLOT_SHIFT)
                heap[j] = y
                j += 1
        for k in range(j):
            uy = np.uint64(heap[k] >> _SLOT_SHIFT)
            bits[uy >> _SIX] |= _ONE << (uy & _LOW6)
        size = j
        if 2 * size > heap.shape[0]:
            least = x >> _SLOT_SHIFT
            for k in range(size):
                least = min(least, heap[k] >> _SLOT_SHIFT)
            return 0, least
        for k in range(size // 2 - 1, -1, -1):
            _sift_down(heap, k, size)
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] <= x:
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = x
    return size + 1, marker


@nb.njit(cache=True, inline="always")
def _put(live, cls, heaps, c, x, i, p):
    """Page p's slot ``x`` joins class ``c`` at event ``i`` (x <= i). Below the class's
    marker it goes to the class's heap, with p. An empty class's marker first moves up
    to ``i`` (what its heap holds is stale): the class has no slot between the two, and
    the marker never moves back, so a class scans each part of the trace once."""
    ux = np.uint64(x)
    live[c, ux >> _SIX] |= _ONE << (ux & _LOW6)
    n = cls[N_CLASSES + c]
    h = 2 * N_CLASSES + c
    if n == 0:
        cls[c] = i
        cls[h] = 0
    if x < cls[c]:
        cls[h], cls[c] = _push(heaps[c], cls[h], (x << _SLOT_SHIFT) | np.int64(p), live[c], cls[c])
    cls[N_CLASSES + c] = n + 1


@nb.njit(cache=True, inline="always")
def _put_newest(live, cls, c, i):
    """Slot ``i``, the newest, joins class ``c`` (:func:`_put` without a branch: which
    class was empty is what a branch predictor cannot learn)."""
    ui = np.uint64(i)
    live[c, ui >> _SIX] |= _ONE << (ui & _LOW6)
    n = cls[N_CLASSES + c]
    h = 2 * N_CLASSES + c
    empty = n == 0
    cls[c] = i if empty else cls[c]
    cls[h] = 0 if empty else cls[h]
    cls[N_CLASSES + c] = n + 1


@nb.njit(cache=True, inline="always")
def _take(live, cls, heaps, c, page_all):
    """The class's least slot taken out of it, and its page: the least of its heap
    still in the class (all lie below the marker), else the first at the marker."""
    h = cls[2 * N_CLASSES + c]
    heap = heaps[c]
    x = np.int64(-1)
    v = np.uint64(0)
    while h > 0:
        # The heap's entries hold their pages: no load from the trace's old events.
        y = heap[0]
        h -= 1
        heap[0] = heap[h]
        _sift_down(heap, 0, h)
        if _is_set(live[c], y >> _SLOT_SHIFT):
            x = y >> _SLOT_SHIFT
            v = np.uint64(y & _PAGE_MASK)
            break
    cls[2 * N_CLASSES + c] = h
    if x < 0:
        x = next_live(live[c], cls[c] - 1)  # the first set bit at or above the marker
        cls[c] = x + 1
        v = np.uint64(page_all[np.uint64(x)])
    _drop(live, cls, c, x)
    return x, v


@nb.njit(cache=True, inline="always")
def _drop(live, cls, c, x):
    """Slot ``x`` leaves class ``c``."""
    _clear(live[c], x)
    cls[N_CLASSES + c] -= 1


@nb.njit(cache=True, nogil=True, _nrt=False)
def class_marker_body(
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
    prev,
    live,
    cls,
    heaps,
    tier,
    resident,
    s,
):
    """Replay ``chunk`` (events ``i0 ..`` of ``page_all``, the whole trace's pages) at one
    budget of ``frames_max`` frames in state-priority order; returns (resident frames,
    next sample) for the next chunk.

    ``live``: the classes' bitmaps (``N_CLASSES`` rows of
    :func:`cmmsim.replay.marker.live_words`, zeroed at the start); ``cls``: the
    budget's row of :func:`new_classes`; ``heaps``: its rows of :func:`new_heaps`.
    The other arrays are the budget's rows of :class:`cmmsim.replay.engine.EngineState`
    (``last``: its ``slot`` row, -1 at the start). ``prev``: each event's page's last
    access before it (:func:`cmmsim.replay.kernels.steps.walk_prev`), or empty: then
    the body keeps ``last`` itself. The event handling is the engine's; only the
    upkeep of the order differs.
    """
    n = chunk.page.shape[0]
    walked = prev.shape[0] > 0
    res_peak = host[0]
    res_sum = host[1]
    tiered = host_tier.capacity(tier) > 0
    for j in range(n):
        uj = np.uint64(j)
        ask_ahead(chunk.page, j, state, last, not walked, tiered, tier)
        s = samples_due(chunk.t_ns, uj, s, sample_at, state, page_guest, samples)
        i = i0 + j
        p = np.uint64(chunk.page[uj])
        g = chunk.guest[uj]
        o = chunk.op[uj]
        st = state[p]
        if o <= OP_WRITE:
            old = st
            st = accessed(st, g, cnt)
            if walked:
                tp = np.int64(prev[uj])
            else:
                tp = np.int64(last[p])
                last[p] = np.int32(i)
            if host_state(st) != H_R:
                gv = -1
                from_tier = host_tier.take_if_paged_out(tiered, tier, p, st)
                if resident >= frames_max:
                    # The least recently used page of the cheapest class with one.
                    c = 0
                    while cls[N_CLASSES + c] == 0:
                        c += 1
                    x, v = _take(live, cls, heaps, c, page_all)
                    gv = guest_of(v, ends)
                    if tiered:
                        host_tier.page_out(v, gv, state, cnt, tier, ends)
                    else:
                        reclaim(v, gv, state, cnt)
                    resident -= 1
                st = np.uint8(host_tier.page_in_from(from_tier, st, g, cnt))
                frame_passes(cnt, res_g, mark_g, gv, g, i)
                resident += 1
                if resident > res_peak:
                    res_peak = resident
                st |= o * np.uint8(DIRTY | CHANGED)
                _put_newest(live, cls, _CLASS_OF[st], i)
            else:
                st |= o * np.uint8(DIRTY | CHANGED)
                a = _CLASS_OF[old]
                c = _CLASS_OF[st]
                _clear(live[a], tp)
                if a == c:
                    # Mostly: the page stays in its class, whose count stays and which
                    # was not empty.
                    _set(live[c], i)
                else:
                    cls[N_CLASSES + a] -= 1
                    _put_newest(live, cls, c, i)
            state[p] = st
        elif (honour >> o) & 1:
            new = hinted(st, o, g, cnt, tiered, tier, p)
            state[p] = new
            if is_resident(new):
                # A hint moves a page between classes at its place in time.
                a = _CLASS_OF[st]
                c = _CLASS_OF[new]
                if c != a:
                    tp = np.int64(prev[uj]) if walked else np.int64(last[p])
                    _drop(live, cls, a, tp)
                    _put(live, cls, heaps, c, tp, i, p)
        res_sum += resident
    host[0] = res_peak
    host[1] = res_sum
    return resident, s


@nb.njit(cache=True, nogil=True, _nrt=False)
def _class_marker_budget(
    page_all, chunk, i0, page_guest, ends, frames, honour, sample_at, es, prev, live, cls, heaps, b
):
    """One chunk at budget b (row b of ``es``, an :class:`cmmsim.replay.engine.EngineState`)."""
    sc = es.sc[b]
    sc[SC_RESIDENT], sc[SC_SAMPLE] = class_marker_body(
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
        prev,
        live[b],
        cls[b],
        # Its own heaps' size: a full heap compacts, so a small budget beside a large
        # one would otherwise fill the large one's size with stale entries.
        heaps[b, :, : heap_entries(frames[b])],
        es.tier[b],
        sc[SC_RESIDENT],
        sc[SC_SAMPLE],
    )


@nb.njit(cache=True, parallel=True, nogil=True, _nrt=False)
def class_marker_budgets(page_all, chunk, i0, page_guest, ends, frames, honour, sample_at, es, prev, live, cls, heaps):
    """One chunk of events at every budget of ``frames``, one budget per thread;
    ``prev``: the chunk's :func:`cmmsim.replay.kernels.steps.walk_prev` (or empty),
    ``live``: the class bitmaps per budget, ``cls``: :func:`new_classes`, ``heaps``:
    :func:`new_heaps`."""
    for b in nb.prange(frames.shape[0]):
        _class_marker_budget(
            page_all, chunk, i0, page_guest, ends, frames, honour, sample_at, es, prev, live, cls, heaps, np.int64(b)
        )


#: How a replay finds each event's previous access (:func:`walk_mode`).
WALK_OWN, WALK_SHARED, WALK_AHEAD = "own", "shared", "ahead"
_NO_PREV = np.zeros(0, np.int32)


#: The fewest events a walk pays on (below, its steps' hand-overs cost more than it spares).
WALK_MIN_EVENTS = 1 << 21
#: Events per step of a walk: a step ahead hands over in tens of microseconds, and
#: 64 K-event steps took 1.13x a replay's time where 256 K-4 M took 0.92-0.96x.
WALK_STEP_MIN, WALK_STEP_MAX = 1 << 18, 1 << 20


def walk_step(n_events: int) -> int:
    """Events per step of the walk of a replay of ``n_events`` events."""
    return min(WALK_STEP_MAX, max(WALK_STEP_MIN, n_events // 8))


def walk_mode(n_budgets: int, threads: int, n_events: int) -> str:
    """How a replay of ``n_budgets`` budgets of ``n_events`` events on ``threads`` numba
    threads finds each event's previous access (a random load and store per event, the
    same at every budget).

    ``WALK_AHEAD``
        one budget, and a thread left over: a walk on a thread of its own, a step ahead
        of the budget, whose loop loses a random access per event (measured on two
        cores, docs/perf-log.md);
    ``WALK_SHARED``
        each thread has three budgets or more: one walk before each step, shared by
        the budgets (a walk costs about a quarter of a budget's replay, and spares
        each budget about a tenth of its own);
    ``WALK_OWN``
        else, and below :data:`WALK_MIN_EVENTS` events: each budget keeps its own.
    """
    if n_events < WALK_MIN_EVENTS:
        return WALK_OWN
    if threads >= 2 and n_budgets == 1:
        return WALK_AHEAD
    if n_budgets >= 3 * max(1, threads):
        return WALK_SHARED
    return WALK_OWN


class Walk:
    """One replay's walk (:func:`walk_mode`): each page's last access so far (kept from
    chunk to chunk) and a step's worth of previous accesses twice over (the walker fills
    one while the budgets read the other).

    Parameters
    ----------
    mode : str
        :data:`WALK_OWN`, :data:`WALK_SHARED` or :data:`WALK_AHEAD`.
    n_pages : int
        Pages of the scenario.
    step : int
        Events per step (:func:`walk_step`).
    """

    def __init__(self, mode: str, n_pages: int, step: int):
        walks = mode != WALK_OWN
        self.mode = mode
        self.step = max(1, int(step))
        self.last = np.full(n_pages if walks else 0, -1, np.int32)
        self.bufs = [np.empty(self.step if walks else 0, np.int32) for _ in range(2)]


def replay_walked(page_all, chunk, i0, page_guest, ends, frames, honour, sample_at, es, live, cls, heaps, walk: Walk):
    """:func:`class_marker_budgets` over ``chunk`` (events ``i0 ..``), with each event's
    previous access found as ``walk`` says: in steps of ``walk.step`` events, the walk of
    step k + 1 running on a thread of its own while the budgets replay step k
    (``WALK_AHEAD``), or before them (``WALK_SHARED``). The same integers whatever the
    mode and step."""
    args = (page_guest, ends, frames, honour, sample_at, es)
    if walk.mode == WALK_OWN:
        class_marker_budgets(page_all, chunk, i0, *args, _NO_PREV, live, cls, heaps)
        return
    n = len(chunk.page)
    starts = range(0, n, walk.step)

    def walked(k: int) -> np.ndarray:
        s = starts[k]
        e = min(n, s + walk.step)
        prev = walk.bufs[k % 2][: e - s]
        walk_prev(chunk.page[s:e], chunk.op[s:e], walk.last, np.int64(i0 + s), prev)
        return prev

    def budgets(k: int, prev: np.ndarray) -> None:
        s = starts[k]
        part = type(chunk)(*(a[s : s + walk.step] for a in chunk))
        if len(frames) == 1:
            # A parallel region per step costs more than the step's gain (the other
            # OpenMP thread waits in it, spinning): one budget is called directly.
            _class_marker_budget(page_all, part, np.int64(i0 + s), *args, prev, live, cls, heaps, np.int64(0))
        else:
            class_marker_budgets(page_all, part, np.int64(i0 + s), *args, prev, live, cls, heaps)

    if walk.mode == WALK_SHARED:
        for k in range(len(starts)):
            budgets(k, walked(k))
        return
    with ThreadPoolExecutor(1, thread_name_prefix="cmmsim-walk") as pool:
        ahead = pool.submit(walked, 0) if len(starts) else None
        for k in range(len(starts)):
            prev = ahead.result()
            # Step k + 1 fills the other buffer; step k + 2 (this one's) is asked
            # for only once this step's budgets are done.
            if k + 1 < len(starts):
                ahead = pool.submit(walked, k + 1)
            budgets(k, prev)
