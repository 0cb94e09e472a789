"""``cmmsim trace compare``: measures and distances on hand-made traces with known answers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cmmsim.cli import app
from cmmsim.compare import (
    df_compare,
    df_distances,
    df_profile,
    df_reuse_histogram,
    stack_distances,
    trace_profile,
    wasserstein_1,
)
from cmmsim.tracer.io import write_trace
from cmmsim.tracer.schema import Op, TraceMeta
from tests import naive

runner = CliRunner()


def _trace(path, pfn, op, *, step_ns=1_000_000, guest_pages=16):
    n = len(pfn)
    write_trace(
        path,
        np.arange(n, dtype=np.int64) * step_ns,
        np.asarray(pfn, np.uint32),
        np.asarray(op, np.uint8),
        TraceMeta(guest_pages=guest_pages, source="test"),
    )
    return path


def _cyclic(path, pages: int, rounds: int, **kw):
    """SET_STABLE of ``pages`` pages, then reads cycling over them ``rounds`` times."""
    pfn = list(range(pages)) + list(range(pages)) * rounds
    op = [Op.SET_STABLE] * pages + [Op.READ] * (pages * rounds)
    return _trace(path, pfn, op, **kw)


def _by_measure(df: pl.DataFrame) -> dict[str, float]:
    return dict(zip(df["measure"].to_list(), df["distance"].to_list(), strict=True))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 7), max_size=60))
def test_stack_distances_match_the_lru_stack_twin(pages):
    got = stack_distances(np.array(pages, np.int64), 8).tolist()
    assert got == naive.stack_distances(pages)


def test_stack_distances_by_hand():
    # a b c a b b d a, the stack most recent first: a under [c b] (depth 2), b under
    # [a c] (2), b on top (0), a under [d b] (2); first uses -1.
    assert stack_distances(np.array([0, 1, 2, 0, 1, 1, 3, 0]), 4).tolist() == [-1, -1, -1, 2, 2, 0, -1, 2]


def test_wasserstein_by_hand():
    assert wasserstein_1(np.array([0, 0]), np.array([1, 1])) == 1.0
    assert wasserstein_1(np.array([0, 1]), np.array([0, 2])) == 0.5
    assert wasserstein_1(np.array([3, 1, 2]), np.array([2, 3, 1])) == 0.0
    assert np.isnan(wasserstein_1(np.array([]), np.array([1])))


def test_identical_traces_are_at_distance_zero(tmp_path):
    a = _cyclic(tmp_path / "a.parquet", 5, 3)
    b = _cyclic(tmp_path / "b.parquet", 5, 3)
    d = _by_measure(df_compare(a, b))
    assert set(d.values()) == {0.0}, d
    assert len(d) == 9


def test_a_known_shift_of_reuse_distance(tmp_path):
    # Cycling over 4 pages every reuse is at distance 3; over 10, at 9: the
    # distributions are points 6 pages apart. Both have 1 cold access in 4.
    a = trace_profile(_cyclic(tmp_path / "a.parquet", 4, 3))
    b = trace_profile(_cyclic(tmp_path / "b.parquet", 10, 3))
    d = _by_measure(df_distances(a, b))
    assert d["reuse distance (pages, mean)"] == 6.0
    assert d["cold access share"] == 0.0
    assert d["op mix"] == 0.0  # 1 SET_STABLE in 4 events in both
    hist = df_reuse_histogram(a)
    assert hist.filter(pl.col("accesses") > 0).rows() == [(2, 3, 8, 1.0)]


def test_twice_the_speed_doubles_every_rate(tmp_path):
    a = trace_profile(_cyclic(tmp_path / "a.parquet", 5, 3))
    b = trace_profile(_cyclic(tmp_path / "b.parquet", 5, 3, step_ns=500_000))
    d = _by_measure(df_distances(a, b))
    for rate in ("accesses_per_s", "hints_per_s", "allocs_per_s"):
        assert d[rate] == pytest.approx(0.5)
    assert d["frees_per_s"] == 0.0  # none in either
    # Time is relative to each duration: the curves are the same.
    assert d["footprint over time"] == 0.0 and d["state fractions over time"] == 0.0
    assert a.rates()["accesses_per_s"] == pytest.approx(15 / 0.019)


def test_state_fractions_and_footprint_over_time(tmp_path):
    pfn = [0, 0, 1, 0, 1, 2, 3, 2]
    op = [
        Op.SET_STABLE,
        Op.SET_VOLATILE,
        Op.SET_STABLE,
        Op.SET_UNUSED,
        Op.READ,
        Op.SET_POT_VOLATILE,
        Op.SET_STABLE,
        Op.WRITE,
    ]
    p = trace_profile(_trace(tmp_path / "s.parquet", pfn, op, guest_pages=4), points=7)
    prof = df_profile(p)
    # After all 8 events: 1 and 3 stable, 2 potentially volatile, 0 unused.
    assert prof.row(-1, named=True) == {
        "time_fraction": 1.0,
        "t_s": pytest.approx(0.007),
        "footprint_fraction": 0.5,
        "S": 0.5,
        "U": 0.25,
        "V": 0.0,
        "P": 0.25,
    }
    # After 2 events (t = 1 ms, 1/7 of the duration): page 0 volatile.
    assert prof.row(0, named=True)["V"] == 0.25 and prof.row(0, named=True)["U"] == 0.75


def test_cli_compare_writes_the_table(tmp_path):
    a = _cyclic(tmp_path / "a.parquet", 4, 3)
    b = _cyclic(tmp_path / "b.parquet", 10, 3)
    out = tmp_path / "cmp.csv"
    result = runner.invoke(app, ["trace", "compare", str(a), str(b), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pl.read_csv(out)
    assert _by_measure(table)["reuse distance (pages, mean)"] == 6.0
    assert "wasserstein" in result.output


def test_cli_compare_refuses_a_missing_trace_in_one_line(tmp_path):
    a = _cyclic(tmp_path / "a.parquet", 4, 3)
    out = tmp_path / "cmp.parquet"
    result = runner.invoke(app, ["trace", "compare", str(a), str(tmp_path / "nope.parquet"), "-o", str(out)])
    assert result.exit_code == 2 and "nope.parquet" in result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()


def test_a_trace_without_events_has_no_op_mix_or_cold_share(tmp_path):
    # Against an empty trace the op mix's total variation came out 0.5 and the cold
    # share's difference 1.0 (an empty trace's mix taken as all zeros, its share as 0):
    # figures for distributions that do not exist. They are undefined (NaN, as the
    # reuse distance already was); the measures that are defined stay.
    a = _cyclic(tmp_path / "a.parquet", 4, 3)
    empty = _trace(tmp_path / "e.parquet", [], [])
    df = df_compare(a, empty)
    d = _by_measure(df)
    assert np.isnan(d["op mix"]) and np.isnan(d["cold access share"])
    assert np.isnan(d["reuse distance (pages, mean)"])
    cold = df.filter(pl.col("measure") == "cold access share").row(0, named=True)
    assert cold["a"] == pytest.approx(4 / 12) and cold["b"] is None  # 4 first reads of 12
    # Defined: the empty trace's footprint is 0 at every point, so this is a's mean footprint.
    assert d["footprint over time"] == pytest.approx(trace_profile(a).footprint.mean()) and d["footprint over time"] > 0
    hints_only = _trace(tmp_path / "h.parquet", [1, 2], [Op.SET_UNUSED, Op.SET_UNUSED])
    d2 = _by_measure(df_compare(a, hints_only))
    assert np.isnan(d2["cold access share"]) and not np.isnan(d2["op mix"])
    assert np.isnan(_by_measure(df_compare(empty, empty))["op mix"])
