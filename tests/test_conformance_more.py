"""Conformance, continued: what the first audit left unchecked, by hand.

The balloons' ``sampling`` estimator, two-list reclaim above 1 GiB of listed pages,
the ``--states`` time series, the pricing of docs/costs.md, and the host swap tier
at capacities above one page. Same notation and helpers as
``tests/test_conformance.py`` (its docstring); each expected value is worked out
from DESIGN.md, docs/model.md and docs/costs.md, the derivation beside it.
"""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cmmsim import api
from cmmsim.cli import app
from cmmsim.replay import api as replay_api
from cmmsim.replay import scenario as sc
from cmmsim.replay.stream import replay_stream
from cmmsim.replay.times import T_MAX_NS
from cmmsim.tracer.io import TraceArrays, write_trace
from cmmsim.tracer.schema import TraceMeta, count_ops
from tests.test_conformance import SI, R, S, U, V, W, check, guest, run
from tests.test_conformance_guests import BALLOON_PARAMS, balloon_guests


def scenario(guests):
    return sc.from_arrays([(f"g{i}", g) for i, g in enumerate(guests)], name="conformance")


def series(guests, budget, params, strategy="balloon"):
    """The balloon series as ``{column: [per guest: [per period]]}``, and the rows."""
    rep = replay_api.replay_full(scenario(guests), strategy, [budget], params)
    s = rep.series.sort("guest", "period")
    cols = ("t_ns", "estimate_pages", "target_pages", "balloon_pages")
    out = {c: [s.filter(pl.col("guest") == g)[c].to_list() for g in range(len(guests))] for c in cols}
    return out, {row["guest"]: row for row in rep.results.iter_rows(named=True)}


# ---------------------------------------------------------------- sampling estimator

#: Sampling (ESX), no slack, balloons that move at once, periods of 100 ns, minimum a
#: quarter of guest memory. The averages' weights are exact binary fractions.
SAMPLING = {
    "estimator": "sampling",
    "period_ns": 100,
    "slack": 0.0,
    "min_fraction": 0.25,
    "rate_pages_per_s": 10**12,
    "sample_pages": 7,
    "fast_alpha": 0.5,
    "slow_alpha": 0.25,
}


def all_or_nothing_guests():
    # A guest that accesses every page of its memory in a period has every sampled
    # page touched, whatever pages the draw picked (with replacement): current =
    # 7 x memory / 7 = memory; one that accesses none has current 0. So the estimates
    # follow from the trace alone, for every seed.
    # g0, 8 pages: every page allocated and written in period 0 (t 0-15), read in
    # period 4 (t 400-407), nothing else.
    g0 = [(2 * p, S, p) for p in range(8)]
    g0 = sorted(g0 + [(2 * p + 1, W, p) for p in range(8)] + [(400 + p, R, p) for p in range(8)])
    # g1, 2 pages: both accessed in every period; its last event (621) makes 7 periods,
    # [0,100) ... [500,600), [600,621].
    g1 = [(20, S, 0), (21, W, 0), (22, S, 1), (23, W, 1)]
    g1 += [(100 * k + 20 + p, R, p) for k in range(1, 7) for p in range(2)]
    return [guest(g0, 8), guest(g1, 2)]


