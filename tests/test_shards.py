"""SHARDS estimates: exact at rate 1, each salt the exact pass of its sample, streamed = in memory."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cmmsim.cli import app
from cmmsim.replay import reference
from cmmsim.replay import scenario as sc
from cmmsim.replay.onepass import run_lru_all
from cmmsim.replay.shards import (
    ESTIMATED,
    ORDERS,
    df_sampled_curve,
    lru_sampled,
    sample_mask,
    sampled_curve,
    sampled_curve_stream,
)
from cmmsim.replay.states import C
from cmmsim.replay.strategies import get_strategy
from cmmsim.tracer.errors import ParamError
from tests.helpers import SAMPLE_DIR, guest_traces, make_arrays
from tests.test_stream import _write_guests

COLS = [C[k] for k in ESTIMATED]
STATE_PRIORITY = {"reclaim_order": "state-priority"}
MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    """SplitMix64's finaliser on Python ints (the twin of the numpy one)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def test_sample_mask_is_splitmix_under_the_threshold():
    rate, salt = 0.3, 12345
    key = _splitmix64(salt)
    want = [(_splitmix64(p ^ key) >> 11) < int(rate * 2**53) for p in range(2000)]
    assert sample_mask(2000, rate, salt).tolist() == want
    # Independent pages at the rate: 100,000 pages, 5 standard deviations.
    frac = sample_mask(100_000, 0.1, 7).mean()
    assert abs(frac - 0.1) < 5 * np.sqrt(0.1 * 0.9 / 100_000)
    assert not np.array_equal(sample_mask(1000, 0.5, 1), sample_mask(1000, 0.5, 2))


@settings(max_examples=40)
@given(scn=guest_traces(), budgets=st.lists(st.integers(1, 40), min_size=1, max_size=4))
def test_rate_one_is_the_exact_pass(scn, budgets):
    r = lru_sampled(scn, budgets, 1.0)
    exact = run_lru_all(scn, budgets).counters[:, :, COLS]
    assert np.array_equal(r.estimate, exact)
    assert (r.stderr == 0).all() and r.exact and r.salts == 1


def _sample_by_hand(scn, keep_page):
    """The scenario of the kept pages' events, pages renumbered per guest in order."""
    guests = []
    for g in range(scn.n_guests):
        lo, hi = int(scn.page_offset[g]), int(scn.page_offset[g] + scn.guest_pages[g])
        kept = [p for p in range(lo, hi) if keep_page[p]]
        rank = {p: j for j, p in enumerate(kept)}
        rows = [i for i in range(scn.n_events) if scn.guest[i] == g and keep_page[scn.page[i]]]
        guests.append(
            (
                scn.guest_names[g],
                make_arrays(
                    [int(scn.op[i]) for i in rows],
                    [rank[int(scn.page[i])] for i in rows],
                    guest_pages=len(kept),
                    t_ns=[int(scn.t_ns[i]) for i in rows],
                ),
            )
        )
    return sc.from_arrays(guests)


#: Each order's twin and the strategy whose parameters it takes.
TWINS = {"lru": (reference.host_lru, "host-lru", {}), "state-priority": (reference.cmm, "cmm", STATE_PRIORITY)}


@settings(max_examples=25, deadline=None)
@given(
    scn=guest_traces(),
    budgets=st.lists(st.integers(1, 40), min_size=1, max_size=3),
    rate=st.sampled_from([0.3, 0.6, 0.9]),
    order=st.sampled_from(ORDERS),
)
def test_each_salt_is_the_twin_on_its_sample(scn, budgets, rate, order):
    # Per salt: the plain-Python twin (host-lru, or cmm with state-priority reclaim) on
    # the hand-filtered sample, at the scaled budgets, each guest's counters scaled by
    # its footprint over its sampled footprint.
    r = sampled_curve(scn, budgets, rate, order=order, salts=3, seed=5)
    is_access = scn.op <= 1
    touched = np.zeros(scn.n_pages, bool)
    touched[scn.page[is_access]] = True
    accesses = np.bincount(scn.guest[is_access], minlength=scn.n_guests)
    assert r.accesses.tolist() == accesses.tolist() and r.order == order
    twin_of, strategy, pairs = TWINS[order]
    params = get_strategy(strategy).parse_params(pairs)
    for k in range(3):
        keep = sample_mask(scn.n_pages, rate, 5 + k) & touched
        fraction = keep.sum() / touched.sum() if touched.sum() else 1.0  # an empty footprint: all of it
        assert r.page_fraction[k] == fraction
        sub = _sample_by_hand(scn, keep)
        # host-lru's samples hold the accesses; state-priority's their hints too.
        replayed = sub.n_events if order == "state-priority" else int((sub.op <= 1).sum())
        assert r.sampled_events[k] == replayed
        footprint = np.bincount(scn.page_guest[touched], minlength=scn.n_guests)
        kept = np.bincount(scn.page_guest[keep], minlength=scn.n_guests)
        for j, budget in enumerate(r.budgets):
            twin = twin_of(sub, max(1, int(np.rint(budget * fraction))), params)
            for g in range(scn.n_guests):
                got = r.per_salt[k, j, g]
                if footprint[g] == 0:
                    assert (got == 0).all()
                elif kept[g] == 0:
                    assert np.isnan(got).all()
                else:
                    want = twin.counters[g, COLS] * (footprint[g] / kept[g])
                    np.testing.assert_allclose(got, want, rtol=1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scn=guest_traces(), data=st.data())
