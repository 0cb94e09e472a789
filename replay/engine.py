"""The replay engine: page state machines under a host memory budget.

Three layers, as in STUMPY:

* ``_replay_body`` (numba, inlined): a run of events at one budget, resumable
  (all its state is in arrays, a :class:`BudgetState`, so a trace can stream
  through it in chunks);
* the kernels of each order (:func:`_order_kernels`, ``parallel=True``): the
  same for many budgets, one budget per thread; ``_replay_given_chunk`` and
  :mod:`cmmsim.replay.lru_ahead`:
  one exact-LRU budget on two threads (the LRU walk ahead of the state
  machine, :func:`replay_pipelined`); :mod:`cmmsim.replay.marker`: exact LRU
  when the whole trace is in memory (the victim read from the events at a
  marker, the same event steps, :mod:`cmmsim.replay.kernels.steps`), and
  :mod:`cmmsim.replay.class_marker` the same for state-priority (a marker per class);
  :mod:`cmmsim.replay.planner` chooses;
* :func:`run` (plain Python): allocates the state (:func:`alloc_state`),
  replays, shapes the output.

The guest/host state machine is DESIGN.md section 2 and
:mod:`cmmsim.replay.kernels.state_machine`; the state byte is described in
:mod:`cmmsim.replay.states`. Victims are chosen by one host policy of five, each a
victim helper (``_victim``) plus its bookkeeping when a page gets a frame
(``_admit``) or is used again (``_hit``), its twin in
:class:`cmmsim.replay.reference.ReferenceHost`:

``ORDER_LRU``
    exact LRU over all resident frames (:mod:`cmmsim.replay.kernels.slots`, one class;
    :func:`run` takes :mod:`cmmsim.replay.marker` instead when it can);
``ORDER_CLOCK``
    CLOCK (second chance) over a frame table;
``ORDER_CLASS``
    exact LRU inside reclaim classes, cheapest class first (U, then V and
    clean P, then the rest): :mod:`cmmsim.replay.kernels.slots`, a class each
    (:func:`run` takes :mod:`cmmsim.replay.class_marker` instead when it can);
``ORDER_TWO_LIST``
    Linux's two-list (active/inactive) reclaim: :mod:`cmmsim.replay.kernels.two_list`;
``ORDER_GIVEN`` (internal)
    exact LRU with the victims computed ahead by :mod:`cmmsim.replay.lru_ahead` and
    passed in: the state machine runs alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numba as nb
import numpy as np

from cmmsim.replay import planner
from cmmsim.replay.budgets import validated
from cmmsim.replay.class_marker import N_CLASSES, Walk, new_classes, new_heaps, replay_walked, walk_mode, walk_step
from cmmsim.replay.kernels import slots, two_list
from cmmsim.replay.kernels import tier as host_tier
from cmmsim.replay.kernels.guest_ranges import guest_ends_of, guest_of
from cmmsim.replay.kernels.prefetch import EVENTS_AHEAD, prefetch
from cmmsim.replay.kernels.resident import count_states, resident_close
from cmmsim.replay.kernels.scalars import N_SCALARS, SC_HAND, SC_NEXT_SLOT, SC_RESIDENT, SC_SAMPLE, SC_TAKEN
from cmmsim.replay.kernels.state_machine import (
    host_state,
    is_resident,
    reclaim,
    reclaim_class,
)
from cmmsim.replay.kernels.steps import accessed, frame_passes, hinted, samples_due
from cmmsim.replay.lru_ahead import walk_victims
from cmmsim.replay.marker import MAX_EVENTS, live_words, marker_budgets
from cmmsim.replay.result import EngineResult
from cmmsim.replay.states import (
    CHANGED,
    DIRTY,
    H_R,
    HONOUR_NONE,
    N_COUNTERS,
    OP_WRITE,
    PAIRS,
    REF,
)

__all__ = [
    "ENGINE_VERSION",
    "ORDERS",
    "ORDER_CLASS",
    "ORDER_CLOCK",
    "ORDER_LRU",
    "ORDER_TWO_LIST",
    "MIN_PROGRESS_CHUNK_EVENTS",
    "BudgetState",
    "EngineResult",
    "EngineState",
    "alloc_state",
    "next_chunk_events",
    "replay_chunk",
    "replay_finish",
    "replay_pipelined",
    "run",
]

#: Bumped whenever a change to the engine can change a result.
ENGINE_VERSION = 4

ORDER_LRU, ORDER_CLOCK, ORDER_CLASS = 0, 1, 2
#: Exact LRU with the victims computed ahead (cmmsim.replay.lru_ahead) and passed in.
ORDER_GIVEN = 3
#: Linux's two-list (active/inactive) reclaim (cmmsim.replay.kernels.two_list).
ORDER_TWO_LIST = 4
ORDERS = {"lru": ORDER_LRU, "clock": ORDER_CLOCK, "state-priority": ORDER_CLASS, "two-list": ORDER_TWO_LIST}
_PREFETCH_VICTIMS = 8  # evictions ahead (measured: 4-16 within noise)
#: Events of the first chunk when :func:`run` reports its progress, and of every
#: chunk at least.
MIN_PROGRESS_CHUNK_EVENTS = 1 << 20
#: The most memory the marker replay's bitmaps (a bit per event per budget) may take,
#: bytes; beyond it exact LRU keeps its time slots.
MAX_LIVE_BYTES = 1 << 30
#: Seconds of work the next chunks are sized to, from the pace of the last one: a
#: chunk has a fixed cost (a parallel region's or a pipeline's start, which a busy
#: machine can stretch to milliseconds), a small share of a second.
PROGRESS_CHUNK_S = 1.0


class EngineState(NamedTuple):
    """Everything a replay at several budgets keeps between chunks (row b: budget b)."""

    state: np.ndarray
    cnt: np.ndarray
    res_g: np.ndarray
    mark_g: np.ndarray
    host: np.ndarray
    samples: np.ndarray
    slot: np.ndarray
    slot_page: np.ndarray
    bits: np.ndarray
    levels: np.ndarray
    frames: np.ndarray
    sc: np.ndarray
    tier: np.ndarray


#: One budget's rows of an :class:`EngineState`, the kernel's bundle of arrays (the
#: same fields): ``state`` the state byte per page; ``cnt`` the counters per guest;
#: ``res_g`` and ``mark_g`` resident frames per guest (:mod:`cmmsim.replay.kernels.resident`);
#: ``host`` the host's peak and frame-event sum; ``samples`` the state counts;
#: ``slot``, ``slot_page``, ``bits`` and ``levels`` the time slots of exact LRU and
#: state-priority (:mod:`cmmsim.replay.kernels.slots`: a page's slot, a slot's page, one bit
#: tree per class, the trees' level offsets; the marker replay keeps each page's last
#: access in ``slot`` and leaves the rest unused); ``frames`` CLOCK's frame table (each
#: empty when its order is not in use; under two-list it holds the two lists,
#: :mod:`cmmsim.replay.kernels.two_list`); ``sc`` the scalars (``SC_*``); ``tier`` the host's
#: fast swap tier (:mod:`cmmsim.replay.kernels.tier`; 4 words when its capacity is 0).
BudgetState = EngineState


class Chunk(NamedTuple):
    """A run of merged events: times (ns), global pages, ops, guests."""

    t_ns: np.ndarray
    page: np.ndarray
    op: np.ndarray
    guest: np.ndarray


_NO_VICTIMS = np.zeros(0, np.int32)


@nb.njit(cache=True)
def _sizes(n_pages, frames_max, order):
    """(pages with a slot, window slots, classes, bit-tree levels, CLOCK frames) one
    budget's state needs."""
    timed = order == ORDER_LRU or order == ORDER_CLASS
    return (
        n_pages if timed else 0,
        slots.window(frames_max) if timed else 0,
        (1 if order == ORDER_LRU else slots.MAX_CLASSES) if timed else 0,
        slots.n_levels(frames_max) if timed else 0,
        frames_max if order == ORDER_CLOCK else two_list.size(n_pages) if order == ORDER_TWO_LIST else 0,
    )