def test_sampling_estimates_from_a_trace_that_fixes_them():
    # A period's row holds the estimate and target in force during it (measured over
    # the period before; row 0: guest memory, before any measurement) and the
    # balloon at its end. g0's measurements, at the end of period k (cur, fast, slow;
    # both averages start at the first measurement; estimate = max(cur, fast, slow),
    # averages rounded to the nearest page, a half up):
    #   k0 all: 8, 8, 8 -> 8      k1 none: 0, 4, 6 -> 6     k2 none: 0, 2, 4.5 -> 5
    #   k3 none: 0, 1, 3.375 -> 3 k4 all: 8, 4.5, 4.53 -> 8 (rises at once)
    #   k5 none: 0, 2.25, 3.40 -> 3
    # Rows 0-6: 8, 8 (k0), 6, 5, 3, 8, 3. g1: 2 throughout.
    # Targets, budget 10, each share rounded down, [min, memory] = [2, 8] and [1, 2]:
    #   (8, 2): 80 // 10 = 8, 20 // 10 = 2.   (6, 2): 60 // 8 = 7, 20 // 8 = 2 (a frame
    #   left).  (5, 2): 50 // 7 = 7, 2.  (3, 2): 30 // 5 = 6, 20 // 5 = 4 > 2: g1 pinned
    #   at 2, g0 alone shares the other 8: 8.
    # Budget 6: (8, 2): 48 // 10 = 4, 12 // 10 = 1. (6, 2): 36 // 8 = 4, 1. (5, 2):
    #   30 // 7 = 4, 1. (3, 2): 18 // 5 = 3, 12 // 5 = 2.
    est = [[8, 8, 6, 5, 3, 8, 3], [2] * 7]
    want = {
        10: ([[8, 8, 7, 7, 8, 8, 8], [2] * 7], [[0, 0, 1, 1, 0, 0, 0], [0] * 7]),
        6: ([[4, 4, 4, 4, 3, 4, 3], [1, 1, 1, 1, 2, 1, 2]], [[4, 4, 4, 4, 5, 4, 5], [1, 1, 1, 1, 0, 1, 0]]),
    }
    for budget, (target, balloon) in want.items():
        for seed in (1, 2, 12345):
            got, rows = series(all_or_nothing_guests(), budget, {**SAMPLING, "seed": seed})
            assert got["t_ns"][0] == [100, 200, 300, 400, 500, 600, 621]
            assert got["estimate_pages"] == est, (budget, seed)
            assert got["target_pages"] == target, (budget, seed)
            assert got["balloon_pages"] == balloon, (budget, seed)
            # 7 periods, a draw of 7 pages each, per guest (docs/costs.md).
            assert [rows[g]["wss_sampled_pages"] for g in (None, 0, 1)] == [98, 49, 49]
    # The estimate is a max over both averages: swapping their weights changes nothing.
    got, _ = series(all_or_nothing_guests(), 10, {**SAMPLING, "fast_alpha": 0.25, "slow_alpha": 0.5})
    assert got["estimate_pages"] == est


def test_sampling_rounds_a_half_page_up_and_decays_over_empty_periods():
    # g0 of 5 pages all accessed in period 0, then idle; both weights 1/2: k1 2.5 -> 3
    # (a half rounds up; to even it would be 2), k2 1.25 -> 1, k3 0.625 -> 1, k4 0.3125 -> 0.
    # g1 (1 page) accessed in periods 0, 1 and 4; no event at all in periods 2 and 3:
    # they end when the event at 420 comes, each measured as untouched: k2 0.5 -> 1,
    # k3 0.25 -> 0, k4 touched: 1. Last event 520: 6 periods.
    g0 = guest([(2 * p + o, op, p) for p in range(5) for o, op in ((0, S), (1, W))], 5)
    g1 = guest([(20, S, 0), (21, W, 0), (120, R, 0), (420, R, 0), (520, R, 0)], 1)
    got, _ = series([g0, g1], 6, {**SAMPLING, "slow_alpha": 0.5})
    assert got["estimate_pages"] == [[5, 5, 3, 1, 1, 0], [1, 1, 1, 1, 0, 1]]


def test_sampling_counts_accesses_not_hints():
    # ESX learns of a sampled page's use by the fault of its next access (model.md 5:
    # "at its end current = touched x guest pages / sample_pages"); a hint is no access
    # (DESIGN.md 2: hints never change recency), and plain `balloon` is not even sent
    # them (model.md 9). So a page only allocated (set stable) in a period is not
    # touched in it. Before the fix the estimator read the guest's reclaim stamps,
    # which an allocation sets: g0 below was estimated at 8 after period 0.
    # Period 0: g0 allocates its 8 pages, g1 its 2, no access: current 0, 0; both
    # averages start at 0: estimates 0 and 0. Period 1: every page written: current 8
    # and 2; fast 4 and 1, slow 2 and 0.5: estimates 8 and 2. Period 2 closes on g1.
    g0 = guest([(p, S, p) for p in range(8)] + [(100 + p, W, p) for p in range(8)], 8)
    g1 = guest([(20, S, 0), (21, S, 1), (120, W, 0), (121, W, 1), (220, R, 0), (221, R, 1)], 2)
    # Targets, budget 6, [2, 8] and [1, 2]. Row 0: (8, 2): 4, 1. Row 1: estimates that
    # sum to 0 share equally (model.md 5): 3 and 3; g1's 3 is above its memory: pinned
    # at 2; g0 alone (its estimate 0 again): the other 4. Row 2: (8, 2): 4, 1.
    for strategy in ("balloon", "balloon+cmm"):
        got, rows = series([g0, g1], 6, SAMPLING, strategy)
        assert got["estimate_pages"] == [[8, 0, 8], [2, 0, 2]], strategy
        assert got["target_pages"] == [[4, 4, 4], [1, 2, 1]], strategy
        assert rows[None]["wss_sampled_pages"] == 3 * 7 * 2


# ---------------------------------------------------------------- two-list above 1 GiB


