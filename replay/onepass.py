"""Every budget in one pass for LRU host paging (Mattson's stack algorithm, exact).

LRU has the inclusion property: at budget B the host holds the B most recently
used pages. So one LRU stack serves every budget, and a page's *zone* (the
number of budgets it is out at) is all an access needs to know.

The stack is kept as time, not as a list: each page remembers the position of
its last access (its *slot*), a bitmap marks the slots still live (a page's
newest access), and a marker per budget holds the slot of the page at depth B.
A page is resident at budget k exactly when its slot is not older than marker
k, so its zone is the number of markers newer than its slot. An access from
zone z pushes the page on each of those z markers across it (an eviction at
that budget) and the marker moves to the next live slot: a scan forward in a
bitmap, not a pointer chase, and no Fenwick tree. Each marker only ever moves
forward, so its scanning is bounded by the trace's length.

What an eviction or a fault costs follows from two prefixes per page, because
a page sinking through the stack crosses the markers in order of increasing
budget:

* ``clean_upto``: the page is clean w.r.t. its preserved copy at budgets
  below it (a write sets it to 0: changed everywhere; writing the page out at
  budget k, or paging it in there, makes budgets up to k clean);
* ``copy_upto``: the host holds a preserved copy at budgets below it.

Crossings at budgets at or above ``clean_upto`` are host writes, the others
no-I/O discards; an access from zone z costs a host read at budgets below
``min(z, copy_upto)`` and a zero fill at the rest below z. Each is a range of
budgets from 0 up, so a histogram of its upper ends per guest is all the pass
keeps (budget k counts the entries above k, summed once at the end), and a
page's crossings are settled when it is next accessed (or at the end): the zone
says how far it sank. Only the moves
of frames between guests (several guests) are counted at the crossing. This
covers ``host-lru`` with exact LRU (no hints: every page stable), and gives the
same integers as one replay per budget (the tests check it).

``cmm`` with ``state-priority`` is no stack algorithm: a page's class can depend on
whether the host evicted it (an evicted clean potentially-volatile page comes back
volatile and stays in the cheap class when written), so the resident sets of two
budgets need not nest and no pass of this kind gives its integers
(docs/perf-log.md, "All budgets in one pass").
"""

from __future__ import annotations

from collections.abc import Callable

import numba as nb
import numpy as np

from cmmsim.replay.budgets import validated
from cmmsim.replay.kernels.prefetch import EVENTS_AHEAD, prefetch
from cmmsim.replay.marker import next_live
from cmmsim.replay.numba_threads import numba_threads
from cmmsim.replay.result import EngineResult, without_states
from cmmsim.replay.states import (
    C_ACCESSES,
    C_DISCARDS,
    C_HOST_READS,
    C_HOST_WRITES,
    C_PEAK,
    C_SUM,
    C_ZERO_FILLS,
    N_COUNTERS,
    OP_WRITE,
)
from cmmsim.replay.watch import reached, watched


@nb.njit(cache=True, inline="always")
def _area(res, mark, acc, g, k, i, delta):
    acc[g, k] += res[g, k] * (i - mark[g, k])
    mark[g, k] = i
    res[g, k] += delta


@nb.njit(cache=True, inline="always")
def _gain(res, mark, acc, peak, g, k, i):
    """Guest ``g`` takes one more frame at budget ``k`` at event ``i``."""
    _area(res, mark, acc, g, k, i, 1)
    if res[g, k] > peak[g, k]:
        peak[g, k] = res[g, k]


_SIX = np.uint64(6)


# Columns of the per-page table: one row per page, so an access touches one line.
# LAST: one past the last access's position (0: never accessed); FLAGS:
# clean_upto in the low 16 bits, copy_upto above (a group has < 2^16 budgets).
LAST, FLAGS = range(2)
_CLEAN = 0xFFFF
_COPY_SHIFT = 16


@nb.njit(cache=True, inline="always")
def _settle(flags, z):
    """Page flags after the page sank across markers 0..z-1, and its discard extent.

    It crossed them in order of increasing budget: below ``clean_upto`` each
    crossing dropped a clean page (a discard), from there on each wrote it out,
    and a write leaves a preserved copy that is clean up to that budget. The
    crossings below the returned extent were discards, the rest writes.
    """
    c0 = flags & _CLEAN
    copy = flags >> _COPY_SHIFT
    # Branch-free (whether z passes clean_upto is a coin toss per access):
    # written out at c0..z-1 when z > c0, so clean and a copy up to z there.
    copy = max(copy, z * (z > c0))
    return max(c0, z) | (copy << _COPY_SHIFT), min(c0, z)


