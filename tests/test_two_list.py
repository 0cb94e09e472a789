"""The host's two-list (active/inactive) reclaim: hand-made traces worked out by hand,
kernel against twin, invariants, and ``opt`` below it; on the engine and on the
balloons' and free page reporting's own kernels, whose hosts also drop frames they
did not choose (a page then leaves its list).

(Every strategy's declared examples, two-list among them, also run in
``test_registry.py`` and ``test_engine_equivalence.py``; the own kernels with a
host swap tier in ``test_tier.py``.)
"""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmmsim.replay import states as S
from cmmsim.replay.kernels import two_list
from cmmsim.replay.reference import TwoListTwin
from cmmsim.replay.strategies import get_strategy
from cmmsim.replay.strategies.balloon.twin import reference_balloon
from cmmsim.tracer.schema import Op
from tests.helpers import (
    STATE_BITS,
    check_invariants,
    event_per_time,
    guest_traces,
    make_arrays,
    run_both,
    scenario_of,
    total_io,
)

R, W, SS, SU = Op.READ, Op.WRITE, Op.SET_STABLE, Op.SET_UNUSED

#: Every strategy and parameter that runs the host's two-list reclaim.
TWO_LIST = [
    ("host-lru", {"replacement": "two-list"}),
    ("cmm", {"reclaim_order": "two-list"}),
    ("cmm-light", {"replacement": "two-list"}),
]
#: The strategies with kernels of their own that run it (nanosecond periods: random traces).
OWN_TWO_LIST = [
    ("free-page-reporting", {"order": 0, "delay_ns": 0, "replacement": "two-list"}),
    ("free-page-reporting", {"order": 1, "capacity": 1, "delay_ns": 3, "replacement": "two-list"}),
    ("balloon", {"estimator": "oracle", "period_ns": 5, "rate_pages_per_s": 10**9, "replacement": "two-list"}),
    ("balloon", {"estimator": "sampling", "period_ns": 4, "sample_pages": 3, "replacement": "two-list"}),
    ("balloon+cmm", {"estimator": "fault-rate", "period_ns": 3, "slack": 0.0, "replacement": "two-list"}),
]


def _reads(pfns, pages=None):
    return scenario_of(make_arrays([R] * len(pfns), pfns, guest_pages=pages))


def _resident(res) -> set[int]:
    host = (res.final_states[0] & S.HOST_MASK) >> S.HOST_SHIFT
    return set(np.flatnonzero(host == S.H_R).tolist())


def _counts(res) -> dict[str, int]:
    tot = res.counters[0].sum(axis=0)
    return {name: int(tot[S.C[name]]) for name in ("zero_fills", "discards", "host_reads", "host_writes")}


def test_a_scan_passes_the_active_pages_by():
    # Budget 4. Pages 0 and 1 are used twice: active. The scan 2..6 enters the
    # inactive list and leaves it from its tail (victims 2, 3, 4: the active list,
    # 2 pages, is never above the inactive one, 2 pages, at an eviction); 0 and 1
    # are hits at the end. Exact LRU evicts 0 and 1 to the scan and faults them back.
    scn = _reads([0, 0, 1, 1, 2, 3, 4, 5, 6, 0, 1])
    res = run_both("host-lru", {"replacement": "two-list"}, scn, 4)
    assert _counts(res) == dict(zero_fills=7, discards=3, host_reads=0, host_writes=0)
    assert _resident(res) == {0, 1, 5, 6}
    lru = run_both("host-lru", {"replacement": "lru"}, scn, 4)
    assert _counts(lru) == dict(zero_fills=9, discards=5, host_reads=0, host_writes=0)
    assert _resident(lru) == {0, 1, 5, 6}