def two_list_trace(b, f, hinting):
    """Pages ``0..b-1`` read, read again, ``f`` new pages read, then pages ``f - 1`` and
    ``f - 2``; with ``hinting`` each first read follows a set stable (Uz -> Sz)."""

    def first(pages):
        if not hinting:
            return pages, np.full(len(pages), R)
        return np.repeat(pages, 2), np.tile([S, R], len(pages))

    parts = [first(np.arange(b)), (np.arange(b), np.full(b, R)), first(np.arange(b, b + f)), ([f - 1, f - 2], [R, R])]
    pfn = np.concatenate([p for p, _ in parts]).astype(np.uint32)
    op = np.concatenate([o for _, o in parts]).astype(np.uint8)
    meta = TraceMeta(guest_pages=b + f, source="test", event_counts=count_ops(op))
    return TraceArrays(np.arange(len(op), dtype=np.int64), pfn, op, meta)


@pytest.mark.parametrize(
    ("budget", "moved"),
    [
        # Below 1 GiB (262,144 pages) the ratio is 1: m pages move when m >= B - m.
        (262_143, 131_072),
        # 1 GiB of listed pages: int_sqrt(10 x 1) = 3: 3m >= B - m, m = B / 4.
        (262_144, 65_536),
        # 2 GiB: int_sqrt(20) = 4: 4m >= B - m, m = ceil(B / 5) = 104,858.
        (524_288, 104_858),
    ],
)
@pytest.mark.parametrize("strategy", ["host-lru", "cmm"])
def test_two_list_inactive_ratio_above_1_gib(strategy, budget, moved):
    # model.md 5, "Two-list reclaim": before each eviction, while inactive x ratio <
    # active, the active list's tail moves to the inactive list's head, ratio =
    # int_sqrt(10 x GiB of the pages on the two lists), 1 below 1 GiB. B = budget.
    # 1. pages 0..B-1 read: B zero fills, all on the inactive list (tail: page 0).
    # 2. read again in the same order: each activated, the active list in activation
    #    order (tail: page 0), the inactive list empty. No fault.
    # 3. F = m + 1 new pages read. The first fault finds 0 x ratio < B: the active tail
    #    moves until m x ratio >= B - m, pages 0..m-1 (tail: 0); the victim is page 0.
    #    Each later fault replaces one inactive page by a new one: inactive stays m,
    #    never low again; victims 1..m-1, then the first new page. Pages never written
    #    leave as zero pages: F discards, F zero fills.
    # 4. page F - 1 = m: still on the active list: a hit. Page m - 1: evicted in 3: a
    #    zero fill, and the inactive tail (the second new page) leaves: a discard.
    # A ratio off by one moves another m and changes the last two reads' counts.
    f = moved + 1
    hinting = strategy == "cmm"
    params = {"replacement": "two-list"} if strategy == "host-lru" else {"reclaim_order": "two-list"}
    check(
        run(strategy, [two_list_trace(budget, f, hinting)], budget, params),
        dict(
            accesses=2 * budget + f + 2,
            hints=(budget + f) if hinting else 0,
            zero_fills=budget + f + 1,
            discards=f + 1,
            peak_resident_pages=budget,
        ),
    )


# ---------------------------------------------------------------- --states series

STATES_TRACE = [
    (S, 0), (W, 0), (S, 1), (W, 1), (V, 1), (S, 2), (W, 2), (R, 0), (R, 1), (U, 2), (S, 2),
    (R, 2), (V, 0), (R, 0), (S, 1), (R, 1), (SI, 2), (U, 1), (R, 3), (R, 1), (SI, 0), (R, 0),
]  # fmt: skip


def states_of(frame):
    """``{(t_ns, guest): "Sr2 Uz3"}``: the non-zero pairs of each sample, sorted."""
    out = {}
    for (t, g), rows in frame.filter(pl.col("pages") > 0).group_by("t_ns", "guest"):
        out[t, g] = " ".join(sorted(f"{s}{n}" for s, n in zip(rows["state"], rows["pages"], strict=True)))
    return out


