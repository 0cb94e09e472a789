"""``free-page-reporting``: virtio-balloon free page reporting (Linux 5.7+, ``mm/page_reporting.c``).

The host pages guest frames under exact LRU (or Linux's two-list reclaim,
``replacement=two-list``: :mod:`cmmsim.replay.kernels.two_list`; a reported
page leaves its list) and knows nothing else, except
what the guest reports: when an aligned block of ``2**order`` guest pages
(default order 9: 2 MiB) is entirely free, the guest queues it, and a report
runs ``delay_ns`` later (default 2 s, the kernel's ``PAGE_REPORTING_DELAY``)
with at most ``capacity`` blocks (default 32, ``PAGE_REPORTING_CAPACITY``);
blocks left over go into the next report, ``delay_ns`` after that one. A
block still entirely free when its report runs is reported: the host drops
its frames without I/O (``discards``, and ``discards_released``: the host
chose nothing) and any preserved copies, so a reported page the guest
allocates again costs a zero fill, not a read.
``hints`` counts reported pages. Blocks free from the start (never used by
the guest) count as reported. Free and in-use come from the trace's hints,
which the guest knows; the host is told nothing else. An access to a page
the guest holds free is counted in ``repairs`` and taken into use. With a
host swap tier (``tier_pages``, :mod:`cmmsim.replay.kernels.tier`) the host
pages out to it before its disk, by the engine's rules; a reported page in
the tier leaves it (its copy is dropped), with no I/O.

Layers: ``_fpr_one`` (numba, one budget), ``_fpr_budgets`` (prange), ``run``;
:func:`reference` is the twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numba as nb
import numpy as np

from cmmsim.replay.budgets import validated
from cmmsim.replay.kernels import tier as host_tier
from cmmsim.replay.kernels import two_list
from cmmsim.replay.kernels.guest_ranges import guest_ends_of, guest_of
from cmmsim.replay.kernels.lru_list import evict_lru, init_list, push_mru, touch, unlink
from cmmsim.replay.kernels.resident import peak, resident_close, resident_delta
from cmmsim.replay.kernels.state_machine import host_state, with_states
from cmmsim.replay.result import without_states
from cmmsim.replay.states import (
    C_ACCESSES,
    C_DISCARDS,
    C_DISCARDS_RELEASED,
    C_HINTS,
    C_REPAIRS,
    CHANGED,
    COPY,
    DIRTY,
    G_S,
    H_R,
    H_Z,
    INITIAL_NO_HINTS,
    N_COUNTERS,
    OP_SET_POT_VOLATILE,
    OP_SET_STABLE,
    OP_SET_UNUSED,
    OP_SET_VOLATILE,
    OP_WRITE,
)
from cmmsim.replay.strategies import Strategy
from cmmsim.replay.watch import reached, watched
from cmmsim.tracer.params import need


@dataclass(frozen=True)
class Params:
    order: int = field(
        default=9,
        metadata={
            "help": "reported block size, 2**order pages (0-10; default Linux's page_reporting_order, "
            "pageblock_order: 9 on x86-64): only free blocks this large are ever released, by construction"
        },
    )
    capacity: int = field(default=32, metadata={"help": "blocks per report (Linux's PAGE_REPORTING_CAPACITY)"})
    delay_ns: int = field(
        default=2_000_000_000,
        metadata={
            "help": "delay before a report, ns (Linux's PAGE_REPORTING_DELAY, 2 s): a freed block stays "
            "backed at least this long, by construction"
        },
    )
    replacement: Literal["lru", "two-list"] = field(
        default="lru",
        metadata={"help": "victim choice: exact LRU or two-list (Linux's active/inactive lists, docs/model.md)"},
    )

    def __post_init__(self):
        need(0 <= self.order <= 10, f"order must be 0..10, got {self.order}")
        need(self.capacity >= 1, f"capacity must be >= 1, got {self.capacity}")
        need(self.delay_ns >= 0, f"delay_ns must be >= 0, got {self.delay_ns}")


def blocks(scenario, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Block id of every global page (-1 in a guest's incomplete tail block) and block starts."""
    size = 1 << order
    block_of = np.full(scenario.n_pages, -1, np.int64)
    starts = []
    for off, gp in zip(scenario.page_offset, scenario.guest_pages, strict=True):
        full = int(gp) // size
        base = len(starts)
        starts.extend(int(off) + k * size for k in range(full))
        block_of[int(off) : int(off) + full * size] = base + np.arange(full * size) // size
    return block_of, np.array(starts, np.int64)


