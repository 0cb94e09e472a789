"""``static``: kernel against twin, hand-made cases, invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmmsim.replay import scenario as sc
from cmmsim.replay.strategies.static import shares
from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.schema import Op
from tests.helpers import guest_traces, host_counters, make_arrays, run_both, sample_trace_scenarios, scenario_of

R, W, SS, SU, SV = Op.READ, Op.WRITE, Op.SET_STABLE, Op.SET_UNUSED, Op.SET_VOLATILE
PARAMS = [{"partition": "equal"}, {"partition": "weighted"}]


def test_shares_never_exceed_budget_or_memory():
    gp = np.array([100, 300, 50])
    for budget in (3, 4, 10, 200, 10_000):
        for part in ("equal", "weighted"):
            t = shares(budget, gp, part)
            assert (t >= 1).all() and (t <= gp).all()
            assert t.sum() <= budget
    with pytest.raises(ParamError, match="cannot give each of 3 guests"):
        shares(2, gp, "equal")


def test_guest_drops_clean_cache_before_swapping():
    # Share 2: p0 stable (dirty), p1 clean cache; allocating p2 drops p1 (no I/O).
    # Re-reading p1 (a guest read) then has no clean page to drop: the LRU stable
    # page, p0, is swapped out (a guest write).
    ops = [SS, W, SS, W, SV, SS, W, R]
    pfn = [0, 0, 1, 1, 1, 2, 2, 1]
    res = run_both("static", {}, scenario_of(make_arrays(ops, pfn)), 2)
    c = host_counters(res)
    assert (c["discards"], c["guest_writes"], c["guest_reads"], c["discard_faults"]) == (1, 1, 1, 1)
    # The guest chose the page it dropped.
    assert (c["discards_by_guest"], c["discards_released"]) == (1, 0)
    # Nothing else: four accesses (W0 W1 W2 R1), no host, no zero fill (static has no host).
    want = {"accesses": 4, "discards": 1, "guest_writes": 1, "guest_reads": 1, "discard_faults": 1}
    assert c == dict.fromkeys(c, 0) | want | {"discards_by_guest": 1}


def test_swap_out_and_in():
    ops = [SS, W, SS, W, R]  # share 1: allocating p1 swaps p0; reading p0 swaps p1
    pfn = [0, 0, 1, 1, 0]
    res = run_both("static", {}, scenario_of(make_arrays(ops, pfn)), 1)
    c = host_counters(res)
    # Accesses W0 W1 R0; two swap-outs, one swap-in; every other counter 0.
    assert c == dict.fromkeys(c, 0) | {"accesses": 3, "guest_writes": 2, "guest_reads": 1}


@given(scn=guest_traces(), data=st.data())
def test_static_kernel_equals_twin(scn, data):
    budget = data.draw(st.integers(scn.n_guests, scn.n_pages + 2))
    for params in PARAMS:
        res = run_both("static", params, scn, budget)
        assert res.host_peak[0] <= budget
        assert (res.counters[0] >= 0).all()


def test_static_twin_on_workload_traces(small_traces):
    for path in sorted(small_traces.values()):
        scn = sc.load([path])
        for frac in (0.05, 0.3):
            run_both("static", {"partition": "weighted"}, scn, max(1, int(frac * scn.n_pages)))


@pytest.mark.slow  # random and workload traces hold the twin by default
def test_static_twin_on_sample_trace_prefixes():
    for _, scn in sample_trace_scenarios(limit=6_000):
        run_both("static", {}, scn, max(1, scn.n_pages // 50))
