"""``static``: a fixed partition of host memory (LPAR-like; the seed's partitioning curve).

Each guest owns a fixed share of the host budget as real memory: equal
shares, or shares weighted by guest memory. The host never pages; a guest
whose in-use pages (not unused, not reclaimed by itself) would exceed its
share reclaims one of its own pages first, as Linux reclaim would:

* the least recently used *clean* page cache page (volatile, or potentially
  volatile and clean) is dropped: no I/O now (counted in ``discards``); the
  next access re-reads it from its file (``guest_reads``, ``discard_faults``);
* otherwise the least recently used stable (or dirty) page is swapped out:
  one guest write now (``guest_writes``) and one guest read (swap-in) on the
  next access (``guest_reads``).

Unused pages are free: they take no share. The page being brought in is
never its own victim, and an allocation (a hint that takes an unused page
into use) counts as a use for recency. Freeing a reclaimed page frees its
swap slot. Resident frames reported are the guests' in-use pages. A guest
trace's hints are the guest's own knowledge here (no host is told anything).

Layers: ``_static_one`` (numba, one budget; per-guest lazy heaps keyed
``class << 56 | last use``, as in the engine's state-priority order),
``_static_budgets`` (prange), ``run``; :func:`reference` is the twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numba as nb
import numpy as np

from replay.engine import (
    EngineResult,
    _heap_pop,
    _peak,
    _resident_close,
    _resident_delta,
    _sift_down,
    _sift_up,
)
from replay.states import (
    C_ACCESSES,
    C_DISCARD_FAULTS,
    C_DISCARDS,
    C_GUEST_READS,
    C_GUEST_WRITES,
    C_REPAIRS,
    DIRTY,
    G_P,
    G_S,
    G_U,
    G_V,
    GUEST_MASK,
    N_COUNTERS,
    OP_SET_POT_VOLATILE,
    OP_SET_STABLE,
    OP_SET_STABLE_IF_RESIDENT,
    OP_SET_UNUSED,
    OP_SET_VOLATILE,
    OP_WRITE,
    REF,
)
from replay.strategies import Strategy
from tracer.errors import ParamError

#: Page bits of this kernel besides the guest state and DIRTY.
OUT = 0x04  # reclaimed by the guest: not in memory, content in its backing
SWAPPED = 0x08  # ... in guest swap (else: in its file)
_SHIFT = 56


@dataclass(frozen=True)
class Params:
    partition: Literal["equal", "weighted"] = field(
        default="equal", metadata={"help": "equal shares, or shares weighted by guest memory"})


def shares(budget: int, guest_pages: np.ndarray, partition: str) -> np.ndarray:
    """Each guest's share of ``budget`` frames (>= 1, <= its memory; they sum to <= budget)."""
    n = len(guest_pages)
    if budget < n:
        raise ParamError(f"budget of {budget} frames cannot give each of {n} guests a frame")
    w = np.ones(n) if partition == "equal" else guest_pages.astype(np.float64)
    # One frame each, the rest in proportion: the shares never add up past the budget.
    t = 1 + np.floor((budget - n) * w / w.sum()).astype(np.int64)
    return np.minimum(t, guest_pages).astype(np.int64)


@nb.njit(cache=True, inline="always")
def _cls(st):
    g = st & GUEST_MASK
    if g == G_V or (g == G_P and not (st & DIRTY)):
        return 0
    return 1


@nb.njit(cache=True, inline="always")
def _in_use(st):
    return (st & GUEST_MASK) != G_U and not (st & OUT)