@pytest.mark.parametrize(
    ("strategy", "want"),
    [
        # cmm, budget 2 (test_cmm_lru_hints_discard_faults_content_lost_repairs's
        # trace, event n at t = n - 1). A sample at t counts the states after every
        # event before t (model.md 6); the last, past the last event, the final ones.
        # t0: nothing yet: Uz5. t4 (after W1 at 3): 0 Sr, 1 Sr. t8 (after R0 at 7,
        # which evicted 1 Vr -> Vz; 2 written at 6): 0 Sr, 1 Vz, 2 Sr. t12 (R1 at 8
        # evicted 2 -> Sp; U2, S2, R2 at 11 evicted 0 -> Sp): 0 Sp, 1 Vr, 2 Sr. t16 (V0,
        # R0 evicting 1 -> Vz, S1 content lost -> Sz, R1 at 15 evicting 2 -> Sz): 0 Vr,
        # 1 Sr, 2 Sz. t20 (SI2, U1, R3 repaired evicting 0 -> Vz, R1 repaired): 0 Vz,
        # 1 Sr, 2 Sz, 3 Sr. t24 final (SI0, R0 -> Vr evicting 3 -> Sz): 0 Vr, 1 Sr, 2 Sz, 3 Sz.
        (
            "cmm",
            [
                "Uz5",
                "Sr2 Uz3",
                "Sr2 Uz2 Vz1",
                "Sp1 Sr1 Uz2 Vr1",
                "Sr1 Sz1 Uz2 Vr1",
                "Sr2 Sz1 Uz1 Vz1",
                "Sr1 Sz2 Uz1 Vr1",
            ],
        ),
        # host-lru: every page starts Sz, hints ignored. t4: 0 Sr, 1 Sr. t8 (W2 at 6
        # evicts 0, R0 at 7 evicts 1 -> Sp): 0 Sr, 1 Sp, 2 Sr. t12 (R1 at 8 evicts 2, R2
        # at 11 evicts 0): 0 Sp, 1 Sr, 2 Sr. t16 (R0 at 13 evicts 1, R1 at 15 evicts 2):
        # 2 Sp. t20 (R3 at 18 evicts 0; R1 hit): 0 Sp, 1 Sr, 2 Sp, 3 Sr. t24 (R0 at 21
        # evicts 3, never written: Sz): 0 Sr, 1 Sr, 2 Sp.
        (
            "host-lru",
            ["Sz5", "Sr2 Sz3", "Sp1 Sr2 Sz2", "Sp1 Sr2 Sz2", "Sp1 Sr2 Sz2", "Sp2 Sr2 Sz1", "Sp1 Sr2 Sz2"],
        ),
    ],
)
def test_states_series_one_guest(strategy, want):
    rep = replay_api.replay_full(scenario([guest(STATES_TRACE, 5)]), strategy, [2], states_interval_ns=4)
    # Samples from the first event every 4 ns to past the last (21): 0, 4, ..., 24;
    # every pair of every sample has a row, the pages of a sample sum to 5.
    assert rep.states.height == 7 * 8
    assert rep.states.group_by("t_ns").agg(pl.col("pages").sum())["pages"].to_list() == [5] * 7
    assert states_of(rep.states) == {(4 * k, 0): s for k, s in enumerate(want)}


def test_states_series_two_guests_and_streamed(tmp_path):
    # test_cmm_two_guests_counters_per_guest's trace (cmm, budget 2), every 4 ns.
    # a = guest 0, b = guest 1. t0: all Uz. t4 (a.W0 at 1, b.W0 at 3): a0 Sr, b0 Sr.
    # t8 (b.W1 at 6 evicts b0 -> Sp; a.U0 at 7: Ur): a0 Ur, b0 Sp, b1 Sr. t12 final
    # (b.R0 at 8 evicts a0 -> Uz; a.W1 at 10 evicts b1 -> Sp): a1 Sr, b0 Sr, b1 Sp.
    g0 = guest([(0, S, 0), (1, W, 0), (5, R, 0), (7, U, 0), (9, S, 1), (10, W, 1)], 2)
    g1 = guest([(2, S, 0), (3, W, 0), (4, S, 1), (6, W, 1), (8, R, 0)], 2)
    want = {
        (0, 0): "Uz2",
        (0, 1): "Uz2",
        (4, 0): "Sr1 Uz1",
        (4, 1): "Sr1 Uz1",
        (8, 0): "Ur1 Uz1",
        (8, 1): "Sp1 Sr1",
        (12, 0): "Sr1 Uz1",
        (12, 1): "Sp1 Sr1",
    }
    rep = replay_api.replay_full(scenario([g0, g1]), "cmm", [2], states_interval_ns=4)
    assert states_of(rep.states) == want
    paths = []
    for i, g in enumerate((g0, g1)):
        paths.append(tmp_path / f"g{i}.parquet")
        write_trace(paths[-1], g.t_ns, g.pfn, g.op, g.meta)
    streamed = replay_stream(paths, "cmm", [2], states_interval_ns=4, batch_rows=3)
    assert states_of(streamed.states) == want