# -- the host policies: victim, admission, hit ----------------------------------------------------
@nb.njit(cache=True, inline="always")
def _class(order, st):
    """A resident page's class in the time slots (exact LRU: one class)."""
    if order == ORDER_CLASS:
        return reclaim_class(st)
    return 0


@nb.njit(cache=True, inline="always")
def _victim_given(victims, taken, state):
    """The next victim of the LRU walk ahead; asks for a later one's state byte."""
    v = victims[np.uint64(taken)]
    taken += 1
    if taken + _PREFETCH_VICTIMS < victims.shape[0]:
        prefetch(state, np.uint64(victims[np.uint64(taken + _PREFETCH_VICTIMS)]))
    return v, taken


@nb.njit(cache=True, inline="always")
def _victim_clock(state, frames, hand, frames_max):
    """The frame under the hand once it passes every referenced one (clearing them)."""
    while state[frames[hand]] & REF:
        state[frames[hand]] &= ~REF
        hand += 1
        if hand == frames_max:
            hand = 0
    return hand


@nb.njit(cache=True, inline="always")
def _victim(order, bs, levels, frames_max, hand, taken, victims, tiered):
    """Reclaim one frame's page by the host policy: (victim, its CLOCK frame, hand,
    victims taken). ``tiered``: the host has a swap tier (its links are prefetched)."""
    frame = -1
    if order == ORDER_GIVEN:
        v, taken = _victim_given(victims, taken, bs.state)
        if tiered and taken + _PREFETCH_VICTIMS < victims.shape[0]:
            # A changed victim's tier links are written (page_out): ask for them early.
            host_tier.prefetch_node(bs.tier, victims[np.uint64(taken + _PREFETCH_VICTIMS)])
    elif order == ORDER_CLOCK:
        frame = _victim_clock(bs.state, bs.frames, hand, frames_max)
        hand = frame
        v = bs.frames[frame]
    elif order == ORDER_TWO_LIST:
        v = two_list.victim(bs.frames, bs.state)
    else:
        v, later = slots.evict_least(bs.slot, bs.slot_page, bs.bits, levels)
        prefetch(bs.state, np.uint64(later))
        prefetch(bs.slot, np.uint64(later))
        if tiered:
            host_tier.prefetch_node(bs.tier, later)
    return v, frame, hand, taken


