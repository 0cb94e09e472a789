"""``static``: a fixed partition of host memory (LPAR-like; the seed's partitioning curve).

Each guest owns a fixed share of the host budget as real memory: equal
shares, or shares weighted by guest memory. The host never pages; a guest
whose in-use pages (not unused, not reclaimed by itself) would exceed its
share reclaims one of its own pages first, as Linux reclaim would:

* the least recently used *clean* page cache page (volatile, or potentially
  volatile and clean) is dropped: no I/O now (counted in ``discards`` and
  ``discards_by_guest``: the guest chose it); the next access re-reads it
  from its file (``guest_reads``, ``discard_faults``);
* otherwise the least recently used stable (or dirty) page is swapped out:
  one guest write now (``guest_writes``) and one guest read (swap-in) on the
  next access (``guest_reads``).

Unused pages are free: they take no share. The page being brought in is
never its own victim, and an allocation (a hint that takes an unused page
into use) counts as a use for recency. Freeing a reclaimed page frees its
swap slot. Resident frames reported are the guests' in-use pages. A guest
trace's hints are the guest's own knowledge here (no host is told anything).

Layers: ``_static_one`` (numba, one budget; the guest's reclaim is
:mod:`cmmsim.replay.kernels.guest_reclaim`), ``_static_budgets`` (prange), ``run``;
:func:`reference` is the twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numba as nb
import numpy as np

from cmmsim.replay.budgets import validated
from cmmsim.replay.kernels.guest_reclaim import (
    FILE_REFAULT,
    JOINED,
    LEFT,
    LOWERED,
    REFAULTED,
    REPAIRED,
    file_page,
    guest_heaps,
    guest_step,
    reclaimed,
    take_victim,
)
from cmmsim.replay.kernels.resident import peak, resident_close, resident_delta
from cmmsim.replay.result import without_states
from cmmsim.replay.states import (
    C_ACCESSES,
    C_DISCARD_FAULTS,
    C_DISCARDS,
    C_DISCARDS_GUEST,
    C_GUEST_READS,
    C_GUEST_WRITES,
    C_REPAIRS,
    DIRTY,
    G_U,
    N_COUNTERS,
    OP_WRITE,
    OUT,
    SWAPPED,
)
from cmmsim.replay.strategies import Strategy
from cmmsim.replay.watch import reached, watched
from cmmsim.tracer.errors import ParamError


@dataclass(frozen=True)
class Params:
    partition: Literal["equal", "weighted"] = field(
        default="equal", metadata={"help": "equal shares, or shares weighted by guest memory"}
    )


def shares(budget: int, guest_pages: np.ndarray, partition: str) -> np.ndarray:
    """Each guest's share of ``budget`` frames (>= 1, <= its memory; they sum to <= budget)."""
    n = len(guest_pages)
    if budget < n:
        raise ParamError(f"budget of {budget} frames cannot give each of {n} guests a frame")
    w = np.ones(n) if partition == "equal" else guest_pages.astype(np.float64)
    # One frame each, the rest in proportion: the shares never add up past the budget.
    t = 1 + np.floor((budget - n) * w / w.sum()).astype(np.int64)
    return np.minimum(t, guest_pages).astype(np.int64)


@nb.njit(cache=True)
def _static_one(page, op, guest, page_guest, n_guests, target, done, slot, mask):
    n_pages = page_guest.shape[0]
    state = np.full(n_pages, G_U, np.uint8)
    cnt = np.zeros((n_guests, N_COUNTERS), np.int64)
    host = np.zeros(2, np.int64)
    _static_replay(
        page,
        op,
        guest,
        target,
        state,
        np.zeros(n_pages, np.int64),
        cnt,
        host,
        np.zeros(n_guests, np.int64),
        np.zeros(n_guests, np.int64),
        *guest_heaps(target),
        done,
        slot,
        mask,
    )
    return cnt, host, state


# The event loop apart from the allocations, without reference counting
# (_nrt=False): with it, the guest heaps' slices handed to the inlined reclaim
# helpers counted references at every event (1.12x the time).
@nb.njit(cache=True, _nrt=False)
def _static_replay(
    page, op, guest, target, state, stamp, cnt, host, in_use, mark, cap, off, hkeys, hpages, hsize, done, slot, mask
):
    """Every event at one budget: guest bytes in ``state``, last uses in ``stamp``, guest
    g's heap ``hkeys/hpages[off[g]:off[g] + cap[g]]`` of ``hsize[g]`` entries; the
    event index in ``done[slot]`` every ``mask + 1`` events (:mod:`cmmsim.replay.watch`)."""
    total = 0
    n = page.shape[0]
    for i in range(n):
        if (i & mask) == 0 and reached(done, slot, i):
            break
        p = page[i]
        g = guest[i]
        o = op[i]
        st, flags = guest_step(state[p], o)
        state[p] = st
        if o <= OP_WRITE:
            cnt[g, C_ACCESSES] += 1
            stamp[p] = i
        cnt[g, C_REPAIRS] += (flags & REPAIRED) != 0
        if flags & REFAULTED:
            cnt[g, C_GUEST_READS] += 1
            cnt[g, C_DISCARD_FAULTS] += (flags & FILE_REFAULT) != 0
        o_ = off[g]
        kk = hkeys[o_ : o_ + cap[g]]
        pp = hpages[o_ : o_ + cap[g]]
        if flags & LEFT:
            resident_delta(cnt, in_use, mark, g, i, -1)
            total -= 1
        elif flags & LOWERED:
            hsize[g] = file_page(kk, pp, hsize[g], p, state, stamp)
        if flags & JOINED:
            stamp[p] = i
            resident_delta(cnt, in_use, mark, g, i, 1)
            total += 1
            hsize[g] = file_page(kk, pp, hsize[g], p, state, stamp)
            if in_use[g] > target[g]:
                v, hsize[g] = take_victim(kk, pp, hsize[g], p, state, stamp)
                state[v], wrote = reclaimed(state[v])
                if wrote:
                    cnt[g, C_GUEST_WRITES] += 1
                else:
                    cnt[g, C_DISCARDS] += 1
                    cnt[g, C_DISCARDS_GUEST] += 1
                in_use[g] -= 1
                total -= 1
            peak(cnt, in_use, g)
            if total > host[0]:
                host[0] = total
        host[1] += total
    resident_close(cnt, in_use, mark, n)


