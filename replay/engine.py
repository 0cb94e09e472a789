"""The replay engine: page state machines under a host memory budget.

Three layers, as in STUMPY:

* ``_replay_body`` (numba, inlined): a run of events at one budget, resumable
  (all its state is in arrays, a :class:`BudgetState`, so a trace can stream
  through it in chunks);
* ``_replay_budgets_chunk`` (``parallel=True``): the same for many budgets,
  one budget per thread; ``_replay_given_chunk`` and :mod:`replay.lru_ahead`:
  one exact-LRU budget on two threads (the LRU walk ahead of the state
  machine, :func:`replay_pipelined`); :mod:`replay.planner` chooses;
* :func:`run` (plain Python): allocates the state (:func:`alloc_state`),
  replays, shapes the output.

The guest/host state machine is DESIGN.md section 2 and
:mod:`replay.kernels.state_machine`; the state byte is described in
:mod:`replay.states`. Victims are chosen by one host policy of four, each a
victim helper (``_victim_*``) plus its bookkeeping when a page gets a frame
(``_admit``) or is used again (``_hit``), its twin in
:class:`replay.reference.ReferenceHost`:

``ORDER_LRU``
    exact LRU over all resident frames (:mod:`replay.kernels.lru_list`);
``ORDER_CLOCK``
    CLOCK (second chance) over a frame table;
``ORDER_CLASS``
    exact LRU inside reclaim classes, cheapest class first (U, then V and
    clean P, then the rest): :mod:`replay.kernels.lazy_heap`;
``ORDER_GIVEN`` (internal)
    exact LRU with the victims computed ahead by :mod:`replay.lru_ahead` and
    passed in: the state machine runs alone.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numba as nb
import numpy as np

from replay import planner
from replay.budgets import validated
from replay.kernels import lazy_heap
from replay.kernels.guest_ranges import guest_ends_of, guest_of
from replay.kernels.lru_list import evict_lru, init_list, push_mru, touch
from replay.kernels.prefetch import EVENTS_AHEAD, prefetch
from replay.kernels.reclaim_classes import RULE_RESIDENT
from replay.kernels.resident import peak, resident_close, resident_delta
from replay.kernels.state_machine import (
    hint,
    host_state,
    is_resident,
    page_in,
    reclaim,
    reclaim_class,
    repaired,
)
from replay.lru_ahead import walk_victims
from replay.result import EngineResult
from replay.states import (
    C_ACCESSES,
    C_CONTENT_LOST,
    C_HINTS,
    C_REPAIRS,
    CHANGED,
    DIRTY,
    G_U,
    GUEST_MASK,
    H_R,
    HONOUR_NONE,
    HOST_MASK,
    HOST_SHIFT,
    N_COUNTERS,
    N_HOST_STATES,
    OP_WRITE,
    PAIR_OF,
    PAIRS,
    REF,
)

__all__ = ["ENGINE_VERSION", "ORDERS", "ORDER_CLASS", "ORDER_CLOCK", "ORDER_LRU", "BudgetState",
           "EngineResult", "EngineState", "alloc_state", "replay_chunk", "replay_finish",
           "replay_pipelined", "run"]

#: Bumped whenever a change to the engine can change a result.
ENGINE_VERSION = 2

ORDER_LRU, ORDER_CLOCK, ORDER_CLASS = 0, 1, 2
ORDERS = {"lru": ORDER_LRU, "clock": ORDER_CLOCK, "state-priority": ORDER_CLASS}
#: Exact LRU with the victims computed ahead (replay.lru_ahead) and passed in.
ORDER_GIVEN = 3
_PREFETCH_VICTIMS = 8  # evictions ahead (measured: 4-16 within noise)

# Kernel state of one budget between chunks: the arrays of BudgetState plus
# ``sc``, its scalars: resident frames, CLOCK hand, heap size, next sample, and
# the victims the last call took from ``victims`` under ORDER_GIVEN.
SC_RESIDENT, SC_HAND, SC_HSIZE, SC_SAMPLE, SC_TAKEN = range(5)
N_SCALARS = 5


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


#: One budget's rows of an :class:`EngineState`, the kernel's bundle of arrays (the
#: same fields): ``state`` the state byte per page; ``cnt`` the counters per guest;
#: ``res_g`` and ``mark_g`` resident frames per guest (:mod:`replay.kernels.resident`);
#: ``host`` the host's peak and frame-event sum; ``samples`` the state counts;
#: ``links`` the LRU list, ``frames`` CLOCK's frame table, ``stamp``, ``hkeys`` and
#: ``hpages`` the state-priority heap (each empty when its order is not in use);
#: ``sc`` the scalars (``SC_*``).
BudgetState = EngineState


class Chunk(NamedTuple):
    """A run of merged events: times (ns), global pages, ops, guests."""

    t_ns: np.ndarray
    page: np.ndarray
    op: np.ndarray
    guest: np.ndarray


_NO_VICTIMS = np.zeros(0, np.int32)


@nb.njit(cache=True)
def _count_states(state, page_guest, out):
    for p in range(state.shape[0]):
        st = state[p]
        k = PAIR_OF[(st & GUEST_MASK) * N_HOST_STATES + ((st & HOST_MASK) >> HOST_SHIFT)]
        if k >= 0:
            out[page_guest[p], k] += 1


@nb.njit(cache=True)
def _sizes(n_pages, frames_max, order):
    """(list nodes, CLOCK frames, heap entries, stamps) one budget's state needs."""
    return (n_pages + 1 if order == ORDER_LRU else 1,
            frames_max if order == ORDER_CLOCK else 0,
            2 * frames_max + lazy_heap.SLACK if order == ORDER_CLASS else 0,
            n_pages if order == ORDER_CLASS else 0)


