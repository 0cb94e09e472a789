"""The engine's invariants at every event for the strategies that take no state samples:
``static``, ``free-page-reporting``, ``opt-schedule`` (page states, no samples) and
``opt`` (no page states at all).

The registry's tests (``test_registry.py``) sample the sampling strategies before
every event; these strategies keep only final states, so here the kernel replays
every prefix of a random trace (static, free-page-reporting: a few tens of
microseconds each): an online kernel's final states on a prefix are its states
after that prefix's last event, and the frames it counted after that event are
the growth of its frame-event sums from the prefix one event shorter (in all and
per guest). opt-schedule looks ahead, so a prefix is another schedule: it runs
on a few drawn prefixes (its setup costs more), each held to the invariants on
its own, and the whole trace's frames are pinned at every event by their sum. The twins of static
and free-page-reporting check their own books after every event (``check=True``).

What "legal" means per layout:

* ``free-page-reporting`` keeps the engine's byte, and its host is told no hint:
  only Sr, Sp and Sz (DESIGN.md section 2's pairs with the guest letter S).
* ``opt-schedule`` keeps the engine's byte with every hint honoured: the eight
  legal pairs.
* ``static`` keeps the guest byte (states.py), where 0x0C is OUT|SWAPPED, not a
  host state. It reads here as (guest letter, where the content is): ``r`` in
  a frame of the guest's share (not OUT), ``s`` in guest swap (OUT|SWAPPED),
  ``f`` dropped to its file (OUT alone), ``z`` none (a free page). Legal:
  Sr Ss Sf, Vr Vs Vf, Pr Ps Pf (Pf clean only: a dirty P is swapped, never
  dropped) and Uz (a free page is never reclaimed, swapped or dirty); no byte
  has SWAPPED without OUT, nor bits 5-6 (the engine's CHANGED/COPY, the
  balloons' ON_FREE_LIST). ``r`` pages are the frames a guest holds.

opt's invariants, and what ``test_opt.py``/``test_registry.py`` already hold:
the floor under every online strategy and under opt-schedule, kernel against
twin, peak <= budget. Added here: every access counted, each page's first
access a zero fill and never a read, no other I/O, the frames held after each
event exactly min(budget, pages accessed so far) (nothing leaves without a
victim's fault; a sum of per-event upper bounds equal to the counted sum pins
every event), and reads non-increasing as the budget grows (MIN on a fixed
priority order is a stack algorithm: Mattson et al. 1970).
"""

from __future__ import annotations

import dataclasses

import numba as nb
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmmsim.replay import states as S
from cmmsim.replay.strategies import free_page_reporting, get_strategy, static
from cmmsim.replay.strategies import opt as opt_mod
from tests.helpers import STATE_BITS, examples, guest_traces, run_both

STATIC = [p for name, p in examples() if name == "static"]
FPR = [p for name, p in examples() if name == "free-page-reporting"]

#: Static's legal (guest letter, where) pairs (module docstring).
STATIC_PAIRS = ("Sr", "Ss", "Sf", "Uz", "Vr", "Vs", "Vf", "Pr", "Ps", "Pf")


def _static_pair(b: int) -> str:
    """Static's guest byte (REF masked) as a pair of :data:`STATIC_PAIRS`, or a name
    that is none of them."""
    if b & (S.CHANGED | S.COPY):
        return "bits 5-6"
    g = S.GUEST_NAMES[b & S.GUEST_MASK]
    out, swapped, dirty = b & S.OUT, b & S.SWAPPED, b & S.DIRTY
    if g == "U":
        return "Uz" if not (out or swapped or dirty) else "U with content"
    if swapped and not out:
        return "SWAPPED without OUT"
    where = "s" if swapped else "f" if out else "r"
    return "Pf dirty" if g + where == "Pf" and dirty else g + where


#: Every byte's static pair index (-1: illegal), for whole state arrays at once.
STATIC_PAIR_OF = np.array(
    [STATIC_PAIRS.index(p) if (p := _static_pair(b)) in STATIC_PAIRS else -1 for b in range(256)], np.int64
)


def _engine_pair(states: np.ndarray) -> np.ndarray:
    """The engine's pair index (``S.PAIRS``; -1: illegal) of every state byte."""
    g = (states & S.GUEST_MASK).astype(np.int64)
    h = ((states & S.HOST_MASK) >> S.HOST_SHIFT).astype(np.int64)
    idx = S.PAIR_OF[np.minimum(g * S.N_HOST_STATES + h, len(S.PAIR_OF) - 1)].astype(np.int64)
    return np.where(h < S.N_HOST_STATES, idx, -1)  # host bits 0b11: no host state


@pytest.fixture(autouse=True)
def _one_numba_thread():
    """The kernels on one thread: these tests make hundreds of one-budget runs of a
    few hundred events, where starting the parallel region's second thread on a
    busy machine costs more than the run itself (tens of ms at times)."""
    threads = nb.get_num_threads()
    nb.set_num_threads(1)
    yield
    nb.set_num_threads(threads)


