"""The LRU walker and the two-thread replay it feeds (cmmsim.replay.lru_ahead, engine.replay_pipelined)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmmsim.replay import engine, planner, reference
from cmmsim.replay.lru_ahead import lru_victims
from cmmsim.replay.numba_threads import numba_threads
from cmmsim.replay.planner import PARALLEL, PIPELINE
from cmmsim.replay.states import (
    C_ACCESSES,
    C_REPAIRS,
    HONOUR_ALL,
    HONOUR_NONE,
    HONOUR_STABLE_UNUSED,
    INITIAL_HINTING,
    INITIAL_NO_HINTS,
)
from cmmsim.tracer.schema import Op
from tests import naive
from tests.helpers import guest_traces, sample_trace_scenarios

R, W, H = int(Op.READ), int(Op.WRITE), int(Op.SET_UNUSED)


def test_victims_by_hand():
    page = np.array([0, 1, 2, 0, 0, 3, 1], np.int32)
    op = np.array([R, W, R, R, H, W, R], np.uint8)
    # Budget 2, least recent first: [0] [0 1] +2-0 [1 2] +0-1 [2 0] (the hint
    # on 0 changes nothing) +3-2 [0 3] +1-0 [3 1].
    assert lru_victims(page, op, 4, 2).tolist() == [0, 1, 2, 0]
    # Budget 3: [0 1 2] 0 hit [1 2 0] +3-1 [2 0 3] +1-2 [0 3 1].
    assert lru_victims(page, op, 4, 3).tolist() == [1, 2]
    assert lru_victims(page, op, 4, 4).tolist() == []
    # A budget beyond the pages there are behaves as all of them.
    assert lru_victims(page, op, 4, 99).tolist() == []


@given(
    n_pages=st.integers(1, 12),
    budget=st.integers(1, 14),
    events=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 6)), max_size=200),
)
def test_victims_equal_twin(n_pages, budget, events):
    page = np.array([p % n_pages for p, _ in events], np.int32)
    op = np.array([o for _, o in events], np.uint8)
    assert lru_victims(page, op, n_pages, budget).tolist() == naive.lru_victims(page, op, n_pages, budget)


def test_victims_validate_input():
    with pytest.raises(ValueError, match="budget"):
        lru_victims(np.zeros(1, np.int32), np.zeros(1, np.uint8), 1, 0)
    with pytest.raises(ValueError, match="page indices"):
        lru_victims(np.array([3], np.int32), np.zeros(1, np.uint8), 3, 1)
    with pytest.raises(ValueError, match="same length"):
        lru_victims(np.zeros(2, np.int32), np.zeros(1, np.uint8), 3, 1)


CONFIGS = [(HONOUR_NONE, INITIAL_NO_HINTS), (HONOUR_ALL, INITIAL_HINTING), (HONOUR_STABLE_UNUSED, INITIAL_HINTING)]


def _replay(scn, budget, honour, initial, modes, step, sample_at):
    """Replay in chunks of ``step`` events, chunk k two-threaded when ``modes[k % len]``."""
    b = np.array([budget])
    es = engine.alloc_state(scn.n_pages, scn.n_guests, b, engine.ORDER_LRU, initial, len(sample_at))
    chunks = range(0, max(scn.n_events, 1), step)
    for k, s in enumerate(chunks):
        e = s + step
        engine.replay_chunk(
            es,
            scn.t_ns[s:e],
            scn.page[s:e],
            scn.op[s:e],
            scn.guest[s:e],
            s,
            scn.page_guest,
            b,
            honour,
            engine.ORDER_LRU,
            sample_at,
            path=PIPELINE if modes[k % len(modes)] else PARALLEL,
            step=max(1, step // 3),
        )
    engine.replay_finish(es, scn.page_guest, scn.n_events)
    return es


def _assert_same_state(a, b):
    for name in ("state", "cnt", "res_g", "mark_g", "host", "samples", "slot", "slot_page", "bits"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for k in (engine.SC_RESIDENT, engine.SC_NEXT_SLOT):
        np.testing.assert_array_equal(a.sc[:, k], b.sc[:, k])


@pytest.mark.parametrize("honour, initial", CONFIGS)
@given(scn=guest_traces(), data=st.data())
def test_two_threads_equal_one(honour, initial, scn, data):
    budget = data.draw(st.integers(1, scn.n_pages + 2))
    step = data.draw(st.integers(1, max(1, scn.n_events)))
    at = np.unique(scn.t_ns) if scn.n_events else np.zeros(0, np.int64)
    one = _replay(scn, budget, honour, initial, [False], max(1, scn.n_events), at)
    # Two-threaded throughout, and alternating with the one-thread kernel
    # chunk by chunk (as a stream may): same integers, same states, same list.
    _assert_same_state(_replay(scn, budget, honour, initial, [True], step, at), one)
    _assert_same_state(_replay(scn, budget, honour, initial, [True, False], step, at), one)
    # And both are the twin's integers.
    twin = reference.ReferenceHost(
        scn.page_guest,
        budget,
        set()
        if honour == HONOUR_NONE
        else (reference.HINTS_ALL if honour == HONOUR_ALL else reference.HINTS_STABLE_UNUSED),
        "lru",
    )
    ref = twin.run(scn.page, scn.op)
    np.testing.assert_array_equal(one.cnt[0], ref.counters)
    assert (int(one.host[0, 0]), int(one.host[0, 1])) == (ref.host_peak, ref.host_sum_resident)
    np.testing.assert_array_equal(one.state[0] & 0x7F, ref.final_states)


@given(scn=guest_traces(), data=st.data())
def test_two_threads_repair_unused_pages_when_no_hint_counts(scn, data):
    # Honouring no hint, the two-thread replay shows the state machine the
    # accesses only; a page that starts unused is repaired at its first access
    # there as in the one-thread kernel.
    budget = data.draw(st.integers(1, scn.n_pages + 2))
    step = data.draw(st.integers(1, max(1, scn.n_events)))
    at = np.unique(scn.t_ns) if scn.n_events else np.zeros(0, np.int64)
    one = _replay(scn, budget, HONOUR_NONE, INITIAL_HINTING, [False], max(1, scn.n_events), at)
    _assert_same_state(_replay(scn, budget, HONOUR_NONE, INITIAL_HINTING, [True], step, at), one)
    accesses = int((scn.op <= 1).sum())
    assert one.cnt[0, :, C_ACCESSES].sum() == accesses
    assert one.cnt[0, :, C_REPAIRS].sum() == len(np.unique(scn.page[scn.op <= 1]))


def test_two_threads_on_sample_traces():
    found = 0
    for _, scn in sample_trace_scenarios(limit=None):
        found += 1
        budget = max(1, len(np.unique(scn.page)) // 3)
        at = np.zeros(0, np.int64)
        for honour, initial in CONFIGS[:2]:
            one = _replay(scn, budget, honour, initial, [False], scn.n_events, at)
            two = _replay(scn, budget, honour, initial, [True], max(1, scn.n_events // 5), at)
            _assert_same_state(two, one)
    assert found >= 5


def _two_threaded(monkeypatch, scn, budgets, order, threads, n=None):
    """Whether replay_chunk chose the two-thread replay for the first ``n`` events."""
    calls = []
    original = engine.replay_pipelined
    monkeypatch.setattr(engine, "replay_pipelined", lambda *a, **k: calls.append(1) or original(*a, **k))
    b = np.array(budgets)
    es = engine.alloc_state(scn.n_pages, scn.n_guests, b, order, INITIAL_NO_HINTS, 0)
    with numba_threads(threads):
        cut = slice(0, n)
        engine.replay_chunk(
            es,
            scn.t_ns[cut],
            scn.page[cut],
            scn.op[cut],
            scn.guest[cut],
            0,
            scn.page_guest,
            b,
            HONOUR_NONE,
            order,
            np.zeros(0, np.int64),
        )
    return bool(calls)


def test_auto_choice(monkeypatch):
    import numba as nb

    if nb.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here: the two-thread replay is never chosen")
    scn = max((s for _, s in sample_trace_scenarios(limit=None)), key=lambda s: s.n_events)
    assert scn.n_events >= 2 * planner.PIPELINE_STEP_MIN
    budget = max(1, len(np.unique(scn.page)) // 4)
    # Two threads: every LRU budget, one after another, on the two-thread replay.
    assert _two_threaded(monkeypatch, scn, [budget], engine.ORDER_LRU, 2)
    assert _two_threaded(monkeypatch, scn, [budget, budget + 1], engine.ORDER_LRU, 2)
    # One thread, CLOCK, or fewer than two steps of events: the one-thread kernel.
    assert not _two_threaded(monkeypatch, scn, [budget], engine.ORDER_LRU, 1)
    assert not _two_threaded(monkeypatch, scn, [budget], engine.ORDER_CLOCK, 2)
    assert not _two_threaded(monkeypatch, scn, [budget], engine.ORDER_LRU, 2, n=2 * planner.PIPELINE_STEP_MIN - 1)


def test_two_threads_equal_run_and_refusals():
    scn = next(iter(sample_trace_scenarios(limit=None)))[1]
    b = np.array([8])
    res = engine.run(scn, b, honour=HONOUR_NONE, order=engine.ORDER_LRU, initial=INITIAL_NO_HINTS)
    es = _replay(scn, 8, HONOUR_NONE, INITIAL_NO_HINTS, [True], scn.n_events, np.zeros(0))
    np.testing.assert_array_equal(es.cnt, res.counters)
    es = engine.alloc_state(scn.n_pages, scn.n_guests, np.array([8]), engine.ORDER_CLOCK, INITIAL_NO_HINTS, 0)
    with pytest.raises(ValueError, match="exact LRU only"):
        engine.replay_chunk(
            es,
            scn.t_ns,
            scn.page,
            scn.op,
            scn.guest,
            0,
            scn.page_guest,
            np.array([8]),
            HONOUR_NONE,
            engine.ORDER_CLOCK,
            np.zeros(0, np.int64),
            path=PIPELINE,
        )


@given(scn=guest_traces(), budgets=st.lists(st.integers(1, 14), min_size=2, max_size=4), step=st.integers(1, 50))
def test_two_threads_budget_after_budget(scn, budgets, step):
    b = np.array(budgets)
    at = np.unique(scn.t_ns) if scn.n_events else np.zeros(0, np.int64)
    runs = []
    for pipe in (False, True):
        es = engine.alloc_state(scn.n_pages, scn.n_guests, b, engine.ORDER_LRU, INITIAL_HINTING, len(at))
        engine.replay_chunk(
            es,
            scn.t_ns,
            scn.page,
            scn.op,
            scn.guest,
            0,
            scn.page_guest,
            b,
            HONOUR_ALL,
            engine.ORDER_LRU,
            at,
            path=PIPELINE if pipe else PARALLEL,
            step=step,
        )
        engine.replay_finish(es, scn.page_guest, scn.n_events)
        runs.append(es)
    _assert_same_state(runs[1], runs[0])


def test_prefetch_reaches_the_machine_code():
    # The walker's prefetch is a hint with no visible effect; this checks it is
    # still emitted (a fresh, uncached compile: numba shows no code for cached ones).
    import numba as nb

    from cmmsim.replay import lru_ahead
    from cmmsim.replay.kernels import slots

    fresh = nb.njit(nogil=True, _nrt=False, cache=False)(lru_ahead.walk_victims.py_func)
    args = (
        np.zeros(4, np.int32),
        np.zeros(4, np.uint8),
        *slots.new(4, 1, 1),
        np.int64(1),
        np.zeros(2, np.int64),
        np.zeros(4, np.int32),
        np.zeros(4, np.int32),
        np.zeros(4, np.int32),
    )
    fresh(*args)
    asm = fresh.inspect_asm(fresh.signatures[0]).lower()
    assert "prefetch" in asm or "prfm" in asm
