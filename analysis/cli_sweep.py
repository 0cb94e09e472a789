"""``cmmsim sweep``, ``cmmsim report``, ``cmmsim plot`` and ``cmmsim demo``.

Library modules are imported inside each command, not here, so that a
command (or ``--help``) does not load what it does not use.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

# The report names, shared with the library's report().
from cmmsim.api import REPORTS
from cmmsim.cli_common import (
    BUDGET_HELP,
    COSTS_HELP,
    QUIET_HELP,
    TIER_HELP,
    VCPUS_HELP,
    app,
    cli_errors,
    console,
    print_table,
    printable,
)
from cmmsim.tracer.errors import ParamError

#: What ``cmmsim report`` shows without ``-r``, in every format.
DEFAULT_REPORTS = ("winners", "io-avoided-wide")
#: What the ``tied`` column of a winners table means, said wherever one is printed.
WINNERS_NOTE = (
    "tied counts the strategies sharing first place (the most at one budget of the range); "
    "above 1, the winner named is the first of them alphabetically (-r ranking shows them all: "
    "often none of them pages there, but two may also do the very same I/O)"
)
#: A line under a report's name in a table: what its numbers are.
REPORT_NOTES = {
    "io-avoided-wide": "% of host-lru's I/O avoided (baseline_io: host-lru's page I/Os)",
    "winners": WINNERS_NOTE,
}
#: The reports that order strategies, and so take ``--by``.
ORDERED = ("winners", "ranking", "crossovers")
#: What ``--by`` orders by (:data:`cmmsim.reports.BY`; not imported: see the module docstring).
BY_NAMES = ("total-io", "stall", "cpu")


@contextmanager
def _progress(total: int, reporter):
    """Progress of a sweep's jobs on stderr (a :class:`cmmsim.progress.Reporter`); yields its on_event callback."""
    counts = {"done": 0, "failed": 0, "skipped": 0}
    with reporter.task("sweep", total=total, unit="jobs") as task:

        def on_event(kind, job, error):
            counts[kind] += 1
            task.advance(1, **counts)
            if error:
                task.print(printable(f"failed {job.trace_set.name} {job.strategy}: {error}"))

        yield on_event


def _reporter(quiet: bool):
    """The command's progress reporter; made before the replay modules load (importing them compiles)."""
    from cmmsim.progress import Reporter

    return Reporter(quiet=quiet)


#: Most jobs in flight at once (``--jobs``): a local pool starts a process
#: (hundreds of MB) for each.
MAX_JOBS = 4096


def _job_count(jobs: int | None) -> int:
    """``--jobs`` as given, or the number of cores when it was not given."""
    if jobs is None:
        return os.cpu_count() or 1
    if not 1 <= jobs <= MAX_JOBS:
        raise ParamError(f"--jobs must be 1..{MAX_JOBS}, got {jobs}")
    return jobs


def _executor_factory(cluster: str | None):
    from cmmsim.replay.executors import dask_executor_factory, local_executor

    return dask_executor_factory(cluster) if cluster else local_executor