def test_streamed_sample_equals_in_memory(tmp_path_factory, scn, data):
    paths = _write_guests(scn, tmp_path_factory.mktemp("s"), data.draw(st.integers(1, 30)))
    rate = data.draw(st.sampled_from([0.25, 0.5, 1.0]))
    order = data.draw(st.sampled_from(ORDERS))
    budgets = sorted(set(data.draw(st.lists(st.integers(1, 30), min_size=1, max_size=3))))
    mem = sampled_curve(sc.load(paths), budgets, rate, order=order, salts=4, seed=1)
    rows = data.draw(st.integers(1, 40))
    got = sampled_curve_stream(paths, budgets, rate, order=order, salts=4, seed=1, batch_rows=rows)
    assert np.array_equal(got.per_salt, mem.per_salt, equal_nan=True)
    assert np.array_equal(got.stderr, mem.stderr, equal_nan=True)
    assert got.footprint_pages == mem.footprint_pages


def test_estimates_hold_the_exact_curve_within_their_error():
    # A seeded synthetic stream: 300,000 events over 30,000 pages, 12 budgets.
    rng = np.random.default_rng(3)
    n, pages = 300_000, 30_000
    pfn = np.where(rng.random(n) < 0.7, rng.integers(0, 1500, n), rng.integers(0, pages, n))
    op = (rng.random(n) < 0.3).astype(np.uint8)
    scn = sc.from_arrays([("g", make_arrays(op, pfn, guest_pages=pages))])
    budgets = np.linspace(500, 30_000, 12).astype(np.int64)
    exact = run_lru_all(scn, budgets).counters.sum(axis=1)
    miss = (exact[:, C["host_reads"]] + exact[:, C["zero_fills"]]) / n
    df = df_sampled_curve(lru_sampled(scn, budgets, 0.1, salts=8))
    err = np.abs(df["miss_ratio_est"].to_numpy() - miss)
    se = df["miss_ratio_se"].to_numpy()
    assert (se > 0).all()
    assert (err <= 4 * se + 0.002).all(), (err, se)
    assert np.median(err) < 0.002


def test_sample_trace_within_error():
    path = SAMPLE_DIR / "linux-webserve.parquet"
    if not path.exists():
        pytest.skip("sample_traces/linux-webserve.parquet is not in this checkout")
    scn = sc.load([path])
    fp = int(np.unique(scn.page[scn.op <= 1]).size)
    budgets = np.linspace(fp // 20, fp, 8).astype(np.int64)
    exact = run_lru_all(scn, budgets).counters.sum(axis=1)[:, COLS]
    r = lru_sampled(scn, budgets, 0.2, salts=8)
    est, se = r.estimate.sum(axis=1), r.stderr.sum(axis=1)
    assert (np.abs(est - exact) <= 5 * se + 0.01 * exact.max()).all()


@settings(max_examples=30, deadline=None)
@given(scn=guest_traces(), budgets=st.lists(st.integers(1, 40), min_size=1, max_size=4))
def test_state_priority_at_rate_one_is_the_engine_replay(scn, budgets):
    r = sampled_curve(scn, budgets, 1.0, order="state-priority")
    cmm = get_strategy("cmm")
    exact = cmm.run(scn, budgets, cmm.parse_params(STATE_PRIORITY)).counters[:, :, COLS]
    assert np.array_equal(r.estimate, exact)
    assert (r.stderr == 0).all() and r.exact and r.order == "state-priority"


def test_state_priority_estimates_hold_the_exact_curve_within_their_error():
    # The seeded synthetic stream of the host-lru test above, with a fifth of its
    # events hints (free, volatile, stable again: the classes state-priority orders by).
    rng = np.random.default_rng(3)
    n, pages = 300_000, 30_000
    pfn = np.where(rng.random(n) < 0.7, rng.integers(0, 1500, n), rng.integers(0, pages, n))
    op = np.where(rng.random(n) < 0.2, rng.choice([2, 3, 4, 5, 6], n), (rng.random(n) < 0.3)).astype(np.uint8)
    scn = sc.from_arrays([("g", make_arrays(op, pfn, guest_pages=pages))])
    budgets = np.linspace(500, 30_000, 12).astype(np.int64)
    cmm = get_strategy("cmm")
    exact = cmm.run(scn, budgets, cmm.parse_params(STATE_PRIORITY)).counters.sum(axis=1)
    accesses = int((op <= 1).sum())
    miss = (exact[:, C["host_reads"]] + exact[:, C["zero_fills"]]) / accesses
    df = df_sampled_curve(sampled_curve(scn, budgets, 0.1, order="state-priority", salts=8))
    err = np.abs(df["miss_ratio_est"].to_numpy() - miss)
    se = df["miss_ratio_se"].to_numpy()
    assert (se > 0).all() and (df["order"] == "state-priority").all()
    assert (err <= 4 * se + 0.002).all(), (err, se)
    assert np.median(err) < 0.002


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"rate": 0.5, "order": "clock"}, "order must be one of lru, state-priority"),
        ({"rate": 0.0}, "sample rate"),
        ({"rate": 1.5}, "sample rate"),
        ({"rate": 0.5, "salts": 0}, "salts"),
        ({"rate": 0.5, "salts": 65}, "salts"),
    ],
)
def test_bad_arguments(kwargs, msg):
    scn = sc.from_arrays([("g", make_arrays([0, 1, 0], [0, 1, 0], guest_pages=4))])
    with pytest.raises(ParamError, match=msg):
        sampled_curve(scn, [2], **kwargs)
    with pytest.raises(ParamError, match="budgets"):
        lru_sampled(scn, [0], 0.5)