def test_deactivation_keeps_the_active_list_no_longer_than_the_inactive():
    # Budget 3; "inactive" and "active" listed oldest first.
    # 0 0 1 1 2: active [0 1], inactive [2].
    # 3: inactive low (1 < 2): 0 deactivated -> inactive [2 0], active [1];
    #    victim 2; inactive [0 3].
    # 0: on the inactive list, used: activated -> active [1 0], inactive [3].
    # 4: low (1 < 2): 1 deactivated -> inactive [3 1]; victim 3; inactive [1 4].
    # 2: not low (2 >= 1): victim 1; inactive [4 2], active [0].
    scn = _reads([0, 0, 1, 1, 2, 3, 0, 4, 2])
    for strategy, params in TWO_LIST:
        res = run_both(strategy, params, scn, 3)
        assert _resident(res) == {0, 4, 2}, strategy
        # Six faults (0-4, and 2 again after its eviction); three victims, none ever
        # written: no host I/O.
        assert _counts(res) == dict(zero_fills=6, discards=3, host_reads=0, host_writes=0), strategy


def test_a_written_victim_is_written_and_read_back():
    # Budget 2: 0 written and used again (active), 1 read; 2 evicts 1 (inactive tail)
    # at no cost; 1 evicts 2 (the inactive list's tail; the active list, 1 page, is
    # not above the inactive one, 1 page). 0 never leaves: no host write, no read.
    scn = scenario_of(make_arrays([W, R, R, R, R], [0, 0, 1, 2, 1]))
    res = run_both("host-lru", {"replacement": "two-list"}, scn, 2)
    assert _counts(res) == dict(zero_fills=4, discards=2, host_reads=0, host_writes=0)
    # Exact LRU: 2 evicts 0 (written: a host write), 1 is still resident.
    lru = run_both("host-lru", {"replacement": "lru"}, scn, 2)
    assert _counts(lru) == dict(zero_fills=3, discards=0, host_reads=0, host_writes=1)


@pytest.mark.parametrize(
    "pages, ratio", [(0, 1), (2**18 - 1, 1), (2**18, 3), (10 * 2**18, 10), (100 * 2**18, 31), (1024 * 2**18, 101)]
)
def test_inactive_ratio_is_linux_table(pages, ratio):
    # mm/vmscan.c's table above inactive_is_low: 1 GB 3, 10 GB 10, 100 GB 31, 1 TB 101.
    assert two_list.inactive_ratio(pages) == ratio
    assert TwoListTwin.inactive_ratio(pages) == ratio


@nb.njit(cache=True)
def _drive(pfns, budget, n_pages):
    """The kernel's lists alone over a stream of uses: the victims in order, and the
    lists' lengths at the end."""
    tl = np.empty(two_list.size(n_pages), np.int32)
    two_list.init(tl)
    state = np.zeros(n_pages, np.uint8)
    resident = np.zeros(n_pages, np.bool_)
    victims = np.full(pfns.shape[0], -1, np.int64)
    n_res = 0
    k = 0
    for p in pfns:
        if resident[p]:
            state[p] = two_list.activate_or_keep(tl, p, state[p])
            continue
        if n_res == budget:
            v = two_list.victim(tl, state)
            resident[v] = False
            victims[k] = v
            k += 1
            n_res -= 1
        two_list.admit(tl, p)
        resident[p] = True
        n_res += 1
    return victims[:k], tl[tl.shape[0] - 2], tl[tl.shape[0] - 1]


def _drive_twin(pfns, budget):
    twin = TwoListTwin()
    victims = []
    for p in pfns.tolist():
        if p in twin.inactive or p in twin.active:
            twin.use(p)
            continue
        if len(twin) == budget:
            victims.append(twin.victim())
        twin.admit(p)
    return victims, len(twin.inactive), len(twin.active)


def test_above_one_gib_the_active_list_may_outgrow_the_inactive():
    # 2**18 + 4 frames (1 GiB and 4 pages): ratio 3. Every page of the budget used
    # twice (all active), then a scan: the first eviction deactivates down to
    # inactive * 3 >= active, and so on; at ratio 1 the active list would be halved.
    budget = 2**18 + 4
    twice = np.repeat(np.arange(budget, dtype=np.int64), 2)
    scan = np.arange(budget, budget + 1000, dtype=np.int64)
    pfns = np.concatenate([twice, scan])
    victims, n_inactive, n_active = _drive(pfns, budget, budget + 1000)
    twin_victims, twin_inactive, twin_active = _drive_twin(pfns, budget)
    assert victims.tolist() == twin_victims
    assert (n_inactive, n_active) == (twin_inactive, twin_active)
    assert 3 * n_inactive >= n_active > 2 * n_inactive
    # The first victim is the first page deactivated (the active list's oldest).
    assert victims[0] == 0