@nb.njit(cache=True, inline="always")
def _admit(order, bs, levels, nxt, p, st, frame, hand, frames_max):
    """Page p got a frame (CLOCK: ``frame``) in state ``st``: (next free slot, CLOCK hand)."""
    if order == ORDER_CLOCK:
        bs.frames[frame] = p
        hand = frame + 1
        if hand == frames_max:
            hand = 0
    elif order == ORDER_TWO_LIST:
        two_list.admit(bs.frames, p)
    elif order != ORDER_GIVEN:
        nxt = slots.place(bs.slot, bs.slot_page, bs.bits, levels, nxt, p, _class(order, st))
    return nxt, hand


@nb.njit(cache=True, inline="always")
def _hit(order, bs, levels, nxt, p, old, st):
    """Resident page p, in state ``old``, is used and left in state ``st``:
    (its state byte (CLOCK: referenced), next free slot)."""
    if order == ORDER_CLOCK:
        st |= REF
    elif order == ORDER_TWO_LIST:
        st = two_list.activate_or_keep(bs.frames, p, st)
    elif order != ORDER_GIVEN:
        nxt = slots.move(bs.slot, bs.slot_page, bs.bits, levels, nxt, p, _class(order, old), _class(order, st))
    return st, nxt


# -- the kernel -----------------------------------------------------------------------------------
# A function of its own, compiled once per order: not inline="always", which
# makes numba deep-copy the body's IR at each level it is inlined through (the
# copy grows with the square of its size) and made an order's kernels take
# minutes of CPU to compile (docs/perf-log.md). ``literally(order)`` still gives
# each order its own compile with the other orders' branches dropped.
@nb.njit(cache=True, nogil=True, _nrt=False)
def _replay_body(chunk, i0, page_guest, ends, frames_max, honour, order, sample_at, bs, levels, victims, acc_pos):
    """Replay ``chunk`` (events ``i0 ..``, global indices) at one budget, updating ``bs``.

    ``levels``: the offsets of the slots' bit-tree levels. Under ``ORDER_GIVEN``
    the k-th eviction of the call takes ``victims[k]``. ``ends``: one past each
    guest's last page (:func:`guest_ends_of`). Only the events at ``acc_pos`` are
    replayed unless it is None (for when no hint counts). ``order`` must be a
    constant of the caller (each order is its own compile).
    """
    nb.literally(order)
    state = bs.state
    cnt = bs.cnt
    resident = bs.sc[SC_RESIDENT]
    hand = bs.sc[SC_HAND]
    nxt = bs.sc[SC_NEXT_SLOT]
    s = bs.sc[SC_SAMPLE]
    taken = 0
    # Locals, not host[]: numba cannot keep an array element in a register
    # across the loop's other array stores.
    res_sum = bs.host[1]
    res_peak = bs.host[0]
    n = chunk.page.shape[0]
    # acc_pos None: every event; else only those (numba compiles each case
    # apart and drops the other's branches: the every-event loop pays nothing).
    n_iter = n if acc_pos is None else acc_pos.shape[0]
    jp = -1  # the event before
    tiered = host_tier.capacity(bs.tier) > 0  # else the tier's code never runs
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
        # negative-index fix-up at every use (see cmmsim.replay.kernels.lru_list).
        uj = np.uint64(j)
        if order != ORDER_CLOCK and ahead < n:
            # The pages a few dozen events on are known: ask for their state
            # bytes now (cmmsim.replay.kernels.prefetch; the victims' at each eviction).
            q = np.uint64(chunk.page[np.uint64(ahead)])
            prefetch(state, q)
            if tiered:
                host_tier.prefetch_node(bs.tier, q)
            if order == ORDER_TWO_LIST:
                prefetch(bs.frames, np.uint64(q << np.uint64(1)))
            elif order != ORDER_GIVEN:
                prefetch(bs.slot, q)
        s = samples_due(chunk.t_ns, uj, s, sample_at, state, page_guest, bs.samples)
        p = np.uint64(chunk.page[uj])
        g = chunk.guest[uj]
        o = chunk.op[uj]
        st = state[p]
        if o <= OP_WRITE:
            old = st
            st = accessed(st, g, cnt)
            if host_state(st) != H_R:
                frame = -1
                gv = -1  # the victim's guest, if a frame is reclaimed
                # With a tier the page leaves it first: its place is free for the victim.
                # Only a paged-out page can be there: no load of its links for the others.
                from_tier = host_tier.take_if_paged_out(tiered, bs.tier, p, st)
                if resident >= frames_max:
                    # Reclaim one frame first: resident never exceeds the budget.
                    v, frame, hand, taken = _victim(order, bs, levels, frames_max, hand, taken, victims, tiered)
                    # The victim's guest from the guests' page ranges, not
                    # page_guest: a load at every eviction (host-lru 98 -> 102 M
                    # events/s on the bench stream).
                    gv = guest_of(v, ends)
                    if tiered:
                        host_tier.page_out(v, gv, state, cnt, bs.tier, ends)
                    else:
                        reclaim(v, gv, state, cnt)
                    resident -= 1
                elif order == ORDER_CLOCK:
                    frame = resident
                st = host_tier.page_in_from(from_tier, st, g, cnt)
                frame_passes(cnt, bs.res_g, bs.mark_g, gv, g, i)
                resident += 1
                if resident > res_peak:
                    res_peak = resident
                st |= o * np.uint8(DIRTY | CHANGED)  # a write (READ is 0, WRITE 1)
                nxt, hand = _admit(order, bs, levels, nxt, p, st, frame, hand, frames_max)
            else:
                st |= o * np.uint8(DIRTY | CHANGED)
                st, nxt = _hit(order, bs, levels, nxt, p, old, st)
            state[p] = st
        elif (honour >> o) & 1:
            new = hinted(st, o, g, cnt, tiered, bs.tier, p)
            state[p] = new
            if order == ORDER_CLASS and is_resident(new):
                # A hint moves a page between classes at its place in time.
                a = reclaim_class(st)
                c = reclaim_class(new)
                if c != a:
                    slots.reclass(bs.slot, bs.bits, levels, p, a, c)
        res_sum += resident
    if acc_pos is not None:
        res_sum += resident * (n - 1 - jp)
    bs.host[0] = res_peak
    bs.host[1] = res_sum
    bs.sc[SC_RESIDENT] = resident
    bs.sc[SC_HAND] = hand
    bs.sc[SC_NEXT_SLOT] = nxt
    bs.sc[SC_SAMPLE] = s
    bs.sc[SC_TAKEN] = taken