@app.command("sweep")
@cli_errors
def sweep_cmd(
    inputs: Annotated[
        list[str] | None, typer.Argument(help="trace files, scenario folders or globs (one trace set each)")
    ] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder (resumable)")] = Path("sweep-out"),
    sweep_file: Annotated[
        Path | None, typer.Option("--sweep", help="TOML sweep file (trace sets, strategies, grids, budgets)")
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option("--strategy", "-s", help="strategy (repeatable; default: all, or those -p names)"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="grid strategy:key=v1,v2 (that strategy runs too; a key once per strategy)"),
    ] = None,
    budget: Annotated[list[str] | None, typer.Option("--budget", "-b", help=BUDGET_HELP)] = None,
    jobs: Annotated[
        int | None, typer.Option(help="parallel jobs (local pool size; default: the number of cores)")
    ] = None,
    cluster: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786")] = None,
    states_interval: Annotated[str | None, typer.Option(help="also sample state distributions (e.g. 1s)")] = None,
    costs: Annotated[str | None, typer.Option("--costs", help=COSTS_HELP)] = None,
    vcpus: Annotated[int | None, typer.Option("--vcpus", help=VCPUS_HELP)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    tier_pages: Annotated[int, typer.Option("--tier-pages", help=TIER_HELP)] = 0,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="every job streams its traces in bounded memory (host-lru, cmm, cmm-light; "
            "also `stream = true` in the sweep file)",
        ),
    ] = False,
) -> None:
    """Replay trace sets x strategies x parameter grids x budgets; resumable."""
    reporter = _reporter(quiet)
    from cmmsim.replay.api import parse_duration_ns
    from cmmsim.replay.grids import parse_grid, strategy_grids
    from cmmsim.replay.sweep import (
        SweepSpec,
        build_jobs,
        load_sweep_file,
        run_sweep,
        trace_sets_from_inputs,
    )
    from cmmsim.tracer.io import check_output, folder_output

    jobs = _job_count(jobs)
    if sweep_file:
        if strategy or param:
            # Not silently ignored: the file's strategies would run instead.
            raise ParamError(f"{'-s' if strategy else '-p'} with --sweep: name strategies in the file's [[strategies]]")
        spec = load_sweep_file(sweep_file)
        if inputs:
            spec.trace_sets += trace_sets_from_inputs(inputs)
        if budget:
            spec.budgets = list(budget)
    else:
        spec = SweepSpec(
            trace_sets=trace_sets_from_inputs(inputs or []),
            strategies=strategy_grids(strategy or [], parse_grid(param or [])),
            budgets=list(budget or []),
        )
    if states_interval is not None:
        spec.states_interval_ns = parse_duration_ns(states_interval)
        if spec.states_interval_ns <= 0:
            raise ParamError(f"--states-interval {states_interval!r}: must be more than 0")
    spec.costs, spec.vcpus, spec.tier_pages = costs, vcpus, tier_pages
    spec.stream = spec.stream or stream
    if not spec.budgets and not spec.per_set_budgets:
        raise ParamError("no budget given (use -b, or budgets = [...] in the sweep file)")
    check_output(out, folder=True)
    # Every trace set, strategy, parameter and budget is checked here, before
    # the output folder is made.
    job_list = build_jobs(spec, check_traces=True)
    make_executor = _executor_factory(cluster)
    try:
        with folder_output(out), _progress(len(job_list), reporter) as on_event:
            outcome = run_sweep(job_list, out, make_executor=make_executor, parallel=jobs, on_event=on_event)
    except KeyboardInterrupt:
        typer.echo(
            printable(f"cmmsim: interrupted: the finished jobs are kept in {out}; the same command resumes the sweep"),
            err=True,
        )
        raise typer.Exit(130) from None
    if outcome.skipped:
        _warn_priced_otherwise(out, job_list, outcome.skipped, costs)
    redone = f" ({len(outcome.redone)} damaged or outdated, redone)" if outcome.redone else ""
    console.print(
        f"{len(outcome.done)} done{redone}, {len(outcome.skipped)} already done, "
        f"{len(outcome.failed)} failed; results in {out}/parts"
    )
    if outcome.failed:
        raise typer.Exit(1)


def _warn_priced_otherwise(out: Path, jobs: list, skipped: list[str], spec: str | None) -> None:
    """Say so when jobs a sweep skipped (already done) were priced otherwise than asked
    (``spec``: the ``--costs`` given).

    ``--costs`` is not part of a job's key: a sweep run again under another profile
    (or an edited profile file) keeps the prices of the parts it skips. A part carries
    the digest of its pricing in its footer (:func:`cmmsim.replay.costs.pricing_digest`),
    so only parts written before it had one, or priced otherwise, are read and re-priced here.
    """
    from cmmsim.replay.costs import PRICING_KEY, price, pricing_digest
    from cmmsim.tracer.errors import ResultsError
    from cmmsim.tracer.io import frame_metadata, read_frame

    cols = ["stall_ns", "host_cpu_ns", "guest_cpu_ns", "disk_busy_ns", "cost_profile"]
    by_key = {job.key: job for job in jobs}
    stale: dict[str, int] = {}
    digests: dict[tuple, str] = {}  # the parts of a sweep share its profile and a few column sets
    for key in skipped:
        job = by_key.get(key)
        path = out / "parts" / f"{key}.parquet"
        try:
            columns, meta = frame_metadata(path)
            if job is None:
                continue
            digest = meta.get(PRICING_KEY)
            if digest is not None:
                shape = (id(job.costs), *columns)
                if shape not in digests:
                    digests[shape] = pricing_digest(job.costs, columns)
                if digest == digests[shape]:
                    continue
            part = read_frame(path)
        except (ResultsError, OSError):
            continue  # what the sweep itself found readable; a warning is no place to fail
        if part.is_empty():
            continue
        # A part without a digest, or whose digest differs (another profile, or only
        # another text of the same pricing, from another polars), is re-priced to compare.
        ok = all(c in part.columns for c in cols)
        ok = ok and part.select(cols).equals(price(part, job.costs).select(cols))
        if not ok:
            name = str(part["cost_profile"][0]) if "cost_profile" in part.columns else "no profile"
            stale[name] = stale.get(name, 0) + 1
    if stale:
        asked = jobs[0].costs.name
        was = ", ".join(sorted(stale))
        whose = f"an earlier {asked}" if was == asked else f"{was}, not {asked}"
        typer.echo(
            printable(
                f"cmmsim: warning: {sum(stale.values())} job(s) already done keep the prices of {whose} "
                f"(--costs is not part of a job); `cmmsim report {out} --costs {spec or asked}` "
                "re-prices every row"
            ),
            err=True,
        )