@given(pfns=st.lists(st.integers(0, 15), max_size=300), budget=st.integers(1, 17))
def test_kernel_lists_equal_twin(pfns, budget):
    a = np.array(pfns, np.int64)
    victims, n_inactive, n_active = _drive(a, budget, 16)
    assert (victims.tolist(), n_inactive, n_active) == _drive_twin(a, budget)
    assert n_inactive + n_active <= budget


@pytest.mark.parametrize("strategy, params", TWO_LIST)
@given(scn=guest_traces(), data=st.data())
def test_kernel_equals_twin_and_keeps_the_invariants(strategy, params, scn, data):
    budget = data.draw(st.integers(1, scn.n_pages + 2))
    scn = event_per_time(scn)  # a sample before every event, not only the first of a time
    at = scn.t_ns if scn.n_events else None
    res = run_both(strategy, params, scn, budget, sample_at=at)
    if at is not None:
        check_invariants(scn, res, budget)


@given(scn=guest_traces(), data=st.data())
def test_opt_is_below_two_list(scn, data):
    budget = data.draw(st.integers(1, scn.n_pages + 1))
    floor = total_io(run_both("opt", {}, scn, budget))
    for strategy, params in TWO_LIST + OWN_TWO_LIST:
        strat = get_strategy(strategy)
        res = strat.run(scn, np.array([budget]), strat.parse_params(params))
        assert floor <= total_io(res), (strategy, budget)


@nb.njit(cache=True)
def _drive_with_drops(pfns, budget, n_pages):
    """As :func:`_drive`, and a negative entry ``-1 - p`` drops resident page p from its
    list (:func:`two_list.remove`), as a report or a balloon does."""
    tl = np.empty(two_list.size(n_pages), np.int32)
    two_list.init(tl)
    state = np.zeros(n_pages, np.uint8)
    resident = np.zeros(n_pages, np.bool_)
    victims = np.full(pfns.shape[0], -1, np.int64)
    n_res = 0
    k = 0
    for x in pfns:
        if x < 0:
            p = -1 - x
            if resident[p]:
                state[p] = two_list.remove(tl, p, state[p])
                resident[p] = False
                n_res -= 1
            continue
        if resident[x]:
            state[x] = two_list.activate_or_keep(tl, x, state[x])
            continue
        if n_res == budget:
            v = two_list.victim(tl, state)
            resident[v] = False
            victims[k] = v
            k += 1
            n_res -= 1
        two_list.admit(tl, x)
        resident[x] = True
        n_res += 1
    on_active = 0
    for p in range(n_pages):
        on_active += (state[p] & S.REF) != 0
    return victims[:k], tl[tl.shape[0] - 2], tl[tl.shape[0] - 1], on_active


@given(pfns=st.lists(st.integers(-16, 15), max_size=300), budget=st.integers(1, 17))
def test_kernel_lists_with_drops_equal_twin(pfns, budget):
    a = np.array(pfns, np.int64)
    victims, n_inactive, n_active, on_active = _drive_with_drops(a, budget, 16)
    twin = TwoListTwin()
    twin_victims = []
    for x in pfns:
        listed = set(twin.inactive) | set(twin.active)
        if x < 0:
            if -1 - x in listed:
                twin.remove(-1 - x)
        elif x in listed:
            twin.use(x)
        else:
            if len(twin) == budget:
                twin_victims.append(twin.victim())
            twin.admit(x)
    assert (victims.tolist(), n_inactive, n_active) == (twin_victims, len(twin.inactive), len(twin.active))
    # REF marks exactly the active list's pages: a dropped page is on no list.
    assert on_active == n_active
    assert n_inactive + n_active <= budget


