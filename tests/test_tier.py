"""The host's fast swap tier (``cmmsim.replay.kernels.tier``): counts worked out by hand,
kernel and twin equal on random traces, every paged-out page in exactly one place,
capacity 0 equal to the replay before the tier (golden integers), and the tier priced."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cmmsim.cli import app
from cmmsim.replay import costs, engine, planner, reference
from cmmsim.replay import states as S
from cmmsim.replay.api import replay
from cmmsim.replay.kernels import tier as host_tier
from cmmsim.replay.strategies import get_strategy, names
from cmmsim.replay.strategies.balloon.twin import reference_balloon
from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.schema import Op
from tests.helpers import STATE_BITS, examples, guest_traces, make_arrays, scenario_of

R, W, SU = Op.READ, Op.WRITE, Op.SET_UNUSED
GOLDEN = Path(__file__).parent / "data" / "tier0_main.npz"
#: The engine's strategies with a tier, every declared configuration (a hand-made list
#: left out the two-list order of each).
TIERED = [(name, params) for name, params in examples(streams=True) if get_strategy(name).host_tier]


def _counts(res, b=0) -> dict[str, int]:
    return dict(zip(S.COUNTERS, (int(x) for x in res.counters[b].sum(axis=0)), strict=True))


def _run(strategy, params, scn, budget, tier_pages, **kw):
    strat = get_strategy(strategy)
    return strat.run(scn, np.array([budget]), strat.parse_params(params), keep_final=True, tier_pages=tier_pages, **kw)


def test_flag_names_the_strategies_with_a_tier():
    # Every strategy that pages on the host; static and the offline bounds do not.
    assert set(names(host_tier=True)) == {
        "host-lru",
        "cmm",
        "cmm-light",
        "balloon",
        "balloon+cmm",
        "free-page-reporting",
    }
    assert set(names(host_tier=False)) == {"static", "opt", "opt-schedule"}


def test_hand_made_trace_counts_by_hand():
    # One frame, a tier of one page. Step by step (docs/model.md, "The host swap tier"):
    # W0 zero fill | W1: 0 -> tier, zero fill | W2: 1 -> tier, 0 spilled to disk, zero fill
    # R1: 1 leaves the tier, 2 -> tier, 1 read from tier (now changed)
    # R0: 1 -> tier, 2 spilled, 0 read from disk | R2: 0 discarded (disk copy), 2 from disk
    # R1: 1 from the tier, 2 discarded.
    scn = scenario_of(make_arrays([W, W, W, R, R, R, R], [0, 1, 2, 1, 0, 2, 1], guest_pages=4))
    c = _counts(_run("host-lru", {"replacement": "lru"}, scn, 1, 1))
    assert (c["host_writes_tier"], c["host_reads_tier"], c["host_spills_tier"]) == (4, 2, 2)
    assert (c["host_writes"], c["host_reads"], c["zero_fills"], c["discards"]) == (2, 2, 3, 2)
    # Without a tier: every write and read is the disk's.
    c0 = _counts(_run("host-lru", {"replacement": "lru"}, scn, 1, 0))
    assert (c0["host_writes"], c0["host_reads"], c0["discards"]) == (3, 4, 3)
    assert c0["host_writes_tier"] == c0["host_reads_tier"] == c0["host_spills_tier"] == 0


def test_a_hint_that_frees_the_copy_frees_its_place_in_the_tier():
    # cmm, one frame, tier of one: 0 goes to the tier, is set unused (its place freed),
    # so 1 finds room and nothing spills.
    scn = scenario_of(make_arrays([W, W, SU, W], [0, 1, 0, 2], guest_pages=3))
    res = _run("cmm", {"reclaim_order": "lru"}, scn, 1, 1)
    c = _counts(res)
    assert (c["host_writes_tier"], c["host_spills_tier"], c["host_writes"]) == (2, 0, 0)
    assert S.describe(int(res.final_states[0][0]) & STATE_BITS) == "Uz"


@pytest.mark.parametrize(("strategy", "params"), TIERED)
@given(scn=guest_traces(), budget_frac=st.floats(0.05, 1.0), tier_pages=st.integers(0, 5))
def test_kernel_equals_twin(strategy, params, scn, budget_frac, tier_pages):
    budget = max(1, int(scn.n_pages * budget_frac))
    strat = get_strategy(strategy)
    p = strat.parse_params(params)
    res = strat.run(scn, np.array([budget]), p, keep_final=True, tier_pages=tier_pages)
    ref = strat.reference(scn, budget, p, tier_pages=tier_pages)
    np.testing.assert_array_equal(res.counters[0], ref.counters)
    assert int(res.host_peak[0]) == ref.host_peak
    assert int(res.host_sum_resident[0]) == ref.host_sum_resident
    np.testing.assert_array_equal(res.final_states[0] & STATE_BITS, ref.final_states)


@given(
    scn=guest_traces(),
    budget=st.integers(1, 12),
    tier_pages=st.integers(1, 4),
    victims=st.sampled_from(["lru", "clock", "state-priority"]),
)
def test_every_page_out_is_in_one_place(scn, budget, tier_pages, victims):
    """After every event: a page in the tier is paged out (host state p), the tier holds
    at most its capacity, and what entered it left it or is in it."""
    host = reference.ReferenceHost(scn.page_guest, budget, reference.HINTS_ALL, victims, tier_pages)
    dropped = 0
    for q, o in zip(scn.page.tolist(), scn.op.tolist(), strict=True):
        before = set(host.tier)
        if o in (R, W):
            host.access(q, o == W)
        else:
            host.hint(q, Op(o))
            dropped += len(before - set(host.tier))
        assert len(host.tier) <= tier_pages
        assert all(host.pages[t].host == "p" for t in host.tier)
        # Each paged-out page is in the tier or on disk, and no resident page is in the tier.
        paged_out = {i for i, pg in enumerate(host.pages) if pg.host == "p"}
        assert set(host.tier) <= paged_out
    c = {k: sum(g[k] for g in host.counters) for k in S.COUNTERS}
    assert c["host_writes_tier"] == c["host_reads_tier"] + c["host_spills_tier"] + dropped + len(host.tier)
    # The kernel's tier holds the same pages.
    order = {"lru": engine.ORDER_LRU, "clock": engine.ORDER_CLOCK, "state-priority": engine.ORDER_CLASS}[victims]
    es = engine.alloc_state(scn.n_pages, scn.n_guests, np.array([budget]), order, S.INITIAL_HINTING, 0, tier_pages)
    engine.replay_chunk(
        es,
        scn.t_ns,
        scn.page,
        scn.op,
        scn.guest,
        0,
        scn.page_guest,
        np.array([budget]),
        S.HONOUR_ALL,
        order,
        np.zeros(0, np.int64),
        path=planner.PARALLEL,
    )
    tl = es.tier[0]
    in_kernel = {p for p in range(scn.n_pages) if host_tier.in_tier(tl, p)}
    assert in_kernel == set(host.tier) and int(host_tier.used(tl)) == len(host.tier)


@pytest.mark.parametrize("path", [planner.PIPELINE, planner.PARALLEL])
def test_both_engine_paths_give_the_same_tier_integers(path):
    rng = np.random.default_rng(5)
    n = 4000
    scn = scenario_of(make_arrays(rng.integers(0, 2, n), rng.integers(0, 200, n), guest_pages=200))
    got = engine.run(
        scn,
        np.array([30, 90]),
        honour=S.HONOUR_NONE,
        order=engine.ORDER_LRU,
        initial=S.INITIAL_NO_HINTS,
        path=path,
        tier_pages=20,
    )
    ref = [reference.replay_reference(scn, b, set(), "lru", 20) for b in (30, 90)]
    np.testing.assert_array_equal(got.counters, np.stack([r.counters for r in ref]))
    assert got.host_peak.tolist() == [r.host_peak for r in ref]
    assert got.host_sum_resident.tolist() == [r.host_sum_resident for r in ref]


@pytest.mark.parametrize(
    ("with_tier", "traces"),
    [
        (True, "random"),
        # Longer: the sample traces, and the strategies without a tier (only their counters'
        # new columns changed; their kernels compile for minutes on a loaded machine).
        pytest.param(True, "samples", marks=pytest.mark.slow),
        pytest.param(False, "all", marks=pytest.mark.slow),
    ],
)
def test_capacity_zero_is_the_replay_before_the_tier(with_tier, traces):
    """The golden cases of tests/data/make_tier0_main.py, bit for bit."""
    script = runpy.run_path(str(GOLDEN.parent / "make_tier0_main.py"))
    gold = np.load(GOLDEN)
    for key, strategy, params, scn, b in script["cases"]():
        if get_strategy(strategy).host_tier != with_tier:
            continue
        if traces != "all" and key.startswith("random") != (traces == "random"):
            continue
        np.testing.assert_array_equal(gold[f"{key}|budgets"], b)
        kw = {"tier_pages": 0} if with_tier else {}
        got = script["replay"](strategy, params, scn, b, **kw)
        for field, value in got.items():
            np.testing.assert_array_equal(value, gold[f"{key}|{field}"], err_msg=f"{key} {field}")


def test_strategies_without_a_tier_refuse_one():
    scn = scenario_of(make_arrays([W, R], [0, 1], guest_pages=2))
    for name in ("static", "opt", "opt-schedule"):
        with pytest.raises(ParamError, match=f"strategy {name} has no host swap tier"):
            replay(scn, name, [1], tier_pages=4)
    with pytest.raises(ParamError, match="tier_pages must be"):
        replay(scn, "cmm", [1], tier_pages=-1)
    r = CliRunner().invoke(app, ["replay", "--help"])
    assert "--tier-pages" in r.output


def test_result_rows_carry_the_tier_and_pricing_uses_it():
    scn = scenario_of(make_arrays([W, W, W, R, R, R, R], [0, 1, 2, 1, 0, 2, 1], guest_pages=4))
    df = replay(scn, "host-lru", [1], tier_pages=1, costs="zvm-2006")
    host = df.filter(pl.col("guest").is_null()).row(0, named=True)
    assert host["tier_pages"] == 1
    assert (host["host_reads_tier"], host["host_writes_tier"], host["host_spills_tier"]) == (2, 4, 2)
    assert host["total_io"] == host["host_reads"] + host["host_writes"]  # disk I/O only
    c = costs.load_profile("zvm-2006").costs_ns
    faults = 2 + 2 + 3  # disk reads, tier reads, zero fills
    stall = (
        2 * c["host_read_disk_ns"] + 2 * c["host_read_tier_ns"] + faults * c["host_fault_ns"] + 3 * c["zero_fill_ns"]
    )
    assert host["stall_ns"] == pytest.approx(stall)
    # Frames reclaimed: 4 to the tier, 2 discarded (the 2 spills reclaim no frame).
    cpu = (
        faults * c["host_fault_ns"]
        + 3 * c["zero_fill_ns"]
        + (2 + 2) * c["host_read_tier_ns"]
        + 4 * c["host_write_tier_ns"]
        + (4 + 2) * c["reclaim_decision_ns"]
    )
    assert host["host_cpu_ns"] == pytest.approx(cpu)
    assert host["disk_busy_ns"] == pytest.approx(2 * c["host_read_disk_ns"] + 2 * c["host_write_disk_ns"])
    without = replay(scn, "host-lru", [1], costs="zvm-2006").filter(pl.col("guest").is_null())
    assert without["tier_pages"][0] == 0 and without["stall_ns"][0] > host["stall_ns"]


def test_streamed_and_cli_replays_carry_the_tier(tmp_path):
    from polars.testing import assert_frame_equal

    from cmmsim.tracer.io import write_trace

    a = make_arrays([W, W, W, R, R, R, R, 3, R], [0, 1, 2, 1, 0, 2, 1, 0, 0], guest_pages=4)
    path = tmp_path / "a.parquet"
    write_trace(path, a.t_ns, a.pfn, a.op, a.meta)
    outs = []
    for extra in ([], ["--stream", "--batch-rows", "2"]):
        out = tmp_path / f"r{len(extra)}.parquet"
        r = CliRunner().invoke(
            app, ["replay", str(path), "-s", "cmm", "-b", "1", "--tier-pages", "1", "-o", str(out), *extra]
        )
        assert r.exit_code == 0, r.output
        assert "host_spills_tier" in r.output
        outs.append(pl.read_parquet(out))
    assert_frame_equal(outs[0], outs[1])
    assert outs[0]["tier_pages"].to_list() == [1, 1]
    assert outs[0]["host_writes_tier"][0] > 0
    r = CliRunner().invoke(app, ["replay", str(path), "-s", "static", "-b", "1", "--tier-pages", "2"])
    assert r.exit_code == 2 and "has no host swap tier" in r.stderr


# -- the balloons' and free page reporting's own kernels ------------------------------------------
#: Their configurations (nanosecond periods: the random test traces).
OWN_KERNELS = [
    ("balloon", {"estimator": "sampling", "period_ns": 5, "rate_pages_per_s": 10**9, "sample_pages": 3}),
    ("balloon", {"estimator": "fault-rate", "period_ns": 4, "rate_pages_per_s": 10**9, "fault_threshold": 0}),
    ("balloon", {"estimator": "oracle", "period_ns": 6, "rate_pages_per_s": 3 * 10**8}),
    ("balloon+cmm", {"estimator": "oracle", "period_ns": 5, "rate_pages_per_s": 10**9}),
    ("balloon+cmm", {"estimator": "fault-rate", "period_ns": 3, "rate_pages_per_s": 10**12, "slack": 0.0}),
    ("free-page-reporting", {"order": 0, "delay_ns": 0}),
    ("free-page-reporting", {"order": 1, "capacity": 1, "delay_ns": 3}),
    # Linux's two lists instead of exact LRU (a page paged out leaves its list; one read
    # back from the tier starts on the inactive list as any page faulted in).
    ("balloon", {"estimator": "oracle", "period_ns": 5, "rate_pages_per_s": 10**9, "replacement": "two-list"}),
    ("balloon+cmm", {"estimator": "fault-rate", "period_ns": 3, "rate_pages_per_s": 10**12, "replacement": "two-list"}),
    ("free-page-reporting", {"order": 1, "capacity": 1, "delay_ns": 3, "replacement": "two-list"}),
]


@pytest.mark.parametrize(("strategy", "params"), OWN_KERNELS)
@given(scn=guest_traces(), budget_frac=st.floats(0.05, 1.0), tier_pages=st.integers(0, 5))
def test_own_kernels_equal_their_twins_with_a_tier(strategy, params, scn, budget_frac, tier_pages):
    """Kernel == twin with a tier (the balloons' twin checks its invariants after every
    event: the tier within its capacity, paged-out pages only), and every page put in
    the tier was read back, spilled, dropped by a hint or report, or is still there."""
    budget = max(1, int(scn.n_pages * budget_frac))
    strat = get_strategy(strategy)
    p = strat.parse_params(params)
    res = strat.run(scn, np.array([budget]), p, keep_final=True, tier_pages=tier_pages)
    if strategy == "free-page-reporting":
        ref = strat.reference(scn, budget, p, tier_pages=tier_pages)
    else:
        ref = reference_balloon(scn, budget, p, honour_all=strategy == "balloon+cmm", check=True, tier_pages=tier_pages)
    np.testing.assert_array_equal(res.counters[0], ref.counters)
    assert (int(res.host_peak[0]), int(res.host_sum_resident[0])) == (ref.host_peak, ref.host_sum_resident)
    np.testing.assert_array_equal(res.final_states[0] & STATE_BITS, ref.final_states)
    if res.series is not None:  # the balloons' per-period series
        np.testing.assert_array_equal(res.series[0], ref.series)
    assert res.tier_pages == tier_pages
    c = _counts(res)
    assert ref.tier_used <= tier_pages
    dropped = c["host_writes_tier"] - c["host_reads_tier"] - c["host_spills_tier"] - ref.tier_used
    # balloon honours no hint and drops only resident frames: nothing leaves the tier unread.
    assert dropped >= 0 if strategy != "balloon" else dropped == 0
    assert c["host_spills_tier"] <= c["host_writes"]
    if tier_pages == 0:
        assert c["host_writes_tier"] == c["host_reads_tier"] == c["host_spills_tier"] == 0


@pytest.mark.parametrize(("strategy", "params"), OWN_KERNELS)
def test_own_kernels_move_disk_io_to_the_tier(strategy, params):
    """A tier moves writes from the disk to it and leaves residency alone: the frames,
    the peak and the resident sums are those without a tier; every page-out is counted
    once (to the disk or to the tier, spills apart)."""
    rng = np.random.default_rng(7)
    n = 600
    scn = scenario_of(
        make_arrays(rng.choice([0, 0, 1, 1, 2, 3, 4], n), rng.integers(0, 16, n), guest_pages=16),
        make_arrays(rng.choice([0, 1, 1, 2, 3], n), rng.integers(0, 12, n), guest_pages=12),
    )
    budget = np.array([6, 14])
    strat = get_strategy(strategy)
    # Balloons that may take half a guest at most: the host pages too.
    p = strat.parse_params(params | ({} if strategy == "free-page-reporting" else {"min_fraction": 0.5}))
    without = strat.run(scn, budget, p, keep_final=True)
    with_tier = strat.run(scn, budget, p, keep_final=True, tier_pages=4)
    np.testing.assert_array_equal(with_tier.host_peak, without.host_peak)
    np.testing.assert_array_equal(with_tier.host_sum_resident, without.host_sum_resident)
    for b in range(len(budget)):
        a, t = _counts(without, b), _counts(with_tier, b)
        assert a["sum_resident_pages"] == t["sum_resident_pages"]
        assert a["host_writes"] > 0 and t["host_writes_tier"] > 0
        # Tier reads come back changed: writes (to the tier or the disk, spills apart) only grow.
        assert t["host_writes_tier"] + t["host_writes"] - t["host_spills_tier"] >= a["host_writes"]
        # Reads: a tier read replaces a disk read, a page-in stays a page-in.
        assert a["host_reads"] + a["zero_fills"] == t["host_reads"] + t["host_reads_tier"] + t["zero_fills"]


def test_a_reported_page_leaves_the_tier():
    # free-page-reporting, one frame, a tier of one page, blocks of one page reported at once:
    # W0 zero fill | W1: 0 -> tier, zero fill | SU0: 0 free, queued | R0: the report drops
    # 0's copy (its place in the tier freed), 0 is a zero fill, 1 -> tier without a spill.
    scn = scenario_of(make_arrays([W, W, SU, R], [0, 1, 0, 0], guest_pages=2))
    res = _run("free-page-reporting", {"order": 0, "delay_ns": 0}, scn, 1, 1)
    c = _counts(res)
    assert (c["host_writes_tier"], c["host_reads_tier"], c["host_spills_tier"]) == (2, 0, 0)
    assert (c["host_writes"], c["host_reads"], c["zero_fills"], c["hints"]) == (0, 0, 3, 1)


def test_balloon_dual_paging_reads_from_the_tier():
    # balloon, two guests of 4 pages whose smallest targets (3 pages each) overcommit a
    # host of 4 frames, and a tier of 4: every written page the host pages out goes to
    # the tier, so every host read is the tier's, dual paging too (guest 0 swaps out a
    # page the host paged out: tests/test_conformance.py derives this trace).
    st_ = Op.SET_STABLE
    a = make_arrays([st_, W, st_, W, st_, W, st_, W], [0, 0, 1, 1, 2, 2, 3, 3], 4, [0, 1, 2, 3, 8, 9, 10, 11])
    b = make_arrays([st_, W, st_, W], [0, 0, 1, 1], 4, [4, 5, 6, 7])
    scn = scenario_of(a, b)
    params = {"estimator": "oracle", "period_ns": 1000, "slack": 0.0, "min_fraction": 0.75}
    c = _counts(_run("balloon", params, scn, 4, 4))
    c0 = _counts(_run("balloon", params, scn, 4, 0))
    assert c["host_reads"] == 0 and c["host_spills_tier"] == 0
    assert c["host_reads_tier"] == c0["host_reads"] > 0
    assert c["dual_paging"] == c0["dual_paging"]


@given(
    capacity=st.integers(1, 6),
    steps=st.lists(st.tuples(st.sampled_from(["out", "in", "hint"]), st.integers(0, 11)), max_size=300),
)
def test_the_tier_keeps_put_in_order_through_leaves(capacity, steps):
    # The tier's own operations against an ordered dict (its twin's model): page-outs
    # past its capacity (spills of the least recently put in), page-ins and hints.
    n_pages = 12
    tl = host_tier.new(n_pages, capacity)
    state = np.zeros(n_pages, np.uint8)
    cnt = np.zeros((1, len(S.COUNTERS)), np.int64)
    ends = np.array([n_pages], np.int64)
    model: dict[int, None] = {}
    changed = S.pack(S.G_S, S.H_R, changed=True)
    paged_out = S.pack(S.G_S, S.H_P, copy=True)
    for what, p in steps:
        if what == "out" and p not in model:
            state[p] = changed
            spills = cnt[0, S.C["host_spills_tier"]]
            host_tier.page_out(p, 0, state, cnt, tl, ends)
            if len(model) == capacity:
                oldest = next(iter(model))
                del model[oldest]
                assert cnt[0, S.C["host_spills_tier"]] == spills + 1
                assert not host_tier.in_tier(tl, oldest)
            model[p] = None
        elif what == "in":
            assert host_tier.take(tl, p) == (p in model)
            model.pop(p, None)
        elif what == "hint":
            host_tier.leave_after_hint(tl, p, paged_out, S.pack(S.G_U, S.H_Z))
            model.pop(p, None)
        assert {q for q in range(n_pages) if host_tier.in_tier(tl, q)} == set(model)
        assert host_tier.used(tl) == len(model)
