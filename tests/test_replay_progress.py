"""Progress of a replay held in memory: the engine fed a chunk at a time moves the
bar as it goes, and gives the integers of one call."""

from __future__ import annotations

import contextlib
import signal
import threading
import time

import numpy as np
import pytest

from cmmsim.replay import engine, onepass, planner, watch
from cmmsim.replay.api import replay_full
from cmmsim.replay.scenario import load
from cmmsim.replay.shards import CHUNK_EVENTS, miss_curve
from cmmsim.replay.states import HONOUR_NONE, INITIAL_NO_HINTS
from cmmsim.replay.strategies import get_strategy, strategies

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
    # host-lru at two budgets runs one stack pass and opt its own kernel, both
    # watched (cmmsim.replay.watch); cmm's one chunk (the default size) at its end.
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


# --- Kernels that run in one call, watched from another thread (cmmsim.replay.watch).

BIG_EVENTS = 300_000  # per guest: long enough (tens of ms a budget) for many polls


@pytest.fixture(scope="module")
def big_paths(tmp_path_factory):
    d = tmp_path_factory.mktemp("progress-big")
    return [write_small_trace(d / f"{k}.parquet", seed=k, events=BIG_EVENTS, guest_pages=20_000) for k in (1, 2)]


@pytest.fixture(scope="module")
def big(big_paths):
    return load(big_paths)


@pytest.fixture
def often(monkeypatch):
    """Stores every 256 events and polls every half millisecond: many calls in a short run."""
    monkeypatch.setattr(watch, "STORE_EVERY", 256)
    monkeypatch.setattr(watch, "POLL_S", 0.0005)


#: A strategy on each kernel that runs in one call, watched (cmmsim.replay.watch).
WATCHED = [
    ("host-lru", {}),
    ("opt", {}),
    ("opt-schedule", {}),
    ("static", {"partition": "equal"}),
    ("balloon", {"estimator": "fault-rate", "replacement": "two-list"}),
    ("balloon+cmm", {}),
    ("free-page-reporting", {"order": 3}),
]


def _reported_as_it_went(calls: list[int], n_events: int) -> None:
    # Every event once, in more than one call: at least one came while the kernel
    # ran (the last is the rest, after it returned). No timing is asserted.
    assert sum(calls) == n_events
    assert len(calls) >= 2 and all(c > 0 for c in calls)


@pytest.mark.parametrize(("name", "params"), WATCHED)
def test_kernels_in_one_call_report_progress_as_they_go_and_the_same_integers(big, often, monkeypatch, name, params):
    strat = get_strategy(name)
    p = strat.parse_params(params)
    budgets = [500, 4_000, 15_000]
    passes: list[int] = []
    real = onepass.run_lru_all
    monkeypatch.setattr(onepass, "run_lru_all", lambda *a, **k: passes.append(1) or real(*a, **k))
    # Final states where the strategy keeps them (host-lru would leave its stack pass for the engine).
    final = name != "host-lru"
    whole = strat.run(big, budgets, p, keep_final=final)
    calls: list[int] = []
    watched = strat.run(big, budgets, p, keep_final=final, on_events=calls.append)
    _reported_as_it_went(calls, big.n_events)
    _same(whole, watched)
    # Several budgets, no states: host-lru's is the one stack pass.
    assert len(passes) == (2 if name == "host-lru" else 0)


@pytest.mark.parametrize(("name", "params"), WATCHED)
def test_every_watched_kernel_leaves_its_loop_when_asked_to_stop(big, often, monkeypatch, name, params):
    # The stop slot set before the call: each pass must leave at its first store
    # (event 0). Without it, the same call gets to the end of its pass.
    strat = get_strategy(name)
    p = strat.parse_params(params)
    budgets = [500, 4_000, 15_000]
    real = watch._positions
    seen: list[np.ndarray] = []

    def positions(slots, stop):
        done = real(slots)
        done[-1] = -1 if stop else 0
        seen.append(done)
        return done

    monkeypatch.setattr(watch, "_positions", lambda slots: positions(slots, stop=False))
    strat.run(big, budgets, p)
    assert len(seen) == 1 and (seen[0][:-1] >= big.n_events - watch.STORE_EVERY).all()
    monkeypatch.setattr(watch, "_positions", lambda slots: positions(slots, stop=True))
    # What a stopped kernel returns is never used (watched raises the interruption);
    # run this way, the strategy may refuse its partial counts, which is as good.
    with contextlib.suppress(Exception):
        strat.run(big, budgets, p)
    assert len(seen) == 2 and (seen[1][:-1] == 0).all()


def _stoppable(ended: list[str]):
    """A stand-in kernel that moves on until its stop slot is set (ten seconds at most),
    recording in ``ended`` how it ended."""

    def call(done, mask):
        for _ in range(10_000):
            if done[-1] < 0:
                ended.append("stopped")
                return None
            done[0] += 1
            time.sleep(0.001)
        ended.append("ran to the end")
        return None

    return call


