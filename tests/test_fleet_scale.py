"""A fleet replayed streamed: bounded memory, the in-memory replay's integers, streamed sweeps.

The full figure (200 guests of 1 GiB, 1 G events) is ``benchmarks/bench_fleet.py``'s;
these are the same properties on a fleet of a few small guests.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import polars as pl
import pytest

from cmmsim import api
from cmmsim.replay import scenario as sc
from cmmsim.replay.api import replay_full
from cmmsim.replay.scenario import load
from cmmsim.replay.stream import merged_batches, replay_stream, stream_guests
from cmmsim.replay.sweep import load_sweep_file
from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.io import write_trace
from cmmsim.tracer.synth import SCENARIO_ROW_GROUP_EVENTS, generate, scenario_chunk_events
from tests.helpers import make_arrays, small

#: Small row groups and stream batches: many of both, even in a short fleet.
CHUNK = 1 << 12
BATCH = 1 << 13
INT_COLUMNS = ("events", "host_reads", "host_writes", "total_io")


def _fleet(tmp_path, duration_s: int):
    folder = tmp_path / f"fleet{duration_s}"
    res = generate(
        "fleet",
        folder,
        seed=5,
        jobs=1,
        chunk_events=CHUNK,
        params=small("fleet", "guests=5", f"duration_s={duration_s}"),
    )
    return folder, sum(r.facts["events"] for r in res)


def _streamed_peak(folder) -> int:
    """Peak bytes numpy allocated (tracemalloc) while the fleet replays streamed."""
    tracemalloc.start()
    try:
        replay_stream([folder], "cmm", ["40%"], batch_rows=BATCH)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def fleets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleets")
    return _fleet(tmp, 10), _fleet(tmp, 40)


def test_the_streamed_fleet_gives_the_in_memory_integers(fleets):
    (folder, events), _ = fleets
    for strategy, params in (("cmm", {}), ("cmm", {"reclaim_order": "two-list"}), ("host-lru", {})):
        budgets = ["20%", "40%", "80%"]
        full = replay_full(load([folder]), strategy, budgets, params).results
        streamed = replay_stream([folder], strategy, budgets, params, batch_rows=BATCH).results
        assert full.height == streamed.height == 3 * (5 + 1)
        keys = ["budget_pages", "guest"]
        a, b = (df.sort(keys, nulls_last=True).select(keys + list(INT_COLUMNS)) for df in (full, streamed))
        assert a.equals(b), strategy
        assert int(full.filter(pl.col("guest").is_null())["events"][0]) == events
    assert full.filter(pl.col("guest").is_null())["total_io"].max() > 0  # the budgets page


def test_the_streamed_fleet_holds_chunks_not_the_trace(fleets):
    (short, short_events), (long, long_events) = fleets
    assert long_events > 3.5 * short_events
    _streamed_peak(short)  # the first call's one-time allocations (about 4x the others' peak here)
    short_peak, long_peak = _streamed_peak(short), _streamed_peak(long)
    # The same guests (the same engine state), four times the events: the peak
    # is the state and a few batches per guest, not the trace ...
    assert long_peak < 1.25 * short_peak + (1 << 20)
    # ... which in memory would take 13 bytes an event (t_ns, pfn, op).
    assert long_peak < 0.25 * 13 * long_events


def test_a_streamed_sweep_equals_the_loaded_one(fleets, tmp_path):
    (folder, _), _ = fleets
    runs = {}
    for stream in (False, True):
        df = api.sweep(
            [folder], tmp_path / f"s{stream}", ["30%", "60%"], strategies=["cmm", "cmm-light"], jobs=1, stream=stream
        )
        runs[stream] = df.sort(["strategy", "budget_pages", "guest"], nulls_last=True).select(
            ["strategy", "budget_pages", "guest", *INT_COLUMNS]
        )
    assert runs[True].equals(runs[False])
    with pytest.raises(ParamError, match="stream"):
        api.sweep([folder], tmp_path / "refused", ["30%"], strategies=["opt"], jobs=1, stream=True)


def test_many_guests_merge_in_the_in_memory_order(tmp_path):
    # Enough guests that the merge reads several guests ahead between cuts;
    # coarse times so that ties across guests and row groups are common.
    rng = np.random.default_rng(3)
    paths = []
    for g in range(13):
        n = int(rng.integers(1, 60))
        t = np.sort(rng.integers(0, 40, n)).tolist()
        arr = make_arrays(rng.integers(0, 2, n).tolist(), rng.integers(0, 8, n).tolist(), guest_pages=8, t_ns=t)
        paths.append(tmp_path / f"g{g:02d}.parquet")
        write_trace(paths[-1], arr.t_ns, arr.pfn, arr.op, arr.meta, row_group_rows=int(rng.integers(1, 9)))
    mem = sc.load(paths)
    for batch in (1, 3, 16, 1000):
        parts = list(merged_batches(stream_guests(paths, 1, 0), batch))
        t, page, op, guest = (np.concatenate(c) for c in zip(*parts, strict=True))
        for got, want in ((t, mem.t_ns), (page, mem.page), (op, mem.op), (guest, mem.guest)):
            np.testing.assert_array_equal(got, want)


def test_a_sweep_file_says_stream(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('budgets = ["5%"]\nstream = true\n')
    assert load_sweep_file(f).stream
    f.write_text('budgets = ["5%"]\n')
    assert not load_sweep_file(f).stream
    f.write_text('stream = "yes"\n')
    with pytest.raises(ParamError, match="stream = 'yes': expected bool"):
        load_sweep_file(f)


def test_scenario_row_groups_shrink_with_the_guest_count():
    assert scenario_chunk_events(1) == scenario_chunk_events(8) == 1 << 20
    assert scenario_chunk_events(200) == 1 << 16
    for n in (3, 20, 100, 200, 5000):
        k = scenario_chunk_events(n)
        assert k & (k - 1) == 0  # a power of two
        assert n * k <= SCENARIO_ROW_GROUP_EVENTS or k == 1 << 16
