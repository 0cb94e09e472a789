"""One-pass budgets (Mattson's stack algorithm) equal one replay per budget, exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cmmsim.replay import engine, onepass, reference
from cmmsim.replay import scenario as sc
from cmmsim.replay.numba_threads import numba_threads
from cmmsim.replay.onepass import run_lru_all
from cmmsim.replay.states import HONOUR_NONE, INITIAL_NO_HINTS
from tests.helpers import SAMPLE_DIR, guest_traces, sample_trace_scenarios


def per_budget(scn, budgets):
    return engine.run(scn, budgets, honour=HONOUR_NONE, order=engine.ORDER_LRU, initial=INITIAL_NO_HINTS)


def assert_same(scn, budgets, threads=(1, 2, 3)):
    many = per_budget(scn, budgets)
    # One group, and budgets dealt into 2 or 3 groups passing in their own threads.
    for n in threads:
        one = run_lru_all(scn, budgets, threads=n)
        np.testing.assert_array_equal(one.counters, many.counters)
        np.testing.assert_array_equal(one.host_peak, many.host_peak)
        np.testing.assert_array_equal(one.host_sum_resident, many.host_sum_resident)


@given(scn=guest_traces(), budgets=st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_one_pass_equals_per_budget_replays(scn, budgets):
    assert_same(scn, np.array(budgets))


@given(scn=guest_traces(), budgets=st.lists(st.integers(1, 40), min_size=1, max_size=4), threads=st.integers(1, 3))
def test_one_pass_equals_the_twin(scn, budgets, threads):
    # Against the plain-Python twin directly (host-lru: no hints, exact LRU), not only
    # through the engine: every counter, the host peak and the frame-event sum.
    one = run_lru_all(scn, np.array(budgets), threads=threads)
    for k, b in enumerate(budgets):
        twin = reference.replay_reference(scn, b, set(), "lru")
        np.testing.assert_array_equal(one.counters[k], twin.counters, err_msg=f"budget {b}")
        assert (int(one.host_peak[k]), int(one.host_sum_resident[k])) == (twin.host_peak, twin.host_sum_resident)


def test_one_pass_on_workload_and_sample_traces(small_traces):
    for path in sorted(small_traces.values()):
        scn = sc.load([path])
        assert_same(scn, np.unique(np.linspace(1, scn.n_pages, 20).astype(int)))
    for _, scn in sample_trace_scenarios(limit=None):
        assert_same(scn, np.unique(np.linspace(1, scn.n_pages // 4, 20).astype(int)), threads=(2,))


def test_one_pass_on_merged_guests():
    # Frames pass between guests at the crossings: real traces, two and three guests.
    for paths, copies in [(["linux-sqlite.parquet", "phased.parquet"], 1), (["kernel-compile.parquet"], 3)]:
        scn = sc.load([SAMPLE_DIR / p for p in paths], copies=copies, stagger_ns=1_000_000)
        assert scn.n_guests > 1
        footprint = int(np.unique(scn.page).size)
        assert_same(scn, np.unique(np.linspace(1, footprint, 20).astype(int)), threads=(1, 2))


def test_host_lru_uses_it_only_when_no_states_are_asked_for(small_traces):
    from cmmsim.replay.strategies import get_strategy

    strat = get_strategy("host-lru")
    scn = sc.load([small_traces["phased"]])
    b = np.array([50, 5000])  # two budgets are enough for the pass
    fast = strat.run(scn, b, strat.parse_params({}))
    full = strat.run(scn, b, strat.parse_params({}), keep_final=True)
    assert fast.final_states.shape[0] == 0 and full.final_states.shape[0] == 2
    np.testing.assert_array_equal(fast.counters, full.counters)


@given(scn=guest_traces(), budgets=st.lists(st.integers(1, 40), min_size=1, max_size=8, unique=True))
def test_wide_page_table_gives_the_same_integers(scn, budgets):
    # Traces of 2^32 events or more get 64-bit page rows; same arithmetic.
    b = np.sort(np.array(budgets, np.int64))
    args = (scn.page, scn.op, scn.guest, scn.page_guest, scn.n_guests, b)
    watch = (np.zeros(1, np.int64), 0, 0xFFFF)  # progress slot 0, stored every 2^16 events
    narrow = onepass._lru_all(*args, np.zeros((scn.n_pages, 2), np.uint32), *watch)
    wide = onepass._lru_all(*args, np.zeros((scn.n_pages, 2), np.uint64), *watch)
    for x, y in zip(narrow, wide, strict=True):
        np.testing.assert_array_equal(x, y)
    if scn.n_guests == 1:
        # One guest runs without its guest array (a pass compiled without the
        # per-guest accounting): the same integers as with it.
        alone = onepass._lru_all(
            scn.page, scn.op, None, scn.page_guest, 1, b, np.zeros((scn.n_pages, 2), np.uint32), *watch
        )
        for x, y in zip(narrow, alone, strict=True):
            np.testing.assert_array_equal(x, y)


def test_more_budgets_than_a_group_holds(small_traces):
    # A page's flags hold budget indices in 16 bits: 70,000 budgets make two groups.
    scn = sc.load([small_traces["phased"]])
    budgets = np.arange(1, 70_001)
    some = np.array([0, 1, 499, 4_999, 65_534, 65_535, 69_999])
    one = run_lru_all(scn, budgets, threads=1)
    many = per_budget(scn, budgets[some])
    np.testing.assert_array_equal(one.counters[some], many.counters)
    np.testing.assert_array_equal(one.host_sum_resident[some], many.host_sum_resident)


def test_host_lru_takes_the_pass_for_one_budget_on_any_thread_count(small_traces, monkeypatch):
    # At one budget the pass took 0.8x the marker replay (docs/perf-log.md), on two
    # threads as on one; the engine's replay gives the same integers.
    import numba

    from cmmsim.replay.strategies import get_strategy

    calls = []
    real = onepass.run_lru_all
    monkeypatch.setattr(onepass, "run_lru_all", lambda *a, **k: calls.append(1) or real(*a, **k))
    strat = get_strategy("host-lru")
    scn = sc.load([small_traces["phased"]])
    one = np.array([500])
    for threads in (1, 2) if numba.config.NUMBA_NUM_THREADS >= 2 else (1,):
        with numba_threads(threads):
            by_pass = strat.run(scn, one, strat.parse_params({}))
    assert calls == [1] * (2 if numba.config.NUMBA_NUM_THREADS >= 2 else 1)
    by_replay = engine.run(scn, one, honour=HONOUR_NONE, order=engine.ORDER_LRU, initial=INITIAL_NO_HINTS)
    np.testing.assert_array_equal(by_pass.counters, by_replay.counters)