def _warn_strays(results: Path) -> None:
    """Say so when a sweep folder holds Parquet files that are not its jobs' (they are not read)."""
    from cmmsim.replay.sweep import sweep_parts

    if not results.is_dir():
        return
    strays = [f for sub in ("parts", "states", "series") for f in sweep_parts(results, sub)[1]]
    if strays:
        typer.echo(
            printable(
                f"cmmsim: warning: {len(strays)} file(s) in {results} not of this "
                f"sweep's jobs were not read (e.g. {strays[0]})"
            ),
            err=True,
        )


def _warn_outdated(results: pl.DataFrame) -> None:
    """Say so when rows were written before counters they now carry (an earlier
    cmmsim's parts, read with newer ones): their missing counters price as 0, as then."""
    from cmmsim.replay.frames import outdated
    from cmmsim.replay.states import COUNTERS

    missing = outdated(results.columns)
    cols = [c for c in COUNTERS if c in results.columns and results[c].null_count()]
    if missing:
        n = results.height
    elif cols:
        n = int(results.select(pl.any_horizontal(pl.col(cols).is_null()).sum()).item())
    else:
        return
    typer.echo(
        printable(
            f"cmmsim: warning: {n} of {results.height} rows were written before the counter(s) "
            f"{', '.join(missing or cols)}: priced as then (docs/costs.md); run their sweep again to redo them"
        ),
        err=True,
    )


def _warn_missing(results: Path) -> None:
    """Say so when jobs of a sweep folder have no rows (failed, or not run yet): every
    report leaves them out, so a winner may be named without a strategy that failed there."""
    import json

    from cmmsim.replay.sweep import SWEEP_FILE, sweep_parts

    if not results.is_dir():
        return
    jobs = json.loads((results / SWEEP_FILE).read_text())["jobs"]  # sweep_parts read it already
    done = {f.name.removesuffix(".parquet") for f in sweep_parts(results, "parts")[0]}
    missing = [j for j in jobs if j["key"] not in done]
    if not missing:
        return
    failed = []
    for j in missing:
        try:
            failed.append(json.loads((results / "failed" / f"{j['key']}.json").read_text()))
        except (OSError, ValueError):
            pass  # no readable failure record: not run yet (an interrupted sweep)
    # One line: an error's own lines are joined, and a long one cut.
    error = " ".join(str(failed[0].get("error")).split())[:200] if failed else ""
    first = f"e.g. trace set {failed[0].get('trace_set')} {failed[0].get('strategy')}: {error}; " if failed else ""
    typer.echo(
        printable(
            f"cmmsim: warning: {len(missing)} of {len(jobs)} jobs of this sweep have no results "
            f"({len(failed)} failed, {len(missing) - len(failed)} not run yet; {first}see "
            f"{results / 'failed'}): the reports leave them out; the same sweep command runs them again"
        ),
        err=True,
    )


def _report_frame(name: str, results: pl.DataFrame, by: str = "total-io") -> pl.DataFrame:
    from cmmsim import reports

    if name in ORDERED:
        return getattr(reports, REPORTS[name])(results, by)
    return getattr(reports, REPORTS[name])(results)


