"""Hostile input, fourth round: mrc, the trace commands, plot, and the Python API.

A user who checks numbers gives ``cmmsim mrc``, ``trace``, ``plot`` and
``cmmsim.api`` what nobody tried: a sample rate too small to keep a page, an
empty path, a budget as a numpy integer or a string where a list is
expected. Each case here once gave a wrong answer, a plot of nothing with
exit status 0, or a bare TypeError that named no parameter; the paths that
must agree (in memory and streamed, the curve and the replay, export and
import) are checked to agree on odd traces.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cmmsim import api
from cmmsim.tracer.errors import CmmsimError, ParamError
from cmmsim.tracer.schema import Op
from cmmsim.tracer.synth import synthesize
from tests.helpers import SMALL
from tests.test_hostile import _no_progress_lines, assert_one_line, files_under, run_cli  # noqa: F401 (autouse)

COUNTERS = ["budget_pages", "accesses", "host_reads", "host_writes", "zero_fills", "discards", "total_io"]


def _write(path: Path, template: Path, t, pfn, op, **meta) -> Path:
    """A trace of the given rows with ``template``'s metadata, its event counts made true."""
    md = dict(pq.ParquetFile(template).metadata.metadata)
    md.pop(b"ARROW:schema", None)
    ops = np.asarray(op, np.uint8)
    md[b"cmmsim.event_counts"] = json.dumps({o.name: int((ops == o).sum()) for o in Op}).encode()
    for key, raw in meta.items():
        md[f"cmmsim.{key}".encode()] = raw.encode()
    table = pa.table(
        {
            "t_ns": pa.array(np.asarray(t, np.int64)),
            "pfn": pa.array(np.asarray(pfn, np.uint32)),
            "op": pa.array(ops),
        }
    )
    pq.write_table(table.replace_schema_metadata(md), path)
    return path


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("more-hostile")
    good = d / "g.parquet"
    synthesize("phased", good, seed=3, events=3000, params=SMALL["phased"])
    n = 1500
    pages = np.tile(np.arange(300), 5)
    ops = np.where(np.arange(n) % 3 == 0, Op.WRITE, Op.READ)
    hint_ops = np.where(np.arange(200) < 100, Op.SET_STABLE, Op.SET_UNUSED)
    return {
        "good": good,
        # 300 pages read five times over, every third access a write.
        "reuse": _write(d / "reuse.parquet", good, np.arange(n) * 1000, pages, ops),
        "hints-only": _write(d / "hints.parquet", good, np.arange(200), np.arange(200) % 100, hint_ops),
        "one-event": _write(d / "one.parquet", good, [5], [7], [Op.READ]),
        "no-rows": _write(d / "zero.parquet", good, [], [], []),
        "same-instant": _write(d / "samet.parquet", good, np.zeros(n), pages, ops),
    }


# -- mrc: a sample too small to keep a page ---------------------------------------------------------
@pytest.mark.parametrize("rate", ["1e-300", "0.004"])
def test_mrc_whose_sample_keeps_no_page_is_refused(rate, traces, tmp_path):
    """Once exit 0, a table of nan±nan and a file of NaN (whose plot was empty, its
    legend "at most 0" and "nan % of accesses"), under a warning about the standard
    error only. At 0.004 of 300 pages most salts keep a page, one keeps none."""
    out = tmp_path / "m.parquet"
    result = run_cli(["mrc", traces["reuse"], "-b", "10", "-b", "300", "--sample-rate", rate, "-o", out])
    assert_one_line(result, "--sample-rate")
    assert not out.exists()


def test_mrc_of_an_untouched_guest_keeps_its_exact_zero(traces, tmp_path):
    """A trace of hints only touches no page: every salt's estimate is exactly 0, not refused."""
    out = tmp_path / "m.parquet"
    result = run_cli(["mrc", traces["hints-only"], "-b", "10", "--sample-rate", "0.5", "--salts", "3", "-o", out])
    assert result.exit_code == 0, result.output
    df = pl.read_parquet(out)
    assert df["host_reads_est"].to_list() == [0.0] and df["miss_ratio_est"].to_list() == [0.0]


def test_plot_of_a_curve_with_no_estimate_is_refused(traces, tmp_path):
    """A curve of NaN (from the library, which keeps a salt's missing estimate as NaN)
    once plotted as empty axes, exit 0."""
    curve = api.miss_curve(traces["reuse"], [10, 300], rate=1e-9, salts=2)
    assert curve["miss_ratio_est"].is_nan().all()
    src = tmp_path / "curve.parquet"
    curve.write_parquet(src)
    out = tmp_path / "plots"
    assert_one_line(run_cli(["plot", src, "-o", out]), "no estimate")
    assert files_under(out) == []