@nb.njit(cache=True, nogil=True)
def _lru_all(page, op, guest, page_guest, n_guests, budgets, pg, done, slot, mask):
    """One pass over the events; ``budgets`` sorted ascending, distinct.

    ``pg`` is the per-page table, zeroed (n_pages x 2, uint32 when event
    positions fit: 8 bytes per page to fetch). Zero means never
    accessed, so a fresh calloc'ed table costs nothing for pages the trace
    never touches. ``guest`` is None for one guest: numba then compiles the
    pass without the per-guest frame accounting (``guest is None`` is decided
    when it compiles), and the pass keeps fewer values live. Progress: the
    event index goes to ``done[slot]`` at each index with ``i & mask == 0``
    (:func:`cmmsim.replay.watch.watched`).
    """
    n_pages = page_guest.shape[0]
    nb_ = budgets.shape[0]
    n = page.shape[0]
    live = np.zeros(n // 64 + 1, np.uint64)
    # at[k]: the slot of the page at depth budgets[k], for the k_full budgets
    # already full (a prefix: budgets ascend).
    at = np.full(nb_, -1, np.int64)
    k_full = 0
    size = 0
    arrival = np.empty(n_pages, np.int64)  # when the stack grew to j + 1 pages
    newcomer = np.empty(n_pages, np.int64)  # and the page that made it grow
    # Histograms per guest: budget k counts the entries above k (see the end).
    h_zone = np.zeros((n_guests, nb_ + 1), np.int64)  # re-accesses by zone
    h_left = np.zeros((n_guests, nb_ + 1), np.int64)  # pages settled at the end, by zone
    h_discard = np.zeros((n_guests, nb_ + 1), np.int64)  # settlements by discard extent
    h_read = np.zeros((n_guests, nb_ + 1), np.int64)  # re-accesses by read extent
    accesses = np.zeros(n_guests, np.int64)
    new = np.zeros(n_guests, np.int64)
    # Frames per guest and budget (kept only with several guests: one guest
    # holds every resident frame, which the stack's size already says).
    res = np.zeros((n_guests, nb_), np.int64)
    mark = np.zeros((n_guests, nb_), np.int64)
    acc = np.zeros((n_guests, nb_), np.int64)
    peak = np.zeros((n_guests, nb_), np.int64)
    one = np.uint64(1)
    n_accesses = 0
    n_new = 0
    flat = pg.reshape(-1)
    for i in range(n):
        if i + EVENTS_AHEAD < n:
            prefetch(flat, np.uint64(page[i + EVENTS_AHEAD]) * np.uint64(2))
        if (i & mask) == 0 and reached(done, slot, i):
            break
        if op[i] > OP_WRITE:
            continue  # the host sees no hints
        p = np.uint64(page[i])  # unsigned: see cmmsim.replay.marker.next_live
        # A counter in memory would chain every access through a store and a
        # load of the same word; one guest keeps it in a register.
        if guest is None:
            g = 0
            n_accesses += 1
        else:
            g = guest[i]
            accesses[g] += 1
        tp = np.int64(pg[p, LAST]) - 1  # stored one up: 0 is "never"
        pg[p, LAST] = i + 1
        # p moves to the top: its old slot dies, slot i is the newest. A slot
        # below every marker, once all budgets are full, is never scanned
        # again (markers only move up): its bit may stay, which spares a
        # store to a far bitmap word for each access that misses everywhere
        # (the 20-budget pass on the bench stream 0.93x its time).
        if tp >= 0 and (k_full < nb_ or tp > at[nb_ - 1]):
            live[np.uint64(tp) >> _SIX] &= ~(one << np.uint64(tp & 63))
        live[i >> 6] |= one << np.uint64(i & 63)
        # Each full budget whose marker is newer than p's old slot (all of them
        # for a new page): p came from below it, so the page on it is pushed
        # across (an eviction at that budget) and the next newer live slot
        # takes its place. The markers' slots fall as the budget grows, so
        # these are the first kz. (One loop finds and moves them: a second,
        # of the same data-dependent length, would mispredict its exit again.)
        kz = 0
        while kz < k_full and at[kz] > tp:
            t = at[kz]
            if guest is not None:
                gv = guest[t]  # an event's guest is its page's guest (scenario.from_arrays)
                if gv != g:
                    # A frame passes from gv to g at budget kz. (Within one guest
                    # its resident count, hence its frame-time sum, is unchanged.)
                    _area(res, mark, acc, gv, kz, i, -1)
                    _gain(res, mark, acc, peak, g, kz, i)
            at[kz] = next_live(live, t)
            kz += 1
        if tp >= 0 and kz < k_full and at[kz] == tp:
            # p sat on marker kz (a hit there): the next newer page takes its place.
            at[kz] = next_live(live, tp)
        # Zone: out at the z smallest budgets.
        if tp < 0:
            z = nb_
            pg[p, FLAGS] = nb_  # clean at every budget, a preserved copy at none
            # First touch: a zero fill at every budget (counted once, at the end).
            if guest is None:
                n_new += 1
            else:
                new[g] += 1
                for k in range(kz, nb_):
                    # Budget k is not full yet: p's guest just gains a frame there.
                    _gain(res, mark, acc, peak, g, k, i)
            # The stack grows by one page.
            arrival[size] = i
            newcomer[size] = p
            size += 1
            while k_full < nb_ and budgets[k_full] == size:
                at[k_full] = next_live(live, -1)  # the oldest page
                k_full += 1
            if op[i] == OP_WRITE:
                pg[p, FLAGS] = 0  # changed at every budget, a preserved copy at none
        else:
            # Out at the z smallest budgets (z = 0: a hit everywhere). Every
            # re-access is counted the same way, without a branch on z: which
            # accesses fault is what a predictor cannot learn.
            z = kz
            flags, lo = _settle(np.int64(pg[p, FLAGS]), z)
            h_zone[g, np.uint64(z)] += 1
            h_discard[g, np.uint64(lo)] += 1
            # A fault at the z smallest budgets: a page-in where a copy is kept.
            h_read[g, np.uint64(min(z, flags >> _COPY_SHIFT))] += 1
            # A write leaves the page clean nowhere.
            pg[p, FLAGS] = flags & ~(_CLEAN * (op[i] == OP_WRITE))
    if guest is None:
        accesses[0] = n_accesses
        new[0] = n_new
    # Pages never accessed again still owe the markers they sank across.
    for j in range(size):
        q = newcomer[j]
        tq = np.int64(pg[q, LAST]) - 1
        z = 0
        while z < k_full and at[z] > tq:
            z += 1
        lo = _settle(np.int64(pg[q, FLAGS]), z)[1]
        h_left[page_guest[q], z] += 1
        h_discard[page_guest[q], lo] += 1
    # Frame-time at budget B: the j-th page to arrive holds a frame from then
    # on at every budget above j (LRU keeps the stack's top B resident).
    host_peak = np.minimum(budgets, size)
    held = np.zeros(size + 1, np.int64)
    held[1:] = np.cumsum(n - arrival[:size])
    host_sum = np.empty(nb_, np.int64)
    for k in range(nb_):
        host_sum[k] = held[host_peak[k]]
    cnt = np.zeros((nb_, n_guests, N_COUNTERS), np.int64)
    for g in range(n_guests):
        # Budget k: faults and crossings are the zones above k, reads the read
        # extents above k, discards the discard extents above k; the other
        # faults were zero fills (as was every first touch), the other
        # crossings writes.
        faults = 0
        crossed = 0
        reads = 0
        discards = 0
        for k in range(nb_ - 1, -1, -1):
            faults += h_zone[g, k + 1]
            crossed += h_zone[g, k + 1] + h_left[g, k + 1]
            reads += h_read[g, k + 1]
            discards += h_discard[g, k + 1]
            cnt[k, g, C_ACCESSES] = accesses[g]
            cnt[k, g, C_HOST_READS] = reads
            cnt[k, g, C_ZERO_FILLS] = faults - reads + new[g]
            cnt[k, g, C_HOST_WRITES] = crossed - discards
            cnt[k, g, C_DISCARDS] = discards
            if n_guests == 1:
                cnt[k, g, C_PEAK] = host_peak[k]
                cnt[k, g, C_SUM] = host_sum[k]
            else:
                cnt[k, g, C_PEAK] = peak[g, k]
                cnt[k, g, C_SUM] = acc[g, k] + res[g, k] * (n - mark[g, k])
    return cnt, host_peak, host_sum


@nb.njit(cache=True, nogil=True, parallel=True)
def _lru_groups(page, op, guest, page_guest, n_guests, budgets, starts, pgs, cnt, peak, hsum, done, mask):
    """Budget group k (``budgets[starts[k]:starts[k + 1]]``, ascending) passes in its own thread,
    its progress in ``done[k]``.

    One compiled call for all groups: threads handed around in Python wait on
    the interpreter lock at each call and return, which costs more than a short
    pass.
    """
    for k in nb.prange(pgs.shape[0]):
        lo, hi = starts[k], starts[k + 1]
        c, p, h = _lru_all(
            page, op, guest, page_guest, n_guests, np.ascontiguousarray(budgets[lo:hi]), pgs[k], done, np.int64(k), mask
        )
        # Element by element: an array assigned to a slice makes numba compile its
        # shape-mismatch message (its string formatting, seconds of CPU per process).
        for j in range(hi - lo):
            for g in range(c.shape[1]):
                for x in range(c.shape[2]):
                    cnt[lo + j, g, x] = c[j, g, x]
            peak[lo + j] = p[j]
            hsum[lo + j] = h[j]


def _deal(n_budgets: int, n_groups: int) -> np.ndarray:
    """Group of each of ``n_budgets`` ascending budgets: dealt 0, 1, .., G-1, G-1, .., 0, 0, ..

    The smaller budgets cost more (more misses, so more marker crossings); dealing
    back and forth evens that out better than every G-th budget, whose first group
    would always get the smallest budget of each round.
    """
    lane = np.arange(n_budgets) % (2 * n_groups)
    return np.where(lane < n_groups, lane, 2 * n_groups - 1 - lane)


def run_lru_all(
    scenario, budgets, threads: int | None = None, on_events: Callable[[int], None] | None = None
) -> EngineResult:
    """``host-lru`` (exact LRU) at every budget in one pass; budgets in any order.

    Parameters
    ----------
    scenario : Scenario
        The merged guest traces.
    budgets : array_like of int or cmmsim.replay.budgets.Budgets
        Host budgets in frames (pages), each >= 1; repeats allowed.
    threads : int, optional
        How many groups to deal the budgets into (default: numba's thread
        count), back and forth (:func:`_deal`), so each group gets its share of
        the small, miss-heavy ones. The groups pass side by side on numba's
        threads, each repeating the stack moves and taking its budgets'
        crossings. More than 65535 budgets make more groups.
    on_events : callable, optional
        Progress: called with the events passed since its last call, every
        event once in all, while the pass runs (:func:`cmmsim.replay.watch.watched`).

    Returns
    -------
    EngineResult
        Counters per budget (in the order given) and guest, host peak frames
        and frame-event sums; no final states and no samples.
    """
    # The pass needs no clamp: a budget past the pages there are never fills.
    b = validated(budgets, scenario.n_pages).pages
    uniq, back = np.unique(b, return_inverse=True)
    n_threads = max(1, min(nb.get_num_threads() if threads is None else int(threads), len(uniq)))
    # A page's flags hold budget indices in 16 bits: at most 65535 budgets a group.
    n_groups = max(n_threads, -(-len(uniq) // _CLEAN))
    # One past an event's position fits 32 bits in all but giant traces: 8-byte page rows.
    table = np.uint32 if scenario.n_events < np.iinfo(np.uint32).max else np.uint64

    # Each group's budgets side by side, ascending (a stable sort by group).
    group = _deal(len(uniq), n_groups)
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(n_groups + 1))
    cnt = np.empty((len(uniq), scenario.n_guests, N_COUNTERS), np.int64)
    peak = np.empty(len(uniq), np.int64)
    hsum = np.empty(len(uniq), np.int64)
    # Zeroed lazily by the system: a group pays only for the pages the trace touches.
    pgs = np.zeros((n_groups, scenario.n_pages, 2), table)
    with numba_threads(min(n_threads, nb.config.NUMBA_NUM_THREADS)):
        watched(
            lambda done, mask: _lru_groups(
                scenario.page,
                scenario.op,
                scenario.guest if scenario.n_guests > 1 else None,
                scenario.page_guest,
                scenario.n_guests,
                uniq[order],
                starts,
                pgs,
                cnt,
                peak,
                hsum,
                done,
                mask,
            ),
            n_groups,
            scenario.n_events,
            on_events,
        )
    # Rows are in group order: budget j of the ascending list sits at row rank[j];
    # the budgets as given are back[...] of that list.
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    rows = rank[back]
    return without_states(
        b,
        cnt[rows],
        np.stack([peak[rows], hsum[rows]], axis=1),
        np.zeros((0, scenario.n_pages), np.uint8),
        scenario.n_guests,
    )
