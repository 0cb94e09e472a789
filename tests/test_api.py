"""The library's front door (cmmsim.api): each function on small traces, against the
modules it wraps and numbers worked out from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import cmmsim
from cmmsim import api
from cmmsim.tracer.errors import ParamError
from tests.helpers import SMALL, write_small_trace

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    return write_small_trace(tmp_path_factory.mktemp("api") / "g.parquet", seed=3)


@pytest.fixture(scope="module")
def two_guests(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("api2")
    return [
        write_small_trace(d / "a.parquet", seed=4, guest_pages=128),
        write_small_trace(d / "b.parquet", seed=5, guest_pages=200),
    ]


def test_replay_is_the_engine_replay(trace, two_guests):
    from cmmsim.replay import api as engine
    from cmmsim.replay.scenario import load

    for paths in ([trace], two_guests):
        got = api.replay(paths, "cmm", [20, "50%"], {"reclaim_order": "state-priority"})
        want = engine.replay(load(paths), "cmm", [20, "50%"], ["reclaim_order=state-priority"])
        assert_frame_equal(got, want)
    # One path, one budget, a loaded scenario: the same rows.
    one = api.replay(trace, "host-lru", 64)
    assert_frame_equal(one, api.replay(api.load(trace), "host-lru", [64]))
    host = one.filter(pl.col("guest").is_null())
    assert host["budget_pages"].to_list() == [64] and host["total_io"][0] > 0
    # 50 % is half the guests' memory: (128 + 200) / 2 pages.
    assert api.replay(two_guests, "host-lru", "50%").filter(pl.col("guest").is_null())["budget_pages"].to_list() == [
        164
    ]


def test_replay_refuses_copies_with_a_loaded_scenario(trace):
    with pytest.raises(ParamError, match="copies and stagger"):
        api.replay(api.load(trace), "cmm", [20], copies=2)


def test_miss_curve_is_a_table_matching_host_lru(trace):
    curve = api.miss_curve(trace, [10, 200], points=5)
    assert curve.columns[:3] == ["budget_pages", "budget_mib", "accesses"]
    assert {"miss_ratio_est", "miss_ratio_se", "host_reads_est", "footprint_pages", "exact"} <= set(curve.columns)
    budgets = curve["budget_pages"].to_list()
    assert budgets == sorted(budgets) and budgets[0] == 10 and budgets[-1] == 200 and len(budgets) == 5
    assert curve["budget_mib"].to_list() == pytest.approx([b / 256 for b in budgets])
    ratio = curve["miss_ratio_est"].to_list()
    # LRU has the stack property: more memory never misses more.
    assert all(a >= b for a, b in zip(ratio, ratio[1:], strict=False)) and ratio[0] > ratio[-1]
    assert curve["exact"].all() and (curve["miss_ratio_se"] == 0).all()
    # Exact: the counters are host-lru's at the same budgets.
    lru = api.replay(trace, "host-lru", budgets).filter(pl.col("guest").is_null()).sort("budget_pages")
    assert curve["host_reads_est"].to_list() == [float(v) for v in lru["host_reads"]]
    assert curve["zero_fills_est"].to_list() == [float(v) for v in lru["zero_fills"]]
    assert_frame_equal(api.miss_curve(api.load(trace), [10, 200], points=5), curve)


def test_miss_curve_sampled_has_a_standard_error(trace):
    curve = api.miss_curve(trace, [50], rate=0.5, salts=4, seed=1)
    assert curve.height == 1 and not curve["exact"][0] and curve["salts"][0] == 4
    assert curve["miss_ratio_se"][0] > 0


def test_report_pivots_replay_rows(trace):
    rows = pl.concat([api.replay(trace, s, [20, 80]) for s in ("host-lru", "cmm")], how="diagonal_relaxed")
    wide = api.report(rows, "io-avoided-wide")
    assert wide.columns == ["trace_set", "budget_pages", "budget_mib", "baseline_io", "cmm"]
    host = rows.filter(pl.col("guest").is_null())
    for b, base, got in wide.select("budget_pages", "baseline_io", "cmm").iter_rows():
        lru = host.filter((pl.col("strategy") == "host-lru") & (pl.col("budget_pages") == b))["total_io"][0]
        cmm = host.filter((pl.col("strategy") == "cmm") & (pl.col("budget_pages") == b))["total_io"][0]
        assert base == lru and got == pytest.approx(100 * (lru - cmm) / lru)
    winners = api.report(rows, "winners")
    assert winners["budget_from"].to_list()[0] == 20 and "budget_to_mib" in winners.columns
    assert set(api.report(rows, "time", by="stall")["label"]) == {"host-lru", "cmm"}
    with pytest.raises(ParamError, match="unknown report 'nope'"):
        api.report(rows, "nope")


def test_sweep_in_process_and_read_back(trace, tmp_path):
    out = tmp_path / "sw"
    df = api.sweep(
        [trace], out, [20, 80], strategies=["cmm"], grid={"cmm": {"reclaim_order": ["lru", "state-priority"]}}, jobs=1
    )
    host = df.filter(pl.col("guest").is_null())
    assert host.height == 4 and set(host["budget_pages"]) == {20, 80}
    assert_frame_equal(
        api.read_results(out).sort("params", "budget_pages", "guest"), df.sort("params", "budget_pages", "guest")
    )
    one = host.filter(pl.col("params").str.contains("state-priority")).sort("budget_pages")
    want = api.replay(trace, "cmm", [20, 80], {"reclaim_order": "state-priority"})
    assert one["total_io"].to_list() == want.filter(pl.col("guest").is_null())["total_io"].to_list()
    # The same sweep again: nothing to do, the same rows.
    again = api.sweep(
        [trace], out, [20, 80], strategies=["cmm"], grid={"cmm": {"reclaim_order": ["lru", "state-priority"]}}, jobs=1
    )
    assert again.height == df.height
    with pytest.raises(ParamError, match="no budget"):
        api.sweep([trace], tmp_path / "none", [], jobs=1)


def test_sweep_from_a_script_without_the_main_guard_says_so(trace, tmp_path):
    # The pool's spawned workers import the script, which starts the sweep again in
    # each of them before any job: they die, and the error says why it may be.
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from cmmsim import api\n"
        f"api.sweep([{str(trace)!r}], {str(tmp_path / 'sw')!r}, [20], strategies=['host-lru'], jobs=2)\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert "died twice" in last and f"the workers import {script} first" in last, last
    assert 'if __name__ == "__main__":' in last


def test_synthesize_is_seeded(tmp_path):
    a = api.synthesize(
        "idle-after-boot", tmp_path / "a.parquet", seed=2, events=2000, params=SMALL["idle-after-boot"], jobs=1
    )
    b = api.synthesize(
        "idle-after-boot",
        tmp_path / "b.parquet",
        seed=2,
        events=2000,
        params=dict(p.split("=") for p in SMALL["idle-after-boot"]),
        jobs=1,
    )
    assert a == [tmp_path / "a.parquet"] and b == [tmp_path / "b.parquet"]
    assert a[0].read_bytes() == b[0].read_bytes()
    assert "idle-after-boot" in api.workloads() and "cmm" in api.strategies()


def test_convert_writes_a_trace(tmp_path):
    from cmmsim.tracer.io import read_meta

    out = api.convert(DATA / "perf-default.txt", tmp_path / "c.parquet", guest_mib=16)
    assert out == tmp_path / "c.parquet"
    meta = read_meta(out)
    assert meta.guest_pages == 16 * 256 and meta.n_events > 0


def test_public_modules_list_only_their_names():
    from cmmsim.replay import api as engine

    for module in (api, engine):
        names = dir(module)
        assert not {"np", "pl", "re", "json", "annotations"} & set(names), module.__name__
        assert set(names) == set(module.__all__)
    assert "replay" in api.__all__ and all(callable(getattr(api, n)) for n in api.__all__ if n != "REPORTS")


def test_the_package_serves_the_front_door_lazily():
    assert cmmsim.miss_curve is api.miss_curve and cmmsim.report is api.report
    assert {"api", "load", "sweep"} <= set(dir(cmmsim))
    with pytest.raises(AttributeError):
        cmmsim.no_such_name  # noqa: B018
    # A fresh interpreter: importing cmmsim loads neither numba nor polars.
    code = "import sys, cmmsim; heavy = {'numba', 'polars', 'numpy'} & set(sys.modules); print(sorted(heavy))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    )


def test_the_front_door_takes_a_host_swap_tier(trace, tmp_path):
    # --tier-pages is on replay, sweep and demo; the library's replay and sweep take it too.
    from cmmsim.replay import api as engine
    from cmmsim.replay.scenario import load

    want = engine.replay(load([trace]), "host-lru", ["40"], tier_pages=8)
    assert want["host_writes_tier"].sum() > 0  # the tier is used at this budget
    assert_frame_equal(api.replay(trace, "host-lru", "40", tier_pages=8), want)
    assert_frame_equal(api.replay(trace, "host-lru", "40", tier_pages=8, stream=True), want)
    with pytest.raises(ParamError, match="has no host swap tier"):
        api.replay(trace, "static", "40", tier_pages=8)
    rows = api.sweep([trace], tmp_path / "s", ["40"], strategies=["host-lru", "static"], jobs=1, tier_pages=8)
    host = rows.filter(pl.col("guest").is_null())
    assert dict(host.select("strategy", "tier_pages").iter_rows()) == {"host-lru": 8, "static": 0}


@pytest.mark.parametrize("vcpus", [2.5, True, "4", 0])
def test_vcpus_must_be_a_whole_number_of_cpus(trace, vcpus):
    # 2.5 was priced as 2, True as 1: a wrong number, never an error.
    with pytest.raises(ParamError, match="vcpus must be"):
        api.replay(trace, "host-lru", "40", vcpus=vcpus)


def test_sweep_runs_a_grid_strategy_that_strategies_does_not_name(trace, tmp_path):
    # `-s host-lru -p cmm:reclaim_order=...` asks for both: the grid is not dropped.
    df = api.sweep(
        [trace],
        tmp_path / "sw",
        [20],
        strategies=["host-lru"],
        grid={"cmm": {"reclaim_order": ["lru", "state-priority"]}},
        jobs=1,
    )
    host = df.filter(pl.col("guest").is_null())
    assert sorted(host["strategy"]) == ["cmm", "cmm", "host-lru"]
    assert sorted(host.filter(pl.col("strategy") == "cmm")["params"].str.contains("state-priority")) == [False, True]
    from cmmsim.replay.grids import strategy_grids

    assert strategy_grids(["cmm"], {"cmm": {"reclaim_order": ["lru"]}}) == [("cmm", {"reclaim_order": ["lru"]})]
    assert strategy_grids([], {}) == []  # every registered strategy


def test_report_refuses_an_unknown_by_whatever_the_report(trace):
    # by= was checked only by the reports that order strategies: api.report(rows,
    # "total-io", by="stal") returned a table and said nothing of the typo.
    rows = api.replay(trace, "host-lru", [20])
    for name in ("total-io", "ranking"):
        with pytest.raises(ParamError, match="'stal'"):
            api.report(rows, name, by="stal")