class _Interrupted(Exception):
    pass


def test_an_interrupted_wait_stops_the_kernel_before_it_goes_on_up():
    # A failing callback while the kernel runs: the kernel is told to stop and
    # waited for; the error is raised, not lost.
    ended: list[str] = []

    def on_events(n):
        raise _Interrupted

    with pytest.raises(_Interrupted):
        watch.watched(_stoppable(ended), 1, 1_000_000_000, on_events)
    assert ended == ["stopped"]


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signal handlers run in the main thread only"
)
def test_a_signal_in_the_wait_stops_the_kernel_before_it_goes_on_up(monkeypatch):
    # Ctrl-C is a signal handler raising in the waiting thread, inside a lock's wait; a
    # Thread.join interrupted that way stops waiting for the thread for good.
    monkeypatch.setattr(watch, "POLL_S", 5.0)  # the alarm comes inside a wait
    ended: list[str] = []

    def on_alarm(signum, frame):
        raise _Interrupted

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(_Interrupted):
            watch.watched(_stoppable(ended), 1, 1_000_000_000, lambda n: None)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert ended == ["stopped"]


def test_every_strategy_moves_the_bar_as_it_goes():
    # On the engine a chunk at a time, or its own kernel watched: every runner takes
    # the callback (the test above holds each one that is not on the engine to it).
    import inspect

    assert [n for n, s in strategies().items() if "on_events" not in inspect.signature(s.runner).parameters] == []


@pytest.mark.parametrize("threads", [1, 2])
def test_the_stack_pass_reports_progress_with_each_group_count(big, often, threads):
    budgets = np.arange(100, 20_000, 900)
    calls: list[int] = []
    got = onepass.run_lru_all(big, budgets, threads=threads, on_events=calls.append)
    _reported_as_it_went(calls, big.n_events)
    _same(onepass.run_lru_all(big, budgets, threads=threads), got)


@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_mrc_loaded_reports_progress_as_it_goes(big_paths, big, often, rate):
    calls: list[int] = []
    r = miss_curve(big_paths, [300, 3_000, 30_000], rate=rate, salts=2, on_events=calls.append)
    assert sum(calls) == big.n_events
    if rate == 1.0:
        _reported_as_it_went(calls, big.n_events)
    else:
        assert len(calls) == -(-big.n_events // CHUNK_EVENTS)  # one call per chunk of events sampled
    again = miss_curve(big_paths, [300, 3_000, 30_000], rate=rate, salts=2)
    np.testing.assert_array_equal(r.per_salt, again.per_salt)


def test_watched_runs_the_call_in_a_worker_with_our_thread_count_and_raises_its_error():
    import threading

    import numba

    from cmmsim.replay.numba_threads import numba_threads

    here = threading.current_thread()
    seen = []

    def call(done, mask):
        seen.append((threading.current_thread(), numba.get_num_threads(), done.shape, mask))
        done[:] = 5
        return "ok"

    assert watch.watched(call, 3, 10, None) == "ok"  # no callback: here, nothing reported
    # Three position slots and the stop slot.
    assert seen[-1][0] is here and seen[-1][2] == (4,) and seen[-1][3] == watch.STORE_EVERY - 1
    calls: list[int] = []
    with numba_threads(1):
        assert watch.watched(call, 3, 10, calls.append) == "ok"
    assert seen[-1][0] is not here and seen[-1][1] == 1  # numba's count is per thread: passed on
    assert sum(calls) == 10

    def fails(done, mask):
        raise ValueError("the kernel's own message")

    calls = []
    with pytest.raises(ValueError, match="the kernel's own message"):
        watch.watched(fails, 1, 10, calls.append)
    assert calls == []


def test_watched_refuses_a_store_interval_that_is_not_a_power_of_two(monkeypatch):
    monkeypatch.setattr(watch, "STORE_EVERY", 1000)
    with pytest.raises(ValueError, match="power of two"):
        watch.watched(lambda done, mask: None, 1, 1, None)


def test_cli_replay_of_opt_prints_progress_lines_before_the_end(big_paths, big, often):
    from typer.testing import CliRunner

    from cmmsim.cli import app
    from cmmsim.progress import INTERVAL_ENV

    args = ["replay", *map(str, big_paths), "-s", "opt", "-b", "10%", "-b", "20%"]
    r = CliRunner().invoke(app, args, env={INTERVAL_ENV: "0"})
    assert r.exit_code == 0, r.output
    lines = [x for x in r.stderr.splitlines() if x.startswith("replay opt: ")]
    # Standard error is not a terminal here: plain lines, one per report with a
    # 0 s interval; some came before the end, below 100 %, then the last one.
    assert any("(100%)" not in x for x in lines), r.stderr
    assert lines[-1].startswith(f"replay opt: {big.n_events:,} of {big.n_events:,} events (100%)")
    assert "replay opt:" not in r.stdout