def _init_links(links, n_list):
    # -1: not resident (only read by replay.lru_ahead, which has no state bytes).
    links[:] = -1
    init_list(links, n_list - 1)


# -- the host policies: victim, admission, hit ----------------------------------------------------
@nb.njit(cache=True, inline="always")
def _victim_given(victims, taken, state):
    """The next victim of the list walked ahead; asks for a later one's state byte."""
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
def _victim(order, bs, head, frames_max, hand, hsize, taken, victims):
    """Reclaim one frame's page by the host policy: (victim, its CLOCK frame, hand,
    heap size, victims taken)."""
    frame = -1
    if order == ORDER_LRU:
        v = evict_lru(bs.links, head)
    elif order == ORDER_GIVEN:
        v, taken = _victim_given(victims, taken, bs.state)
    elif order == ORDER_CLOCK:
        frame = _victim_clock(bs.state, bs.frames, hand, frames_max)
        hand = frame
        v = bs.frames[frame]
    else:
        v, hsize = lazy_heap.pop_current(bs.hkeys, bs.hpages, hsize, bs.state, bs.stamp,
                                         RULE_RESIDENT, -1)
    return v, frame, hand, hsize, taken


@nb.njit(cache=True, inline="always")
def _admit(order, bs, head, p, frame, hand, frames_max):
    """Page p got a frame (CLOCK: ``frame``); returns the CLOCK hand."""
    if order == ORDER_LRU:
        push_mru(bs.links, head, p)
    elif order == ORDER_CLOCK:
        bs.frames[frame] = p
        hand = frame + 1
        if hand == frames_max:
            hand = 0
    return hand


@nb.njit(cache=True, inline="always")
def _hit(order, bs, head, p, st):
    """Resident page p is used again; returns its state byte (CLOCK: referenced)."""
    if order == ORDER_LRU:
        touch(bs.links, head, p)
    elif order == ORDER_CLOCK:
        st |= REF
    return st