@nb.njit(cache=True)
def _replay_finish(state, page_guest, samples, cnt, res_g, mark_g, sc, n_events):
    """Samples due after the last event, and the event-weighted sums."""
    while sc[SC_SAMPLE] < samples.shape[0]:
        count_states(state, page_guest, samples[sc[SC_SAMPLE]])
        sc[SC_SAMPLE] += 1
    resident_close(cnt, res_g, mark_g, n_events)


@nb.njit(cache=True, inline="always")
def _replay_rows(chunk, i0, page_guest, ends, frames, honour, order, sample_at, es, b, victims):
    """:func:`_replay_body` on budget b's rows of ``es`` (each cut to its own sizes)."""
    n_slot, n_window, n_classes, n_lev, n_frames = _sizes(page_guest.shape[0], frames[b], order)
    levels = es.levels[b, : n_lev + 1]
    bs = BudgetState(
        es.state[b],
        es.cnt[b],
        es.res_g[b],
        es.mark_g[b],
        es.host[b],
        es.samples[b],
        es.slot[b, :n_slot],
        es.slot_page[b, :n_window],
        es.bits[b, :n_classes],
        levels,
        es.frames[b, :n_frames],
        es.sc[b],
        es.tier[b],
    )
    _replay_body(chunk, i0, page_guest, ends, frames[b], honour, order, sample_at, bs, levels, victims, None)


