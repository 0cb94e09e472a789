"""What every ``cmmsim`` command module shares: the app, the console, errors, tables.

The command modules (:mod:`cmmsim.cli_trace`, :mod:`cmmsim.cli_replay`,
:mod:`cmmsim.cli_sweep`) import this one and register their commands on
:data:`app`; :mod:`cmmsim.cli` imports them. Nothing here imports a command
module, so imports run one way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cmmsim.tracer import params
from cmmsim.tracer.errors import CmmsimError, ParamError, os_reason, show_path

app = typer.Typer(
    name="cmmsim",
    help="Replay guest page traces under host memory budgets and reclaim strategies "
    "(host paging, ballooning, guest page hinting) and compare the I/O each costs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def printable(text: str) -> str:
    """``text`` with a path's undecodable bytes (surrogate escapes) shown as ``\\xNN``.

    A file name that is not UTF-8 reaches messages and tables as Python's
    surrogate escapes, which no terminal encoding can print.
    """
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


class _Console(Console):
    """A rich console that prints any text, file names that are not UTF-8 included."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = _Console()

#: Help of ``--costs`` and ``--vcpus``, the same on every command that prices results.
COSTS_HELP = "cost profile: a shipped name (zvm-2006, kvm-2025) or a .toml file overriding one (docs/costs.md)"
VCPUS_HELP = "virtual CPUs of each guest whose trace does not say (default 1)"
#: Help of ``--tier-pages``, the same on every command that replays.
TIER_HELP = ("a fast host swap tier of that many pages before the disk (z/VM expanded storage, "
             "zswap), for strategies that page on the host with one (docs/model.md); 0: none")


def cli_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every error a user can cause into one stderr line and exit status 2.

    The one error path of the command line: :class:`cmmsim.tracer.errors.CmmsimError`
    (its message names the file or parameter and the reason), an ``OSError``
    (the path and the OS's reason), an arithmetic overflow, an allocation the
    machine refused, and a read error of polars or pyarrow that the library
    did not already name a file for. Anything else is a bug and keeps its
    traceback: nothing is caught that could hide a wrong result.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 (re-raised unless a user's error, below)
            message = error_line(exc)
            if message is None:
                raise
            typer.echo(f"cmmsim: error: {message}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def error_line(exc: BaseException) -> str | None:
    """The one-line message for an error a user can cause, or None for a bug.

    Undecodable bytes in paths are shown as ``\\xNN``, so the line always prints.
    """
    if isinstance(exc, CmmsimError):
        text = str(exc)
    elif isinstance(exc, OSError):
        reason = os_reason(exc)
        text = f"{show_path(exc.filename)}: {reason}" if exc.filename is not None else reason
    elif isinstance(exc, OverflowError):
        text = f"a number is too large ({exc})"
    elif isinstance(exc, MemoryError):
        text = f"out of memory ({exc or 'a size or count too large for this machine?'})"
    elif type(exc).__module__.split(".")[0] in ("polars", "pyarrow"):
        first = str(exc).strip().splitlines()
        text = f"cannot read the data: {first[0] if first else type(exc).__name__}"
    else:
        return None
    # One line whatever the message holds, printable whatever the terminal.
    return printable(" ".join(text.split()))


def check_outputs(*named: tuple[str, Path | None]) -> None:
    """Refuse, before any work, output paths that cannot be written or that name one file twice.

    Parameters
    ----------
    *named : (option, path or None)
        Each output option with its path (None: not asked for).
    """
    from cmmsim.tracer.io import check_output

    given = [(opt, p) for opt, p in named if p is not None]
    seen: dict[Path, str] = {}
    for opt, p in given:
        check_output(p)
        key = p.resolve()
        if key in seen:
            raise ParamError(f"{opt} and {seen[key]} name the same file {show_path(p)}")
        seen[key] = opt


def write_frames(*pairs: tuple[Any, Path | None]) -> list[Path]:
    """Write each (frame, path) given a path and a frame; all or none.

    Each file is written atomically; when one fails, those this call wrote
    before it are removed, so a failed command leaves none of its outputs.
    """
    from cmmsim.tracer.io import write_frame

    written: list[Path] = []
    try:
        for df, path in pairs:
            if path is not None and df is not None:
                written.append(write_frame(df, path))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print a list of same-keyed dicts as a rich table."""
    table = Table(title=printable(title))
    if not rows:
        console.print(f"{title}: (empty)")
        return
    for key in rows[0]:
        table.add_column(printable(str(key)),
                         justify="right" if isinstance(rows[0][key], int | float) else "left")
    for row in rows:
        table.add_row(*(printable(_fmt(v)) for v in row.values()))
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