# -- paths that must agree ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["reuse", "hints-only", "one-event", "no-rows", "same-instant"])
def test_mrc_exact_equals_replay_and_streams_alike(case, traces):
    """host-lru's curve at B is the replay at B, in memory and streamed, also on odd traces."""
    budgets = ["1", "150", "299", "300", "100%", "1000%"]
    paths = [traces[case], traces[case]]  # the same guest twice: two guests
    rows = api.replay(paths, "host-lru", budgets)
    host = rows.filter(pl.col("guest").is_null()).sort("budget_pages")
    streamed = api.replay(paths, "host-lru", budgets, stream=True)
    assert (
        rows.sort("budget_pages", "guest", nulls_last=True).select(COUNTERS).rows()
        == streamed.sort("budget_pages", "guest", nulls_last=True).select(COUNTERS).rows()
    )
    for stream in (False, True):
        curve = api.miss_curve(paths, budgets, stream=stream).sort("budget_pages")
        assert curve["budget_pages"].to_list() == host["budget_pages"].to_list()
        for name in ("host_reads", "host_writes", "zero_fills", "discards"):
            assert curve[f"{name}_est"].cast(pl.Int64).to_list() == host[name].to_list(), name


@pytest.mark.parametrize("fmt", ["csv", "txt", "oracle-general"])
def test_export_import_keeps_host_lru_misses(fmt, traces, tmp_path):
    """Export, import: the same misses (host reads plus zero fills) at every budget.

    The formats carry no operation, so an imported access is a READ and its
    misses are zero fills (docs/exchange.md): the sum is what must agree."""
    exported, imported = tmp_path / f"t.{fmt}", tmp_path / "back.parquet"
    assert run_cli(["trace", "export", traces["reuse"], "-o", exported, "--format", fmt]).exit_code == 0
    assert run_cli(["trace", "import", exported, "-o", imported, "--format", fmt]).exit_code == 0
    budgets = [1, 50, 299, 300, 1000]

    def misses(path):
        df = api.replay(path, "host-lru", budgets).filter(pl.col("guest").is_null()).sort("budget_pages")
        return (df["host_reads"] + df["zero_fills"]).to_list()

    assert misses(imported) == misses(traces["reuse"])


# -- an empty path is not the current folder -----------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["replay", "", "-s", "cmm", "-b", "10"], "after 'replay'"),
        (["mrc", "", "-b", "10"], "after 'mrc'"),
        (["trace", "info", ""], "after 'info'"),
        (["trace", "validate", ""], "after 'validate'"),
        (["replay", "{T}", "-s", "cmm", "-b", "10", "-o", ""], "after '-o'"),
    ],
)
def test_an_empty_argument_is_refused_not_read_as_the_current_folder(args, names, traces, monkeypatch, capsys):
    """``cmmsim replay "$TRACE"`` with TRACE unset once replayed every trace in the
    current folder (typer turns "" into Path("."), which no command can tell from
    "."), exit 0. The entry point refuses it before typer parses (so this calls
    ``main``, not the in-process runner)."""
    from cmmsim.cli import main

    monkeypatch.chdir(traces["reuse"].parent)
    argv = ["cmmsim", *(str(traces["reuse"]) if a == "{T}" else a for a in args)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and err.startswith("cmmsim: error: ") and "Traceback" not in err, err
    assert names in err and "empty" in err, err


def test_an_empty_argument_after_double_dash_is_the_commands_own(monkeypatch, capsys):
    """``trace record -- sh -c ''``: what follows "--" is not refused (typer then parses it)."""
    from cmmsim.cli import main

    monkeypatch.setattr("sys.argv", ["cmmsim", "trace", "record", "--help", "--", "sh", "-c", ""])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 0 and "empty" not in capsys.readouterr().err


def test_api_empty_path_is_refused(traces, monkeypatch):
    monkeypatch.chdir(traces["reuse"].parent)
    with pytest.raises(ParamError, match="empty path"):
        api.replay("", "host-lru", 10)


# -- the Python API: wrong types get a ParamError naming the budget ----------------------------------
def test_api_budget_as_a_numpy_integer_is_one_budget(traces):
    """np.int64(100) (from an array of budgets) was a TypeError: 'numpy.int64' object is not iterable."""
    got = api.replay(traces["reuse"], "host-lru", np.int64(100))
    want = api.replay(traces["reuse"], "host-lru", 100)
    assert got.select(COUNTERS).rows() == want.select(COUNTERS).rows()
    curve = api.miss_curve(traces["reuse"], np.int64(100))
    assert curve["budget_pages"].to_list() == [100]


@pytest.mark.parametrize("budget", [100.5, None, object()])
@pytest.mark.parametrize("call", ["replay", "miss_curve"])
def test_api_budget_of_a_wrong_type_is_a_param_error(call, budget, traces):
    """Once a bare TypeError ("'float' object is not iterable") naming no budget."""
    with pytest.raises(ParamError, match="budget"):
        if call == "replay":
            api.replay(traces["reuse"], "host-lru", budget)
        else:
            api.miss_curve(traces["reuse"], budget)


def test_api_whole_float_budget_is_that_many_pages(traces):
    """100.0 is 100 pages, as ``-b 100.0`` on the command line."""
    got = api.replay(traces["reuse"], "host-lru", 100.0)
    assert got["budget_pages"].unique().to_list() == [100]


def test_api_sweep_budget_string_is_one_budget_not_its_characters(traces, tmp_path):
    """sweep(..., "12") once ran budgets 1 and 2 (the string's characters), exit 0."""
    df = api.sweep(traces["reuse"], tmp_path / "sw", "12", strategies=["host-lru"], jobs=1)
    assert sorted(df["budget_pages"].unique().to_list()) == [12]


def test_api_sweep_budget_int_is_one_budget(traces, tmp_path):
    df = api.sweep(traces["reuse"], tmp_path / "sw", 12, strategies=["host-lru"], jobs=1)
    assert sorted(df["budget_pages"].unique().to_list()) == [12]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: api.replay(p, "HOST-LRU", 10), "unknown strategy 'HOST-LRU'"),
        (lambda p: api.replay(p, "host-lru", 10, {"reclaim_order": "lru"}), "unknown parameter 'reclaim_order'"),
        (lambda p: api.replay(p, "host-lru", -5), "at least one page"),
        (lambda p: api.replay(p, "host-lru", []), "no budget given"),
        (lambda p: api.replay([], "host-lru", 10), "no trace given"),
        (lambda p: api.replay(os.fspath(p) + ".missing", "host-lru", 10), "no such file"),
        (lambda p: api.miss_curve(p, 10, rate=float("nan")), "sample rate"),
        (lambda p: api.miss_curve(p, 10, order="LRU"), "order"),
    ],
)
def test_api_refuses_with_a_cmmsim_error(call, match, traces):
    """What docs/api.md promises a library user: a CmmsimError (ParamError, TraceError) whose message names it."""
    with pytest.raises(CmmsimError, match=match):
        call(traces["reuse"])