@nb.njit(cache=True)
def _fpr_one(
    t_ns,
    page,
    op,
    guest,
    page_guest,
    n_guests,
    frames,
    block_of,
    block_start,
    order,
    capacity,
    delay,
    tier_pages,
    ends,
    two,
    done,
    slot,
    mask,
):
    """One budget; ``two``: Linux's two lists (:mod:`cmmsim.replay.kernels.two_list`)
    in ``links``, else exact LRU; the event index in ``done[slot]`` every ``mask + 1``
    events (:mod:`cmmsim.replay.watch`)."""
    n_pages = page_guest.shape[0]
    n_blocks = block_start.shape[0]
    size = 1 << order
    state = np.full(n_pages, INITIAL_NO_HINTS, np.uint8)
    gfree = np.ones(n_pages, np.uint8)
    free_cnt = np.full(n_blocks, size, np.int64)
    reported = np.ones(n_blocks, np.uint8)
    queued = np.zeros(n_blocks, np.uint8)
    queue = np.empty(n_blocks + 1, np.int64)
    qhead = 0
    qtail = 0  # ring buffer: each block is queued at most once at a time
    next_pass = np.int64(-1)
    cnt = np.zeros((n_guests, N_COUNTERS), np.int64)
    host = np.zeros(2, np.int64)
    res_g = np.zeros(n_guests, np.int64)
    mark = np.zeros(n_guests, np.int64)
    head = n_pages
    links = np.empty(two_list.size(n_pages) if two else 2 * (n_pages + 1), np.int32)
    if two:
        two_list.init(links)
    else:
        init_list(links, head)
    tier = host_tier.alloc(n_pages, tier_pages)
    resident = 0
    nq = n_blocks + 1
    n = page.shape[0]
    for i in range(n):
        if (i & mask) == 0 and reached(done, slot, i):
            break
        t = t_ns[i]
        while next_pass >= 0 and t >= next_pass:
            sent = 0
            while qhead != qtail and sent < capacity:
                b = queue[qhead]
                qhead = (qhead + 1) % nq
                queued[b] = 0
                if free_cnt[b] == size and not reported[b]:
                    reported[b] = 1
                    sent += 1
                    for q in range(block_start[b], block_start[b] + size):
                        gq = page_guest[q]
                        cnt[gq, C_HINTS] += 1
                        st = state[q]
                        if host_state(st) == H_R:
                            cnt[gq, C_DISCARDS] += 1
                            cnt[gq, C_DISCARDS_RELEASED] += 1
                            if two:
                                st = two_list.remove(links, q, st)
                            else:
                                unlink(links, q)
                            resident_delta(cnt, res_g, mark, gq, i, -1)
                            resident -= 1
                        state[q] = with_states(st & ~(CHANGED | COPY), G_S, H_Z)
                        host_tier.leave_after_hint(tier, q, st, state[q])
            next_pass = next_pass + delay if qhead != qtail else np.int64(-1)
        p = page[i]
        g = guest[i]
        o = op[i]
        b = block_of[p]
        if o <= OP_WRITE:
            cnt[g, C_ACCESSES] += 1
            if gfree[p]:
                cnt[g, C_REPAIRS] += 1
                gfree[p] = 0
                if b >= 0:
                    free_cnt[b] -= 1
                    reported[b] = 0
            st = state[p]
            if host_state(st) != H_R:
                # A page in the tier leaves it before any victim is written.
                from_tier = host_tier.take_paged_out(tier, p, st)
                if resident >= frames:
                    v = two_list.victim(links, state) if two else evict_lru(links, head)
                    gv = guest_of(v, ends)
                    host_tier.evict(v, gv, state, cnt, tier, ends)
                    resident_delta(cnt, res_g, mark, gv, i, -1)
                    resident -= 1
                st = host_tier.page_in_from(from_tier, st, g, cnt)  # the host sees every page stable
                resident_delta(cnt, res_g, mark, g, i, 1)
                peak(cnt, res_g, g)
                resident += 1
                if resident > host[0]:
                    host[0] = resident
                if two:
                    two_list.admit(links, p)
                else:
                    push_mru(links, head, p)
            elif two:
                st = np.uint8(two_list.activate_or_keep(links, p, st))
            else:
                touch(links, head, p)
            if o == OP_WRITE:
                st |= DIRTY | CHANGED
            state[p] = st
        elif o == OP_SET_UNUSED:
            if not gfree[p]:
                gfree[p] = 1
                if b >= 0:
                    free_cnt[b] += 1
                    if free_cnt[b] == size and not reported[b] and not queued[b]:
                        queued[b] = 1
                        queue[qtail] = b
                        qtail = (qtail + 1) % nq
                        if next_pass < 0:
                            next_pass = t + delay
        elif o == OP_SET_STABLE or o == OP_SET_VOLATILE or o == OP_SET_POT_VOLATILE:
            if gfree[p]:
                gfree[p] = 0
                if b >= 0:
                    free_cnt[b] -= 1
                    reported[b] = 0
        host[1] += resident
    resident_close(cnt, res_g, mark, n)
    return cnt, host, state


