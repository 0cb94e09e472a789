"""The marker replay (exact LRU, the victim read from the trace) against the time slots'
kernel and the twin: the same integers, samples and final states, in one call or
chunked, with and without hints and a tier, on one guest or several."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmmsim.replay import engine, marker, planner, reference
from cmmsim.replay.states import HONOUR_ALL, HONOUR_NONE, HONOUR_STABLE_UNUSED, INITIAL_HINTING, INITIAL_NO_HINTS
from tests.helpers import assert_equals_twin, guest_traces, sample_trace_budgets, sample_trace_scenarios

FIELDS = ("budgets", "counters", "host_peak", "host_sum_resident", "final_states", "samples")
CONFIGS = [(HONOUR_NONE, INITIAL_NO_HINTS), (HONOUR_STABLE_UNUSED, INITIAL_HINTING), (HONOUR_ALL, INITIAL_HINTING)]
#: The twin's hints honoured, by the engine's mask.
TWIN_HINTS = {HONOUR_NONE: set(), HONOUR_STABLE_UNUSED: reference.HINTS_STABLE_UNUSED, HONOUR_ALL: reference.HINTS_ALL}


def _same(a, b) -> None:
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _samples(scn, k: int) -> np.ndarray:
    if scn.n_events == 0:
        return np.zeros(0, np.int64)
    return np.linspace(int(scn.t_ns[0]), int(scn.t_ns[-1]), k).astype(np.int64)


@settings(max_examples=150, deadline=None)
@given(scn=guest_traces(), config=st.sampled_from(CONFIGS), tier=st.integers(0, 3), data=st.data())
def test_marker_equals_time_slots_and_twin(scn, config, tier, data):
    honour, initial = config
    budgets = sorted(set(data.draw(st.lists(st.integers(1, max(1, scn.n_pages)), min_size=1, max_size=3))))
    at = _samples(scn, 4)
    kw = dict(
        honour=honour,
        order=engine.ORDER_LRU,
        initial=initial,
        sample_at=at,
        keep_final=True,
        tier_pages=tier,
    )
    slots = engine.run(scn, budgets, path=planner.PARALLEL, **kw)
    got = engine.run(scn, budgets, path=planner.MARKER, **kw)
    _same(slots, got)
    chunk = data.draw(st.integers(1, max(1, scn.n_events)))
    chunked = engine.run(scn, budgets, path=planner.MARKER, on_events=lambda _: None, chunk_events=chunk, **kw)
    _same(got, chunked)
    assert_equals_twin(scn, got, budgets, TWIN_HINTS[honour], "lru", tier, sample_at=at)


def test_marker_on_sample_traces_equals_time_slots():
    found = 0
    for scn, budgets in sample_trace_budgets(limit=20_000):
        found += 1
        for honour, initial in CONFIGS:
            kw = dict(honour=honour, order=engine.ORDER_LRU, initial=initial, sample_at=_samples(scn, 5))
            kw["keep_final"] = True
            _same(engine.run(scn, budgets, path=planner.PARALLEL, **kw), engine.run(scn, budgets, **kw))
    assert found >= 3


def test_the_planner_takes_the_marker_in_memory_and_not_for_streams():
    kw = dict(exact_lru=True, n_budgets=1, n_events=10**7, threads=2)
    assert planner.choose(in_memory=True, **kw) == planner.MARKER
    assert planner.choose(**kw) == planner.PIPELINE
    assert planner.choose(in_memory=True, **(kw | {"exact_lru": False})) == planner.PARALLEL


@pytest.mark.parametrize("limit", ["events", "bytes", "three bits"])
@pytest.mark.parametrize(
    ("order", "kernel"), [(engine.ORDER_LRU, "marker_budgets"), (engine.ORDER_CLASS, "replay_walked")]
)
def test_beyond_its_limits_a_marker_replay_keeps_its_time_slots(monkeypatch, limit, order, kernel):
    _, scn = next(iter(sample_trace_scenarios(limit=5_000)))
    kw = dict(honour=HONOUR_ALL, order=order, initial=INITIAL_HINTING, keep_final=True)
    want = engine.run(scn, [50, 400], path=planner.PARALLEL, **kw)
    used: list[bool] = []
    real = getattr(engine, kernel)

    def spy(*args):
        used.append(True)
        return real(*args)

    monkeypatch.setattr(engine, kernel, spy)
    _same(want, engine.run(scn, [50, 400], **kw))
    assert used
    used.clear()
    if limit == "events":
        monkeypatch.setattr(engine, "MAX_EVENTS", scn.n_events - 1)
    elif limit == "bytes":
        monkeypatch.setattr(engine, "MAX_LIVE_BYTES", 8)
    else:
        # Room for a bit per event per budget, not for state-priority's three.
        monkeypatch.setattr(engine, "MAX_LIVE_BYTES", 2 * marker.live_words(scn.n_events) * 8)
    _same(want, engine.run(scn, [50, 400], **kw))
    assert used == ([True] if limit == "three bits" and order == engine.ORDER_LRU else [])


def test_next_live_finds_the_next_set_bit():
    live = np.zeros(marker.live_words(300), np.uint64)
    for s in (3, 64, 65, 200):
        live[s >> 6] |= np.uint64(1) << np.uint64(s & 63)
    assert [marker.next_live(live, t) for t in (-1, 3, 63, 64, 65, 199)] == [3, 64, 64, 65, 200, 200]
