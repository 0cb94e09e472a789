"""What every ``cmmsim`` command module shares: the app, the console, errors, tables.

The command modules (:mod:`analysis.cli_trace`, :mod:`analysis.cli_replay`,
:mod:`analysis.cli_sweep`) import this one and register their commands on
:data:`app`; :mod:`analysis.cli` imports them. Nothing here imports a command
module, so imports run one way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from tracer import params
from tracer.errors import CmmsimError

app = typer.Typer(
    name="cmmsim",
    help="Replay guest page traces under host memory budgets and reclaim strategies "
    "(host paging, ballooning, guest page hinting) and compare the I/O each costs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

#: Help of ``--costs`` and ``--vcpus``, the same on every command that prices results.
COSTS_HELP = "cost profile: a shipped name (zvm-2006, kvm-2025) or a .toml file overriding one (docs/costs.md)"
VCPUS_HELP = "virtual CPUs of each guest whose trace does not say (default 1)"


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


def print_params(title: str, params_cls: type) -> None:
    """Print a params dataclass (a workload's, a strategy's) as a table of its fields."""
    rows = [{"parameter": n, "type": t, "default": d, "meaning": h}
            for n, t, d, h in params.describe(params_cls)]
    print_table(title, rows or [{"parameter": "(none)", "type": "", "default": "", "meaning": ""}])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "" if v is None else str(v)
