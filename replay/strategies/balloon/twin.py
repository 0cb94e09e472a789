"""Plain-Python twin of the balloon kernel (``balloon`` and ``balloon+cmm``).

The host is :class:`cmmsim.replay.reference.ReferenceHost` (exact LRU, two-list or
state-priority, ``replacement``); the guest's
own view of every page is a few letters and flags; victims are found by
scanning; targets are shared by a direct reading of the rule. With
``check=True`` every event is followed by a full check of the invariants:
host frames <= budget, legal host state pairs, every page either in use or
free in its guest, the free list exactly the free pages the host backs,
``in use + balloon <= memory``, ``host-resident + balloon <= memory``,
``0 <= balloon <= memory - minimum``, and a host swap tier within its
capacity holding paged-out pages only.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from cmmsim.replay.reference import HINTS_ALL, LEGAL_PAIRS, GuestView, ReferenceHost, ReferenceResult
from cmmsim.replay.states import COUNTERS
from cmmsim.replay.strategies.balloon.params import SERIES, Params, available, setup
from cmmsim.tracer.schema import Op

_MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> tuple[int, int]:
    """(next state, output) of SplitMix64."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x, z ^ (z >> 31)


def share_targets(est: list[int], gp: list[int], mins: list[int], avail: int) -> list[int]:
    """``avail`` in proportion to ``est``; guests whose share is above their memory are
    pinned there (else those below their minimum at it) and the others share what is
    left, until no share is outside [min, memory]."""
    target: dict[int, int] = {}
    while len(target) < len(est):
        rest = [g for g in range(len(est)) if g not in target]
        left = avail - sum(target.values())
        weight = sum(est[g] for g in rest)
        share = {g: (left * est[g] // weight if weight > 0 else left // len(rest)) for g in rest}
        pinned = {g: gp[g] for g in rest if share[g] > gp[g]}
        if not pinned:
            pinned = {g: mins[g] for g in rest if share[g] < mins[g]}
        if not pinned:
            target |= share
        target |= pinned
    return [target[g] for g in range(len(est))]


class _Host(ReferenceHost):
    """The reference host, plus per-guest lists of the free frames it backs (oldest first)."""

    def __init__(self, page_guest, budget, honoured, n_guests, tier_pages=0, victims="lru"):
        super().__init__(page_guest, budget, honoured, victims, tier_pages)
        self.free_backed: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(n_guests)]

    def evict(self, q: int) -> None:
        super().evict(q)
        self.free_backed[self.page_guest[q]].pop(q, None)


def reference_balloon(
    scenario, budget: int, params: Params, honour_all: bool, check: bool = False, tier_pages: int = 0
) -> ReferenceResult:
    """The balloon replay at one budget (``tier_pages``: the host's swap tier, 0: none)."""
    s = setup(scenario, params)
    ng, npg = scenario.n_guests, scenario.n_pages
    gp = [int(x) for x in scenario.guest_pages]
    off = [int(x) for x in scenario.page_offset]
    mins = [int(x) for x in s.min_pages]
    avail = available(budget, params.slack)
    host = _Host(scenario.page_guest, budget, HINTS_ALL if honour_all else set(), ng, tier_pages, params.replacement)
    C = host.counters
    owner = host.page_guest
    view = GuestView(npg)  # the guest's own view
    out, clean, is_free = view.out, view.clean, view.is_free
    last_use = [-1] * npg
    # Each page's last access (READ or WRITE): what the sampling estimator sees.
    last_access = [-1] * npg
    in_use: list[set[int]] = [set() for _ in range(ng)]
    bal = [0] * ng
    moved = [0] * ng
    series = np.zeros((s.n_periods, ng, len(SERIES)), np.int64)
    n = scenario.n_events
    if n == 0:
        return _result(host, C, series)

    def implicit_hint(q, op):
        # The guest's own reclaim tells the host; the page is re-read or garbage anyway,
        # so nothing counts as content lost.
        lost = C[owner[q]]["content_lost"]
        host.hint(q, op)
        C[owner[q]]["content_lost"] = lost

    def make_free(q):
        if host.pages[q].host == "r" and q not in host.free_backed[owner[q]]:
            host.free_backed[owner[q]][q] = None

    def fit(g, avoid, extra=0):
        # extra: host frames about to be given (1 before the host backs page avoid).
        while len(in_use[g]) > gp[g] - bal[g]:
            v = min((q for q in in_use[g] if q != avoid), key=lambda q: (0 if clean(q) else 1, last_use[q]))
            in_use[g].discard(v)
            if clean(v):
                out[v] = "file"
                C[g]["discards"] += 1
                C[g]["discards_by_guest"] += 1
            else:
                out[v] = "swap"
                if host.pages[v].host != "r":
                    if host.pages[v].host == "p":
                        C[g]["dual_paging"] += 1
                    drop_free_frames(g, 1)  # as at an access: a backed free frame first
                host.touch(v, write=False)
                C[g]["guest_writes"] += 1
            implicit_hint(v, Op.SET_UNUSED)
            make_free(v)
        drop_free_frames(g, extra)

    def drop_free_frames(g, extra):
        # Oldest freed first, while the bound needs it and one is left.
        while host.resident_of_guest[g] + extra + bal[g] > gp[g] and host.free_backed[g]:
            q = next(iter(host.free_backed[g]))
            del host.free_backed[g][q]
            host.unlist(q)
            pg = host.pages[q]
            pg.guest, pg.host = ("U" if honour_all else "S"), "z"
            pg.changed = pg.copy = pg.dirty = False
            C[g]["discards"] += 1
            C[g]["discards_released"] += 1
            host.resident_of_guest[g] -= 1

    def books(g, p, i, joined, left):
        # The guest's in-use set after event i changed page p.
        if left:
            in_use[g].discard(p)
            make_free(p)
        if joined:
            host.free_backed[g].pop(p, None)
            last_use[p] = i
            in_use[g].add(p)

    def move(g, t, p_start):
        allowed = params.rate_pages_per_s * (t - p_start) // 10**9 - moved[g]
        want = (gp[g] - target[g]) - bal[g]
        step = min(abs(want), allowed)
        if step <= 0:
            return
        moved[g] += step
        if want < 0:
            bal[g] -= step
            C[g]["balloon_deflated_pages"] += step
        else:
            bal[g] += step
            C[g]["balloon_inflated_pages"] += step
            fit(g, None)

    rng = params.seed
    samples: list[list[int]] = []

    def draw():
        nonlocal rng, samples
        samples = []
        for g in range(ng):
            row = []
            for _ in range(params.sample_pages):
                rng, z = splitmix64(rng)
                row.append(off[g] + z % gp[g])
            samples.append(row)

    t0 = int(scenario.t_ns[0])
    est = [int(s.oracle[0, g]) if params.estimator == "oracle" else gp[g] for g in range(ng)]
    target = share_targets(est, gp, mins, avail)
    for g in range(ng):
        bal[g] = gp[g] - target[g]
        C[g]["balloon_inflated_pages"] += bal[g]
        C[g]["balloon_initial_pages"] += bal[g]
    if params.estimator == "sampling":
        draw()
    fast = [0.0] * ng
    slow = [0.0] * ng
    reads_mark = [0] * ng
    k, p_start, i_start = 0, t0, 0

    def record(g):
        series[k, g] = (est[g], target[g], bal[g], len(in_use[g]), host.resident_of_guest[g])

    events = zip(scenario.t_ns.tolist(), scenario.page.tolist(), scenario.op.tolist(), strict=True)
    for i, (t, p, o) in enumerate(events):
        while t >= p_start + params.period_ns:
            for g in range(ng):
                move(g, p_start + params.period_ns, p_start)
                record(g)
            for g in range(ng):
                if params.estimator == "sampling":
                    touched = sum(1 for q in samples[g] if last_access[q] >= i_start)
                    cur = touched * gp[g] // params.sample_pages
                    if k == 0:
                        fast[g] = slow[g] = float(cur)
                    else:
                        fast[g] = fast[g] + params.fast_alpha * (cur - fast[g])
                        slow[g] = slow[g] + params.slow_alpha * (cur - slow[g])
                    est[g] = max(cur, int(fast[g] + 0.5), int(slow[g] + 0.5))
                elif params.estimator == "fault-rate":
                    refaults = C[g]["guest_reads"] - reads_mark[g]
                    reads_mark[g] = C[g]["guest_reads"]
                    if refaults > params.fault_threshold:
                        est[g] = min(gp[g], est[g] + int(s.grow_pages[g]))
                    else:
                        est[g] = max(mins[g], est[g] - int(s.shrink_pages[g]))
                else:
                    est[g] = int(s.oracle[k + 1, g])
                moved[g] = 0
            target = share_targets(est, gp, mins, avail)
            k += 1
            p_start += params.period_ns
            i_start = i
            if params.estimator == "sampling":
                draw()
        for g in range(ng):
            move(g, t, p_start)
        g = owner[p]
        op = Op(o)
        joined, left, back = view.step(p, o, C[g])
        if op in (Op.READ, Op.WRITE):
            if back:
                implicit_hint(p, Op.SET_STABLE)
            if host.pages[p].guest == "U":
                host.pages[p].guest = "S"
            last_use[p] = i
            last_access[p] = i
            books(g, p, i, joined, left)
            if host.pages[p].host != "r":
                fit(g, p, 1)  # the guest makes room before the host backs the page
            host.touch(p, op == Op.WRITE)
        else:
            host.hint(p, op)
            books(g, p, i, joined, left)
        if joined or op in (Op.READ, Op.WRITE):
            fit(g, p)
        host.host_sum += host.resident
        for h in range(ng):
            C[h]["sum_resident_pages"] += host.resident_of_guest[h]
        if check:
            _check(host, budget, gp, mins, bal, in_use, is_free, owner)
    for g in range(ng):
        move(g, int(scenario.t_ns[-1]), p_start)
        record(g)
    return _result(host, C, series)


def _check(host, budget, gp, mins, bal, in_use, is_free, owner):
    assert host.resident <= budget
    for g in range(len(gp)):
        assert 0 <= bal[g] <= gp[g] - mins[g], (g, bal[g])
        assert len(in_use[g]) + bal[g] <= gp[g]
        assert host.resident_of_guest[g] + bal[g] <= gp[g]
    backed_free = set()
    for q, pg in enumerate(host.pages):
        assert pg.guest + pg.host in LEGAL_PAIRS, (q, pg)
        assert is_free(q) != (q in in_use[owner[q]]), q
        if is_free(q) and pg.host == "r":
            backed_free.add(q)
    assert backed_free == {q for d in host.free_backed for q in d}
    # The tier holds at most its capacity, and paged-out pages only.
    assert len(host.tier) <= host.tier_pages
    assert all(host.pages[q].host == "p" for q in host.tier)


def _result(host, C, series) -> ReferenceResult:
    arr = np.array([[c[k] for k in COUNTERS] for c in C], np.int64).reshape(len(C), len(COUNTERS))
    res = ReferenceResult(arr, host.host_peak, host.host_sum, np.array([pg.byte() for pg in host.pages], np.uint8))
    res.series = series
    res.tier_used = len(host.tier)  # pages left in the host's swap tier (for the tests)
    return res
