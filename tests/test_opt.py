"""``opt``: kernel against twin, hand-made cases, and the floor property on workload traces
(on random traces: ``test_registry.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmmsim.replay import scenario as sc
from cmmsim.replay.strategies import get_strategy
from cmmsim.tracer.schema import Op
from tests.helpers import (
    examples,
    guest_traces,
    host_counters,
    make_arrays,
    run_both,
    sample_trace_scenarios,
    scenario_of,
    total_io,
)

R, W, SS, SU, SV = Op.READ, Op.WRITE, Op.SET_STABLE, Op.SET_UNUSED, Op.SET_VOLATILE

#: Every registered online strategy with its declared examples (every choice value).
ONLINE = examples(online=True)


def test_hand_made_floor():
    # A, B written; C zero; budget 2. MIN evicts the page used farthest ahead.
    ops = [SS, W, SS, W, SS, R, R, R, SU, SS, W]
    pfn = [0, 0, 1, 1, 2, 2, 1, 0, 1, 1, 1]
    res = run_both("opt", {}, scenario_of(make_arrays(ops, pfn)), 2)
    # C's access evicts A (next use farthest): A's refault is the one costly miss.
    # When A comes back, B (freed before its next use) and C (never used again)
    # are both dead: the higher page, C, goes, and B's write after
    # re-allocation hits.
    assert host_counters(res) == {**{k: 0 for k in host_counters(res)}, "accesses": 6, "host_reads": 1, "zero_fills": 3}


def test_volatile_then_stable_and_never_written_pages_are_free():
    ops = [SS, R, SS, W, SV, SS, R, R]  # p0 never written; p1 content dropped (V then S)
    pfn = [0, 0, 1, 1, 1, 1, 0, 1]
    res = run_both("opt", {}, scenario_of(make_arrays(ops, pfn)), 1)
    # Budget 1: R0 zf1; W1 zf2, evicting 0 (never written: free); V1 S1 end 1's
    # content; R0 zf3 (still zero), evicting 1 (dropped: free); R1 zf4. No I/O,
    # and the floor honours no hint, so counts none.
    got = host_counters(res)
    assert got == dict.fromkeys(got, 0) | {"accesses": 4, "zero_fills": 4}


def test_opt_is_a_floor_on_workload_traces(small_traces):
    for path in sorted(small_traces.values()):
        scn = sc.load([path])
        budgets = np.unique(np.maximum(1, (np.array([0.02, 0.1, 0.4]) * scn.n_pages).astype(int)))
        opt = get_strategy("opt")
        floor = opt.run(scn, budgets, opt.parse_params({}))
        run_both("opt", {}, scn, int(budgets[0]))
        for name, params in ONLINE:
            strat = get_strategy(name)
            if "period_ns" in params:  # nanosecond periods suit only the hypothesis traces
                params = params | {"period_ns": 50_000_000, "rate_pages_per_s": 100_000}
            res = strat.run(scn, budgets, strat.parse_params(params))
            for b in range(len(budgets)):
                assert total_io(floor, b) <= total_io(res, b), (path.name, name, params)


@pytest.mark.slow  # random and workload traces hold the twin by default
@pytest.mark.parametrize("limit", [6_000])
def test_opt_twin_on_sample_trace_prefixes(limit):
    for _, scn in sample_trace_scenarios(limit=limit):
        run_both("opt", {}, scn, max(1, scn.n_pages // 50))


@given(scn=guest_traces(), budgets=st.lists(st.integers(1, 30), min_size=1, max_size=4))
def test_64_bit_indices_give_the_32_bit_answer(scn, budgets):
    # Traces past 2^31 events take 64-bit indices and keys; same kernel, other dtype.
    from cmmsim.replay.strategies import opt

    narrow = opt.run(scn, budgets, opt.Params())
    default = opt._index_type
    opt._index_type = lambda n_events, n_pages: np.int64
    try:
        wide = opt.run(scn, budgets, opt.Params())
    finally:
        opt._index_type = default
    assert default(len(scn.page), scn.n_pages) is np.int32
    assert np.array_equal(narrow.counters, wide.counters)
    assert np.array_equal(narrow.host_peak, wide.host_peak)
    assert np.array_equal(narrow.host_sum_resident, wide.host_sum_resident)


def test_content_lost_leaves_a_page_logically_zero_until_written():
    # p0 written, set volatile, dropped (p1's access), set stable: content lost,
    # the page is zero again. The floor once kept p0 "written" and counted its
    # third access as a costly refault, above cmm's 0 I/O: a floor must not.
    P = Op.SET_POT_VOLATILE
    for vol in (SV, P):
        ops = [W, vol, R, SS, R, R, R]
        pfn = [0, 0, 1, 0, 0, 1, 0]
        scn = scenario_of(make_arrays(ops, pfn, guest_pages=2))
        res = run_both("opt", {}, scn, 1)
        # Budget 1: W0 zf1; R1 zf2, evicting 0 (volatile, then set stable: its content
        # ends, free); R0 zf3 (zero again); R1 zf4 (never written), evicting 0 (not
        # written since: free); R0 zf5. No I/O at all.
        got = host_counters(res)
        assert got == dict.fromkeys(got, 0) | {"accesses": 5, "zero_fills": 5}
        cmm = get_strategy("cmm")
        assert total_io(cmm.run(scn, np.array([1]), cmm.parse_params({}))) == 0


def test_opt_schedule_brackets_the_optimum_on_workload_traces(small_traces):
    opt, schedule = get_strategy("opt"), get_strategy("opt-schedule")
    for path in sorted(small_traces.values()):
        scn = sc.load([path])
        budgets = np.unique(np.maximum(1, (np.array([0.02, 0.1, 0.4]) * scn.n_pages).astype(int)))
        floor = opt.run(scn, budgets, opt.parse_params({}))
        bound = schedule.run(scn, budgets, schedule.parse_params({}))
        run_both("opt-schedule", {}, scn, int(budgets[0]))
        for b in range(len(budgets)):
            assert total_io(floor, b) <= total_io(bound, b), path.name


@pytest.mark.slow  # random traces hold the twin by default
@pytest.mark.parametrize("limit", [6_000])
def test_opt_schedule_twin_on_sample_trace_prefixes(limit):
    for _, scn in sample_trace_scenarios(limit=limit):
        run_both("opt-schedule", {}, scn, max(1, scn.n_pages // 50))


def test_opt_schedule_reads_where_the_floor_reads_and_writes_besides():
    # A and B written, C read; budget 2: C's access evicts the page used
    # farthest ahead (A), which is changed: one write now, one read later.
    ops = [W, W, R, R, R]
    pfn = [0, 1, 2, 1, 0]
    scn = scenario_of(make_arrays(ops, pfn, guest_pages=3))
    floor = host_counters(run_both("opt", {}, scn, 2))
    sched = host_counters(run_both("opt-schedule", {}, scn, 2))
    assert floor["host_reads"] == 1 and total_io(run_both("opt", {}, scn, 2)) == 1
    assert sched["host_reads"] == 1 and sched["host_writes"] == 1


@pytest.mark.parametrize(
    "ops, pfn, budget, rival, params",
    [
        # MIN's victim is dirty where CLOCK's is clean: writes cost the schedule more.
        ([W, R, W, W, R, R, R, R, W, R], [1, 0, 2, 2, 2, 0, 1, 2, 2, 0], 2, "host-lru", {"replacement": "clock"}),
        # Honouring "set volatile" on a never-written page makes its access a discard
        # fault with a guest read; a host that ignores the hint zero-fills it.
        ([SV, R, Op.SET_POT_VOLATILE, W], [1, 0, 0, 1], 1, "cmm-light", {}),
    ],
)
def test_opt_schedule_is_no_bound_on_strategies(ops, pfn, budget, rival, params):
    # docs/costs.md: it bounds the optimum from above, not every strategy.
    scn = scenario_of(make_arrays(ops, pfn, guest_pages=3))
    strat = get_strategy(rival)
    other = total_io(strat.run(scn, np.array([budget]), strat.parse_params(params)))
    assert other < total_io(run_both("opt-schedule", {}, scn, budget))