# -- the kernel -----------------------------------------------------------------------------------
@nb.njit(cache=True, inline="always")
def _replay_body(chunk, i0, page_guest, ends, frames_max, honour, order, sample_at, bs, victims,
                 acc_pos):
    """Replay ``chunk`` (events ``i0 ..``, global indices) at one budget, updating ``bs``.

    Under ``ORDER_GIVEN`` the k-th eviction of the call takes ``victims[k]``.
    ``ends``: one past each guest's last page (:func:`guest_ends_of`). Only the
    events at ``acc_pos`` are replayed unless it is None (for when no hint counts).
    """
    state = bs.state
    cnt = bs.cnt
    n_pages = page_guest.shape[0]
    n_samples = sample_at.shape[0]
    head = (n_pages + 1 if order == ORDER_LRU else 1) - 1
    resident = bs.sc[SC_RESIDENT]
    hand = bs.sc[SC_HAND]
    hsize = bs.sc[SC_HSIZE]
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
        # negative-index fix-up at every use (see replay.kernels.lru_list).
        uj = np.uint64(j)
        if order == ORDER_GIVEN and ahead < n:
            # The pages a few dozen events on are known: ask for their state
            # bytes now (replay.kernels.prefetch; the victims' at each eviction).
            prefetch(state, np.uint64(chunk.page[np.uint64(ahead)]))
        while s < n_samples and chunk.t_ns[uj] >= sample_at[s]:
            _count_states(state, page_guest, bs.samples[s])
            s += 1
        p = np.uint64(chunk.page[uj])
        g = chunk.guest[uj]
        o = chunk.op[uj]
        st = state[p]
        if o <= OP_WRITE:
            cnt[g, C_ACCESSES] += 1
            if (st & GUEST_MASK) == G_U:
                cnt[g, C_REPAIRS] += 1
                st = repaired(st)
            h = host_state(st)
            if h != H_R:
                frame = -1
                gv = -1  # the victim's guest, if a frame is reclaimed
                if resident >= frames_max:
                    # Reclaim one frame first: resident never exceeds the budget.
                    v, frame, hand, hsize, taken = _victim(order, bs, head, frames_max, hand,
                                                           hsize, taken, victims)
                    # The victim's guest from the guests' page ranges, not
                    # page_guest: a load at every eviction (host-lru 98 -> 102 M
                    # events/s on the bench stream).
                    gv = guest_of(v, ends)
                    reclaim(v, gv, state, cnt)
                    resident -= 1
                elif order == ORDER_CLOCK:
                    frame = resident
                st = page_in(st, g, cnt)
                if gv != g:
                    # The frame passes from gv (if any) to g. (Within one guest its
                    # resident count, hence its frame-time sum, is unchanged.)
                    if gv >= 0:
                        resident_delta(cnt, bs.res_g, bs.mark_g, gv, i, -1)
                    resident_delta(cnt, bs.res_g, bs.mark_g, g, i, 1)
                    peak(cnt, bs.res_g, g)
                resident += 1
                if resident > res_peak:
                    res_peak = resident
                hand = _admit(order, bs, head, p, frame, hand, frames_max)
            else:
                st = _hit(order, bs, head, p, st)
            if o == OP_WRITE:
                st |= DIRTY | CHANGED
            state[p] = st
            if order == ORDER_CLASS:
                bs.stamp[p] = i
                if h != H_R:
                    hsize = lazy_heap.push(bs.hkeys, bs.hpages, hsize,
                                           lazy_heap.heap_key(reclaim_class(st), i), p, state,
                                           bs.stamp, RULE_RESIDENT)
        elif (honour >> o) & 1:
            cnt[g, C_HINTS] += 1
            new, lost = hint(st, o)
            cnt[g, C_CONTENT_LOST] += lost
            state[p] = new
            if (order == ORDER_CLASS and is_resident(new)
                    and reclaim_class(new) < reclaim_class(st)):
                hsize = lazy_heap.push_page(bs.hkeys, bs.hpages, hsize, p, state, bs.stamp,
                                            RULE_RESIDENT)
        res_sum += resident
    if acc_pos is not None:
        res_sum += resident * (n - 1 - jp)
    bs.host[0] = res_peak
    bs.host[1] = res_sum
    bs.sc[SC_RESIDENT] = resident
    bs.sc[SC_HAND] = hand
    bs.sc[SC_HSIZE] = hsize
    bs.sc[SC_SAMPLE] = s
    bs.sc[SC_TAKEN] = taken


@nb.njit(cache=True)
def _replay_finish(state, page_guest, samples, cnt, res_g, mark_g, sc, n_events):
    """Samples due after the last event, and the event-weighted sums."""
    while sc[SC_SAMPLE] < samples.shape[0]:
        _count_states(state, page_guest, samples[sc[SC_SAMPLE]])
        sc[SC_SAMPLE] += 1
    resident_close(cnt, res_g, mark_g, n_events)


# No reference counting in the replay kernels (_nrt=False; they allocate
# nothing): numba would otherwise incref and decref the arrays passed to each
# helper call (reclaim, page_in, resident_delta, the list and heap helpers)
# with atomic operations, per event. The arrays come from alloc_state, the
# caller keeps them alive.
@nb.njit(cache=True, nogil=True, _nrt=False)
def _replay_budget(chunk, i0, page_guest, ends, frames_max, honour, order, sample_at, bs, victims):
    """One chunk at one budget under ORDER_LRU, ORDER_CLOCK or ORDER_CLASS (``victims``
    unused: empty)."""
    # A call of its own, not inlined into the parallel loop below: numba's
    # parallel lowering loses stores made through a tuple of arrays built in
    # the loop's body and used by inlined code.
    _replay_body(chunk, i0, page_guest, ends, frames_max, honour, order, sample_at, bs, victims,
                 None)


