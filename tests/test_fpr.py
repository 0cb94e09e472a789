"""``free-page-reporting``: kernel against twin, the reporting rule, bad parameters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmmsim.replay import scenario as sc
from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.schema import Op
from tests.helpers import guest_traces, host_counters, make_arrays, run_both, sample_trace_scenarios, scenario_of

R, W, SS, SU = Op.READ, Op.WRITE, Op.SET_STABLE, Op.SET_UNUSED
FPR = "free-page-reporting"


def fpr(events, budget, pages=4, **params):
    ops = [o for o, _, _ in events]
    pfn = [p for _, p, _ in events]
    t = [t for _, _, t in events]
    return run_both(
        FPR,
        {"order": 1, "capacity": 1, "delay_ns": 10} | params,
        scenario_of(make_arrays(ops, pfn, guest_pages=pages, t_ns=t)),
        budget,
    )


def test_a_fully_free_block_is_reported_after_the_delay_and_reuse_is_a_zero_fill():
    # Block {0,1}: both written, freed at t=3; the report runs at t=13, drops both
    # (resident: no I/O) and the re-allocation of 0 at t=20 is a zero fill.
    ev = [
        (SS, 0, 0),
        (W, 0, 0),
        (SS, 1, 1),
        (W, 1, 1),
        (SU, 0, 2),
        (SU, 1, 3),
        (SS, 2, 14),
        (W, 2, 14),
        (SS, 0, 20),
        (W, 0, 20),
    ]
    c = host_counters(fpr(ev, budget=2))
    assert (c["hints"], c["discards"], c["zero_fills"], c["host_writes"], c["host_reads"]) == (2, 2, 4, 0, 0)
    # The guest gave both frames up: the host chose neither.
    assert (c["discards_released"], c["discards_by_guest"]) == (2, 0)


def test_a_report_releases_frames_apart_from_the_hosts_own_victims():
    # Budget 2: writing p1 makes the host evict p2 (read only, unchanged: a discard the
    # host chose); block {0,1}, freed at t=4, is reported at t=20: two frames the guest
    # gave up, dropped without a choice.
    ev = [(SS, 2, 0), (R, 2, 0), (SS, 0, 1), (W, 0, 1), (SS, 1, 2), (W, 1, 2)]
    ev += [(SU, 0, 3), (SU, 1, 4), (SS, 3, 20), (W, 3, 20)]
    c = host_counters(fpr(ev, budget=2))
    assert (c["discards"], c["discards_released"], c["discards_by_guest"]) == (3, 2, 0)
    assert (c["hints"], c["zero_fills"], c["host_writes"]) == (2, 4, 0)


def test_a_block_reused_before_its_report_is_not_reported():
    ev = [
        (SS, 0, 0),
        (W, 0, 0),
        (SS, 1, 1),
        (W, 1, 1),
        (SU, 0, 2),
        (SU, 1, 3),
        (SS, 1, 5),
        (W, 1, 5),
        (SS, 2, 14),
        (W, 2, 14),
        (SS, 3, 15),
        (W, 3, 15),
    ]
    c = host_counters(fpr(ev, budget=2))
    # Block {0,1} is freed at t=3, its report due at 13; page 1 is allocated again at
    # t=5, so nothing is reported (hints 0). The host, told nothing, pages by LRU:
    # W2 at 14 zero-fills and evicts 0 (written: hw1), W3 at 15 evicts 1 (written
    # again at 5: hw2). Accesses W0 W1 W1 W2 W3; zero fills 0, 1, 2, 3.
    assert c == dict.fromkeys(c, 0) | {"accesses": 5, "zero_fills": 4, "host_writes": 2}


def test_capacity_spreads_reports_over_passes():
    # Two free blocks, capacity 1: the second goes in the next report, delay later.
    ev = (
        [(SS, q, q) for q in range(4)]
        + [(W, q, 4) for q in range(4)]
        + [(SU, q, 5) for q in range(4)]
        + [(R, 0, 15), (SS, 2, 16), (W, 2, 16)]
    )
    c = host_counters(fpr(ev, budget=4))
    # t=15: the first block {0,1} is reported (then 0 is touched: a repair);
    # the second report would run at t=25, after the trace: block {2,3} is never reported.
    # The report drops 0 and 1 (resident: 2 discards, released by the guest); R0 is
    # then a zero fill, the fifth after W0-W3; W2 at 16 hits. Accesses: 4 + R0 + W2.
    want = {"accesses": 6, "hints": 2, "repairs": 1, "zero_fills": 5, "discards": 2, "discards_released": 2}
    assert c == dict.fromkeys(c, 0) | want


@given(scn=guest_traces(), data=st.data())
def test_fpr_kernel_equals_twin(scn, data):
    budget = data.draw(st.integers(1, scn.n_pages + 1))
    params = {
        "order": data.draw(st.integers(0, 2)),
        "capacity": data.draw(st.integers(1, 3)),
        "delay_ns": data.draw(st.integers(0, 6)),
        "replacement": data.draw(st.sampled_from(["lru", "two-list"])),
    }
    res = run_both(FPR, params, scn, budget)
    assert res.host_peak[0] <= budget


def test_fpr_twin_on_workload_traces(small_traces):
    for path in sorted(small_traces.values()):
        scn = sc.load([path])
        for replacement in ("lru", "two-list"):
            params = {"order": 3, "delay_ns": 10_000_000, "replacement": replacement}
            run_both(FPR, params, scn, max(1, scn.n_pages // 10))


@pytest.mark.slow  # random and workload traces hold the twin by default
def test_fpr_twin_on_sample_trace_prefixes():
    for _, scn in sample_trace_scenarios(limit=6_000):
        run_both(FPR, {}, scn, max(1, scn.n_pages // 50))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"order": 11}, "order must be 0..10"),
        ({"capacity": 0}, "capacity must be >= 1"),
        ({"delay_ns": -1}, "delay_ns must be >= 0"),
    ],
)
def test_bad_parameters(params, message):
    from cmmsim.replay.strategies import get_strategy

    with pytest.raises(ParamError, match=message):
        get_strategy(FPR).parse_params(params)
