"""Streamed replay equals in-memory replay exactly; streaming merges guests in the same order."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from cmmsim.replay import scenario as sc
from cmmsim.replay.api import replay_full
from cmmsim.replay.strategies import names
from cmmsim.replay.stream import ChunkPool, merged_batches, read_ahead, replay_stream, stream_guests
from cmmsim.tracer.errors import ParamError, TraceError
from cmmsim.tracer.io import write_trace
from tests.helpers import SAMPLE_DIR, examples, guest_traces, make_arrays

#: Every declared example of the strategies that stream.
CONFIGS = examples(streams=True)


def _write_guests(scn, folder, row_group_rows):
    paths = []
    off = scn.page_offset
    for g in range(scn.n_guests):
        mine = scn.guest == g
        a = make_arrays(
            scn.op[mine],
            (scn.page[mine] - off[g]).astype(np.uint32),
            guest_pages=int(scn.guest_pages[g]),
            t_ns=scn.t_ns[mine],
        )
        path = folder / f"g{g}.parquet"
        write_trace(path, a.t_ns, a.pfn, a.op, a.meta, row_group_rows=row_group_rows)
        paths.append(path)
    return paths


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scn=guest_traces(), data=st.data())
def test_streamed_equals_in_memory(tmp_path_factory, scn, data):
    folder = tmp_path_factory.mktemp("s")
    paths = _write_guests(scn, folder, data.draw(st.integers(1, 40), label="row group"))
    batch = data.draw(st.integers(1, 50), label="batch rows")
    copies = data.draw(st.integers(1, 2), label="copies")
    stagger = data.draw(st.integers(0, 30), label="stagger")
    budgets = sorted(set(data.draw(st.lists(st.integers(1, 2 * scn.n_pages + 2), min_size=1, max_size=3))))
    mem = sc.load(paths, copies=copies, stagger_ns=stagger, name="x")
    for name, params in CONFIGS:
        want = replay_full(mem, name, budgets, params, states_interval_ns=7)
        got = replay_stream(
            paths,
            name,
            budgets,
            params,
            copies=copies,
            stagger_ns=stagger,
            batch_rows=batch,
            states_interval_ns=7,
            name="x",
        )
        assert_frame_equal(got.results, want.results)
        assert_frame_equal(got.states, want.states)


def _two_guest_files(tmp_path, a, b) -> list:
    """Guests a and b written in row groups of two events (batch edges everywhere)."""
    paths = []
    for name, arr in (("a", a), ("b", b)):
        paths.append(tmp_path / f"{name}.parquet")
        write_trace(paths[-1], arr.t_ns, arr.pfn, arr.op, arr.meta, row_group_rows=2)
    return paths


def _assert_merged_as_in_memory(parts, mem) -> None:
    t, page, op, guest = (np.concatenate(c) for c in zip(*parts, strict=True))
    np.testing.assert_array_equal(t, mem.t_ns)
    np.testing.assert_array_equal(page, mem.page)
    np.testing.assert_array_equal(op, mem.op)
    np.testing.assert_array_equal(guest, mem.guest)


def test_merge_order_matches_from_arrays(tmp_path):
    # Equal timestamps across guests and across batch edges: guest index breaks ties.
    a = make_arrays([0, 1, 0, 1, 0], [0, 1, 2, 3, 0], guest_pages=4, t_ns=[0, 5, 5, 5, 9])
    b = make_arrays([1, 0, 0, 1], [1, 1, 0, 2], guest_pages=3, t_ns=[5, 5, 6, 9])
    paths = _two_guest_files(tmp_path, a, b)
    mem = sc.load(paths)
    for batch in (1, 2, 3, 100):
        _assert_merged_as_in_memory(list(merged_batches(stream_guests(paths, 1, 0), batch)), mem)


def test_merge_with_a_pool_and_counts(tmp_path):
    # Chunks written into arrays given back (the cut's scratch too) are the
    # same events; events per guest are counted from the runs.
    a = make_arrays([0, 1, 0, 1, 0, 1], [0, 1, 2, 3, 0, 1], guest_pages=4, t_ns=[0, 5, 5, 5, 9, 12])
    b = make_arrays([1, 0, 0, 1], [1, 1, 0, 2], guest_pages=3, t_ns=[5, 5, 6, 9])
    paths = _two_guest_files(tmp_path, a, b)
    mem = sc.load(paths)
    for batch in (1, 2, 3, 100):
        pool = ChunkPool()
        counts = np.zeros(2, np.int64)
        parts = []
        for chunk in merged_batches(stream_guests(paths, 1, 0), batch, counts, pool):
            parts.append(tuple(c.copy() for c in chunk))
            pool.give(chunk)
        _assert_merged_as_in_memory(parts, mem)
        assert counts.tolist() == [6, 4]


def test_chunk_pool_reuses_what_is_given_back():
    pool = ChunkPool()
    first = pool.take(100)
    assert [c.dtype for c in first] == [np.int64, np.int32, np.uint8, np.uint16]
    pool.give(first)
    again = pool.take(90)  # a set at least as large: the same memory
    assert len(again[0]) == 90 and all(np.shares_memory(x, y) for x, y in zip(first, again, strict=True))
    pool.give(again)
    larger = pool.take(10_000)  # too small: dropped, a new set
    assert len(larger[0]) == 10_000 and not np.shares_memory(larger[0], first[0])
    assert not np.shares_memory(pool.take(100)[0], first[0])  # nothing left to give


@pytest.mark.parametrize("name, params", [("host-lru", {}), ("cmm", {"reclaim_order": "state-priority"})])
def test_streamed_sample_scenario(name, params):
    path = SAMPLE_DIR / "awm-96m"
    if not path.exists():
        pytest.skip("sample_traces/awm-96m is not in this checkout")
    mem = sc.load([path], copies=2, stagger_ns=250_000_000)
    budgets = ["10%", "40%"]
    want = replay_full(mem, name, budgets, params).results
    got = replay_stream([path], name, budgets, params, copies=2, stagger_ns=250_000_000, batch_rows=65_536).results
    assert_frame_equal(got, want)


def test_streaming_refuses_whole_trace_strategies(tmp_path):
    a = make_arrays([2, 1], [0, 0])
    path = tmp_path / "a.parquet"
    write_trace(path, a.t_ns, a.pfn, a.op, a.meta)
    for name in names(streams=False):
        with pytest.raises(ParamError, match="cannot stream"):
            replay_stream([path], name, [1])
    for name in names(streams=True):
        with pytest.raises(ParamError, match="no per-period series"):
            replay_stream([path], name, [1], series=True)


def test_streaming_names_the_bad_row(tmp_path):
    # Two row groups, each in order, the second starting before the first ends.
    a = make_arrays([2, 1, 0, 0], [0, 0, 0, 0])
    path = tmp_path / "bad.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cmmsim.tracer.io import read_meta

    write_trace(path, a.t_ns, a.pfn, a.op, a.meta)
    meta = pq.read_schema(path).metadata
    table = pa.table({"t_ns": np.array([5, 6, 1, 2], np.int64), "pfn": a.pfn, "op": a.op})
    pq.write_table(table.replace_schema_metadata(meta), path, row_group_size=2)
    read_meta(path)
    with pytest.raises(TraceError, match=r"bad.parquet: row 2: timestamp decreases"):
        replay_stream([path], "host-lru", [1], batch_rows=2)


def test_cli_stream_matches(tmp_path):
    from typer.testing import CliRunner

    from cmmsim.cli import app

    a = make_arrays([2, 1, 2, 1, 0, 3, 0], [0, 0, 1, 1, 0, 0, 1], guest_pages=2)
    path = tmp_path / "a.parquet"
    write_trace(path, a.t_ns, a.pfn, a.op, a.meta)
    outs = []
    for extra in ([], ["--stream", "--batch-rows", "2"]):
        out = tmp_path / f"r{len(extra)}.parquet"
        r = CliRunner().invoke(app, ["replay", str(path), "-s", "cmm", "-b", "1", "-o", str(out), *extra])
        assert r.exit_code == 0, r.output
        outs.append(pl.read_parquet(out))
    assert_frame_equal(outs[0], outs[1])
    r = CliRunner().invoke(app, ["replay", str(path), "-s", "opt", "-b", "1", "--stream"])
    assert r.exit_code == 2 and "cannot stream" in r.stderr


def test_read_ahead_keeps_order_raises_and_stops_when_closed():
    produced = []

    def items(fail_at=None):
        for i in range(100):
            if i == fail_at:
                raise TraceError(f"bad item {i}")
            produced.append(i)
            yield i

    assert list(read_ahead(items(), depth=2)) == list(range(100))
    with pytest.raises(TraceError, match="bad item 7"):
        list(read_ahead(items(fail_at=7)))
    produced.clear()
    it = read_ahead(items(), depth=1)
    assert next(it) == 0
    it.close()  # the producer stops: one item taken, one queued, one waiting at most
    n = len(produced)
    assert n <= 3 and len(produced) == n