@nb.njit(cache=True, parallel=True, nogil=True)
def _fpr_budgets(
    t_ns,
    page,
    op,
    guest,
    page_guest,
    n_guests,
    frames,
    block_of,
    block_start,
    order,
    capacity,
    delay,
    tier_pages,
    ends,
    two,
    keep_final,
    done,
    mask,
):
    nb_ = frames.shape[0]
    cnt = np.zeros((nb_, n_guests, N_COUNTERS), np.int64)
    host = np.zeros((nb_, 2), np.int64)
    final = np.zeros((nb_ if keep_final else 0, page_guest.shape[0]), np.uint8)
    for k in nb.prange(nb_):
        c, h, st = _fpr_one(
            t_ns,
            page,
            op,
            guest,
            page_guest,
            n_guests,
            frames[k],
            block_of,
            block_start,
            order,
            capacity,
            delay,
            tier_pages,
            ends,
            two,
            done,
            np.int64(k),  # prange's index is unsigned in its parallel body: one signature
            mask,
        )
        cnt[k] = c
        host[k] = h
        if keep_final:
            final[k] = st
    return cnt, host, final


def run(scenario, budgets, params, sample_at=None, keep_final=False, tier_pages=0, on_events=None):
    """Host LRU (or two-list) plus reported free blocks, at every budget (no state distribution);
    ``tier_pages``: the host's swap tier (:mod:`cmmsim.replay.kernels.tier`; 0: none);
    ``on_events``: progress of the budgets' passes (:func:`cmmsim.replay.watch.watched`)."""
    b = validated(budgets, scenario.n_pages)
    block_of, starts = blocks(scenario, params.order)
    n = scenario.n_events
    cnt, host, final = watched(
        lambda done, mask: _fpr_budgets(
            scenario.t_ns,
            scenario.page,
            scenario.op,
            scenario.guest,
            scenario.page_guest,
            scenario.n_guests,
            b.frames,
            block_of,
            starts,
            params.order,
            params.capacity,
            np.int64(params.delay_ns),
            np.int64(tier_pages),
            guest_ends_of(scenario.page_guest, scenario.n_guests),
            params.replacement == "two-list",
            keep_final,
            done,
            mask,
        ),
        len(b.pages),
        n,
        on_events,
    )
    return without_states(b.pages, cnt, host, final, scenario.n_guests, tier_pages=int(tier_pages))