# -- plot and report: results of one budget, one strategy, zeros, NaN --------------------------------
@pytest.fixture(scope="module")
def results(traces, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("more-results") / "r.parquet"
    assert run_cli(["replay", traces["reuse"], "-s", "host-lru", "-b", "100", "-o", path]).exit_code == 0
    return path


@pytest.mark.parametrize("column", ["stall_ns", "overhead_pct"])
@pytest.mark.parametrize("command", ["plot", "report"])
def test_results_holding_nan_are_refused(command, column, results, tmp_path):
    """cmmsim writes an undefined figure as null: a NaN was plotted as empty axes, exit 0."""
    src = tmp_path / "nan.parquet"
    pl.read_parquet(results).with_columns(pl.lit(float("nan")).alias(column)).write_parquet(src)
    out = tmp_path / "plots"
    args = ["plot", src, "-o", out] if command == "plot" else ["report", src]
    err = assert_one_line(run_cli(args), "nan.parquet")
    assert column in err
    assert files_under(out) == []


@pytest.mark.parametrize("zero", [False, True])
def test_plot_of_one_budget_one_strategy_draws_both_figures(zero, results, tmp_path):
    """One budget, one strategy (and every I/O counter 0): both figures, exit 0."""
    src = tmp_path / "one.parquet"
    df = pl.read_parquet(results)
    if zero:
        df = df.with_columns(pl.lit(0, pl.Int64).alias(c) for c in ("host_reads", "host_writes", "total_io"))
    df.write_parquet(src)
    out = tmp_path / "plots"
    result = run_cli(["plot", src, "-o", out])
    assert result.exit_code == 0, result.output
    assert [p.name for p in files_under(out)] == ["stall_vs_budget.png", "total_io_vs_budget.png"]


# -- trace import: a time that parses as a float but is not a finite number --------------------------
@pytest.mark.parametrize("time", ["nan", "inf", "-inf"])
def test_import_of_a_time_that_is_not_finite_names_the_line(time, tmp_path):
    """ "nan" once became int64's minimum: a numpy RuntimeWarning on stderr, then an
    error blaming row 0 of the output for a negative timestamp; "inf" named a
    request, not the line."""
    src, out = tmp_path / "t.csv", tmp_path / "t.parquet"
    src.write_text(f"time,obj_id,obj_size\n1,1,4096\n{time},2,4096\n")
    err = assert_one_line(run_cli(["trace", "import", src, "-o", out, "--format", "csv"]), "t.csv: line 3")
    assert "time" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["trace", "info", "{D}"],
        ["replay", "{D}", "-s", "cmm", "-b", "10"],
        ["replay", "--stream", "{D}", "-s", "cmm", "-b", "10"],
        ["mrc", "{D}", "-b", "10"],
    ],
)
def test_a_scenario_that_lists_no_guest_names_its_manifest(args, tmp_path):
    """Once "no trace given", naming neither the folder nor its scenario.json."""
    folder = tmp_path / "scn"
    folder.mkdir()
    (folder / "scenario.json").write_text('{"guests": []}')
    assert_one_line(run_cli([str(folder) if a == "{D}" else a for a in args]), "scenario.json")


