"""Report functions against numbers computed by hand on tiny result frames."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from cmmsim import reports

# Two strategies on one trace set at three budgets, plus per-guest rows; the
# figures are made up so that every report has something to say.
ROWS = [
    # label, budget, guest, host_reads, host_writes, guest_reads, zero_fills, discard_faults, accesses
    ("host-lru", 10, None, 50, 50, 0, 5, 0, 1000),
    ("host-lru", 20, None, 20, 10, 0, 5, 0, 1000),
    ("host-lru", 30, None, 0, 0, 0, 5, 0, 1000),
    ("cmm", 10, None, 30, 10, 20, 9, 20, 1000),
    ("cmm", 20, None, 20, 10, 10, 9, 10, 1000),
    ("cmm", 30, None, 0, 0, 2, 9, 2, 1000),
    ("cmm", 10, 0, 25, 10, 5, 4, 5, 600),
    ("cmm", 10, 1, 5, 0, 15, 5, 15, 400),
]


def frame() -> pl.DataFrame:
    out = []
    for label, budget, guest, hr, hw, gr, zf, df_, acc in ROWS:
        out.append(
            {
                "scenario": "s",
                "trace_set": "s",
                "strategy": label,
                "params": '{"replacement": "lru"}' if label == "host-lru" else '{"reclaim_order": "lru"}',
                "budget_pages": budget,
                "guest": guest,
                "host_reads": hr,
                "host_writes": hw,
                "guest_reads": gr,
                "guest_writes": 0,
                "total_io": hr + hw + gr,
                "zero_fills": zf,
                "discard_faults": df_,
                "accesses": acc,
            }
        )
    return pl.DataFrame(out, schema_overrides={"guest": pl.Int32})


def test_total_io_and_io_avoided():
    av = reports.df_io_avoided(frame()).filter(pl.col("label") == "cmm")
    assert av["total_io"].to_list() == [60, 40, 2]
    assert av["baseline_io"].to_list() == [100, 30, 0]
    assert av["io_avoided"].to_list() == [40, -10, -2]
    pct = av["io_avoided_pct"].to_list()
    assert pct[0] == pytest.approx(40.0) and pct[1] == pytest.approx(-100 / 3) and pct[2] is None


def test_faults_per_thousand_accesses():
    f = (
        reports.df_faults_per_kilo(frame())
        .filter((pl.col("label") == "cmm") & (pl.col("budget_pages") == 10))
        .row(0, named=True)
    )
    assert f["host_faults_per_k"] == pytest.approx(30.0)
    assert f["zero_fills_per_k"] == pytest.approx(9.0)
    assert f["discard_faults_per_k"] == pytest.approx(20.0)


def test_ranking_winners_and_crossovers():
    rk = reports.df_ranking(frame())
    first = rk.filter(pl.col("rank") == 1).select("budget_pages", "label").rows()
    assert first == [(10, "cmm"), (20, "host-lru"), (30, "host-lru")]
    win = reports.df_winners(frame()).select("winner", "budget_from", "budget_to").rows()
    assert win == [("cmm", 10, 10), ("host-lru", 20, 30)]
    cx = reports.df_crossovers(frame()).row(0, named=True)
    assert (cx["label_a"], cx["label_b"]) == ("cmm", "host-lru")
    assert (cx["budget_below"], cx["budget_above"]) == (10, 20)
    assert (cx["better_below"], cx["better_above"]) == ("cmm", "host-lru")
    assert reports.df_crossovers(frame()).height == 1


def test_fairness():
    fa = reports.df_fairness(frame()).row(0, named=True)
    assert (fa["guests"], fa["max_guest_io"], fa["min_guest_io"]) == (2, 40, 20)
    assert fa["max_min_ratio"] == pytest.approx(2.0)


def test_labels_show_only_non_default_parameters():
    df = frame().with_columns(
        pl.when(pl.col("strategy") == "cmm")
        .then(pl.lit('{"reclaim_order": "state-priority"}'))
        .otherwise(pl.col("params"))
        .alias("params")
    )
    labels = set(reports.df_total_io(df)["label"])
    assert labels == {"host-lru", "cmm[reclaim_order=state-priority]"}


def test_state_distribution_sums_guests():
    st = pl.DataFrame(
        {
            "scenario": "s",
            "strategy": "cmm",
            "params": '{"reclaim_order": "lru"}',
            "budget_pages": 5,
            "t_ns": [0, 0, 0, 10],
            "guest": [0, 1, 0, 0],
            "state": ["Sr", "Sr", "Uz", "Sr"],
            "pages": [3, 4, 1, 2],
        }
    )
    d = reports.df_state_distribution(st)
    assert d.select("t_ns", "state", "pages").rows() == [(0, "Sr", 7), (0, "Uz", 1), (10, "Sr", 2)]


def test_io_avoided_wide_pivots_one_row_per_budget():
    wide = reports.df_io_avoided_wide(frame())
    assert wide.columns == ["trace_set", "budget_pages", "budget_mib", "baseline_io", "cmm"]
    assert wide["budget_pages"].to_list() == [10, 20, 30]
    assert wide["baseline_io"].to_list() == [100, 30, 0]
    pct = wide["cmm"].to_list()
    assert pct[0] == pytest.approx(40.0) and pct[1] == pytest.approx(-100 / 3) and pct[2] is None
    assert reports.df_io_avoided_wide(frame(), value="io_avoided")["cmm"].to_list() == [40, -10, -2]
    assert reports.df_io_avoided_wide(frame(), value="total_io")["cmm"].to_list() == [60, 40, 2]
    with pytest.raises(reports.ParamError, match="value 'x'"):
        reports.df_io_avoided_wide(frame(), value="x")


def test_io_avoided_wide_puts_offline_strategies_last():
    df = frame()
    extra = df.filter(pl.col("strategy") == "cmm").with_columns(
        pl.lit("opt").alias("strategy"), pl.lit("{}").alias("params")
    )
    extra2 = df.filter(pl.col("strategy") == "cmm").with_columns(
        pl.lit("balloon").alias("strategy"), pl.lit("{}").alias("params")
    )
    wide = reports.df_io_avoided_wide(pl.concat([df, extra, extra2]))
    assert wide.columns[4:] == ["balloon", "cmm", "opt"]
    assert wide.height == 3


def test_every_budget_has_its_mib_beside_it():
    # 256 pages of 4 KiB are 1 MiB.
    tot = reports.df_total_io(frame()).filter(pl.col("label") == "cmm")
    assert tot["budget_mib"].to_list() == pytest.approx([10 / 256, 20 / 256, 30 / 256])
    win = reports.df_winners(frame())
    assert win.columns[2:6] == ["budget_from", "budget_from_mib", "budget_to", "budget_to_mib"]
    assert win["budget_to_mib"].to_list() == pytest.approx([10 / 256, 30 / 256])
    cx = reports.df_crossovers(frame())
    assert cx["budget_above_mib"].to_list() == pytest.approx([20 / 256])
    for fn in (reports.df_io_avoided, reports.df_faults_per_kilo, reports.df_ranking, reports.df_fairness):
        cols = fn(frame()).columns
        assert cols[cols.index("budget_pages") + 1] == "budget_mib", fn.__name__
    odd = pl.DataFrame({"budget_pages": [512], "page_size": [8192]})
    assert reports.with_budget_mib(odd)["budget_mib"].to_list() == [4.0]
    assert reports.with_budget_mib(odd, page_size_bytes=4096)["budget_mib"].to_list() == [2.0]


def test_markdown_keeps_small_floats_and_separates_thousands():
    df = pl.DataFrame({"budget_pages": [10, 12_345], "budget_mib": [10 / 256, 12_345 / 256]})
    lines = reports.markdown_table(df).splitlines()
    assert lines[2] == "| 10 | 0.039 |" and lines[3] == "| 12,345 | 48.2 |"


# -- the report command and the demo summary, on a real replay of a small trace -----------------


@pytest.fixture(scope="module")
def results_file(tmp_path_factory):
    from cmmsim.replay.api import replay
    from cmmsim.replay.scenario import load
    from cmmsim.tracer.io import write_frame
    from tests.helpers import write_small_trace

    d = tmp_path_factory.mktemp("rep")
    scn = load([write_small_trace(d / "g.parquet", seed=1)])
    budgets = [str(b) for b in range(20, 201, 20)]  # 10 budgets, as the demo runs
    df = pl.concat([replay(scn, s, budgets) for s in ("host-lru", "cmm")], how="diagonal_relaxed")
    return write_frame(df, d / "r.parquet")


def _invoke(*args):
    from typer.testing import CliRunner

    from cmmsim.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_report_table_is_pivoted_and_fits_80_columns(results_file, monkeypatch):
    from cmmsim.cli_common import console

    monkeypatch.setattr(console, "_width", 80)
    r = _invoke("report", results_file)
    assert r.exit_code == 0, r.output
    assert "io-avoided-wide" in r.output and "budget_mib" in r.output.replace("\n", "")
    assert max(len(line) for line in r.output.splitlines()) <= 80
    assert "…" not in r.output  # no number cut short


def test_winners_say_what_tied_means_where_they_are_printed(results_file, capsys):
    note = "tied counts the strategies sharing first place"
    for fmt in ("table", "markdown"):
        r = _invoke("report", results_file, "-r", "winners", "-f", fmt)
        assert r.exit_code == 0, r.output
        assert note in " ".join(r.output.split()), r.output
    # The demo's two winner tables, then the note once.
    from cmmsim.cli_sweep import print_winners

    print_winners(pl.read_parquet(results_file), "kvm-2025")
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("tied") >= 3 and out.count(note) == 1


def test_print_table_splits_rather_than_cuts(monkeypatch, capsys):
    from cmmsim.cli_common import console, print_table

    monkeypatch.setattr(console, "_width", 60)
    rows = [
        {"trace_set": "kernel-compile", "budget_pages": 123_456, "budget_mib": 482.25}
        | {f"strategy-{k}": -1750.25 * k for k in range(8)}
        for _ in range(2)
    ]
    print_table("wide", rows, formats={f"strategy-{k}": ",.1f" for k in range(8)})
    text = capsys.readouterr().out
    assert "(1/" in text and "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 60
    for k in range(8):
        assert f"{-1750.25 * k:,.1f}" in text  # every number whole
    assert text.count("kernel-compile") >= 4  # the key columns repeat in each part


def test_report_csv_and_parquet_write_one_file_per_report(results_file, tmp_path):
    r = _invoke("report", results_file, "-f", "csv")
    assert r.exit_code == 2 and "one file per report" in r.stderr and "-o FOLDER" in r.stderr
    r = _invoke("report", results_file, "-f", "csv", "-r", "winners", "-r", "ranking")
    assert r.exit_code == 2 and "one file per report" in r.stderr
    out = tmp_path / "reps"
    r = _invoke("report", results_file, "-f", "parquet", "-r", "winners", "-r", "io-avoided", "-o", out)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["io-avoided.parquet", "winners.parquet"]
    assert "budget_mib" in pl.read_parquet(out / "io-avoided.parquet").columns
    r = _invoke("report", results_file, "-f", "csv", "-o", tmp_path / "csv")
    assert r.exit_code == 0, r.output
    wide = pl.read_csv(tmp_path / "csv" / "io-avoided-wide.csv")
    assert wide.columns == ["trace_set", "budget_pages", "budget_mib", "baseline_io", "cmm"]
    assert wide.height == 10
    # One report still goes to stdout, or to the file named.
    r = _invoke("report", results_file, "-f", "csv", "-r", "total-io")
    assert r.exit_code == 0 and r.output.startswith("trace_set,label,budget_pages,budget_mib,")
    r = _invoke("report", results_file, "-f", "parquet", "-r", "total-io")
    assert r.exit_code == 2 and "needs -o" in r.stderr


def test_demo_summary_pivots_and_states_budget_units(results_file, tmp_path):
    from cmmsim import demo
    from cmmsim.replay.sweep import SweepOutcome

    df = pl.read_parquet(results_file)
    path = demo.write_summary(df, SweepOutcome(done=["a", "b"]), [], tmp_path, Path("samples"))
    text = path.read_text()
    section = text.split("## I/O avoided against host-lru at half the footprint", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert table[0] == "| trace_set | budget_pages | budget_mib | baseline_io | cmm |"
    assert len(table) == 3  # header, rule, one row per trace set
    assert table[2].startswith("| g | 100 | 0.39 |")
    assert "of the guests' total memory, not of the footprint" in text
    sets = demo.trace_set_table(df).row(0, named=True)
    assert (sets["guest_pages"], sets["footprint_pages"]) == (256, 200)
    assert sets["footprint_pct"] == pytest.approx(78.1)


def test_demo_summary_does_not_call_opt_a_floor_for_a_tiered_host(tmp_path):
    # `cmmsim demo --tier-pages N` runs opt without the tier (it has none) and the
    # host-paging strategies with it; their disk I/O (total_io) can then fall below
    # opt's, so the summary must not say that no strategy does less I/O than opt.
    from cmmsim import demo
    from cmmsim.replay.api import replay
    from cmmsim.replay.scenario import load
    from cmmsim.replay.sweep import SweepOutcome
    from tests.helpers import write_small_trace

    scn = load([write_small_trace(tmp_path / "g.parquet", seed=1)])
    budgets = [str(b) for b in range(20, 201, 20)]
    runs = [replay(scn, "host-lru", budgets, tier_pages=10_000), replay(scn, "opt", budgets)]
    df = pl.concat(runs, how="diagonal_relaxed")
    tiered = df.filter(pl.col("strategy") == "host-lru")
    floor = df.filter(pl.col("strategy") == "opt")
    assert (tiered["total_io"] < floor["total_io"]).any()  # the premise
    text = demo.write_summary(df, SweepOutcome(done=["a"]), [], tmp_path, Path("samples")).read_text()
    assert "no strategy can do less I/O" not in text
    assert "10,000 pages" in text  # the tier the strategies ran with is said
    untiered = pl.concat([replay(scn, s, budgets) for s in ("host-lru", "opt")], how="diagonal_relaxed")
    text = demo.write_summary(untiered, SweepOutcome(done=["a"]), [], tmp_path, Path("samples")).read_text()
    assert "no strategy can do less I/O" in text


def test_report_refuses_by_when_no_report_it_orders_is_asked(results_file):
    # --by orders winners, ranking and crossovers only; with none of them asked for it
    # would be ignored, and cmmsim refuses a request it would ignore.
    r = _invoke("report", results_file, "-r", "total-io", "-r", "time", "--by", "stall")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "--by stall orders winners, ranking and crossovers" in r.stderr
    assert _invoke("report", results_file, "-r", "total-io", "--by", "total-io").exit_code == 0
    assert _invoke("report", results_file, "-r", "ranking", "-r", "time", "--by", "cpu").exit_code == 0
    assert _invoke("report", results_file, "--by", "stall").exit_code == 0  # the default has winners


def test_rows_of_different_tier_sizes_get_their_own_labels(tmp_path):
    # Results of one strategy at two tier sizes (two replays, or two sweeps read
    # together) were one label: ranking listed host-lru twice, io-avoided-wide gave
    # each budget two rows with two baselines.
    from cmmsim.replay.api import replay
    from cmmsim.replay.scenario import load
    from tests.helpers import write_small_trace

    scn = load([write_small_trace(tmp_path / "g.parquet", seed=1)])
    budgets = ["40", "80"]
    runs = [
        replay(scn, "host-lru", budgets),
        replay(scn, "host-lru", budgets, tier_pages=8),
        replay(scn, "cmm", budgets, tier_pages=8),
        replay(scn, "static", budgets),
    ]
    mixed = pl.concat(runs, how="diagonal_relaxed")
    ranking = reports.df_ranking(mixed)
    assert ranking.group_by("budget_pages").agg(pl.col("label").n_unique())["label"].to_list() == [4, 4]
    assert set(ranking["label"]) == {"host-lru", "host-lru[tier=8]", "cmm[tier=8]", "static"}
    wide = reports.df_io_avoided_wide(mixed)
    assert wide.height == 2 and {"host-lru[tier=8]", "cmm[tier=8]", "static"} <= set(wide.columns)
    from cmmsim.plots import _short_labels  # the plots' legends name the tier as well

    assert _short_labels(mixed) == {
        "host-lru": "host-lru",
        "host-lru[tier=8]": "host-lru tier 8 p",
        "cmm[tier=8]": "cmm tier 8 p",
        "static": "static",
    }
    # One tier size for every strategy that has one (cmmsim demo --tier-pages N): plain labels.
    one = pl.concat([runs[1], runs[2], runs[3]], how="diagonal_relaxed")
    assert set(reports.df_ranking(one)["label"]) == {"host-lru", "cmm", "static"}


@pytest.mark.parametrize("name", ["total-io", "io-avoided", "io-avoided-wide", "ranking", "winners", "fairness"])
def test_the_same_run_twice_is_refused_not_mixed(name):
    # Two replays of same-named traces (a/loop.parquet, b/loop.parquet), concatenated:
    # the same trace set, label and budget twice. io-avoided joined them 2 x 2, ranking
    # ranked both; now the report names the clash.
    from cmmsim import api
    from cmmsim.tracer.errors import ResultsError

    twice = pl.concat([frame(), frame().filter(pl.col("strategy") == "cmm")])
    with pytest.raises(ResultsError, match=r"2 rows for trace set 's', cmm at 10 pages"):
        api.report(twice, name)


def test_one_sweep_job_read_from_two_sweeps_counts_once(tmp_path, small_traces):
    # Sweeps at two --tier-pages share the jobs of strategies without a tier (static,
    # opt): read together, those rows are one run's, not a clash.
    from cmmsim.replay.sweep import SweepSpec, TraceSet, build_jobs, read_results, run_sweep
    from tests.test_sweep import threads

    ts = TraceSet("p", (str(small_traces["phased"]),))
    frames = []
    for k, tier in enumerate([0, 64]):
        spec = SweepSpec([ts], [("host-lru", {}), ("static", {})], ["10%"], tier_pages=tier)
        run_sweep(build_jobs(spec), tmp_path / f"o{k}", make_executor=threads, parallel=1)
        frames.append(read_results(tmp_path / f"o{k}"))
    both = pl.concat(frames, how="diagonal_relaxed")
    assert both.filter(pl.col("strategy") == "static")["job_key"].n_unique() == 1
    ranking = reports.df_ranking(both)
    assert sorted(ranking["label"]) == ["host-lru", "host-lru[tier=64]", "static"]


def test_io_avoided_keeps_rows_whose_baseline_was_not_run():
    # Trace set "t" ran cmm only (host-lru failed there, or was not asked for): its rows
    # were dropped from io-avoided and io-avoided-wide without a word. Now they are
    # there, with the baseline's figures null; total_io needs no baseline at all.
    df = frame()
    other = df.filter(pl.col("strategy") == "cmm").with_columns(pl.lit("t").alias("trace_set"))
    both = pl.concat([df, other])
    long = reports.df_io_avoided(both).filter(pl.col("trace_set") == "t")
    assert long["total_io"].to_list() == [60, 40, 2]
    assert long.select("baseline_io", "io_avoided", "io_avoided_pct").null_count().row(0) == (3, 3, 3)
    wide = reports.df_io_avoided_wide(both)
    assert wide["trace_set"].to_list() == ["s"] * 3 + ["t"] * 3
    t = wide.filter(pl.col("trace_set") == "t")
    assert t["baseline_io"].to_list() == [None] * 3 and t["cmm"].to_list() == [None] * 3
    assert reports.df_io_avoided_wide(other, value="total_io")["cmm"].to_list() == [60, 40, 2]


def _documented_columns(fn) -> list[str]:
    """The column names a ``df_*`` docstring lists after ``Columns:``, in order
    (words in parentheses, and prose such as "the quantity's column", left out)."""
    import inspect
    import re

    text = inspect.getdoc(fn).split("Columns:", 1)[1]
    flat, depth = "", 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and ch != ")":
            flat += ch
    flat = re.split(r"[.;](\s|$)", flat, maxsplit=1)[0]
    names = [re.sub(r"^(and|then)\s+", "", piece.strip()) for piece in flat.split(",")]
    return [n for n in names if re.fullmatch(r"[a-z_]+", n)]


def test_every_report_returns_the_columns_its_docstring_lists():
    df = frame().with_columns(
        *(pl.lit(1.0).alias(c) for c in reports.TIME_COLUMNS), pl.lit("kvm-2025").alias("cost_profile")
    )
    states = pl.DataFrame(
        {"scenario": "s", "strategy": "cmm", "params": "{}", "budget_pages": 5, "t_ns": [0], "guest": [0]}
    ).with_columns(pl.lit("Sr").alias("state"), pl.lit(3).alias("pages"))
    # Reports whose every column is named; the rest end in columns named by their data.
    exact = {
        reports.df_total_io: df,
        reports.df_io_avoided: df,
        reports.df_faults_per_kilo: df,
        reports.df_time: df,
        reports.df_crossovers: df,
        reports.df_fairness: df,
        reports.df_winners: df,
        reports.df_state_distribution: states,
    }
    for fn, data in exact.items():
        assert fn(data).columns == _documented_columns(fn), fn.__name__
    for by, col in reports.BY.items():
        for fn in (reports.df_by, reports.df_ranking):
            assert fn(df, by).columns == [*_documented_columns(fn), col], (fn.__name__, by)
    wide = reports.df_io_avoided_wide(df)
    assert wide.columns == [*_documented_columns(reports.df_io_avoided_wide), "cmm"]