def _order_kernels(order: int):
    """The kernels of one victim order: (every budget in parallel, one budget).

    Each order gets kernels of its own, the order a constant in them: numba then
    compiles only its branches, and only the orders a run uses (one loop holding
    every order's code spills more registers; docs/perf-log.md).
    """

    # No reference counting in the replay kernels (_nrt=False; they allocate
    # nothing): numba would otherwise incref and decref the arrays passed to each
    # helper call (reclaim, page_in, resident_delta, the slot helpers) with
    # atomic operations, per event. The arrays come from alloc_state, the
    # caller keeps them alive.
    @nb.njit(cache=True, nogil=True, _nrt=False)
    def replay_budget(chunk, i0, page_guest, ends, frames, honour, sample_at, es, b):
        """One chunk at budget b."""
        # A call of its own, not inlined into the parallel loop below: numba's
        # parallel lowering loses stores made through a tuple of arrays built in
        # the loop's body and used by inlined code.
        _replay_rows(chunk, i0, page_guest, ends, frames, honour, order, sample_at, es, b, _NO_VICTIMS)

    @nb.njit(cache=True, parallel=True, nogil=True, _nrt=False)
    def replay_budgets(chunk, i0, page_guest, ends, frames, honour, sample_at, es):
        """One chunk of events for every budget (row ``b`` of each state array is budget ``b``)."""
        for b in nb.prange(frames.shape[0]):
            replay_budget(chunk, i0, page_guest, ends, frames, honour, sample_at, es, b)

    return replay_budgets, replay_budget


#: The kernels of each host order (compiled when first called).
_KERNELS = {order: _order_kernels(order) for order in (ORDER_LRU, ORDER_CLOCK, ORDER_CLASS, ORDER_TWO_LIST)}


# The state machine's side of the two-thread replay: one budget, called
# from the thread that runs it (a parallel region here would launch numba's
# worker threads beside the LRU walker's and they would take turns on two cores).
@nb.njit(cache=True, nogil=True, _nrt=False)
def _replay_given_chunk(chunk, i0, page_guest, ends, frames, honour, sample_at, es, victims, b, acc_pos):
    """One chunk of events at budget b under ORDER_GIVEN (the slot arrays go unused);
    only the events at ``acc_pos`` unless it is None (for when no hint counts)."""
    bs = BudgetState(
        es.state[b],
        es.cnt[b],
        es.res_g[b],
        es.mark_g[b],
        es.host[b],
        es.samples[b],
        es.slot[b, :0],
        es.slot_page[b, :0],
        es.bits[b, :0],
        es.levels[b, :0],
        es.frames[b, :0],
        es.sc[b],
        es.tier[b],
    )
    _replay_body(
        chunk, i0, page_guest, ends, frames[b], honour, ORDER_GIVEN, sample_at, bs, es.levels[b, :0], victims, acc_pos
    )


