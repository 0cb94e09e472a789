"""``cmmsim demo``: the main job on the shipped sample traces.

Every registered strategy (default parameters) over 10 host budgets per
trace set, from 10 % to 100 % of the set's footprint (the distinct guest
pages its trace touches: beyond that no strategy pages at all; the budgets
are passed as pages, so a ``%`` budget keeps its one meaning, a share of
guest memory, everywhere else), with the
state distribution sampled about 40 times per trace. Then the report, the
plots and a one-page ``summary.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from cmmsim import reports
from cmmsim.plots import describe, plot_all
from cmmsim.replay.scenario import expand_inputs
from cmmsim.replay.sweep import (
    SweepOutcome,
    SweepSpec,
    TraceSet,
    build_jobs,
    read_balloon,
    read_results,
    read_states,
    run_sweep,
)
from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.io import atomic_output, scan_trace
from cmmsim.tracer.schema import MANIFEST_NAME, PAGE_SIZE_BYTES

N_BUDGETS = 10
SAMPLES_PER_TRACE = 40


def find_sample_traces() -> Path:
    """``sample_traces/`` in the working folder, else beside the installed checkout."""
    for candidate in (Path.cwd() / "sample_traces", Path(__file__).resolve().parent.parent / "sample_traces"):
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate
    raise ParamError("no sample_traces/ folder found (run from the cmmsim checkout)")


def trace_set_facts(ts: TraceSet) -> tuple[int, int]:
    """(footprint in pages, duration in ns) of a trace set."""
    footprint = 0
    t0, t1 = None, None
    for f in expand_inputs(list(ts.paths)):
        row = (
            scan_trace(f)
            .select(
                pl.col("pfn").n_unique().alias("n"), pl.col("t_ns").min().alias("a"), pl.col("t_ns").max().alias("b")
            )
            .collect()
            .row(0, named=True)
        )
        footprint += int(row["n"] or 0)
        if row["a"] is not None:
            t0 = row["a"] if t0 is None else min(t0, row["a"])
            t1 = row["b"] if t1 is None else max(t1, row["b"])
    return max(footprint, 1), (t1 - t0) if t0 is not None else 0


def demo_spec(sample_dir: Path, *, costs=None, vcpus: int | None = None, tier_pages: int = 0) -> SweepSpec:
    """The demo sweep over every trace set in ``sample_dir``, priced under ``costs``
    (:func:`cmmsim.replay.costs.load_profile`) with ``vcpus`` for guests whose trace does not
    say, and a host swap tier of ``tier_pages`` for the strategies that have one."""
    sets: list[TraceSet] = []
    per_set: dict[str, list[str]] = {}
    entries = sorted(sample_dir.glob("*.parquet")) + sorted(
        p for p in sample_dir.iterdir() if (p / MANIFEST_NAME).exists()
    )
    for path in entries:
        name = path.name.removesuffix(".parquet")
        probe = TraceSet(name, (str(path),))
        footprint, duration = trace_set_facts(probe)
        interval = max(1, duration // SAMPLES_PER_TRACE)
        sets.append(TraceSet(name, (str(path),), states_interval_ns=interval))
        per_set[name] = [str(max(1, footprint * k // N_BUDGETS)) for k in range(1, N_BUDGETS + 1)]
    if not sets:
        raise ParamError(f"{sample_dir}: holds no traces")
    return SweepSpec(
        trace_sets=sets,
        strategies=[],
        budgets=[],
        per_set_budgets=per_set,
        costs=costs,
        vcpus=vcpus,
        tier_pages=tier_pages,
    )


def write_summary(
    results: pl.DataFrame, outcome: SweepOutcome, plots: list[Path], out_dir: Path, sample_dir: Path
) -> Path:
    """The one-page markdown summary: the trace sets' sizes, winners by I/O and by stall
    time per trace set and budget range, I/O avoided (one row per trace set, a column per
    strategy) and time at half the footprint; budgets in pages and MiB."""
    winners = reports.df_winners(results)
    stall_winners = reports.df_winners(results, "stall")
    profile = str(results["cost_profile"][0]) if "cost_profile" in results.columns else "?"
    avoided = reports.df_io_avoided_wide(results)
    # At the budget nearest half the footprint: the middle of the demo's range.
    budgets = avoided.select("trace_set", "budget_pages").unique().sort("trace_set", "budget_pages")
    mids = budgets.group_by("trace_set").agg(
        pl.col("budget_pages").sort().get(N_BUDGETS // 2 - 1).alias("budget_pages")
    )
    mid = (
        avoided.join(mids, on=["trace_set", "budget_pages"])
        .sort("trace_set")
        .with_columns(pl.col(c).round(1) for c in avoided.columns[4:])
    )
    sets = trace_set_table(results)
    seconds = 1e-9
    tier = int(results["tier_pages"].max() or 0) if "tier_pages" in results.columns else 0
    # The offline bounds have no tier: with one, a strategy's disk I/O can fall below opt's.
    tier_note = (
        [
            f"The strategies that page on the host ran with a host swap tier of {tier:,} pages "
            "(`--tier-pages`); `static`, `opt` and `opt-schedule` without one. `total_io` counts "
            "disk I/O only (the tier's copies are priced in the time columns), so with the tier "
            "a strategy may do less I/O than `opt`: the offline bounds are those of a host "
            "without a tier.",
            "",
        ]
        if tier
        else []
    )
    floor_note = (
        "`opt` is the floor of a host without the tier (above)."
        if tier
        else "`opt` is the floor: no strategy can do less I/O at that budget."
    )
    times = (
        reports.df_time(results)
        .join(mids, on=["trace_set", "budget_pages"])
        .select(
            "trace_set",
            "budget_pages",
            "budget_mib",
            "label",
            "total_io",
            (pl.col("stall_ns") * seconds).alias("stall_s"),
            (pl.col("host_cpu_ns") * seconds).alias("host_cpu_s"),
            (pl.col("guest_cpu_ns") * seconds).alias("guest_cpu_s"),
            pl.col("overhead_pct").round(3),
        )
        .sort("trace_set", "stall_s", "label")
    )
    text = [
        "# cmmsim demo summary",
        "",
        f"Made {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `cmmsim demo` on `{sample_dir}`: "
        f"every registered strategy at {N_BUDGETS} host budgets per trace set, 10 %, 20 %, ... "
        f"100 % of its footprint (the distinct pages its traces touch; beyond it no strategy "
        f"pages). {len(outcome.done) + len(outcome.skipped)} jobs done, {len(outcome.failed)} failed.",
        "",
        "Budgets are shown in 4 KiB pages and in MiB. A percentage elsewhere in cmmsim (`-b 50%`, "
        '`budgets = ["50%"]`) is of the guests\' total memory, not of the footprint: the '
        "`footprint_pct` column below converts one into the other.",
        "",
        *tier_note,
        "## Trace sets",
        "",
        "`guest_pages`: the guests' memory; `footprint_pages`: the pages their traces touch "
        "(the demo's largest budget); `footprint_pct`: footprint as a percentage of guest memory.",
        "",
        reports.markdown_table(sets),
        "",
        "## Winner (least total I/O) per trace set and budget range",
        "",
        "Budgets in 4 KiB pages and MiB; `tied` > 1 means several strategies share first place "
        "(typically none pages at all). `opt`, the offline floor, does not compete; it "
        "appears in the next table.",
        "",
        reports.markdown_table(winners),
        "",
        "## I/O avoided against host-lru at half the footprint",
        "",
        "One row per trace set at the budget of 50 % of its footprint; `baseline_io`: "
        "host-lru's page I/Os; each strategy's column: the I/O it avoids, percent of "
        f"`baseline_io` (negative: more I/O than host-lru). {floor_note}",
        "",
        reports.markdown_table(mid),
        "",
        f"## Winner (least stall time, `{profile}` costs) per trace set and budget range",
        "",
        "Stall is the time the guests wait on memory management (page-ins, zero fills, "
        "discard faults, their own re-reads): `docs/costs.md`. Where it names another "
        "winner than the I/O table, the kinds of I/O each strategy does cost differently.",
        "",
        reports.markdown_table(stall_winners),
        "",
        "## Time and CPU at half the footprint",
        "",
        "Seconds; `overhead_pct`: host and guest CPU on memory management as a share of "
        "the guests' vCPU time over the trace (`opt` and `opt-schedule` bracket the "
        "offline optimum in I/O; their time columns are priced likewise).",
        "",
        reports.markdown_table(times),
        "",
        "## Plots",
        "",
        "Each strategy keeps one colour and marker in every plot; `docs/plots.md` says "
        "what each shows. For host-lru's miss-ratio curve and reuse distances: "
        "`cmmsim mrc TRACE -b 1% -b 100% --points 40 -o curve.parquet`, then "
        "`cmmsim plot curve.parquet -o plots`.",
        "",
        *[f"- `{p.name}`: {describe(p)}" for p in plots],
        "",
    ]
    if outcome.failed:
        text += ["## Failed jobs", "", *[f"- `{k}`: {v}" for k, v in outcome.failed.items()], ""]
    path = out_dir / "summary.md"
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(text))
    return path


def trace_set_table(results: pl.DataFrame) -> pl.DataFrame:
    """Each trace set's guest memory and footprint, pages, MiB and footprint as a percentage
    of guest memory (what ``-b N%`` measures against).

    The footprint is the set's largest budget: the demo's budgets end at it.

    Columns: trace_set (str), guest_pages (int), guest_mib (float),
    footprint_pages (int), footprint_mib (float), footprint_pct (float,
    percent of guest_pages).
    """
    host = reports.with_labels(results).filter(pl.col("guest").is_null())
    mib = PAGE_SIZE_BYTES / float(1 << 20)
    return (
        host.group_by("trace_set")
        .agg(pl.col("guest_pages").max(), pl.col("budget_pages").max().alias("footprint_pages"))
        .select(
            "trace_set",
            "guest_pages",
            (pl.col("guest_pages") * mib).alias("guest_mib"),
            "footprint_pages",
            (pl.col("footprint_pages") * mib).alias("footprint_mib"),
            (100.0 * pl.col("footprint_pages") / pl.col("guest_pages")).round(1).alias("footprint_pct"),
        )
        .sort("trace_set")
    )


def run_demo(
    out_dir: str | Path,
    *,
    jobs: int,
    make_executor: Callable,
    on_event=None,
    costs=None,
    vcpus: int | None = None,
    tier_pages: int = 0,
) -> dict:
    """Sweep, report, plot and summarise the sample traces into ``out_dir``.

    Rows are priced under ``costs`` (:func:`cmmsim.replay.costs.load_profile`) with
    ``vcpus`` for guests whose trace does not say; the result's ``costs`` is the
    profile's name.
    """
    from cmmsim.replay.costs import load_profile, price

    out = Path(out_dir)
    sample_dir = find_sample_traces()
    profile = load_profile(costs)
    spec = demo_spec(sample_dir, costs=profile, vcpus=vcpus, tier_pages=tier_pages)
    job_list = build_jobs(spec)
    outcome = run_sweep(job_list, out / "sweep", make_executor=make_executor, parallel=jobs, on_event=on_event)
    # Parts kept from an earlier run of the folder may be priced otherwise: price all alike.
    results = price(read_results(out / "sweep"), profile)
    states = read_states(out / "sweep")
    plots = plot_all(results, states, out / "plots", read_balloon(out / "sweep"))
    summary = write_summary(results, outcome, plots, out, sample_dir)
    return {
        "results": results,
        "outcome": outcome,
        "plots": plots,
        "summary": summary,
        "jobs": job_list,
        "costs": profile.name,
    }