def _prefix(scn, n: int):
    return dataclasses.replace(scn, t_ns=scn.t_ns[:n], page=scn.page[:n], op=scn.op[:n], guest=scn.guest[:n])


def _every_event(strat, p, scn, budget, **kw):
    """(event count, final states, frames counted after the last event in all and per
    guest, peak) of the kernel on every prefix of ``scn`` (>= 1 event): an online
    kernel's final states on a prefix are its states after that event, and the frames
    it held then are the growth of its frame-event sums from the prefix one shorter."""
    prev_cnt = np.zeros(scn.n_guests, np.int64)
    prev_sum = 0
    for n in range(1, scn.n_events + 1):
        res = strat.run(_prefix(scn, n), np.array([budget]), p, keep_final=True, **kw)
        cnt = res.counters[0, :, S.C_SUM]
        yield (
            n,
            res.final_states[0] & STATE_BITS,
            int(res.host_sum_resident[0] - prev_sum),
            cnt - prev_cnt,
            int(res.host_peak[0]),
        )
        prev_cnt, prev_sum = cnt, int(res.host_sum_resident[0])


def _held_per_guest(scn, held: np.ndarray) -> np.ndarray:
    """Pages per guest among those ``held`` (a mask over global pages)."""
    return np.bincount(scn.page_guest[held], minlength=scn.n_guests)


def _distinct_accessed(scn) -> np.ndarray:
    """Distinct pages accessed (READ, WRITE) by each event, that one included."""
    acc = scn.op <= S.OP_WRITE
    seen = np.zeros(scn.n_pages, bool)
    first = np.zeros(scn.n_events, np.int64)
    for i in np.flatnonzero(acc):
        if not seen[scn.page[i]]:
            seen[scn.page[i]] = True
            first[i] = 1
    return np.cumsum(first)


def test_static_pair_table_reads_the_guest_byte():
    # The layout of states.py: bits 0-1 guest, OUT 0x04, SWAPPED 0x08, DIRTY 0x10.
    U, V, P = S.G_U, S.G_V, S.G_P
    out, swap, dirty = S.OUT, S.OUT | S.SWAPPED, S.DIRTY
    legal = {S.G_S: "Sr", U: "Uz", V | out: "Vf", P | out: "Pf", P | dirty | swap: "Ps", V | dirty: "Vr"}
    for b, pair in legal.items():
        assert STATIC_PAIRS[STATIC_PAIR_OF[b]] == pair, hex(b)
    for b in (U | out, U | dirty, S.G_S | S.SWAPPED, P | dirty | out, S.G_S | S.CHANGED, V | S.ON_FREE_LIST):
        assert STATIC_PAIR_OF[b] == -1, hex(b)
    # Four guest letters x (in, swap, file) x dirty, less the dirty Pf, plus the bare Uz.
    assert (STATIC_PAIR_OF[:0x20] >= 0).sum() == 3 * 3 * 2 - 1 + 1
    assert (STATIC_PAIR_OF[0x20:0x80] == -1).all()  # bit 7 (REF, scratch) is masked before


@pytest.mark.parametrize("params", STATIC)
@given(scn=guest_traces(), data=st.data())
def test_static_invariants_at_every_event(params, scn, data):
    strat = get_strategy("static")
    p = strat.parse_params(params)
    budget = data.draw(st.integers(scn.n_guests, scn.n_pages + 2))
    share = static.shares(budget, scn.guest_pages, p.partition)
    run_both("static", params, scn, budget)
    static.reference(scn, budget, p, check=True)
    for n, states, resident, per_guest, peak in _every_event(strat, p, scn, budget):
        pair = STATIC_PAIR_OF[states]
        bad = np.flatnonzero(pair < 0)
        assert not bad.size, (n, [(int(q), _static_pair(int(states[q]))) for q in bad])
        held = np.isin(pair, [STATIC_PAIRS.index(x) for x in ("Sr", "Vr", "Pr")])
        in_share = _held_per_guest(scn, held)
        assert (in_share <= share).all() and share.sum() <= budget, (n, in_share, share)
        # Conservation: the frames counted are exactly the pages in a frame.
        assert (per_guest == in_share).all() and resident == held.sum(), (n, per_guest, in_share)
        assert resident <= peak <= budget