def alloc_state(
    n_pages: int, n_guests: int, budgets, order: int, initial: int, n_samples: int, tier_pages: int = 0
) -> EngineState:
    """Fresh engine state for ``budgets`` (frames, or :class:`cmmsim.replay.budgets.Budgets`)
    over ``n_pages`` pages, with a host swap tier of ``tier_pages`` pages (0: none)."""
    fr = validated(budgets, n_pages).frames
    nb_ = len(fr)
    sizes = [_sizes(n_pages, int(x), order) for x in fr]
    wide = [max(s[k] for s in sizes) for k in range(5)]
    levels = np.zeros((nb_, max(wide[3], 1) + 1), np.int64)
    n_words = 1
    for k, x in enumerate(fr):
        if sizes[k][3]:
            off = slots.levels_of(int(x))
            levels[k, : len(off)] = off
            n_words = max(n_words, int(off[-1]) + 1)  # + each class's lowest slot
    return EngineState(
        state=np.full((nb_, n_pages), initial, np.uint8),
        cnt=np.zeros((nb_, n_guests, N_COUNTERS), np.int64),
        res_g=np.zeros((nb_, n_guests), np.int64),
        mark_g=np.zeros((nb_, n_guests), np.int64),
        host=np.zeros((nb_, 2), np.int64),
        samples=np.zeros((nb_, n_samples, n_guests, len(PAIRS)), np.int64),
        # -1: no frame (every page starts without one; run() refuses a resident start).
        slot=np.full((nb_, wide[0]), -1, np.int32),
        slot_page=np.zeros((nb_, wide[1]), np.int32),
        bits=np.zeros((nb_, wide[2], n_words), np.uint64),
        levels=levels,
        frames=_frames(nb_, wide[4], order),
        sc=np.zeros((nb_, N_SCALARS), np.int64),
        tier=np.tile(host_tier.new(n_pages, tier_pages), (nb_, 1)),
    )


def _frames(n_budgets: int, width: int, order: int) -> np.ndarray:
    """CLOCK's frame tables (filled as frames are handed out), or two-list's empty lists."""
    frames = np.empty((n_budgets, width), np.int32)
    if order == ORDER_TWO_LIST:
        for row in frames:
            two_list.init(row)
    return frames


_PIPELINE_BUFFERS = 3


def replay_chunk(
    es: EngineState,
    t_ns,
    page,
    op,
    guest,
    i0: int,
    page_guest,
    budgets,
    honour: int,
    order: int,
    sample_at,
    *,
    path: str | None = None,
    step: int | None = None,
) -> None:
    """Replay events ``i0 ..`` (global indices) at every budget, updating ``es`` in place.

    ``path`` is :mod:`cmmsim.replay.planner`'s (``PIPELINE`` or ``PARALLEL``), chosen by
    it when None; ``step`` the pipeline's events per step. Both ways give the same
    integers and leave the same state, so they can alternate between the chunks
    of a stream.
    """
    b = validated(budgets, len(page_guest))
    if step is None:
        step = planner.pipeline_step(len(page))
    if path is None:
        path = planner.choose(exact_lru=order == ORDER_LRU, n_budgets=len(b), n_events=len(page), step=step)
    ends = guest_ends_of(page_guest, es.cnt.shape[1])
    chunk = Chunk(t_ns, page, op, guest)
    if path != planner.PIPELINE or len(page) == 0:
        _KERNELS[order][0](chunk, np.int64(i0), page_guest, ends, b.frames, np.int64(honour), sample_at, es)
        return
    if order != ORDER_LRU:
        raise ValueError("the two-thread replay is for exact LRU only")
    replay_pipelined(es, chunk, i0, page_guest, ends, b.frames, honour, sample_at, max(1, int(step)))