def test_a_reported_page_leaves_the_active_list():
    # free-page-reporting, blocks of one page reported at the next event, budget 2.
    # 0 and 1 are used twice: active [0 1]. 0 is freed and reported (dropped, no I/O):
    # active [1]. 2 faults in: inactive [2]. 3: not low (1 >= 1): victim 2 (written);
    # inactive [3]. 2 again: victim 3 (written), 2 read back. 1 never leaves.
    ops = [SS, W, R, SS, W, R, SU, SS, W, SS, W, R]
    pfn = [0, 0, 0, 1, 1, 1, 0, 2, 2, 3, 3, 2]
    scn = scenario_of(make_arrays(ops, pfn, guest_pages=4, t_ns=list(range(len(ops)))))
    params = {"order": 0, "delay_ns": 0}
    res = run_both("free-page-reporting", params | {"replacement": "two-list"}, scn, 2)
    c = _counts(res)
    assert c == dict(zero_fills=4, discards=1, host_reads=1, host_writes=2)
    assert _resident(res) == {1, 2}
    # Exact LRU: 3 evicts 1 (written), 2 is a hit.
    lru = run_both("free-page-reporting", params, scn, 2)
    assert _counts(lru) == dict(zero_fills=4, discards=1, host_reads=0, host_writes=1)
    assert _resident(lru) == {2, 3}


def test_frames_a_balloon_takes_leave_the_active_list():
    # Guest a (pages 0-7) uses each page twice (all active), then frees 7 of them; guest
    # b (pages 8-15) starts a period later. Budget 10, no slack, each guest kept at 4
    # pages at least: period 1's targets are a 4, b 8 (12 > 10: the host pages). a's
    # balloon takes 4 of its free frames, oldest freed first (0-3): they leave the
    # active list, leaving a's 4-7 there. b's 8 pages fault in: at 8 + 6 = 14 the host
    # is full, and (the active list, 4 pages, not above the inactive one, 6) the victims
    # are b's oldest, 8 and 9 (written): a's active pages stay.
    a_pfn = [q for q in range(8) for _ in range(3)] + list(range(7))
    a = make_arrays([SS, W, R] * 8 + [SU] * 7, a_pfn, guest_pages=8, t_ns=[0] * 24 + [5] * 7)
    b_pfn = [q for q in range(8) for _ in range(2)]
    b = make_arrays([SS, W] * 8, b_pfn, guest_pages=8, t_ns=list(range(1500, 1516)))
    scn = scenario_of(a, b)
    params = {"estimator": "oracle", "period_ns": 1000, "slack": 0.0, "min_fraction": 0.5, "rate_pages_per_s": 10**12}
    for name in ("balloon", "balloon+cmm"):
        res = run_both(name, params | {"replacement": "two-list"}, scn, 10)
        c = _counts(res)
        assert c["discards"] == 4 and c["host_writes"] == 2, name
        assert _resident(res) == {4, 5, 6, 7} | set(range(10, 16)), name
        # Exact LRU: a's 4 and 5, least recently used, are the victims: written under
        # balloon; under balloon+cmm the host knows them unused and drops them.
        lru = run_both(name, params, scn, 10)
        assert _counts(lru)["host_writes"] == (2 if name == "balloon" else 0), name
        assert _resident(lru) == {6, 7} | set(range(8, 16)), name


@pytest.mark.parametrize("strategy, params", OWN_TWO_LIST)
@given(scn=guest_traces(), data=st.data())
def test_own_kernels_equal_twin_and_keep_resident_within_budget(strategy, params, scn, data):
    budget = data.draw(st.integers(1, scn.n_pages + 2))
    res = run_both(strategy, params, scn, budget)
    assert res.host_peak[0] <= budget
    assert (res.counters[0] >= 0).all()
    if strategy != "free-page-reporting":
        # The balloons' twin checks every invariant after every event.
        p = get_strategy(strategy).parse_params(params)
        ref = reference_balloon(scn, budget, p, honour_all=strategy == "balloon+cmm", check=True)
        np.testing.assert_array_equal(res.final_states[0] & STATE_BITS, ref.final_states)
