"""The ``cmmsim`` command line: a thin shell over the library.

Each command parses its arguments, calls one library function and prints
the result. Every :class:`tracer.errors.CmmsimError` becomes a one-line
message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tracer.errors import CmmsimError

app = typer.Typer(
    name="cmmsim",
    help="Replay guest page traces under host memory budgets and reclaim strategies "
    "(host paging, ballooning, guest page hinting) and compare the I/O each costs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
trace_app = typer.Typer(help="Make, convert, inspect and validate traces.", no_args_is_help=True)
app.add_typer(trace_app, name="trace")

console = Console()


def cli_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one stderr line and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CmmsimError as exc:
            typer.echo(f"cmmsim: error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print a list of same-keyed dicts as a rich table."""
    table = Table(title=title)
    if not rows:
        console.print(f"{title}: (empty)")
        return
    for key in rows[0]:
        table.add_column(str(key), justify="right" if isinstance(rows[0][key], int | float) else "left")
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    console.print(table)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "" if v is None else str(v)


# -- trace ------------------------------------------------------------------------------------
@trace_app.command("synth")
@cli_errors
def trace_synth(
    workload: Annotated[str, typer.Argument(help="workload name (see `cmmsim trace workloads`)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output .parquet (folder for awm)")],
    seed: Annotated[int, typer.Option(help="random seed; same seed, same bytes")] = 0,
    events: Annotated[int, typer.Option(help="target number of events")] = 500_000,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="workload parameter key=value")
    ] = None,
) -> None:
    """Generate a synthetic guest trace (or a multi-guest scenario folder)."""
    from tracer.synth import synthesize

    paths = synthesize(workload, out, seed=seed, events=events, params=param or [])
    for p in paths:
        console.print(f"wrote {p}")


@trace_app.command("workloads")
@cli_errors
def trace_workloads() -> None:
    """List the synthetic workloads with their parameters and defaults."""
    from tracer import params
    from tracer.synth import workloads

    for wl in workloads().values():
        rows = [{"parameter": n, "type": t, "default": d, "meaning": h}
                for n, t, d, h in params.describe(wl.params)]
        print_table(f"{wl.name}: {wl.summary}", rows)


@trace_app.command("info")
@cli_errors
def trace_info(path: Annotated[Path, typer.Argument(help="trace file")]) -> None:
    """Show events by op, duration, distinct pages and final guest-state fractions."""
    from analysis.traces import trace_summary

    info = trace_summary(path)
    console.print(f"[bold]{path}[/bold]  source={info['source']}  seed={info['seed']}")
    print_table("trace", [{k: info[k] for k in ("events", "duration_s", "events_per_s",
                                                  "guest_pages", "distinct_pages")}])
    print_table("events by op", [{"op": k, "events": v} for k, v in info["event_counts"].items()])
    print_table("final guest states (fraction of guest pages)",
                [{"state": k, "fraction": v} for k, v in info["final_state_fractions"].items()])
    if info["converter"]:
        print_table("converter counters", [{"counter": k, "value": str(v)}
                                           for k, v in info["converter"].items()])


@trace_app.command("validate")
@cli_errors
def trace_validate(paths: Annotated[list[Path], typer.Argument(help="trace files")]) -> None:
    """Check traces against the schema; the first bad row is named."""
    from tracer.io import validate_trace

    for path in paths:
        meta = validate_trace(path)
        console.print(f"{path}: ok ({meta.n_events:,} events, {meta.guest_pages:,} guest pages)")


def _register_subcommands() -> None:
    # Sub-apps live in their own modules to keep this one small; importing
    # them registers their commands on ``app``.
    import analysis.cli_replay  # noqa: F401
    import analysis.cli_sweep  # noqa: F401


_register_subcommands()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="cmmsim")
    sys.exit(0)