@nb.njit(cache=True)
def _push(keys, pages, size, key, p, state, stamp):
    if size == keys.shape[0]:
        j = 0
        for k in range(size):
            q = pages[k]
            if _in_use(state[q]) and not (state[q] & REF):
                state[q] |= REF
                keys[j] = (np.int64(_cls(state[q])) << _SHIFT) | stamp[q]
                pages[j] = q
                j += 1
        for k in range(j):
            state[pages[k]] &= ~REF
        size = j
        for k in range(size // 2 - 1, -1, -1):
            _sift_down(keys, pages, k, size)
    keys[size] = key
    pages[size] = p
    _sift_up(keys, pages, size)
    return size + 1


#: Flags of :func:`_guest_step`.
JOINED, LEFT, LOWERED, REPAIRED, REFAULTED, FILE_REFAULT = 1, 2, 4, 8, 16, 32


@nb.njit(cache=True)
def _guest_step(st, o):
    """The guest's own view of a page after event ``o``: (new byte, JOINED|LEFT|... flags).

    JOINED: the page entered the guest's in-use set (allocated, repaired or
    brought back from its backing); LEFT: an in-use page was freed; LOWERED:
    a hint made an in-use page cheaper to reclaim; REPAIRED: an access to a
    free page; REFAULTED: an access brought a reclaimed page back (one guest
    read), FILE_REFAULT if it came from its file rather than swap.
    """
    flags = 0
    if o <= OP_WRITE:
        if (st & GUEST_MASK) == G_U:
            flags |= REPAIRED | JOINED
            st = (st & ~GUEST_MASK) | G_S
        elif st & OUT:
            flags |= REFAULTED | JOINED
            if not (st & SWAPPED):
                flags |= FILE_REFAULT
            st &= ~(OUT | SWAPPED)
        if o == OP_WRITE:
            st |= DIRTY
    elif o == OP_SET_UNUSED:
        if (st & GUEST_MASK) != G_U:
            if not (st & OUT):
                flags |= LEFT
            st = G_U | (st & REF)
    elif o == OP_SET_STABLE or o == OP_SET_VOLATILE or o == OP_SET_POT_VOLATILE:
        before = _cls(st)
        if (st & GUEST_MASK) == G_U:
            flags |= JOINED
        new_g = G_S if o == OP_SET_STABLE else (G_V if o == OP_SET_VOLATILE else G_P)
        if o != OP_SET_STABLE:
            st &= ~DIRTY
        st = (st & ~GUEST_MASK) | new_g
        if not (flags & JOINED) and _in_use(st) and _cls(st) < before:
            flags |= LOWERED
    elif o == OP_SET_STABLE_IF_RESIDENT:
        if _in_use(st):
            st = (st & ~GUEST_MASK) | G_S
    return st, flags


@nb.njit(cache=True)
def _take_victim(kk, pp, size, avoid, state, stamp):
    """Pop the cheapest-class LRU in-use page other than ``avoid``: (victim, new heap size).

    The caller makes sure one exists (more than one page in use).
    """
    held = False
    while True:
        key, v, size = _heap_pop(kk, pp, size)
        sv = state[v]
        if not _in_use(sv):
            continue
        cur = (np.int64(_cls(sv)) << _SHIFT) | stamp[v]
        if cur > key:
            size = _push(kk, pp, size, cur, v, state, stamp)
            continue
        if cur < key:
            continue
        if v == avoid:
            held = True
            continue
        break
    if held:
        size = _push(kk, pp, size, (np.int64(_cls(state[avoid])) << _SHIFT) | stamp[avoid], avoid,
                     state, stamp)
    return v, size


@nb.njit(cache=True)
def _reclaimed(sv):
    """A victim's byte once reclaimed, and 1 if that cost a swap write (else a clean drop)."""
    if _cls(sv) == 0:
        return sv | OUT, 0
    return sv | OUT | SWAPPED, 1


@nb.njit(cache=True)
def _guest_heaps(limit):
    """One lazy heap per guest in shared arrays: (capacity, offset, keys, pages, sizes).

    Guest g's heap is ``keys[off[g]:off[g] + cap[g]]``; twice its page limit
    (plus slack) holds every in-use page once and the stale entries between
    compactions.
    """
    n = limit.shape[0]
    cap = 2 * limit + 64
    off = np.zeros(n + 1, np.int64)
    for g in range(n):
        off[g + 1] = off[g] + cap[g]
    return cap, off, np.empty(off[n], np.int64), np.empty(off[n], np.int32), np.zeros(n, np.int64)


@nb.njit(cache=True)
def _static_one(page, op, guest, page_guest, n_guests, target):
    n_pages = page_guest.shape[0]
    state = np.full(n_pages, G_U, np.uint8)
    stamp = np.zeros(n_pages, np.int64)
    cnt = np.zeros((n_guests, N_COUNTERS), np.int64)
    host = np.zeros(2, np.int64)
    in_use = np.zeros(n_guests, np.int64)
    mark = np.zeros(n_guests, np.int64)
    cap, off, hkeys, hpages, hsize = _guest_heaps(target)
    total = 0
    n = page.shape[0]
    for i in range(n):
        p = page[i]
        g = guest[i]
        o = op[i]
        st, flags = _guest_step(state[p], o)
        state[p] = st
        if o <= OP_WRITE:
            cnt[g, C_ACCESSES] += 1
            stamp[p] = i
        cnt[g, C_REPAIRS] += (flags & REPAIRED) != 0
        if flags & REFAULTED:
            cnt[g, C_GUEST_READS] += 1
            cnt[g, C_DISCARD_FAULTS] += (flags & FILE_REFAULT) != 0
        o_ = off[g]
        kk = hkeys[o_:o_ + cap[g]]
        pp = hpages[o_:o_ + cap[g]]
        if flags & LEFT:
            _resident_delta(cnt, in_use, mark, g, i, -1)
            total -= 1
        elif flags & LOWERED:
            hsize[g] = _push(kk, pp, hsize[g], (np.int64(_cls(st)) << _SHIFT) | stamp[p], p,
                             state, stamp)
        if flags & JOINED:
            stamp[p] = i
            _resident_delta(cnt, in_use, mark, g, i, 1)
            total += 1
            hsize[g] = _push(kk, pp, hsize[g], (np.int64(_cls(st)) << _SHIFT) | stamp[p], p,
                             state, stamp)
            if in_use[g] > target[g]:
                v, hsize[g] = _take_victim(kk, pp, hsize[g], p, state, stamp)
                state[v], wrote = _reclaimed(state[v])
                if wrote:
                    cnt[g, C_GUEST_WRITES] += 1
                else:
                    cnt[g, C_DISCARDS] += 1
                in_use[g] -= 1
                total -= 1
            _peak(cnt, in_use, g)
            if total > host[0]:
                host[0] = total
        host[1] += total
    _resident_close(cnt, in_use, mark, n)
    return cnt, host, state


@nb.njit(cache=True, parallel=True)
def _static_budgets(page, op, guest, page_guest, n_guests, targets, keep_final):
    nb_ = targets.shape[0]
    cnt = np.zeros((nb_, n_guests, N_COUNTERS), np.int64)
    host = np.zeros((nb_, 2), np.int64)
    final = np.zeros((nb_ if keep_final else 0, page_guest.shape[0]), np.uint8)
    for b in nb.prange(nb_):
        c, h, st = _static_one(page, op, guest, page_guest, n_guests, targets[b])
        cnt[b] = c
        host[b] = h
        if keep_final:
            final[b] = st
    return cnt, host, final


def run(scenario, budgets, params, sample_at=None, keep_final=False):
    """Replay under fixed partitions at every budget (no host state distribution)."""
    b = np.asarray(budgets, dtype=np.int64)
    targets = np.stack([shares(int(x), scenario.guest_pages, params.partition) for x in b])
    cnt, host, final = _static_budgets(scenario.page, scenario.op, scenario.guest,
                                       scenario.page_guest, scenario.n_guests, targets,
                                       keep_final)
    return EngineResult(b, cnt, host[:, 0].copy(), host[:, 1].copy(), final,
                        np.zeros((len(b), 0, scenario.n_guests, 8), np.int64))


class GuestView:
    """The twins' record of every page as its guest sees it (``static`` and the balloons).

    ``state`` S/U/V/P, ``dirty``, ``out``: None, or where a page the guest
    reclaimed went ("file": dropped clean cache, "swap").
    """

    def __init__(self, n_pages: int):
        self.state = ["U"] * n_pages
        self.dirty = [False] * n_pages
        self.out: list[str | None] = [None] * n_pages

    def clean(self, q: int) -> bool:
        return self.state[q] == "V" or (self.state[q] == "P" and not self.dirty[q])

    def is_free(self, q: int) -> bool:
        return self.state[q] == "U" or self.out[q] is not None

    def step(self, p: int, o: int, c: dict) -> tuple[bool, bool, bool]:
        """Apply event ``o`` to page p, counting accesses, repairs and refaults in ``c``.

        Returns (joined the in-use set, left it, brought back from its backing).
        """
        from tracer.schema import Op

        joined = left = back = False
        if o in (Op.READ, Op.WRITE):
            c["accesses"] += 1
            if self.state[p] == "U":
                c["repairs"] += 1
                self.state[p] = "S"
                joined = True
            elif self.out[p] is not None:
                c["guest_reads"] += 1
                if self.out[p] == "file":
                    c["discard_faults"] += 1
                self.out[p] = None
                joined = back = True
            if o == Op.WRITE:
                self.dirty[p] = True
        elif o == Op.SET_UNUSED:
            if self.state[p] != "U":
                left = self.out[p] is None
                self.state[p], self.dirty[p], self.out[p] = "U", False, None
        elif o in (Op.SET_STABLE, Op.SET_VOLATILE, Op.SET_POT_VOLATILE):
            joined = self.state[p] == "U"
            if o != Op.SET_STABLE:
                self.dirty[p] = False
            self.state[p] = {Op.SET_STABLE: "S", Op.SET_VOLATILE: "V", Op.SET_POT_VOLATILE: "P"}[o]
        elif o == Op.SET_STABLE_IF_RESIDENT:
            if not self.is_free(p):
                self.state[p] = "S"
        return joined, left, back


def reference(scenario, budget: int, params):
    """Plain-Python twin: per page a small record, victims found by scanning."""
    from replay.reference import ReferenceResult
    from replay.states import COUNTERS
    from tracer.schema import Op

    target = shares(budget, scenario.guest_pages, params.partition)
    n_guests = scenario.n_guests
    counters = [dict.fromkeys(COUNTERS, 0) for _ in range(n_guests)]
    view = GuestView(scenario.n_pages)
    gstate, dirty, out, clean = view.state, view.dirty, view.out, view.clean
    last_use = [0] * scenario.n_pages
    in_use: list[set[int]] = [set() for _ in range(n_guests)]
    host_peak = host_sum = 0

    for i, (p, o, g) in enumerate(zip(scenario.page.tolist(), scenario.op.tolist(),
                                      scenario.guest.tolist(), strict=True)):
        c = counters[g]
        joined, left, _ = view.step(p, o, c)
        if joined or o in (Op.READ, Op.WRITE):
            last_use[p] = i
        if left:
            in_use[g].discard(p)
        if joined:
            in_use[g].add(p)
            if len(in_use[g]) > target[g]:
                victim = min((q for q in in_use[g] if q != p),
                             key=lambda q: (0 if clean(q) else 1, last_use[q]))
                if clean(victim):
                    c["discards"] += 1
                    out[victim] = "file"
                else:
                    c["guest_writes"] += 1
                    out[victim] = "swap"
                in_use[g].discard(victim)
            c["peak_resident_pages"] = max(c["peak_resident_pages"], len(in_use[g]))
            host_peak = max(host_peak, sum(len(s) for s in in_use))
        host_sum += sum(len(s) for s in in_use)
        for h in range(n_guests):
            counters[h]["sum_resident_pages"] += len(in_use[h])
    arr = np.array([[c[k] for k in COUNTERS] for c in counters], np.int64)
    final = np.array([("SUVP".index(gstate[q]) | (DIRTY if dirty[q] else 0)
                       | (OUT if out[q] else 0) | (SWAPPED if out[q] == "swap" else 0))
                      for q in range(scenario.n_pages)], np.uint8)
    return ReferenceResult(arr, host_peak, host_sum, final)


STRATEGY = Strategy(
    name="static",
    params=Params,
    run=run,
    reference=reference,
    summary="fixed partition of host memory (LPAR-like); guests reclaim inside their share",
)
