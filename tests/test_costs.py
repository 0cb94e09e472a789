"""Cost profiles and pricing (``cmmsim.replay.costs``): profiles load and refuse bad input, the
accounting of a hand-made trace adds up term by term, pricing is linear and re-prices
old rows, and the one calibrated number (ESSA at 0.25 %) holds."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from cmmsim import reports
from cmmsim.replay import costs
from cmmsim.replay import scenario as sc
from cmmsim.replay import states as S
from cmmsim.replay.api import replay
from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.io import read_meta, write_trace
from cmmsim.tracer.schema import Op, TraceMeta
from tests.helpers import make_arrays, run_both, scenario_of

R, W, SV, SIR = Op.READ, Op.WRITE, Op.SET_VOLATILE, Op.SET_STABLE_IF_RESIDENT
SS, SU = Op.SET_STABLE, Op.SET_UNUSED

#: Every cost a different power of ten: each term of a sum shows in its own digits.
DISTINCT = {
    "host_read_disk_ns": 1e9,
    "host_read_tier_ns": 3e10,
    "host_write_disk_ns": 1e8,
    "host_write_tier_ns": 3e11,
    "host_fault_ns": 1e1,
    "zero_fill_ns": 1e0,
    "guest_read_ns": 1e6,
    "guest_write_ns": 1e5,
    "discard_fault_ns": 1e2,
    "hint_guest_ns": 1e3,
    "hint_host_ns": 1e4,
    "balloon_page_guest_ns": 7e0,
    "balloon_page_host_ns": 7e1,
    "reclaim_decision_ns": 1e7,
    "wss_sample_page_ns": 3e0,
}


def _profile(**over) -> costs.CostProfile:
    return costs.CostProfile("test", DISTINCT | over)


def _write_toml(tmp_path, text: str, name: str = "mine.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_profiles_are_complete_and_named():
    assert {"zvm-2006", "kvm-2025"} <= set(costs.shipped())
    assert costs.DEFAULT_PROFILE in costs.shipped()
    assert set(DISTINCT) == set(costs.COST_KEYS)
    for name in costs.shipped():
        prof = costs.load_profile(name)
        assert prof.name == name and set(prof.costs_ns) == set(costs.COST_KEYS)
        assert all(v >= 0 for v in prof.costs_ns.values()) and prof.description
    assert costs.load_profile(None).name == costs.DEFAULT_PROFILE


def test_a_file_overrides_a_subset_of_its_base(tmp_path):
    path = _write_toml(tmp_path, 'base = "zvm-2006"\nhost_read_disk_ns = 5_000_000\nhint_host_ns = 50\n')
    prof = costs.load_profile(path)
    base = costs.load_profile("zvm-2006")
    assert prof.name == "mine"
    assert prof.costs_ns == base.costs_ns | {"host_read_disk_ns": 5e6, "hint_host_ns": 50.0}
    default_base = costs.load_profile(_write_toml(tmp_path, 'name = "x"\nzero_fill_ns = 1\n', "b.toml"))
    assert default_base.name == "x"
    assert default_base.costs_ns == costs.load_profile(costs.DEFAULT_PROFILE).costs_ns | {"zero_fill_ns": 1.0}


@pytest.mark.parametrize(
    "text, message",
    [
        ("hots_read_disk_ns = 1\n", "unknown cost key 'hots_read_disk_ns'"),
        ("zero_fill_ns = -1\n", "cannot be negative"),
        ('zero_fill_ns = "fast"\n', "a cost is a number"),
        ("zero_fill_ns = true\n", "a cost is a number"),
        ("zero_fill_ns = nan\n", "a cost is a number"),
        ('base = "vmware-2002"\n', "not a shipped profile"),
        ("zero_fill_ns = \n", "not valid TOML"),
    ],
)
def test_bad_profiles_are_refused_in_one_line(tmp_path, text, message):
    path = _write_toml(tmp_path, text)
    with pytest.raises(ParamError, match=message) as err:
        costs.load_profile(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_file_cannot_price_under_a_shipped_name_with_other_costs(tmp_path):
    # An edited copy of a shipped file keeps its stem as its name: rows priced under it
    # would say "zvm-2006", and `cmmsim report` would trust them as zvm-2006's prices.
    shipped = (costs.PROFILE_DIR / "zvm-2006.toml").read_text()
    copy = _write_toml(tmp_path, shipped.replace("host_fault_ns = 760", "host_fault_ns = 99999"), "zvm-2006.toml")
    with pytest.raises(ParamError, match="'zvm-2006' is the name of a shipped profile") as err:
        costs.load_profile(copy)
    assert "host_fault_ns" in str(err.value) and "\n" not in str(err.value)
    named = _write_toml(tmp_path, 'name = "kvm-2025"\nzero_fill_ns = 1\n', "other.toml")
    with pytest.raises(ParamError, match="'kvm-2025' is the name of a shipped profile"):
        costs.load_profile(named)
    # The same costs under the shipped name are that profile.
    same = costs.load_profile(_write_toml(tmp_path, shipped, "zvm-2006.toml"))
    assert same.name == "zvm-2006" and same.costs_ns == costs.load_profile("zvm-2006").costs_ns
    for bad in ('name = ""\n', 'name = "two\\nlines"\n'):
        with pytest.raises(ParamError, match="name must be"):
            costs.load_profile(_write_toml(tmp_path, bad, "n.toml"))


def test_unknown_names_and_missing_files_are_refused():
    with pytest.raises(ParamError, match="unknown cost profile 'zvm'"):
        costs.load_profile("zvm")
    with pytest.raises(ParamError, match="unknown cost profile ''"):  # not the folder '.'
        costs.load_profile("")
    with pytest.raises(ParamError, match="no such cost profile file"):
        costs.load_profile("nowhere.toml")


def _hand_made():
    # cmm, one frame, two pages, 1 ms, one 2-way guest:
    #   W p0   repair, zero fill                         (host fault 1)
    #   W p1   repair, evict p0: changed -> host write;  zero fill (host fault 2)
    #   R p0   evict p1: changed -> host write; p0 Sp -> host read (host fault 3)
    #   V p0   a hint
    #   R p1   evict p0: volatile -> discard; p1 Sp -> host read (host fault 4)
    #   R p0   evict p1: unchanged copy -> discard; p0 Vz -> discard fault, guest read (5)
    ops = [W, W, R, SV, R, R]
    arr = make_arrays(ops, [0, 1, 0, 0, 1, 0], guest_pages=2, t_ns=[0, 200_000, 400_000, 600_000, 800_000, 1_000_000])
    arr = dataclasses.replace(arr, meta=dataclasses.replace(arr.meta, vcpus=2))
    return scenario_of(arr)


def test_the_accounting_of_a_hand_made_trace_adds_up():
    df = replay(_hand_made(), "cmm", [1], costs=_profile())
    row = df.filter(pl.col("guest").is_null()).row(0, named=True)
    counted = {
        k: row[k]
        for k in (
            "accesses",
            "hints",
            "host_reads",
            "host_writes",
            "zero_fills",
            "discards",
            "discard_faults",
            "guest_reads",
            "guest_writes",
            "repairs",
        )
    }
    assert counted == {
        "accesses": 5,
        "hints": 1,
        "host_reads": 2,
        "host_writes": 2,
        "zero_fills": 2,
        "discards": 2,
        "discard_faults": 1,
        "guest_reads": 1,
        "guest_writes": 0,
        "repairs": 2,
    }
    assert (row["duration_ns"], row["vcpus"], row["guests"]) == (1_000_000, 2, 1)
    c = DISTINCT
    faults = 2 + 2 + 1  # host reads + zero fills + discard faults
    stall = (
        2 * c["host_read_disk_ns"]
        + faults * c["host_fault_ns"]
        + 2 * c["zero_fill_ns"]
        + 1 * c["discard_fault_ns"]
        + 1 * c["guest_read_ns"]
    )
    host_cpu = (
        faults * c["host_fault_ns"] + 2 * c["zero_fill_ns"] + 1 * c["hint_host_ns"] + (2 + 2) * c["reclaim_decision_ns"]
    )  # host writes + discards: a decision each
    guest_cpu = 1 * c["hint_guest_ns"] + 1 * c["discard_fault_ns"]
    disk = 2 * c["host_read_disk_ns"] + 2 * c["host_write_disk_ns"] + 1 * c["guest_read_ns"]
    assert row["stall_ns"] == stall == 2_001_000_152
    assert row["host_cpu_ns"] == host_cpu == 40_010_052
    assert row["guest_cpu_ns"] == guest_cpu == 1_100
    assert row["disk_busy_ns"] == disk == 2_201_000_000
    assert row["overhead_pct"] == pytest.approx(100 * (host_cpu + guest_cpu) / (1_000_000 * 2))
    assert row["wss_sampled_pages"] == 0 and row["cost_profile"] == "test"


def test_tier_counters_are_priced_when_rows_carry_them():
    df = replay(_hand_made(), "cmm", [1], costs=_profile())
    tiered = df.with_columns(host_reads_tier=pl.lit(3), host_writes_tier=pl.lit(4))
    a = costs.price(df, _profile()).row(0, named=True)
    b = costs.price(tiered, _profile()).row(0, named=True)
    c = DISTINCT
    assert b["stall_ns"] - a["stall_ns"] == 3 * (c["host_read_tier_ns"] + c["host_fault_ns"])
    assert b["host_cpu_ns"] - a["host_cpu_ns"] == (
        3 * (c["host_read_tier_ns"] + c["host_fault_ns"]) + 4 * (c["host_write_tier_ns"] + c["reclaim_decision_ns"])
    )
    assert b["disk_busy_ns"] == a["disk_busy_ns"]


@pytest.mark.parametrize(
    "strategy, params",
    [
        ("balloon", {"estimator": "sampling", "period_ns": 40, "sample_pages": 3, "rate_pages_per_s": 10**9}),
        ("static", {}),
        ("host-lru", {}),
        ("free-page-reporting", {}),
    ],
)
def test_pricing_is_linear_in_the_counters(strategy, params):
    rng = np.random.default_rng(7)
    guests = [
        make_arrays(
            rng.choice([0, 1, 1, 2, 3, 4, 5, 6], 300), rng.integers(0, 24, 300), guest_pages=24, t_ns=np.arange(300) * 3
        )
        for _ in range(3)
    ]
    df = replay(scenario_of(*guests), strategy, [10, 30], params, costs=_profile())
    cols = [
        "stall_ns",
        "host_cpu_ns",
        "guest_cpu_ns",
        "disk_busy_ns",
        "wss_sampled_pages",
        "balloon_inflated_pages",
        "vcpus",
    ]
    host = df.filter(pl.col("guest").is_null()).sort("budget_pages").select(cols)
    summed = (
        df.filter(pl.col("guest").is_not_null())
        .group_by("budget_pages")
        .agg(pl.col(cols).sum())
        .sort("budget_pages")
        .select(cols)
    )
    assert host.equals(summed)
    if params.get("estimator") == "sampling":
        periods = (3 * 299) // 40 + 1
        assert (host["wss_sampled_pages"] == periods * 3 * 3).all()
        row = df.filter(pl.col("guest").is_null()).row(0, named=True)
        moved = row["balloon_inflated_pages"] - row["balloon_initial_pages"] + row["balloon_deflated_pages"]
        assert moved > 0
        decisions = row["guest_writes"] + row["discards_by_guest"]
        assert row["guest_cpu_ns"] == (row["hints"] * 1e3 + row["discard_faults"] * 1e2 + moved * 7 + decisions * 1e7)


def test_old_rows_are_re_priced_without_a_replay():
    df = replay(_hand_made(), "cmm", [1, 2], costs="kvm-2025")
    assert costs.profile_of(df) == "kvm-2025"
    again = costs.price(df, "zvm-2006")
    assert again.equals(replay(_hand_made(), "cmm", [1, 2], costs="zvm-2006"))
    assert costs.price(again, "zvm-2006").equals(again)
    # Rows of an older cmmsim: no prices, no duration or vCPUs; priced all the same.
    old = df.drop([*costs.PRICE_COLUMNS, "duration_ns", "vcpus", "guests"])
    rows, name = costs.priced(old)
    assert name == costs.DEFAULT_PROFILE and rows["overhead_pct"].is_null().all()
    assert rows["stall_ns"].equals(df["stall_ns"])
    assert costs.priced(df)[0] is df
    mixed = pl.concat([df, again])
    assert costs.profile_of(mixed) is None and costs.priced(mixed)[1] == costs.DEFAULT_PROFILE


def test_vcpus_come_from_the_trace_else_the_parameter(tmp_path):
    arr = make_arrays([W, R], [0, 0], guest_pages=1, t_ns=[0, 10])
    write_trace(tmp_path / "four.parquet", arr.t_ns, arr.pfn, arr.op, TraceMeta(guest_pages=1, source="test", vcpus=4))
    write_trace(tmp_path / "unsaid.parquet", arr.t_ns, arr.pfn, arr.op, TraceMeta(guest_pages=1, source="test"))
    assert read_meta(tmp_path / "four.parquet").vcpus == 4
    assert read_meta(tmp_path / "unsaid.parquet").vcpus is None
    scn = sc.load([tmp_path / "four.parquet", tmp_path / "unsaid.parquet"])
    for vcpus, expect in ((None, [4, 1]), (3, [4, 3])):
        df = replay(scn, "host-lru", [2], vcpus=vcpus).sort("guest", nulls_last=True)
        assert df["vcpus"].to_list() == [*expect, sum(expect)]
    with pytest.raises(ParamError, match="vcpus must be >= 1"):
        replay(scn, "host-lru", [2], vcpus=0)


def test_essa_calibration_100k_hints_per_second_on_a_4_way_guest_is_a_quarter_percent():
    # The one number taken from the paper (docs/costs.md): built by hand, not by a
    # generator. A 4-way guest, 1 s: 64 pages written once, then 100,000 hints
    # (set volatile / set stable if resident, as page-cache reads send) on them.
    n_hints, pages = 100_000, 64
    ops = [W] * pages + [SV, SIR] * (n_hints // 2)
    pfn = list(range(pages)) + [i // 2 % pages for i in range(n_hints)]
    t = np.linspace(0, 1_000_000_000, len(ops)).astype(np.int64)
    arr = make_arrays(ops, pfn, guest_pages=pages, t_ns=t)
    arr = dataclasses.replace(arr, meta=dataclasses.replace(arr.meta, vcpus=4))
    row = (
        replay(scenario_of(arr), "cmm", [pages], costs="zvm-2006").filter(pl.col("guest").is_null()).row(0, named=True)
    )
    prof = costs.load_profile("zvm-2006").costs_ns
    assert row["hints"] == n_hints and row["duration_ns"] == 1_000_000_000 and row["vcpus"] == 4
    hinting_pct = 100 * n_hints * (prof["hint_guest_ns"] + prof["hint_host_ns"]) / (1e9 * 4)
    assert hinting_pct == pytest.approx(0.25)  # the calibration itself
    assert 0.2 <= row["overhead_pct"] <= 0.3  # with the first touches' faults and zero fills


def test_reports_order_by_stall_and_cpu():
    df = pl.concat(
        [replay(_hand_made(), s, [1, 2], costs="zvm-2006") for s in ("cmm", "host-lru", "opt", "opt-schedule")],
        how="diagonal_relaxed",
    )
    by_stall = reports.df_ranking(df, "stall")
    assert set(by_stall.columns) == {"trace_set", "budget_pages", "budget_mib", "rank", "label", "stall_ns"}
    cpu = reports.df_by(df, "cpu")
    host = df.filter(pl.col("guest").is_null())
    assert sorted(cpu["cpu_ns"].to_list()) == sorted((host["host_cpu_ns"] + host["guest_cpu_ns"]).to_list())
    winners = reports.df_winners(df, "stall")
    assert not set(winners["winner"]) & {"opt", "opt-schedule"}
    assert reports.df_crossovers(df, "cpu").columns == reports.df_crossovers(df).columns
    assert set(reports.df_time(df)["cost_profile"]) == {"zvm-2006"}
    with pytest.raises(ParamError, match="--by 'time'"):
        reports.df_ranking(df, "time")
    with pytest.raises(ParamError, match="no time or CPU columns"):
        reports.df_ranking(df.drop("stall_ns"), "stall")


def test_the_cli_knows_what_the_reports_order_by():
    from cmmsim import cli_sweep

    assert set(cli_sweep.BY_NAMES) == set(reports.BY)
    assert set(cli_sweep.ORDERED) <= set(cli_sweep.REPORTS)


def test_docs_list_every_key_with_each_shipped_value():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "costs.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in text.splitlines()
        if line.startswith("| `") and line.split("|")[1].strip(" `") in costs.COST_KEYS
    }
    assert set(rows) == set(costs.COST_KEYS)
    cols = [c.strip() for c in next(line for line in text.splitlines() if line.startswith("| key |")).split("|")]
    for name in costs.shipped():
        j = cols.index(name)
        for key, value in costs.load_profile(name).costs_ns.items():
            assert rows[key].split("|")[j].strip() == f"{value:,.0f}", (name, key)


def test_a_profile_object_is_checked_as_a_file_is():
    # A CostProfile built in code reaches pricing too: a missing key was a KeyError
    # deep in the pricing, a negative or NaN cost priced rows without a word.
    with pytest.raises(ParamError, match="lacks host_read_disk_ns"):
        costs.load_profile(costs.CostProfile("x", {"zero_fill_ns": 1.0}))
    for bad, message in ((-1.0, "cannot be negative"), (float("nan"), "a cost is a number")):
        with pytest.raises(ParamError, match=message):
            costs.price(pl.DataFrame({"zero_fills": [1]}), _profile(zero_fill_ns=bad))
    with pytest.raises(ParamError, match="unknown cost key 'zero_fil_ns'"):
        costs.load_profile(costs.CostProfile("x", DISTINCT | {"zero_fil_ns": 1.0}))
    assert costs.load_profile(_profile()) == _profile()


def _ballooned():
    """Two guests of 8 pages on 12 frames, oracle balloons pinned at 6 (min_fraction 0.75):
    each way a frame leaves without I/O happens a known number of times."""
    # a: p0 read only, p1-p7 written at t=0; all but p7 freed at t=5 (p0 last); p7 read at 2500.
    a_ops = [SS, R] + [SS, W] * 7 + [SU] * 7 + [R]
    a_pfn = [0, 0] + [q for q in range(1, 8) for _ in (0, 1)] + [1, 2, 3, 4, 5, 6, 0, 7]
    a = make_arrays(a_ops, a_pfn, guest_pages=8, t_ns=[0] * 16 + [5] * 7 + [2500])
    # b: p0-p6 written from t=1500, p0 then made volatile (clean page cache).
    b_ops = [SS, W] * 7 + [SV]
    b_pfn = [q for q in range(7) for _ in (0, 1)] + [0]
    b = make_arrays(b_ops, b_pfn, guest_pages=8, t_ns=[1500 + 10 * (j // 2) for j in range(14)] + [1900])
    return scenario_of(a, b)


BALLOONED = {"estimator": "oracle", "period_ns": 1000, "slack": 0.0, "min_fraction": 0.75, "rate_pages_per_s": 10**12}


def test_the_balloons_accounting_prices_who_chose_each_drop():
    # Period 0 (oracle: a 8 pages, b none): a is pinned at its memory, b at its
    # minimum, 6: b's balloon starts at 2, the first sizing (not priced).
    # Period 1 (a none, b 7): a at 6, so a's balloon takes 2 pages: a's two oldest
    # freed frames, p1 and p2, which the host backs: dropped, released by the guest.
    # b's 7 pages fill the 12 frames: the host evicts its LRU frame, a's p0 (read
    # only: a discard the host chose). Period 2 (a 1, b none): b at 6, b's balloon
    # takes 2 pages: b's guest drops its clean p0 (its own choice), which the host
    # backs and then drops, released, to keep b's frames + balloon within memory.
    scn = _ballooned()
    res = run_both("balloon", BALLOONED, scn, 12)
    cnt = {k: res.counters[0][:, S.C[k]].tolist() for k in S.COUNTERS}
    assert cnt["discards"] == [3, 2]
    assert cnt["discards_by_guest"] == [0, 1]
    assert cnt["discards_released"] == [2, 1]
    assert cnt["balloon_inflated_pages"] == [2, 4]
    assert cnt["balloon_initial_pages"] == [0, 2]
    assert cnt["balloon_deflated_pages"] == [2, 2]
    assert cnt["zero_fills"] == [8, 7]
    assert cnt["host_writes"] == cnt["guest_writes"] == cnt["hints"] == [0, 0]

    df = replay(scn, "balloon", [12], BALLOONED, costs=_profile())
    row = df.filter(pl.col("guest").is_null()).row(0, named=True)
    c = DISTINCT
    moves = 6 - 2 + 4  # inflated less the first sizing, deflated
    host_cpu = (
        15 * (c["host_fault_ns"] + c["zero_fill_ns"]) + 1 * c["reclaim_decision_ns"] + moves * c["balloon_page_host_ns"]
    )
    guest_cpu = moves * c["balloon_page_guest_ns"] + 1 * c["reclaim_decision_ns"]
    assert row["host_cpu_ns"] == host_cpu == 10_000_725
    assert row["guest_cpu_ns"] == guest_cpu == 10_000_056
    # Rows written before the kinds were counted price every discard as the host's
    # decision and the first sizing as moves, as before.
    old = df.drop(["discards_by_guest", "discards_released", "balloon_initial_pages"])
    was = costs.price(old, _profile()).filter(pl.col("guest").is_null()).row(0, named=True)
    assert was["host_cpu_ns"] == 15 * 11 + 5 * c["reclaim_decision_ns"] + 10 * c["balloon_page_host_ns"]
    assert was["guest_cpu_ns"] == 10 * c["balloon_page_guest_ns"]
    assert was["stall_ns"] == row["stall_ns"] and was["disk_busy_ns"] == row["disk_busy_ns"]


def test_static_prices_its_guests_drops_as_guest_decisions():
    # Share 2 (one guest, budget 2): p1, clean page cache, is dropped by the guest to
    # make room for p2; re-reading p1 swaps p0 out. Both are the guest's decisions.
    ops = [SS, W, SS, W, SV, SS, W, R]
    df = replay(scenario_of(make_arrays(ops, [0, 0, 1, 1, 1, 2, 2, 1])), "static", [2], costs=_profile())
    row = df.filter(pl.col("guest").is_null()).row(0, named=True)
    assert (row["discards"], row["discards_by_guest"], row["guest_writes"]) == (1, 1, 1)
    c = DISTINCT
    # The host handles the re-read's discard fault only: no reclaim decision of its own.
    assert row["host_cpu_ns"] == 1 * c["host_fault_ns"]
    assert row["guest_cpu_ns"] == 1 * c["discard_fault_ns"] + 2 * c["reclaim_decision_ns"]