def replay_pipelined(
    es: EngineState, chunk: Chunk, i0: int, page_guest, ends, frames_max, honour: int, sample_at, step: int
) -> None:
    """Replay ``chunk`` at each budget in turn on two threads (exact LRU): the LRU walk
    (:func:`cmmsim.replay.lru_ahead.walk_victims`) a step ahead of the state machine."""
    size = min(step, len(chunk.page))
    bufs = [
        (np.empty(size, np.int32), np.empty(size, np.int32)) for _ in range(_PIPELINE_BUFFERS)
    ]  # a step's victims and its accesses' positions
    scratch = np.empty(size, chunk.page.dtype)  # the walker's accesses of a step
    with ThreadPoolExecutor(1, thread_name_prefix="cmmsim-lru") as pool:
        for b in range(len(frames_max)):
            _replay_pipelined_one(
                pool, bufs, scratch, b, es, chunk, i0, page_guest, ends, frames_max, honour, sample_at, step
            )


def _replay_pipelined_one(pool, bufs, scratch, b, es, chunk, i0, page_guest, ends, frames_max, honour, sample_at, step):
    n = len(chunk.page)
    # The walker's own frame count and next free slot.
    ahead = es.sc[b, [SC_RESIDENT, SC_NEXT_SLOT]].copy()
    n_slot, n_window, n_classes, n_lev, _ = _sizes(len(page_guest), int(frames_max[b]), ORDER_LRU)
    lru = (es.slot[b, :n_slot], es.slot_page[b, :n_window], es.bits[b, :n_classes], es.levels[b, : n_lev + 1])
    starts = range(0, n, step)

    def walk(k):
        s = starts[k]
        victims, positions = bufs[k % len(bufs)]
        return walk_victims(
            chunk.page[s : s + step], chunk.op[s : s + step], *lru, frames_max[b], ahead, victims, scratch, positions
        )

    # The walker thread owns the slot arrays and `ahead`, the calling thread
    # everything else.
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
        _replay_given_chunk(
            Chunk(*(a[s:e] for a in chunk)),
            np.int64(i0 + s),
            page_guest,
            ends,
            frames_max,
            np.int64(honour),
            sample_at,
            es,
            victims[:n_victims],
            np.int64(b),
            positions[:n_accesses] if accesses_only else None,
        )
        if es.sc[b, SC_TAKEN] != n_victims:
            raise RuntimeError(
                f"replay pipeline out of step: {n_victims} victims listed, {int(es.sc[b, SC_TAKEN])} taken"
            )
    es.sc[b, SC_NEXT_SLOT] = ahead[1]


def replay_finish(es: EngineState, page_guest, n_events: int) -> None:
    """Samples due after the last event, and the event-weighted sums (after the last chunk)."""
    for k in range(len(es.sc)):
        _replay_finish(es.state[k], page_guest, es.samples[k], es.cnt[k], es.res_g[k], es.mark_g[k], es.sc[k], n_events)


def next_chunk_events(events: int, seconds: float) -> int:
    """Events of the next chunk of a replay that reports its progress, after a chunk
    of ``events`` took ``seconds``: about :data:`PROGRESS_CHUNK_S` of work."""
    return max(MIN_PROGRESS_CHUNK_EVENTS, int(events * PROGRESS_CHUNK_S / max(seconds, 1e-6)))