@pytest.mark.parametrize(
    ("strategy", "params"),
    [
        ("cmm", {}),
        ("cmm", {"reclaim_order": "state-priority"}),
        ("cmm", {"reclaim_order": "two-list"}),
        ("cmm-light", {}),
        ("cmm-light", {"replacement": "two-list"}),
    ],
)
def test_states_last_sample_is_the_final_state_at_the_end_of_time(strategy, params, tmp_path):
    # A trace whose last event is at 2^63 - 1 ns: no time lies past it, so the last
    # sample is at that time (model.md 11: times never wrap); it must still be the
    # final state, after the last event (model.md 6). Samples at t-5 (nothing yet),
    # t-1 (after W0) and t (after S1: Uz -> Sz). Before the fix the last was taken
    # before the events at t: 1 still Uz.
    t = T_MAX_NS
    g = guest([(t - 5, S, 0), (t - 4, W, 0), (t, S, 1)], 2)
    want = {(t - 5, 0): "Uz2", (t - 1, 0): "Sr1 Uz1", (t, 0): "Sr1 Sz1"}
    rep = replay_api.replay_full(scenario([g]), strategy, [2], params, states_interval_ns=4)
    assert states_of(rep.states) == want
    path = tmp_path / "g.parquet"
    write_trace(path, g.t_ns, g.pfn, g.op, g.meta)
    assert states_of(replay_stream([path], strategy, [2], params, states_interval_ns=4).states) == want


# ---------------------------------------------------------------- host swap tier

#: host-lru, 6 pages, budget 1, a tier of 2 pages (tier lists oldest put in first).
TIER_TRACE = [
    (W, 0),  # 1 zf1
    (W, 1),  # 2 zf2; victim 0 changed -> tier: hwt1. tier [0]
    (W, 2),  # 3 zf3; victim 1 -> hwt2. tier [0,1]
    (W, 3),  # 4 zf4; victim 2: tier full: its least recently put in, 0, spills (spills1, hw1); hwt3. tier [1,2]
    (R, 1),  # 5 from the tier: hrt1, tier [2] (exclusive: 1 changed again); victim 3 -> hwt4. tier [2,3]
    (R, 0),  # 6 disk: hr1 (copy kept); victim 1 changed: tier full: 2 spills (spills2, hw2); hwt5. tier [3,1]
    (R, 2),  # 7 disk: hr2; victim 0 unchanged, disk copy: discards1. tier [3,1]
    (R, 3),  # 8 tier: hrt2, tier [1]; victim 2 unchanged, disk copy: discards2
    (W, 3),  # 9 hit
    (R, 4),  # 10 zf5; victim 3 changed -> hwt6. tier [1,3]
    (R, 5),  # 11 zf6; victim 4 never written: discards3
    (R, 1),  # 12 tier: hrt3, tier [3]; victim 5 zero: discards4
    (R, 0),  # 13 disk: hr3; victim 1 changed (no copy anywhere) -> hwt7. tier [3,1]
]
TIER_COUNTS = dict(
    accesses=13,
    host_reads=3,
    host_writes=2,
    zero_fills=6,
    discards=4,
    host_reads_tier=3,
    host_writes_tier=7,
    host_spills_tier=2,
    peak_resident_pages=1,
    total_io=5,
)


def test_host_lru_tier_of_two_lru_spills_and_exclusive_loads():
    rows = run("host-lru", [guest(TIER_TRACE, 6)], 1, tier_pages=2)
    check(rows, TIER_COUNTS)
    assert rows[None]["tier_pages"] == 2


def test_cmm_tier_of_two_two_guests():
    # cmm, guests a (3 pages) and b (2 pages), budget 1, tier 2.
    # t1 a.W0 zf (a). t3 b.W0 zf (b); victim a0 -> tier: hwt (a). tier [a0]
    # t5 a.W1 zf (a); victim b0 -> hwt (b). tier [a0,b0]
    # t6 a.V0: a0 Sp -> Vz, its place freed, no I/O. tier [b0]
    # t8 b.W1 zf (b); victim a1 -> hwt (a). tier [b0,a1]
    # t10 a.W2 zf (a); victim b1: tier full: b0 spills (spills, hw: b); hwt (b). tier [a1,b1]
    # t11 b.U1: b1 Sp -> Uz, its place freed. tier [a1]
    # t12 a.R0 Vz: discard fault, gr (a); victim a2 -> hwt (a). tier [a1,a2]
    # t13 b.R0 disk: hr (b); victim a0 Vr: discards (a)
    # t14 a.R1 tier: hrt (a), tier [a2]; victim b0 unchanged, disk copy: discards (b)
    g0 = guest(
        [(0, S, 0), (1, W, 0), (4, S, 1), (5, W, 1), (6, V, 0), (9, S, 2), (10, W, 2), (12, R, 0), (14, R, 1)], 3
    )
    g1 = guest([(2, S, 0), (3, W, 0), (7, S, 1), (8, W, 1), (11, U, 1), (13, R, 0)], 2)
    a = dict(accesses=5, hints=4, zero_fills=3, host_writes_tier=3, host_reads_tier=1, discard_faults=1, guest_reads=1)
    a |= dict(discards=1, peak_resident_pages=1, total_io=1)
    b = dict(accesses=3, hints=3, zero_fills=2, host_writes_tier=2, host_spills_tier=1, host_writes=1, host_reads=1)
    b |= dict(discards=1, peak_resident_pages=1, total_io=2)
    host = {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}
    host["peak_resident_pages"] = 1
    check(run("cmm", [g0, g1], 1, tier_pages=2), host, a, b)


