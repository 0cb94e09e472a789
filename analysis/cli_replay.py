"""``cmmsim replay``, ``cmmsim strategies`` and ``cmmsim mrc``.

Library modules are imported inside each command, not here: the replay
modules load numba and its cached kernels, which ``cmmsim --help`` and the
other commands need not wait for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cmmsim.cli_common import (
    BUDGET_HELP,
    COSTS_HELP,
    QUIET_HELP,
    TIER_HELP,
    VCPUS_HELP,
    app,
    check_outputs,
    cli_errors,
    console,
    print_params,
    print_table,
    write_frames,
)
from cmmsim.tracer.errors import ParamError

#: Help of ``--stagger`` on ``replay`` and ``mrc``: at 0 the copies coincide.
STAGGER_HELP = (
    "time shift between copies (e.g. 500ms); at 0 each copy repeats its original at the same instants, "
    "so their demands peak together by construction"
)
#: Most events per streamed chunk (``--batch-rows``): a chunk's arrays are
#: allocated whole.
MAX_BATCH_ROWS = 1 << 31

#: Columns shown in the terminal table (the Parquet output has them all).
SHOWN = (
    "budget_pages",
    "guest_name",
    "accesses",
    "host_reads",
    "host_writes",
    "zero_fills",
    "discards",
    "discard_faults",
    "guest_reads",
    "guest_writes",
    "hints",
    "repairs",
    "host_reads_tier",
    "host_writes_tier",
    "host_spills_tier",
    "total_io",
    "peak_resident_pages",
    "stall_ns",
    "host_cpu_ns",
    "guest_cpu_ns",
    "overhead_pct",
)


@app.command("replay")
@cli_errors
def replay_cmd(
    traces: Annotated[list[Path], typer.Argument(help="guest traces or scenario folders sharing one host")],
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="strategy name (see `cmmsim strategies`)")],
    budget: Annotated[list[str], typer.Option("--budget", "-b", help=BUDGET_HELP)],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="strategy parameter key=value (each key once)")
    ] = None,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="write results Parquet here")] = None,
    states: Annotated[
        Path | None, typer.Option("--states", help="write the state-distribution time series here")
    ] = None,
    states_interval: Annotated[
        str | None, typer.Option(help="state sampling interval for --states (e.g. 250ms; default 1s)")
    ] = None,
    series: Annotated[
        Path | None, typer.Option("--series", help="write the strategy's per-period series here (balloons)")
    ] = None,
    balloon: Annotated[Path | None, typer.Option("--balloon", hidden=True, help="deprecated: --series")] = None,
    copies: Annotated[int, typer.Option(help="replicate the guests this many times")] = 1,
    stagger: Annotated[str, typer.Option(help=STAGGER_HELP)] = "0",
    guests: Annotated[bool, typer.Option("--guests/--no-guests", help="show per-guest rows")] = False,
    stream: Annotated[
        bool, typer.Option("--stream", help="stream the traces in bounded memory (host-lru, cmm, cmm-light)")
    ] = False,
    batch_rows: Annotated[int, typer.Option(help="events per streamed chunk")] = 1 << 20,
    costs: Annotated[str | None, typer.Option("--costs", help=COSTS_HELP)] = None,
    vcpus: Annotated[int | None, typer.Option("--vcpus", help=VCPUS_HELP)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    tier_pages: Annotated[int, typer.Option("--tier-pages", help=TIER_HELP)] = 0,
) -> None:
    """Replay traces under one strategy at one or more host budgets."""
    from cmmsim.progress import Reporter

    reporter = Reporter(quiet=quiet)  # before the replay modules: importing them compiles
    from cmmsim.replay.api import parse_duration_ns, replay_full
    from cmmsim.replay.scenario import load
    from cmmsim.tracer.schema import PAGE_SIZE_BYTES

    series = series or balloon
    check_outputs(("-o", out), ("--states", states), ("--series", series), inputs=traces)
    interval = states_interval_ns(states, states_interval)
    if not 1 <= batch_rows <= MAX_BATCH_ROWS:
        raise ParamError(f"--batch-rows {batch_rows}: must be 1..{MAX_BATCH_ROWS:,}")
    if stream:
        from cmmsim.replay.stream import replay_stream

        total = events_in(traces, copies)
        with reporter.task(f"replay {strategy}", total=total) as task:
            results, state_df, series_df = replay_stream(
                traces,
                strategy,
                budget,
                param or [],
                copies=copies,
                stagger_ns=parse_duration_ns(stagger),
                batch_rows=batch_rows,
                states_interval_ns=interval,
                series=bool(series),
                costs=costs,
                vcpus=vcpus,
                tier_pages=tier_pages,
                on_events=task.advance,
            )
    else:
        scn = load(traces, copies=copies, stagger_ns=parse_duration_ns(stagger))
        # The engine's strategies move the bar chunk by chunk, the others as their
        # kernel goes (cmmsim.replay.watch).
        with reporter.task(f"replay {strategy}", total=scn.n_events) as task:
            results, state_df, series_df = replay_full(
                scn,
                strategy,
                budget,
                param or [],
                states_interval_ns=interval,
                series=bool(series),
                costs=costs,
                vcpus=vcpus,
                tier_pages=tier_pages,
                on_events=task.advance,
            )
    shown = results if guests else results.filter(results["guest"].is_null())
    # Metrics down, budgets (and guests) across: readable in 80 columns.
    heads = [
        f"{b:,} p {b * PAGE_SIZE_BYTES / (1 << 20):,.4g} MiB" + ("" if not guests else f" {g}")
        for b, g in zip(shown["budget_pages"], shown["guest_name"], strict=True)
    ]
    # The tier's counters only where there is one.
    metrics = [m for m in SHOWN[2:] if tier_pages or not m.endswith("_tier")]
    rows = [{"metric": m} | dict(zip(heads, shown[m].to_list(), strict=True)) for m in metrics]
    print_table(
        f"{results['scenario'][0]}: {strategy} {results['params'][0]}; time and CPU under {results['cost_profile'][0]}",
        rows,
    )
    for path in write_frames((results, out), (state_df, states), (series_df, series)):
        console.print(f"wrote {path}")


def events_in(traces: list[Path], copies: int = 1) -> int:
    """Events in the traces (scenario folders expanded) times ``copies``, from their metadata."""
    from cmmsim.replay.scenario import expand_inputs
    from cmmsim.tracer.io import read_meta

    return copies * sum(read_meta(f).n_events for f in expand_inputs([str(t) for t in traces]))


def states_interval_ns(states: Path | None, interval: str | None) -> int | None:
    """The state sampling interval, ns: None without ``--states``; refused if given alone or 0."""
    from cmmsim.replay.api import parse_duration_ns

    if states is None:
        if interval is not None:
            raise ParamError("--states-interval needs --states FILE (where the samples go)")
        return None
    ns = parse_duration_ns(interval or "1s")
    if ns <= 0:
        raise ParamError(f"--states-interval {interval!r}: must be more than 0")
    return ns


@app.command("strategies")
@cli_errors
def strategies_cmd() -> None:
    """List the registered strategies with their parameters and defaults."""
    from cmmsim.replay.strategies import strategies

    for strat in strategies().values():
        print_params(f"{strat.name}: {strat.summary}", strat.params)


@app.command("mrc")
@cli_errors
def mrc_cmd(
    traces: Annotated[list[Path], typer.Argument(help="guest traces or scenario folders sharing one host")],
    budget: Annotated[list[str], typer.Option("--budget", "-b", help=BUDGET_HELP)],
    points: Annotated[
        int,
        typer.Option(
            help="that many budgets evenly spaced from the smallest to the largest -b, both included, "
            "in place of those given (below 2: just those given)"
        ),
    ] = 0,
    sample_rate: Annotated[float, typer.Option(help="fraction of pages sampled (SHARDS); 1 = exact")] = 1.0,
    order: Annotated[
        str,
        typer.Option(
            help="lru: host-lru (one stack pass when exact); state-priority: cmm with that reclaim order "
            "(a replay per budget, of each sample below rate 1)"
        ),
    ] = "lru",
    salts: Annotated[int, typer.Option(help="independent samples, for the standard error (below rate 1)")] = 8,
    seed: Annotated[int, typer.Option(help="first hash salt")] = 0,
    stream: Annotated[bool, typer.Option("--stream", help="read the traces as a stream (memory: the samples)")] = False,
    copies: Annotated[int, typer.Option(help="replicate the guests this many times")] = 1,
    stagger: Annotated[str, typer.Option(help=STAGGER_HELP)] = "0",
    out: Annotated[Path | None, typer.Option("-o", "--out", help="write the curve as Parquet here")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """A miss curve over many budgets (host-lru's, or cmm state-priority's): exact, or estimated from page samples."""
    from cmmsim.progress import Reporter

    reporter = Reporter(quiet=quiet)  # before the replay modules: importing them compiles
    import numpy as np

    from cmmsim.replay.api import parse_duration_ns
    from cmmsim.replay.shards import FEW_PAGES, REPLAY_NAMES, df_sampled_curve, miss_curve
    from cmmsim.tracer.schema import PAGE_SIZE_BYTES

    check_outputs(("-o", out), inputs=traces)
    total = events_in(traces, copies)
    with reporter.task("mrc", total=total) as task:
        r = miss_curve(
            traces,
            budget,
            points=points,
            rate=sample_rate,
            salts=salts,
            seed=seed,
            stream=stream,
            copies=copies,
            stagger_ns=parse_duration_ns(stagger),
            order=order,
            on_events=task.advance,
        )
    if not r.exact and np.isnan(r.per_salt).any():
        # A salt that kept none of a guest's pages has no estimate of it (NaN):
        # every mean is NaN then, a table and a plot of nothing.
        raise ParamError(
            f"--sample-rate {sample_rate:g}: a sample holds none of the pages of a guest "
            "that accesses some, so there is no estimate; raise --sample-rate"
        )
    df = df_sampled_curve(r)
    name = REPLAY_NAMES[order]
    how = (
        f"exact ({'one stack pass' if order == 'lru' else 'a replay per budget'})"
        if r.exact
        else f"SHARDS: {r.salts} samples of {sample_rate:g} of the pages, mean±standard error"
    )

    def cell(row, name: str, fmt: str) -> str:
        est = format(row[f"{name}_est"], fmt)
        return est if r.exact else f"{est}±{format(row[f'{name}_se'], fmt)}"

    rows = [
        {
            "budget_pages": row["budget_pages"],
            "budget_mib": row["budget_pages"] * PAGE_SIZE_BYTES / (1 << 20),
            "miss_ratio": cell(row, "miss_ratio", ".4f"),
        }
        | {k: cell(row, k, ",.0f") for k in ("host_reads", "host_writes", "zero_fills")}
        for row in df.iter_rows(named=True)
    ]
    print_table(f"{name}: {r.accesses.sum():,} accesses, footprint {r.footprint_pages:,} pages; {how}", rows)
    if not r.exact and order != "lru":
        console.print(
            "[yellow]note:[/yellow] scaling the budgets with the sample biases state-priority's estimate "
            "more than host-lru's, and the standard error does not show it (docs/performance.md has the "
            "errors measured on the sample traces): check a budget or two with --sample-rate 1"
        )
    if not r.exact and r.sampled_pages.min() < FEW_PAGES:
        console.print(
            f"[yellow]warning:[/yellow] the smallest sample holds {int(r.sampled_pages.min()):,} "
            f"pages (< {FEW_PAGES:,}): its standard error is not to be trusted; "
            "raise --sample-rate"
        )
    for path in write_frames((df, out)):
        console.print(f"wrote {path}")