@app.command("report")
@cli_errors
def report_cmd(
    results: Annotated[Path, typer.Argument(help="results .parquet or sweep folder")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, markdown, csv or parquet")] = "table",
    report: Annotated[
        list[str] | None,
        typer.Option(
            "--report", "-r", help=f"report(s): {', '.join(REPORTS)} (default: {' and '.join(DEFAULT_REPORTS)})"
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="write here: a file; for csv or parquet with several reports a folder, one file per report (FOLDER/REPORT.csv)",
        ),
    ] = None,
    by: Annotated[
        str, typer.Option("--by", help=f"order winners, ranking and crossovers by: {', '.join(BY_NAMES)}")
    ] = "total-io",
    costs: Annotated[
        str | None, typer.Option("--costs", help=COSTS_HELP + "; default: as the rows were priced, else kvm-2025")
    ] = None,
) -> None:
    """Report total I/O, I/O avoided, faults, rankings, crossovers, fairness and time.

    Budgets are shown in pages and in MiB. In winners, tied counts the strategies
    sharing first place; the first of them alphabetically is the one named.
    """
    from cmmsim.replay.costs import priced
    from cmmsim.replay.sweep import read_results
    from cmmsim.tracer.io import atomic_output, check_output, folder_output, write_frame

    if fmt not in ("table", "markdown", "csv", "parquet"):
        raise ParamError(f"--format {fmt!r}: use table, markdown, csv or parquet")
    names = list(dict.fromkeys(report or DEFAULT_REPORTS))
    unknown = [n for n in names if n not in REPORTS]
    if unknown:
        raise ParamError(f"unknown report {unknown[0]!r} (known: {', '.join(REPORTS)})")
    if by not in BY_NAMES:
        raise ParamError(f"--by {by!r}: use {', '.join(BY_NAMES)}")
    if by != "total-io" and not set(names) & set(ORDERED):
        raise ParamError(f"--by {by} orders {', '.join(ORDERED[:-1])} and {ORDERED[-1]}: ask for one with -r")
    # csv and parquet hold one table a file: several reports go to a folder, one file each.
    per_file = fmt in ("csv", "parquet") and len(names) > 1
    if per_file and out is None:
        raise ParamError(
            f"--format {fmt} writes one file per report: it needs -o FOLDER for "
            f"{len(names)} reports ({', '.join(names)}), or one -r"
        )
    if per_file and out is not None and out.suffix.lower() in (".csv", ".parquet") and not out.is_dir():
        raise ParamError(
            f"--format {fmt} with {len(names)} reports writes one file per report "
            f"into a folder: -o {out} names a file (give a folder, or one -r)"
        )
    if fmt == "parquet" and out is None:
        raise ParamError("--format parquet needs -o FILE (or -o FOLDER for several reports)")
    if out is not None:
        check_output(out, folder=per_file, inputs=[results])
        for n in names if per_file else ():
            check_output(out / f"{n}.{fmt}", inputs=[results])  # FOLDER/total-io.parquet may be the input
    df_all, profile = priced(read_results(results), costs)
    _warn_strays(results)
    _warn_outdated(df_all)
    _warn_missing(results)
    frames = {n: _report_frame(n, df_all, by) for n in names}
    if fmt == "table":
        console.print(f"time and CPU priced under the {profile} cost profile")
        for n, df in frames.items():
            _print_report(n, df)
        return
    if per_file:
        with folder_output(out):
            for n, df in frames.items():
                path = out / f"{n}.{fmt}"
                if fmt == "parquet":
                    write_frame(df, path)
                else:
                    with atomic_output(path) as tmp:
                        tmp.write_text(df.write_csv())
                console.print(f"wrote {path}")
        return
    if fmt in ("csv", "parquet"):
        ((name, df),) = frames.items()
        if fmt == "parquet":
            console.print(f"wrote {write_frame(df, out)}")
            return
        text = df.write_csv()
    else:
        from cmmsim.reports import markdown_table

        text = (
            "\n\n".join(
                f"## {n}\n\n" + (f"{REPORT_NOTES[n]}.\n\n" if n in REPORT_NOTES else "") + markdown_table(df)
                for n, df in frames.items()
            )
            + "\n"
        )
    if out:
        with atomic_output(out) as tmp:
            tmp.write_text(text)
        console.print(f"wrote {out}")
    else:
        typer.echo(printable(text), nl=False)


def _print_report(name: str, df: pl.DataFrame) -> None:
    """One report as a terminal table: percentages with one decimal, the note under its name."""
    title = f"{name}: {REPORT_NOTES[name]}" if name in REPORT_NOTES else name
    pct = [c for c in df.columns if c == "io_avoided_pct"]
    if name == "io-avoided-wide":
        pct = df.columns[4:]
    print_table(title, df.to_dicts(), formats=dict.fromkeys(pct, ",.1f"))


def _plot_miss_curve(results: Path, out: Path, extra: Path | None) -> bool:
    """Plot ``results`` if it is ``cmmsim mrc`` output (True), else leave it (False)."""
    if not results.is_file():
        return False
    from cmmsim.plot_mrc import is_miss_curve, plot_mrc
    from cmmsim.tracer.errors import ResultsError, show_path
    from cmmsim.tracer.io import read_frame

    frame = read_frame(results, "results")
    if not is_miss_curve(frame):
        return False
    if extra is not None:
        raise ParamError(
            f"{show_path(results)} is a miss curve (cmmsim mrc output): --states and --balloon go with replay results"
        )
    if frame.is_empty():
        raise ResultsError(f"{show_path(results)}: holds no miss-curve rows")
    for p in plot_mrc(frame, out, results.name.removesuffix(".parquet")):
        console.print(f"wrote {p}")
    return True


@app.command("plot")
@cli_errors
def plot_cmd(
    results: Annotated[Path, typer.Argument(help="results .parquet, sweep folder or cmmsim mrc output")],
    out: Annotated[Path, typer.Option("-o", "--out", help="folder for the PNG files")],
    states: Annotated[
        Path | None, typer.Option("--states", help="state time series .parquet (a sweep folder's are found)")
    ] = None,
    balloon: Annotated[
        Path | None, typer.Option("--balloon", help="balloon series .parquet (a sweep folder's are found)")
    ] = None,
    costs: Annotated[
        str | None, typer.Option("--costs", help=COSTS_HELP + "; default: as the rows were priced, else kvm-2025")
    ] = None,
) -> None:
    """Plot I/O and stall time vs budget, I/O avoided, state distributions and balloon series (PNG).

    Given ``cmmsim mrc`` output instead, plot the miss-ratio curve (MiB, with
    standard-error bands for sampled curves) and the reuse-distance histogram.
    What each plot shows: docs/plots.md.
    """
    from cmmsim.plots import plot_all
    from cmmsim.replay.costs import priced
    from cmmsim.replay.sweep import read_balloon, read_results, read_states
    from cmmsim.tracer.io import check_output

    check_output(out, folder=True)
    if _plot_miss_curve(results, out, states or balloon):
        return
    df, _ = priced(read_results(results), costs)
    _warn_strays(results)
    _warn_missing(results)
    st = read_states(states) if states else (read_states(results) if results.is_dir() else None)
    bl = read_balloon(balloon) if balloon else (read_balloon(results) if results.is_dir() else None)
    if bl is not None and "trace_set" not in bl.columns:
        bl = bl.with_columns(pl.col("scenario").alias("trace_set"))
    for p in plot_all(df, st, out, bl):
        console.print(f"wrote {p}")


@app.command("demo")
@cli_errors
def demo_cmd(
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder")] = Path("demo-out"),
    jobs: Annotated[int | None, typer.Option(help="parallel jobs (default: the number of cores)")] = None,
    costs: Annotated[str | None, typer.Option("--costs", help=COSTS_HELP)] = None,
    vcpus: Annotated[int | None, typer.Option("--vcpus", help=VCPUS_HELP)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    tier_pages: Annotated[int, typer.Option("--tier-pages", help=TIER_HELP)] = 0,
) -> None:
    """Sweep every strategy over the sample traces; report, plot and summarise."""
    reporter = _reporter(quiet)
    from cmmsim.demo import demo_spec, find_sample_traces, run_demo
    from cmmsim.replay.sweep import build_jobs
    from cmmsim.tracer.io import check_output, folder_output

    jobs = _job_count(jobs)
    check_output(out, folder=True)
    total = len(build_jobs(demo_spec(find_sample_traces(), costs=costs, vcpus=vcpus, tier_pages=tier_pages)))
    with folder_output(out), _progress(total, reporter) as on_event:
        res = run_demo(
            out,
            jobs=jobs,
            make_executor=_executor_factory(None),
            on_event=on_event,
            costs=costs,
            vcpus=vcpus,
            tier_pages=tier_pages,
        )
    print_winners(res["results"], res["costs"])
    for p in res["plots"]:
        console.print(f"wrote {p}")
    console.print(f"wrote {res['summary']}")


def print_winners(results: pl.DataFrame, costs: str) -> None:
    """The demo's two winner tables (by total I/O, by stall under ``costs``), then what ``tied`` means."""
    from cmmsim import reports

    print_table(
        "winner (least total I/O) per trace set and budget range (pages and MiB)",
        reports.df_winners(results).to_dicts(),
    )
    print_table(
        f"winner (least stall time, {costs}) per trace set and budget range (pages and MiB)",
        reports.df_winners(results, "stall").to_dicts(),
    )
    console.print(f"both tables: {WINNERS_NOTE}")