@nb.njit(cache=True, parallel=True, nogil=True, _nrt=False)
def _replay_budgets_chunk(chunk, i0, page_guest, ends, frames, honour, order, sample_at, es,
                          victims):
    """One chunk of events for every budget (row ``b`` of each state array is budget ``b``)."""
    for b in nb.prange(frames.shape[0]):
        n_list, n_frames, n_heap, n_stamp = _sizes(page_guest.shape[0], frames[b], order)
        _replay_budget(chunk, i0, page_guest, ends, frames[b], honour, order, sample_at,
                       BudgetState(es.state[b], es.cnt[b], es.res_g[b], es.mark_g[b], es.host[b],
                                   es.samples[b], es.links[b, :2 * n_list],
                                   es.frames[b, :n_frames], es.stamp[b, :n_stamp],
                                   es.hkeys[b, :n_heap], es.hpages[b, :n_heap], es.sc[b]),
                       victims)


# The state machine's side of the two-thread replay: one budget, called
# from the thread that runs it (a parallel region here would launch numba's
# worker threads beside the LRU walker's and they would take turns on two cores).
@nb.njit(cache=True, nogil=True, _nrt=False)
def _replay_given_chunk(chunk, i0, page_guest, ends, frames, honour, sample_at, es, victims, b,
                        acc_pos):
    """One chunk of events at budget b under ORDER_GIVEN (the list arrays go unused);
    only the events at ``acc_pos`` unless it is None (for when no hint counts)."""
    bs = BudgetState(es.state[b], es.cnt[b], es.res_g[b], es.mark_g[b], es.host[b], es.samples[b],
                     es.links[b, :2], es.frames[b, :0], es.stamp[b, :0], es.hkeys[b, :0],
                     es.hpages[b, :0], es.sc[b])
    _replay_body(chunk, i0, page_guest, ends, frames[b], honour, ORDER_GIVEN, sample_at, bs,
                 victims, acc_pos)


def alloc_state(n_pages: int, n_guests: int, budgets, order: int, initial: int,
                n_samples: int) -> EngineState:
    """Fresh engine state for ``budgets`` (frames, or :class:`replay.budgets.Budgets`)
    over ``n_pages`` pages."""
    fr = validated(budgets, n_pages).frames
    nb_ = len(fr)
    sizes = [_sizes(n_pages, int(x), order) for x in fr]
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
        samples=np.zeros((nb_, n_samples, n_guests, len(PAIRS)), np.int64),
        links=links,
        frames=np.empty((nb_, wide[1]), np.int32),
        stamp=np.zeros((nb_, wide[3]), np.int64),
        hkeys=np.empty((nb_, wide[2]), np.int64),
        hpages=np.empty((nb_, wide[2]), np.int32),
        sc=np.zeros((nb_, N_SCALARS), np.int64),
    )


_PIPELINE_BUFFERS = 3


def replay_chunk(es: EngineState, t_ns, page, op, guest, i0: int, page_guest, budgets,
                 honour: int, order: int, sample_at, *, path: str | None = None,
                 step: int | None = None) -> None:
    """Replay events ``i0 ..`` (global indices) at every budget, updating ``es`` in place.

    ``path`` is :mod:`replay.planner`'s (``PIPELINE`` or ``PARALLEL``), chosen by
    it when None; ``step`` the pipeline's events per step. Both ways give the same
    integers and leave the same state, so they can alternate between the chunks
    of a stream.
    """
    b = validated(budgets, len(page_guest))
    if step is None:
        step = planner.pipeline_step(len(page))
    if path is None:
        path = planner.choose(exact_lru=order == ORDER_LRU, n_budgets=len(b),
                              n_distinct=b.distinct, n_events=len(page), step=step)
    ends = guest_ends_of(page_guest, es.cnt.shape[1])
    chunk = Chunk(t_ns, page, op, guest)
    if path != planner.PIPELINE or len(page) == 0:
        _replay_budgets_chunk(chunk, np.int64(i0), page_guest, ends, b.frames, np.int64(honour),
                              np.int64(order), sample_at, es, _NO_VICTIMS)
        return
    if order != ORDER_LRU:
        raise ValueError("the two-thread replay is for exact LRU only")
    replay_pipelined(es, chunk, i0, page_guest, ends, b.frames, honour, sample_at,
                     max(1, int(step)))