@nb.njit(cache=True, parallel=True, nogil=True)
def _static_budgets(page, op, guest, page_guest, n_guests, targets, keep_final, done, mask):
    nb_ = targets.shape[0]
    cnt = np.zeros((nb_, n_guests, N_COUNTERS), np.int64)
    host = np.zeros((nb_, 2), np.int64)
    final = np.zeros((nb_ if keep_final else 0, page_guest.shape[0]), np.uint8)
    for b in nb.prange(nb_):
        c, h, st = _static_one(page, op, guest, page_guest, n_guests, targets[b], done, b, mask)
        cnt[b] = c
        host[b] = h
        if keep_final:
            final[b] = st
    return cnt, host, final


def run(scenario, budgets, params, sample_at=None, keep_final=False, on_events=None):
    """Replay under fixed partitions at every budget (no host state distribution);
    ``on_events``: progress of the budgets' passes (:func:`cmmsim.replay.watch.watched`)."""
    b = validated(budgets, scenario.n_pages).pages
    targets = np.stack([shares(int(x), scenario.guest_pages, params.partition) for x in b])
    n = scenario.n_events
    cnt, host, final = watched(
        lambda done, mask: _static_budgets(
            scenario.page,
            scenario.op,
            scenario.guest,
            scenario.page_guest,
            scenario.n_guests,
            targets,
            keep_final,
            done,
            mask,
        ),
        len(b),
        n,
        on_events,
    )
    return without_states(b, cnt, host, final, scenario.n_guests)


def reference(scenario, budget: int, params, check: bool = False):
    """Plain-Python twin: per page a small record, victims found by scanning.

    With ``check=True`` every event is followed by a full check of the
    invariants (:func:`_check`).
    """
    from cmmsim.replay.reference import GuestView, ReferenceResult
    from cmmsim.replay.states import COUNTERS
    from cmmsim.tracer.schema import Op

    target = shares(budget, scenario.guest_pages, params.partition)
    n_guests = scenario.n_guests
    counters = [dict.fromkeys(COUNTERS, 0) for _ in range(n_guests)]
    view = GuestView(scenario.n_pages)
    gstate, dirty, out, clean = view.state, view.dirty, view.out, view.clean
    last_use = [0] * scenario.n_pages
    in_use: list[set[int]] = [set() for _ in range(n_guests)]
    host_peak = host_sum = 0

    for i, (p, o, g) in enumerate(
        zip(scenario.page.tolist(), scenario.op.tolist(), scenario.guest.tolist(), strict=True)
    ):
        c = counters[g]
        joined, left, _ = view.step(p, o, c)
        if joined or o in (Op.READ, Op.WRITE):
            last_use[p] = i
        if left:
            in_use[g].discard(p)
        if joined:
            in_use[g].add(p)
            if len(in_use[g]) > target[g]:
                victim = min((q for q in in_use[g] if q != p), key=lambda q: (0 if clean(q) else 1, last_use[q]))
                if clean(victim):
                    c["discards"] += 1
                    c["discards_by_guest"] += 1
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
        if check:
            _check(scenario, budget, target, view, in_use)
    arr = np.array([[c[k] for k in COUNTERS] for c in counters], np.int64)
    final = np.array(
        [
            (
                "SUVP".index(gstate[q])
                | (DIRTY if dirty[q] else 0)
                | (OUT if out[q] else 0)
                | (SWAPPED if out[q] == "swap" else 0)
            )
            for q in range(scenario.n_pages)
        ],
        np.uint8,
    )
    return ReferenceResult(arr, host_peak, host_sum, final)


def _check(scenario, budget, target, view, in_use) -> None:
    """The twin's invariants after an event: each guest's in-use pages within its
    share and the shares within the budget; every page in exactly one place (in
    use: a frame of its guest's share; free; or reclaimed, to its file or swap)
    and the frames counted exactly the in-use pages; and only the guest-byte
    states the rules can reach: a free page has no content (not reclaimed, not
    dirty), and a dirty potentially-volatile page is never dropped to its file
    (it is swapped, as DESIGN.md section 2 has a dirty P leave as Sp)."""
    assert int(target.sum()) <= budget
    owner = scenario.page_guest.tolist()
    for g, pages in enumerate(in_use):
        assert len(pages) <= target[g], (g, len(pages), int(target[g]))
        want = {q for q in range(len(owner)) if owner[q] == g and view.state[q] != "U" and view.out[q] is None}
        assert pages == want, (g, pages, want)
    for q, (st, dirty, out) in enumerate(zip(view.state, view.dirty, view.out, strict=True)):
        assert out in (None, "file", "swap"), (q, out)
        if st == "U":
            assert out is None and not dirty, (q, st, dirty, out)
        if out == "file":
            assert not (st == "P" and dirty), (q, st, dirty, out)


STRATEGY = Strategy(
    name="static",
    params=Params,
    runner=run,
    reference=reference,
    summary="fixed partition of host memory (LPAR-like); guests reclaim inside their share",
    examples=({"partition": "equal"}, {"partition": "weighted"}),
    frame_per_guest=True,
)