def test_two_list_victims_do_not_change_with_a_tier():
    # test_host_lru_two_list's derivation with a tier of 1 page: the one page-out (0 at
    # 8) goes to the tier (hwt1, not hw1), the read at 9 comes from it (hrt1, not hr1).
    from tests.test_conformance import TWO_LIST_TRACE

    check(
        run("host-lru", [guest(TWO_LIST_TRACE, 5)], 3, {"replacement": "two-list"}, tier_pages=1),
        dict(accesses=9, host_reads_tier=1, host_writes_tier=1, zero_fills=6, discards=3, peak_resident_pages=3),
    )


# ---------------------------------------------------------------- costs

MS = 1_000_000
#: A profile of our own (docs/costs.md, "Profiles of your own"): zvm-2006's keys but these.
AUDIT_TOML = """base = "zvm-2006"
name = "audit"
host_read_disk_ns = 2_000_000
guest_read_ns = 1_000_000
hint_guest_ns = 250
hint_host_ns = 50
reclaim_decision_ns = 2_000
host_write_tier_ns = 7_000
wss_sample_page_ns = 1_760
"""

#: host-lru, 4 pages, budget 2 (test_host_lru_pageout_pagein_and_free_reclaims): hr 2,
#: hw 2, zf 7, discards 5.
LRU_TRACE = [(W, 0), (R, 1), (R, 2), (R, 0), (R, 1), (R, 2), (R, 0), (W, 0), (R, 3), (R, 2), (U, 3), (R, 3)]


def spaced(events, pages, step=MS):
    """A guest whose events are ``step`` ns apart."""
    return guest([(k * step, op, p) for k, (op, p) in enumerate(events)], pages)


