"""Progress of a replay held in memory: the engine fed a chunk at a time moves the
bar as it goes, and gives the integers of one call."""

from __future__ import annotations

import numpy as np
import pytest

from cmmsim.replay import engine, planner
from cmmsim.replay.api import replay_full
from cmmsim.replay.scenario import load
from cmmsim.replay.states import HONOUR_NONE, INITIAL_NO_HINTS
from cmmsim.replay.strategies import get_strategy

from .helpers import examples, write_small_trace

CHUNK = 1000  # events per chunk: the scenario below is six of them


@pytest.fixture(scope="module")
def scn(tmp_path_factory):
    d = tmp_path_factory.mktemp("progress")
    return load([write_small_trace(d / "a.parquet", seed=1), write_small_trace(d / "b.parquet", seed=2)])


def _same(a, b) -> None:
    for name in ("budgets", "counters", "host_peak", "host_sum_resident", "final_states", "samples"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _checked_progress(calls: list[int], n_events: int) -> None:
    done = np.cumsum(calls)
    assert len(calls) >= 4 and np.all(np.diff(done) > 0)
    assert done[-1] == n_events and max(calls) <= CHUNK


@pytest.mark.parametrize(("name", "params"), examples(streams=True))
def test_a_chunked_replay_reports_progress_and_the_same_integers(scn, name, params):
    strat = get_strategy(name)
    p = strat.parse_params(params)
    # Sampled states: host-lru goes through the engine, not its one stack pass.
    at = np.linspace(0, int(scn.t_ns[-1]), 7).astype(np.int64)
    whole = strat.run(scn, [30, 120, 400], p, sample_at=at, keep_final=True)
    calls: list[int] = []
    chunked = strat.run(
        scn, [30, 120, 400], p, sample_at=at, keep_final=True, on_events=calls.append, chunk_events=CHUNK
    )
    _checked_progress(calls, scn.n_events)
    _same(whole, chunked)


@pytest.mark.parametrize("path", [planner.PIPELINE, planner.PARALLEL])
def test_both_engine_paths_give_the_same_integers_chunked(scn, path):
    kw = dict(honour=HONOUR_NONE, order=engine.ORDER_LRU, initial=INITIAL_NO_HINTS, keep_final=True)
    whole = engine.run(scn, [25, 200], path=planner.PARALLEL, **kw)
    calls: list[int] = []
    chunked = engine.run(scn, [25, 200], path=path, on_events=calls.append, chunk_events=CHUNK, **kw)
    _checked_progress(calls, scn.n_events)
    _same(whole, chunked)


@pytest.mark.parametrize(("name", "params"), [("host-lru", {}), ("opt", {}), ("cmm", {})])
def test_replay_full_reports_every_event_once(scn, name, params):
    # host-lru at two budgets runs one stack pass and opt its own kernel: no chunks,
    # the events are reported at the end; cmm's one chunk (the default size) likewise.
    calls: list[int] = []
    got = replay_full(scn, name, [40, 300], params, on_events=calls.append).results
    assert sum(calls) == scn.n_events and all(c > 0 for c in calls)
    assert got.equals(replay_full(scn, name, [40, 300], params).results)


def test_chunks_take_about_a_second_and_hold_at_least_the_minimum():
    least = engine.MIN_PROGRESS_CHUNK_EVENTS
    assert engine.next_chunk_events(least, engine.PROGRESS_CHUNK_S / 8) == 8 * least
    assert engine.next_chunk_events(4 * least, 2 * engine.PROGRESS_CHUNK_S) == 2 * least
    assert engine.next_chunk_events(least, 100 * engine.PROGRESS_CHUNK_S) == least
    assert engine.next_chunk_events(least, 0.0) >= least