def replay_pipelined(es: EngineState, chunk: Chunk, i0: int, page_guest, ends, frames_max,
                     honour: int, sample_at, step: int) -> None:
    """Replay ``chunk`` at each budget in turn on two threads (exact LRU): the LRU walk
    (:func:`replay.lru_ahead.walk_victims`) a step ahead of the state machine."""
    size = min(step, len(chunk.page))
    bufs = [(np.empty(size, np.int32), np.empty(size, np.int32))
            for _ in range(_PIPELINE_BUFFERS)]  # a step's victims and its accesses' positions
    scratch = np.empty(size, chunk.page.dtype)  # the walker's accesses of a step
    with ThreadPoolExecutor(1, thread_name_prefix="cmmsim-lru") as pool:
        for b in range(len(frames_max)):
            _replay_pipelined_one(pool, bufs, scratch, b, es, chunk, i0, page_guest, ends,
                                  frames_max, honour, sample_at, step)


def _replay_pipelined_one(pool, bufs, scratch, b, es, chunk, i0, page_guest, ends, frames_max,
                          honour, sample_at, step):
    n = len(chunk.page)
    ahead = es.sc[b, SC_RESIDENT: SC_RESIDENT + 1].copy()  # the list's own frame count
    starts = range(0, n, step)

    def walk(k):
        s = starts[k]
        victims, positions = bufs[k % len(bufs)]
        return walk_victims(chunk.page[s:s + step], chunk.op[s:s + step], es.links[b],
                            frames_max[b], ahead, victims, scratch, positions)

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
        _replay_given_chunk(Chunk(*(a[s:e] for a in chunk)), np.int64(i0 + s), page_guest, ends,
                            frames_max, np.int64(honour), sample_at, es, victims[:n_victims],
                            np.int64(b), positions[:n_accesses] if accesses_only else None)
        if es.sc[b, SC_TAKEN] != n_victims:
            raise RuntimeError(f"replay pipeline out of step: {n_victims} victims listed, "
                               f"{int(es.sc[b, SC_TAKEN])} taken")


def replay_finish(es: EngineState, page_guest, n_events: int) -> None:
    """Samples due after the last event, and the event-weighted sums (after the last chunk)."""
    for k in range(len(es.sc)):
        _replay_finish(es.state[k], page_guest, es.samples[k], es.cnt[k], es.res_g[k],
                       es.mark_g[k], es.sc[k], n_events)


def run(events, budgets, *, honour: int, order: int, initial: int,
        sample_at: np.ndarray | None = None, keep_final: bool = False,
        path: str | None = None) -> EngineResult:
    """Replay a scenario's events at every budget.

    Parameters
    ----------
    events : replay.scenario.Scenario
        Merged events (``t_ns``, global ``page`` index, ``op``) and ``page_guest``.
    budgets : sequence of int or replay.budgets.Budgets
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
    path : str, optional
        :mod:`replay.planner`'s choice (``PIPELINE`` or ``PARALLEL``); chosen when None.
    """
    b = validated(budgets, events.n_pages)
    if order not in (ORDER_LRU, ORDER_CLOCK, ORDER_CLASS):
        raise ValueError(f"unknown victim order {order}")
    if is_resident(np.uint8(initial)):
        # Every page starts out of host memory: a resident page would need a frame.
        raise ValueError(f"initial state {initial:#x} is host-resident")
    at = np.zeros(0, np.int64) if sample_at is None else np.ascontiguousarray(sample_at, np.int64)
    es = alloc_state(events.n_pages, events.n_guests, b, order, initial, len(at))
    replay_chunk(es, events.t_ns, events.page, events.op, events.guest, 0, events.page_guest, b,
                 honour, order, at, path=path)
    replay_finish(es, events.page_guest, len(events.page))
    final = es.state if keep_final else np.zeros((0, events.n_pages), np.uint8)
    return EngineResult(b.pages, es.cnt, es.host[:, 0].copy(), es.host[:, 1].copy(), final,
                        es.samples)