def cost_cases():
    # (strategy, guests, budget, params, tier, duration_ns, vcpus per guest) and, per
    # profile, the host row's (stall, host CPU, guest CPU, disk busy), ns. Host faults
    # = hr + hrt + zf + df; host evictions = hw + hwt + discards - by guest - released
    # - spills; balloon pages = inflated - initial + deflated (docs/costs.md).
    return {
        # hr 2, hw 2, zf 7, discards 5: faults 9, evictions 7. Duration 11 ms.
        "host-lru": (
            ("host-lru", [spaced(LRU_TRACE, 4)], 2, None, 0, 11 * MS, 1),
            {
                "kvm-2025": (2 * 50_000 + 9 * 760 + 7 * 460, 9 * 760 + 7 * 460 + 7 * 1_000, 0, 2 * 50_000 + 2 * 30_000),
                "zvm-2006": (
                    2 * 10**7 + 9 * 760 + 7 * 460,
                    9 * 760 + 7 * 460 + 7 * 1_000,
                    0,
                    2 * 10**7 + 2 * 6 * 10**6,
                ),
                "audit": (
                    2 * 2 * 10**6 + 9 * 760 + 7 * 460,
                    9 * 760 + 7 * 460 + 7 * 2_000,
                    0,
                    2 * 2 * 10**6 + 2 * 6 * 10**6,
                ),
            },
        ),
        # hints 11, hr 1, hw 2, zf 6, discards 6, df 3, gr 3: faults 10, evictions 8.
        # Stall: hr, faults, zero fills, df deliveries, guest reads. 21 ms, 2 vCPUs.
        "cmm": (
            ("cmm", [spaced(STATES_TRACE, 5)], 2, None, 0, 21 * MS, 2),
            {
                "kvm-2025": (
                    50_000 + 10 * 760 + 6 * 460 + 3 * 760 + 3 * 50_000,
                    10 * 760 + 6 * 460 + 11 * 0 + 8 * 1_000,
                    11 * 100 + 3 * 760,
                    50_000 + 2 * 30_000 + 3 * 50_000,
                ),
                "audit": (
                    2 * 10**6 + 10 * 760 + 6 * 460 + 3 * 760 + 3 * 10**6,
                    10 * 760 + 6 * 460 + 11 * 50 + 8 * 2_000,
                    11 * 250 + 3 * 760,
                    2 * 10**6 + 2 * 6 * 10**6 + 3 * 10**6,
                ),
            },
        ),
        # TIER_COUNTS: hr 3, hw 2 (both spills), zf 6, discards 4, hrt 3, hwt 7, spills 2:
        # faults 12, evictions 2 + 7 + 4 - 2 = 11 (13 faults, the first into a free
        # frame). Host CPU: faults, zero fills, (hrt + spills) tier reads, hwt tier
        # writes, decisions. 12 ms.
        "tier": (
            ("host-lru", [spaced(TIER_TRACE, 6)], 1, None, 2, 12 * MS, 1),
            {
                "kvm-2025": (
                    3 * 50_000 + 3 * 824 + 12 * 760 + 6 * 460,
                    12 * 760 + 6 * 460 + 5 * 824 + 7 * 5_251 + 11 * 1_000,
                    0,
                    3 * 50_000 + 2 * 30_000,
                ),
                "zvm-2006": (
                    3 * 10**7 + 3 * 10**5 + 12 * 760 + 6 * 460,
                    12 * 760 + 6 * 460 + 5 * 10**5 + 7 * 10**5 + 11 * 1_000,
                    0,
                    3 * 10**7 + 2 * 6 * 10**6,
                ),
                "audit": (
                    3 * 2 * 10**6 + 3 * 10**5 + 12 * 760 + 6 * 460,
                    12 * 760 + 6 * 460 + 5 * 10**5 + 7 * 7_000 + 11 * 2_000,
                    0,
                    3 * 2 * 10**6 + 2 * 6 * 10**6,
                ),
            },
        ),
        # balloon_guests (oracle): zf 8, discards 2 all released, inflated 4 of which 2
        # initial, deflated 2: faults 8, evictions 0, balloon pages 4. 106 ns, 2 vCPUs.
        "balloon": (
            ("balloon", balloon_guests(), 6, BALLOON_PARAMS, 0, 106, 2),
            {
                "kvm-2025": (8 * 760 + 8 * 460, 8 * 760 + 8 * 460 + 4 * 564, 4 * 1_682, 0),
                "audit": (8 * 760 + 8 * 460, 8 * 760 + 8 * 460 + 4 * 564, 4 * 1_682, 0),
            },
        ),
        # The same under balloon+cmm: 10 hints (4 + 6), priced on both sides.
        "balloon+cmm": (
            ("balloon+cmm", balloon_guests(), 6, BALLOON_PARAMS, 0, 106, 2),
            {
                "kvm-2025": (8 * 1_220, 8 * 1_220 + 4 * 564, 4 * 1_682 + 10 * 100, 0),
                "audit": (8 * 1_220, 8 * 1_220 + 10 * 50 + 4 * 564, 4 * 1_682 + 10 * 250, 0),
            },
        ),
        # test_balloon_fault_rate_estimator_grows_on_refaults: zf 6, discards 5 (2 by
        # the guest, 3 released), df 1, gr 2, gw 1, inflated 5 (4 initial): faults 7,
        # evictions 0, balloon pages 1; the guest's decisions: gw + by guest = 3. 102 ns.
        "fault-rate": (
            ("balloon", fault_rate_guests(), 4, FAULT_RATE, 0, 102, 1),
            {
                "kvm-2025": (
                    7 * 760 + 6 * 460 + 760 + 2 * 50_000,
                    7 * 760 + 6 * 460 + 564,
                    760 + 1_682 + 3 * 1_000,
                    2 * 50_000 + 30_000,
                ),
                "audit": (
                    7 * 760 + 6 * 460 + 760 + 2 * 10**6,
                    7 * 760 + 6 * 460 + 564,
                    760 + 1_682 + 3 * 2_000,
                    2 * 10**6 + 6 * 10**6,
                ),
            },
        ),
    }


FAULT_RATE = {**BALLOON_PARAMS, "estimator": "fault-rate", "fault_threshold": 0, "grow": 0.5, "shrink": 0.5}


def fault_rate_guests():
    g0 = [(0, S, 0), (1, W, 0), (2, S, 1), (3, W, 1), (4, V, 1), (5, S, 2), (6, W, 2), (7, R, 1), (102, R, 0)]
    return [guest(g0, 4), guest([(8, S, 0), (9, W, 0), (101, R, 0)], 4)]


@pytest.fixture
def audit_toml(tmp_path):
    path = tmp_path / "audit.toml"
    path.write_text(AUDIT_TOML)
    return path