def test_api_one_param_string_is_one_parameter(traces):
    """params="reclaim_order=state-priority" once iterated the string: "parameter 'r' is not
    of the form key=value"."""
    one = api.replay(traces["reuse"], "cmm", 100, "reclaim_order=state-priority")
    listed = api.replay(traces["reuse"], "cmm", 100, ["reclaim_order=state-priority"])
    assert one.select(COUNTERS).rows() == listed.select(COUNTERS).rows()
    assert json.loads(one["params"][0])["reclaim_order"] == "state-priority"


def test_api_strategy_not_a_string_is_a_param_error(traces):
    """["cmm"] was a bare TypeError: unhashable type: 'list'."""
    with pytest.raises(ParamError, match="unknown strategy"):
        api.replay(traces["reuse"], ["cmm"], 100)


# -- metadata that disagrees with the rows --------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["replay", "{T}", "-s", "host-lru", "-b", "10"],
        ["replay", "--stream", "{T}", "-s", "host-lru", "-b", "10"],
        ["mrc", "{T}", "-b", "10"],
    ],
)
def test_a_trace_whose_event_counts_disagree_with_its_rows_is_refused(args, traces, tmp_path):
    """A footer whose event counts are not the rows': every reader refuses the trace, not only validate."""
    src = traces["reuse"]
    lying = tmp_path / "lying.parquet"
    table = pq.read_table(src)
    md = dict(pq.ParquetFile(src).metadata.metadata)
    md.pop(b"ARROW:schema", None)
    md[b"cmmsim.event_counts"] = json.dumps({o.name: 1 for o in Op}).encode()
    pq.write_table(table.replace_schema_metadata(md), lying)
    assert_one_line(run_cli(["trace", "validate", lying]), "event counts")
    assert_one_line(run_cli([str(lying) if a == "{T}" else a for a in args]), "event counts")


@pytest.mark.parametrize("kwargs", [{"stream": True}, {"copies": 2}, {"stagger": "1ms"}])
def test_api_miss_curve_of_a_scenario_refuses_what_it_would_ignore(kwargs, traces):
    """miss_curve(load(p), b, copies=2) once gave the curve of one copy, silently."""
    with pytest.raises(ParamError, match="load"):
        api.miss_curve(api.load(traces["reuse"]), 10, **kwargs)


def test_api_sweep_one_strategy_or_grid_value_as_a_string(traces, tmp_path):
    """strategies="cmm" once ran strategy 'c' (unknown); a grid value "state-priority" its letters."""
    df = api.sweep(traces["reuse"], tmp_path / "a", [10], strategies="host-lru", jobs=1)
    assert df["strategy"].unique().to_list() == ["host-lru"]
    df = api.sweep(traces["reuse"], tmp_path / "b", [10], grid={"cmm": {"reclaim_order": "state-priority"}}, jobs=1)
    assert [json.loads(p)["reclaim_order"] for p in df["params"].unique()] == ["state-priority"]


@pytest.mark.parametrize("bad", ["foreign", "nan"])
def test_api_report_of_a_frame_that_is_not_results(bad, traces):
    """A foreign frame was a polars ColumnNotFoundError; a NaN stall was ranked as a number."""
    rows = api.replay(traces["reuse"], "host-lru", 10)
    df = pl.DataFrame({"x": [1]}) if bad == "foreign" else rows.with_columns(pl.lit(float("nan")).alias("stall_ns"))
    with pytest.raises(CmmsimError, match="the results frame"):
        api.report(df, "winners", by="stall")


# -- trace info: no rate for a trace of no duration -----------------------------------------------------
@pytest.mark.parametrize(("case", "rate"), [("same-instant", None), ("one-event", None), ("reuse", 1500 / 1.499e-3)])
def test_trace_info_gives_no_rate_for_a_trace_of_no_duration(case, rate, traces):
    """1,500 events at one instant were reported as 0 events per second."""
    from cmmsim.traces import trace_summary

    got = trace_summary(traces[case])["events_per_s"]
    assert got == pytest.approx(rate) if rate else got is None
    result = run_cli(["trace", "info", traces[case]])
    assert result.exit_code == 0, result.output