@pytest.mark.parametrize("params", FPR)
@given(scn=guest_traces(), data=st.data())
def test_free_page_reporting_invariants_at_every_event(params, scn, data):
    strat = get_strategy("free-page-reporting")
    p = strat.parse_params(params)
    budget = data.draw(st.integers(1, scn.n_pages + 2))
    tier = data.draw(st.sampled_from([0, 0, 1, 3]))
    # Kernel and twin (checking its books at every event) on the same trace and tier.
    res = strat.run(scn, np.array([budget]), p, keep_final=True, tier_pages=tier)
    ref = free_page_reporting.reference(scn, budget, p, tier_pages=tier, check=True)
    np.testing.assert_array_equal(res.counters[0], ref.counters)
    assert (int(res.host_peak[0]), int(res.host_sum_resident[0])) == (ref.host_peak, ref.host_sum_resident)
    np.testing.assert_array_equal(res.final_states[0] & STATE_BITS, ref.final_states)
    legal = [S.PAIRS.index(x) for x in ("Sr", "Sp", "Sz")]
    for n, states, resident, per_guest, peak in _every_event(strat, p, scn, budget, tier_pages=tier):
        pair = _engine_pair(states)
        assert np.isin(pair, legal).all(), (n, [S.describe(int(b)) for b in states])
        host = (states & S.HOST_MASK) >> S.HOST_SHIFT
        # A preserved page has its copy; a logically zero one neither copy nor change.
        assert (states[host == S.H_P] & S.COPY).all(), n
        assert not (states[host == S.H_Z] & (S.COPY | S.CHANGED)).any(), n
        held = host == S.H_R
        assert (per_guest == _held_per_guest(scn, held)).all() and resident == held.sum(), (n, per_guest)
        assert resident <= peak <= min(budget, scn.n_pages)


@given(scn=guest_traces(), data=st.data())
def test_opt_schedule_invariants_at_drawn_events(scn, data):
    strat = get_strategy("opt-schedule")
    p = strat.parse_params({})
    budget = data.draw(st.integers(1, scn.n_pages + 2))
    frames = min(budget, scn.n_pages)
    res = run_both("opt-schedule", {}, scn, budget)
    # Nothing leaves a frame but a victim, so after event i it holds min(frames,
    # pages accessed so far); each term bounds that event's frames from above, so
    # equal sums pin every event.
    distinct = _distinct_accessed(scn)
    assert int(res.host_sum_resident[0]) == int(np.minimum(frames, distinct).sum())
    assert int(res.counters[0, :, S.C_SUM].sum()) == int(res.host_sum_resident[0])
    if not scn.n_events:
        return
    # A prefix is another schedule (the victims look ahead): its own states and counts
    # hold the invariants, but its frames per guest need not be the whole trace's.
    cuts = sorted(set(data.draw(st.lists(st.integers(1, scn.n_events), max_size=3))) | {scn.n_events})
    for n in cuts:
        cut = strat.run(_prefix(scn, n), np.array([budget]), p, keep_final=True)
        states = cut.final_states[0] & STATE_BITS
        assert (_engine_pair(states) >= 0).all(), (n, [S.describe(int(b)) for b in states])
        held = (states & S.HOST_MASK) >> S.HOST_SHIFT == S.H_R
        assert held.sum() == min(frames, distinct[n - 1]) <= cut.host_peak[0] <= frames, (n, held.sum())
        assert int(cut.counters[0, :, S.C_SUM].sum()) == int(cut.host_sum_resident[0])
        assert (cut.counters[0, :, S.C_PEAK] <= np.minimum(scn.guest_pages, cut.host_peak[0])).all(), n


@given(scn=guest_traces(), data=st.data())
def test_opt_counts_every_access_and_holds_min_budget_pages(scn, data):
    strat = get_strategy("opt")
    budgets = np.arange(1, scn.n_pages + 2)
    res = strat.run(scn, budgets, opt_mod.Params())
    run_both("opt", {}, scn, data.draw(st.sampled_from(budgets.tolist())))
    acc = scn.op <= S.OP_WRITE
    accesses = np.bincount(scn.guest[acc], minlength=scn.n_guests)
    first = np.zeros(scn.n_guests, np.int64)
    np.add.at(first, scn.page_guest[np.unique(scn.page[acc])], 1)
    distinct = _distinct_accessed(scn)
    others = [
        i
        for i, k in enumerate(S.COUNTERS)
        if k not in ("accesses", "host_reads", "zero_fills", "peak_resident_pages", "sum_resident_pages")
    ]
    for k, b in enumerate(budgets):
        c = res.counters[k]
        assert (c[:, S.C_ACCESSES] == accesses).all()
        misses = c[:, S.C_HOST_READS] + c[:, S.C_ZERO_FILLS]
        assert (misses <= accesses).all() and (c[:, S.C_ZERO_FILLS] >= first).all(), b
        assert not c[:, others].any(), b
        held = np.minimum(b, distinct)
        assert int(res.host_peak[k]) == int(held[-1] if held.size else 0), b
        assert int(res.host_sum_resident[k]) == int(held.sum()) == int(c[:, S.C_SUM].sum()), b
        assert (c[:, S.C_PEAK] <= res.host_peak[k]).all()
    reads = res.counters[:, :, S.C_HOST_READS].sum(axis=1)
    misses = reads + res.counters[:, :, S.C_ZERO_FILLS].sum(axis=1)
    assert (np.diff(reads) <= 0).all() and (np.diff(misses) <= 0).all(), (reads, misses)
    assert reads[-1] == 0  # every page fits: no page is ever read back