def reference(scenario, budget: int, params, tier_pages: int = 0, check: bool = False):
    """Plain-Python twin: the host as in ``host-lru``'s twin (its swap tier too,
    ``tier_pages``; its victim order :func:`cmmsim.replay.reference.host_order`),
    reports by the rule above. With ``check=True`` every event is followed by a
    full check of the invariants (:func:`_check`)."""
    from collections import OrderedDict, deque

    from cmmsim.replay.reference import Page, ReferenceResult, host_order
    from cmmsim.replay.states import COUNTERS
    from cmmsim.tracer.schema import Op

    block_of, starts = blocks(scenario, params.order)
    size = 1 << params.order
    pages = [Page("S", "z") for _ in range(scenario.n_pages)]
    owner = [int(g) for g in scenario.page_guest]
    free = set(range(scenario.n_pages))
    reported = set(range(len(starts)))
    queue: deque[int] = deque()
    next_report = None
    counters = [dict.fromkeys(COUNTERS, 0) for _ in range(scenario.n_guests)]
    lru = host_order(params.replacement)
    tier: OrderedDict[int, None] = OrderedDict()  # least recently put in first
    per_guest = [0] * scenario.n_guests
    frames = min(budget, scenario.n_pages)
    host_peak = host_sum = 0

    def entirely_free(b):
        return all(q in free for q in range(starts[b], starts[b] + size))

    for t, p, o in zip(scenario.t_ns.tolist(), scenario.page.tolist(), scenario.op.tolist(), strict=True):
        while next_report is not None and t >= next_report:
            done = 0
            while queue and done < params.capacity:
                b = queue.popleft()
                if entirely_free(b) and b not in reported:
                    reported.add(b)
                    done += 1
                    for q in range(starts[b], starts[b] + size):
                        counters[owner[q]]["hints"] += 1
                        if pages[q].host == "r":
                            counters[owner[q]]["discards"] += 1
                            counters[owner[q]]["discards_released"] += 1
                            lru.remove(q)
                            per_guest[owner[q]] -= 1
                        pages[q].host, pages[q].changed, pages[q].copy = "z", False, False
                        tier.pop(q, None)  # its copy dropped: its place in the tier too
            next_report = next_report + params.delay_ns if queue else None
        c = counters[owner[p]]
        b = int(block_of[p])
        if o in (Op.READ, Op.WRITE):
            c["accesses"] += 1
            if p in free:
                c["repairs"] += 1
                free.discard(p)
                reported.discard(b)
            pg = pages[p]
            if pg.host != "r":
                # A page in the tier leaves it before any victim is written.
                from_tier = p in tier
                tier.pop(p, None)
                if len(lru) >= frames:
                    v = lru.victim()
                    pv = pages[v]
                    if pv.changed and tier_pages:
                        counters[owner[v]]["host_writes_tier"] += 1
                        if len(tier) == tier_pages:
                            spilled, _ = tier.popitem(last=False)
                            counters[owner[spilled]]["host_spills_tier"] += 1
                            counters[owner[spilled]]["host_writes"] += 1  # to the disk
                        tier[v] = None
                        pv.host, pv.copy, pv.changed = "p", True, False
                    elif pv.changed:
                        counters[owner[v]]["host_writes"] += 1
                        pv.host, pv.copy, pv.changed = "p", True, False
                    else:
                        counters[owner[v]]["discards"] += 1
                        pv.host = "p" if pv.copy else "z"
                    per_guest[owner[v]] -= 1
                if from_tier:
                    # Its only copy was the tier's, now freed: it differs from any on disk.
                    c["host_reads_tier"] += 1
                    pg.host, pg.changed = "r", True
                elif pg.host == "p":
                    c["host_reads"] += 1
                    pg.host, pg.changed = "r", False
                else:
                    c["zero_fills"] += 1
                    pg.copy = False
                    pg.host, pg.changed = "r", False
                lru.admit(p)
                per_guest[owner[p]] += 1
                c["peak_resident_pages"] = max(c["peak_resident_pages"], per_guest[owner[p]])
                host_peak = max(host_peak, len(lru))
            else:
                lru.use(p)
            if o == Op.WRITE:
                pg.dirty = pg.changed = True
        elif o == Op.SET_UNUSED:
            if p not in free:
                free.add(p)
                if b >= 0 and entirely_free(b) and b not in reported and b not in queue:
                    queue.append(b)
                    if next_report is None:
                        next_report = t + params.delay_ns
        elif o in (Op.SET_STABLE, Op.SET_VOLATILE, Op.SET_POT_VOLATILE):
            if p in free:
                free.discard(p)
                reported.discard(b)
        host_sum += len(lru)
        for g in range(scenario.n_guests):
            counters[g]["sum_resident_pages"] += per_guest[g]
        if check:
            _check(pages, owner, frames, lru, per_guest, tier, tier_pages, free, reported, queue, starts, size)
    arr = np.array([[c[k] for k in COUNTERS] for c in counters], np.int64)
    res = ReferenceResult(arr, host_peak, host_sum, np.array([pg.byte() for pg in pages], np.uint8))
    res.tier_used = len(tier)  # pages left in the host's swap tier (for the tests)
    return res


def _check(pages, owner, frames, lru, per_guest, tier, tier_pages, free, reported, queue, starts, size) -> None:
    """The twin's invariants after an event: host frames within the budget; only
    the pairs Sr, Sp and Sz (the host is told no hint, so it sees every page
    stable); a preserved page has its copy, a logically zero one neither a copy
    nor a change; the frames counted (in all and per guest) exactly the resident
    pages; the swap tier within its capacity, holding preserved pages only; a
    reported block entirely free and without a frame; no block queued twice."""
    from cmmsim.replay.reference import LEGAL_PAIRS

    assert len(lru) <= frames
    held = [0] * len(per_guest)
    for q, pg in enumerate(pages):
        assert pg.guest + pg.host in LEGAL_PAIRS and pg.guest == "S", (q, pg)
        assert pg.host != "p" or pg.copy, (q, pg)
        assert pg.host != "z" or not (pg.copy or pg.changed), (q, pg)
        held[owner[q]] += pg.host == "r"
    assert held == per_guest and sum(held) == len(lru), (held, per_guest, len(lru))
    assert len(tier) <= tier_pages and all(pages[q].host == "p" for q in tier)
    for b in reported:
        block = range(starts[b], starts[b] + size)
        assert all(q in free and pages[q].host == "z" for q in block), b
    assert len(set(queue)) == len(queue)


STRATEGY = Strategy(
    name="free-page-reporting",
    params=Params,
    runner=run,
    reference=reference,
    summary="virtio-balloon free page reporting: free 2**order blocks reported after a delay; LRU or two-list",
    examples=(
        {"order": 0, "delay_ns": 0},
        {"order": 2, "capacity": 1, "delay_ns": 3},
        {"order": 1, "capacity": 1, "delay_ns": 2, "replacement": "two-list"},
    ),
    host_tier=True,
)
