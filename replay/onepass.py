"""Every budget in one pass for LRU host paging (Mattson's stack algorithm, exact).

LRU has the inclusion property: at budget B the host holds the B most recently
used pages. So one LRU stack serves every budget: a marker per budget points at
the page sitting exactly at depth B, and an access that comes from below marker
k pushes that page across it, which is an eviction at budget k and nothing
else. Each access costs O(budgets crossed), not a stack-distance search:
there is no Fenwick tree and no walk.

What an eviction or a fault costs at each budget follows from two prefixes per
page, because a page sinking through the stack crosses the markers in order of
increasing budget:

* ``clean_upto``: the page is clean w.r.t. its preserved copy at budgets
  below it (a write sets it to 0: changed everywhere; writing the page out at
  budget k, or paging it in there, makes budgets up to k clean);
* ``copy_upto``: the host holds a preserved copy at budgets below it.

Crossing marker k costs a host write when ``k >= clean_upto`` (else a no-I/O
discard); an access from ``zone`` z (out at the z smallest budgets) costs a
host read at budgets below ``min(z, copy_upto)`` and a zero fill at the rest
below z. This covers ``host-lru`` with exact LRU (no hints: every page stable),
and gives the same integers as one replay per budget (the tests check it).

``cmm`` with ``state-priority`` is a stack algorithm too (its priority, class
then recency, does not depend on the budget: a page's class comes from the
guest's hints), but hints reorder the stack without an access, so markers
would need an order-statistics structure; it is not done here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from replay.engine import EngineResult
from replay.states import (
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


@nb.njit(cache=True, inline="always")
def _area(res, mark, acc, g, k, i, delta):
    acc[g, k] += res[g, k] * (i - mark[g, k])
    mark[g, k] = i
    res[g, k] += delta


# Columns of the per-page table: one row per page, so the fields of a page a
# marker crosses share a cache line.
UP, DOWN, ZONE, CLEAN, COPY, MARKER_OF, GUEST, IN_STACK = range(8)


@nb.njit(cache=True, nogil=True)
def _lru_all(page, op, guest, page_guest, n_guests, budgets):
    """One pass over the events; ``budgets`` sorted ascending, distinct."""
    n_pages = page_guest.shape[0]
    nb_ = budgets.shape[0]
    pg = np.empty((n_pages, 8), np.int32)
    for q in range(n_pages):
        pg[q, UP] = -1  # toward the most recent end
        pg[q, DOWN] = -1
        pg[q, ZONE] = nb_  # out at the zone smallest budgets
        pg[q, CLEAN] = nb_  # clean at budgets below this
        pg[q, COPY] = 0  # preserved copy at budgets below this
        pg[q, MARKER_OF] = -1  # the marker the page sits on (at most one)
        pg[q, GUEST] = page_guest[q]
        pg[q, IN_STACK] = 0
    top = -1
    bottom = -1
    size = 0
    marker = np.full(nb_, -1, np.int64)
    d_reads = np.zeros((n_guests, nb_ + 1), np.int64)
    d_zero = np.zeros((n_guests, nb_ + 1), np.int64)
    writes = np.zeros((n_guests, nb_), np.int64)
    discards = np.zeros((n_guests, nb_), np.int64)
    accesses = np.zeros(n_guests, np.int64)
    res = np.zeros((n_guests, nb_), np.int64)
    mark = np.zeros((n_guests, nb_), np.int64)
    acc = np.zeros((n_guests, nb_), np.int64)
    peak = np.zeros((n_guests, nb_), np.int64)
    h_res = np.zeros(nb_, np.int64)
    h_mark = np.zeros(nb_, np.int64)
    h_acc = np.zeros(nb_, np.int64)
    n = page.shape[0]
    for i in range(n):
        if op[i] > OP_WRITE:
            continue  # the host sees no hints
        p = page[i]
        g = guest[i]
        accesses[g] += 1
        z = pg[p, ZONE]
        r = min(z, pg[p, COPY])
        d_reads[g, 0] += 1
        d_reads[g, r] -= 1
        d_zero[g, r] += 1
        d_zero[g, z] -= 1
        # Markers below p's zone: the page on each is pushed across it (an
        # eviction at that budget) and the page above takes its place.
        kp = pg[p, MARKER_OF]  # read first: the loop may make p a marker too (budget 1)
        for k in range(z):
            v = marker[k]
            if v < 0:
                # Budget k is not full yet: p's guest just gains a frame there.
                _area(res, mark, acc, g, k, i, 1)
                if res[g, k] > peak[g, k]:
                    peak[g, k] = res[g, k]
                continue
            gv = pg[v, GUEST]
            if k >= pg[v, CLEAN]:
                writes[gv, k] += 1
                if k + 1 > pg[v, COPY]:
                    pg[v, COPY] = k + 1
                pg[v, CLEAN] = k + 1
            else:
                discards[gv, k] += 1
            pg[v, ZONE] = k + 1
            if gv != g:
                # A frame passes from gv to g at budget k. (Within one guest
                # its resident count, hence its frame-time sum, is unchanged.)
                _area(res, mark, acc, gv, k, i, -1)
                _area(res, mark, acc, g, k, i, 1)
                if res[g, k] > peak[g, k]:
                    peak[g, k] = res[g, k]
            w = pg[v, UP] if pg[v, UP] >= 0 else p
            marker[k] = w
            pg[v, MARKER_OF] = -1
            pg[w, MARKER_OF] = k
        if kp >= z and pg[p, UP] >= 0:
            # p sat on a marker at or above its zone: the page above takes its place.
            a = pg[p, UP]
            marker[kp] = a
            pg[a, MARKER_OF] = kp
            if pg[p, MARKER_OF] == kp:
                pg[p, MARKER_OF] = -1
        # Faulted in below its zone: clean there (page-in or zero fill).
        if z > pg[p, CLEAN]:
            pg[p, CLEAN] = z
        if op[i] == OP_WRITE:
            pg[p, CLEAN] = 0
        # Move p to the top of the stack.
        if pg[p, IN_STACK]:
            if top != p:
                a = pg[p, UP]
                b = pg[p, DOWN]
                pg[a, DOWN] = b
                if b >= 0:
                    pg[b, UP] = a
                else:
                    bottom = a
                pg[p, UP] = -1
                pg[p, DOWN] = top
                pg[top, UP] = p
                top = p
        else:
            pg[p, IN_STACK] = 1
            pg[p, UP] = -1
            pg[p, DOWN] = top
            if top >= 0:
                pg[top, UP] = p
            else:
                bottom = p
            top = p
            for k in range(nb_):
                if size < budgets[k]:
                    h_acc[k] += h_res[k] * (i - h_mark[k])
                    h_mark[k] = i
                    h_res[k] += 1
                    if size + 1 == budgets[k]:
                        marker[k] = bottom
                        pg[bottom, MARKER_OF] = k
            size += 1
        pg[p, ZONE] = 0
    cnt = np.zeros((nb_, n_guests, N_COUNTERS), np.int64)
    for g in range(n_guests):
        reads = 0
        zero = 0
        for k in range(nb_):
            reads += d_reads[g, k]
            zero += d_zero[g, k]
            cnt[k, g, C_ACCESSES] = accesses[g]
            cnt[k, g, C_HOST_READS] = reads
            cnt[k, g, C_ZERO_FILLS] = zero
            cnt[k, g, C_HOST_WRITES] = writes[g, k]
            cnt[k, g, C_DISCARDS] = discards[g, k]
            cnt[k, g, C_PEAK] = peak[g, k]
            cnt[k, g, C_SUM] = acc[g, k] + res[g, k] * (n - mark[g, k])
    host_peak = np.minimum(budgets, size)
    host_sum = h_acc + h_res * (n - h_mark)
    return cnt, host_peak, host_sum


def run_lru_all(scenario, budgets, threads: int | None = None) -> EngineResult:
    """``host-lru`` (exact LRU) at every budget in one pass; budgets in any order.

    With ``threads`` > 1 (default: numba's thread count) the budgets are dealt
    into that many groups (every ``threads``-th budget, so each group gets its
    share of the small, miss-heavy ones) and each group makes its own pass in
    its own thread: the stack moves are repeated per group, the budget crossings,
    which dominate on miss-heavy traces, are split.
    """
    b = np.asarray(budgets, dtype=np.int64)
    if b.ndim != 1 or b.size == 0 or (b < 1).any():
        raise ValueError("budgets must be a non-empty list of positive frame counts")
    uniq, back = np.unique(b, return_inverse=True)
    n_groups = max(1, min(nb.get_num_threads() if threads is None else int(threads), len(uniq)))

    def one(k):
        return _lru_all(scenario.page, scenario.op, scenario.guest, scenario.page_guest,
                        scenario.n_guests, uniq[k::n_groups])

    if n_groups == 1:
        parts = [one(0)]
    else:
        with ThreadPoolExecutor(n_groups, thread_name_prefix="cmmsim-onepass") as pool:
            parts = list(pool.map(one, range(n_groups)))
    cnt = np.empty((len(uniq), scenario.n_guests, N_COUNTERS), np.int64)
    peak = np.empty(len(uniq), np.int64)
    hsum = np.empty(len(uniq), np.int64)
    for k, (c, p, h) in enumerate(parts):
        cnt[k::n_groups], peak[k::n_groups], hsum[k::n_groups] = c, p, h
    return EngineResult(b, cnt[back], peak[back], hsum[back],
                        np.zeros((0, scenario.n_pages), np.uint8),
                        np.zeros((len(b), 0, scenario.n_guests, 8), np.int64))