@pytest.mark.parametrize(("case", "profile"), [(c, p) for c, (_, want) in cost_cases().items() for p in want])
def test_costs_by_hand(case, profile, audit_toml):
    (strategy, guests, budget, params, tier, duration, vcpus), want = cost_cases()[case]
    costs = audit_toml if profile == "audit" else profile
    df = api.replay(scenario(guests), strategy, [budget], params, costs=costs, vcpus=vcpus, tier_pages=tier)
    host = df.filter(pl.col("guest").is_null()).row(0, named=True)
    stall, host_cpu, guest_cpu, disk = want[profile]
    got = tuple(host[c] for c in ("stall_ns", "host_cpu_ns", "guest_cpu_ns", "disk_busy_ns"))
    assert got == (stall, host_cpu, guest_cpu, disk)
    assert host["cost_profile"] == profile and host["duration_ns"] == duration
    assert host["overhead_pct"] == pytest.approx(100 * (host_cpu + guest_cpu) / (duration * vcpus * len(guests)))
    # A trace without duration has no overhead (docs/costs.md).
    one = api.replay(scenario([guest([(5, W, 0)], 1)]), "host-lru", [1], costs=costs)
    assert one["overhead_pct"].to_list() == [None, None] and one["stall_ns"].to_list() == [1_220, 1_220]
    # Host rows are the sums of their guests' rows.
    guests_rows = df.filter(pl.col("guest").is_not_null())
    for c in ("stall_ns", "host_cpu_ns", "guest_cpu_ns", "disk_busy_ns"):
        assert guests_rows[c].sum() == pytest.approx(host[c])


def test_costs_of_sampling_and_per_guest_balloon_rows(audit_toml):
    # wss_sampled_pages x wss_sample_page_ns is host CPU: the all-or-nothing trace
    # samples 98 pages (49 per guest); audit prices a sample at 1,760 ns, kvm-2025 at
    # 760: the host CPU differs by 98 x 1,000 ns plus what the other keys change.
    # Re-priced under a copy of kvm-2025 that changes only that key, exactly that.
    from cmmsim.replay.costs import price

    mine = audit_toml.parent / "wss.toml"
    mine.write_text('base = "kvm-2025"\nname = "wss"\nwss_sample_page_ns = 1_760\n')
    df = api.replay(scenario(all_or_nothing_guests()), "balloon", [10], SAMPLING)
    other = price(df, mine)
    assert (other["host_cpu_ns"] - df["host_cpu_ns"]).to_list() == [98_000, 49_000, 49_000]
    assert other["guest_cpu_ns"].to_list() == df["guest_cpu_ns"].to_list()
    # balloon_guests per guest, kvm-2025: g0 zf 4, balloon pages 2 - 2 + 2 = 2; g1 zf 4,
    # discards 2 released (no decision), balloon pages 2: both 4 x 1,220 ns of stall,
    # 4,880 + 2 x 564 of host CPU, 2 x 1,682 of guest CPU, over 106 ns x 1 vCPU.
    df = api.replay(scenario(balloon_guests()), "balloon", [6], BALLOON_PARAMS)
    for g in (0, 1):
        row = df.filter(pl.col("guest") == g).row(0, named=True)
        assert (row["stall_ns"], row["host_cpu_ns"], row["guest_cpu_ns"]) == (4_880, 6_008, 3_364)
        assert row["overhead_pct"] == pytest.approx(100 * (6_008 + 3_364) / 106)


def test_report_costs_reprices_as_a_replay_would(tmp_path, audit_toml):
    # docs/costs.md: everything priced is linear in the rows' counters, so `cmmsim
    # report RESULTS --costs P` gives what a replay under P gives. The cmm case: rows
    # written under kvm-2025, re-priced under audit, against the hand values.
    trace = tmp_path / "cmm.parquet"
    g = spaced(STATES_TRACE, 5)
    write_trace(trace, g.t_ns, g.pfn, g.op, g.meta)
    runner = CliRunner()
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    for out, extra in ((old, []), (new, ["--costs", str(audit_toml)])):
        r = runner.invoke(app, ["replay", str(trace), "-s", "cmm", "-b", "2", "-q", "-o", str(out), *extra])
        assert r.exit_code == 0, r.output
    reports = []
    for results, extra in ((old, ["--costs", str(audit_toml)]), (new, [])):
        r = runner.invoke(app, ["report", str(results), "-r", "time", "-f", "csv", *extra])
        assert r.exit_code == 0, r.output
        reports.append(pl.read_csv(io.StringIO(r.stdout)))
    assert reports[0].equals(reports[1])
    _, want = cost_cases()["cmm"]
    stall, host_cpu, guest_cpu, disk = want["audit"]
    row = reports[0].row(0, named=True)
    assert (row["stall_ns"], row["host_cpu_ns"], row["guest_cpu_ns"], row["disk_busy_ns"]) == (
        stall,
        host_cpu,
        guest_cpu,
        disk,
    )
    assert row["cost_profile"] == "audit"
    # 1 vCPU: the trace says none and the replay was not told.
    assert row["overhead_pct"] == pytest.approx(100 * (host_cpu + guest_cpu) / (21 * MS))