def test_mrc_command(tmp_path):
    path = SAMPLE_DIR / "linux-sqlite.parquet"
    if not path.exists():
        pytest.skip("sample_traces/linux-sqlite.parquet is not in this checkout")
    out = tmp_path / "curve.parquet"
    res = CliRunner().invoke(
        app,
        [
            "mrc",
            str(path),
            "-b",
            "5%",
            "-b",
            "50%",
            "--points",
            "4",
            "--sample-rate",
            "0.5",
            "--salts",
            "3",
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    import polars as pl

    df = pl.read_parquet(out)
    assert df.height == 4 and not df["exact"].any() and (df["salts"] == 3).all()
    assert (df["min_sampled_pages"] > 1000).all() and "warning" not in res.output
    small = CliRunner().invoke(app, ["mrc", str(path), "-b", "5%", "--sample-rate", "0.01"])
    assert small.exit_code == 0 and "not to be trusted" in small.output
    bad = CliRunner().invoke(app, ["mrc", str(path), "-b", "5%", "--sample-rate", "2"])
    assert bad.exit_code == 2 and "sample rate" in bad.output and "Traceback" not in bad.output


def test_miss_curve_spreads_budgets_the_same_streamed_or_not():
    path = SAMPLE_DIR / "linux-sqlite.parquet"
    if not path.exists():
        pytest.skip("sample_traces/linux-sqlite.parquet is not in this checkout")
    from cmmsim.replay.shards import miss_curve, spread_budgets

    mem = miss_curve([path], ["10%", "90%"], points=5, rate=0.5, salts=3)
    streamed = miss_curve([path], ["10%", "90%"], points=5, rate=0.5, salts=3, stream=True)
    assert len(mem.budgets) == 5 and np.array_equal(mem.budgets, streamed.budgets)
    assert np.array_equal(mem.per_salt, streamed.per_salt, equal_nan=True)
    assert spread_budgets(np.array([10, 20]), 3).tolist() == [10, 15, 20]
    assert spread_budgets(np.array([10, 20]), 0).tolist() == [10, 20]
    # As the help and docstring say: the spread replaces the budgets given (12 is
    # dropped), and below 2 points the budgets are those given.
    assert spread_budgets(np.array([10, 12, 20]), 3).tolist() == [10, 15, 20]
    assert spread_budgets(np.array([10, 12, 20]), 1).tolist() == [10, 12, 20]
    with pytest.raises(ParamError, match="points"):
        spread_budgets(np.array([10]), -1)


def test_mrc_command_state_priority(tmp_path):
    path = SAMPLE_DIR / "linux-sqlite.parquet"
    if not path.exists():
        pytest.skip("sample_traces/linux-sqlite.parquet is not in this checkout")
    import polars as pl

    out = tmp_path / "curve.parquet"
    args = ["mrc", str(path), "-b", "5%", "-b", "50%", "--points", "3", "--order", "state-priority"]
    res = CliRunner().invoke(app, [*args, "--sample-rate", "0.5", "--salts", "3", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "cmm state-priority" in res.output and "SHARDS" in res.output and "biases" in res.output
    df = pl.read_parquet(out)
    assert df.height == 3 and (df["order"] == "state-priority").all() and not df["exact"].any()
    exact = CliRunner().invoke(app, args)
    assert exact.exit_code == 0 and "exact (a replay" in exact.output
    bad = CliRunner().invoke(app, ["mrc", str(path), "-b", "5%", "--order", "clock"])
    assert bad.exit_code != 0 and "order must be one of" in bad.output and "Traceback" not in bad.output