def run(
    events,
    budgets,
    *,
    honour: int,
    order: int,
    initial: int,
    sample_at: np.ndarray | None = None,
    keep_final: bool = False,
    path: str | None = None,
    tier_pages: int = 0,
    on_events: Callable[[int], None] | None = None,
    chunk_events: int | None = None,
) -> EngineResult:
    """Replay a scenario's events at every budget.

    Parameters
    ----------
    events : cmmsim.replay.scenario.Scenario
        Merged events (``t_ns``, global ``page`` index, ``op``) and ``page_guest``.
    budgets : sequence of int or cmmsim.replay.budgets.Budgets
        Host memory budgets, frames (each >= 1).
    honour : int
        Bit mask ``1 << op`` of the hint ops the host acts on.
    order : int
        ``ORDER_LRU``, ``ORDER_CLOCK``, ``ORDER_CLASS`` or ``ORDER_TWO_LIST``.
    initial : int
        State byte every page starts in.
    sample_at : ndarray[int64], optional
        Times (ns) at which to count pages per state pair.
    keep_final : bool
        Return every page's final state byte.
    path : str, optional
        :mod:`cmmsim.replay.planner`'s choice (``MARKER``, ``PIPELINE`` or ``PARALLEL``);
        chosen when None (``MARKER`` falls back to the others beyond
        :data:`cmmsim.replay.marker.MAX_EVENTS` events or :data:`MAX_LIVE_BYTES`).
    tier_pages : int
        Capacity of the host's fast swap tier, pages (:mod:`cmmsim.replay.kernels.tier`);
        0, no tier: the replay without one, bit for bit.
    on_events : callable, optional
        Progress: called with the events of each chunk once replayed. The events
        are then fed a chunk at a time (as a stream is, :mod:`cmmsim.replay.stream`):
        the same integers as in one call.
    chunk_events : int, optional
        Events per chunk with ``on_events``; by default the first chunk holds
        :data:`MIN_PROGRESS_CHUNK_EVENTS` and the next are sized by
        :func:`next_chunk_events` (the cuts depend on the machine's pace, the
        integers do not).
    """
    b = validated(budgets, events.n_pages)
    if order not in (ORDER_LRU, ORDER_CLOCK, ORDER_CLASS, ORDER_TWO_LIST):
        raise ValueError(f"unknown victim order {order}")
    if is_resident(np.uint8(initial)):
        # Every page starts out of host memory: a resident page would need a frame.
        raise ValueError(f"initial state {initial:#x} is host-resident")
    at = np.zeros(0, np.int64) if sample_at is None else np.ascontiguousarray(sample_at, np.int64)
    es = alloc_state(events.n_pages, events.n_guests, b, order, initial, len(at), tier_pages)
    n = len(events.page)
    if path is None:
        path = planner.choose(
            exact_lru=order == ORDER_LRU,
            state_priority=order == ORDER_CLASS,
            n_budgets=len(b),
            n_events=n,
            in_memory=True,
        )
    if path == planner.MARKER:
        if order not in (ORDER_LRU, ORDER_CLASS):
            raise ValueError("the marker replay is for exact LRU and state-priority only")
        rows = 1 if order == ORDER_LRU else N_CLASSES
        if n > MAX_EVENTS or len(b) * rows * live_words(n) * 8 > MAX_LIVE_BYTES:
            path = None  # beyond these, the time slots (a window per budget, not a bit per event)
        elif order == ORDER_LRU:
            live = np.zeros((len(b), live_words(n)), np.uint64)
            es.sc[:, SC_HAND] = -1  # the marker: not set until the frames fill
        else:
            live = np.zeros((len(b), N_CLASSES, live_words(n)), np.uint64)
            classes = new_classes(len(b))
            heaps = new_heaps(len(b), int(b.frames.max()))
            walk = Walk(walk_mode(len(b), nb.get_num_threads(), n), events.n_pages, walk_step(n))
        ends = guest_ends_of(events.page_guest, events.n_guests)
    size = max(1, n if on_events is None else int(chunk_events or MIN_PROGRESS_CHUNK_EVENTS))
    i0 = 0
    while True:
        e = min(n, i0 + size)
        cut = slice(i0, e)
        t0 = time.perf_counter()
        if path == planner.MARKER:
            chunk = Chunk(events.t_ns[cut], events.page[cut], events.op[cut], events.guest[cut])
            args = (events.page, chunk, np.int64(i0), events.page_guest, ends, b.frames, np.int64(honour), at, es, live)
            if order == ORDER_LRU:
                marker_budgets(*args)
            else:
                replay_walked(*args, classes, heaps, walk)
        else:
            replay_chunk(
                es,
                events.t_ns[cut],
                events.page[cut],
                events.op[cut],
                events.guest[cut],
                i0,
                events.page_guest,
                b,
                honour,
                order,
                at,
                path=path,
            )
        if on_events is not None:
            if not chunk_events:
                size = next_chunk_events(e - i0, time.perf_counter() - t0)
            on_events(e - i0)
        i0 = e
        if i0 >= n:
            break
    replay_finish(es, events.page_guest, n)
    final = es.state if keep_final else np.zeros((0, events.n_pages), np.uint8)
    return EngineResult(
        b.pages, es.cnt, es.host[:, 0].copy(), es.host[:, 1].copy(), final, es.samples, tier_pages=tier_pages
    )
