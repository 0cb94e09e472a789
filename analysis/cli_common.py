"""What every ``cmmsim`` command module shares: the app, the console, errors, tables.

The command modules (:mod:`cmmsim.cli_trace`, :mod:`cmmsim.cli_replay`,
:mod:`cmmsim.cli_sweep`) import this one and register their commands on
:data:`app`; :mod:`cmmsim.cli` imports them. Nothing here imports a command
module, so imports run one way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
    """A rich console that prints any text, file names that are not UTF-8 included.

    A line of text is never folded: rich folds at 80 columns when the output is
    not a terminal, which splits a long path (and a script's ``grep``) in two;
    a terminal folds long lines itself. Tables still fit the width.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if objects and all(isinstance(o, str) for o in objects):
            kwargs.setdefault("soft_wrap", True)
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = _Console()

#: Help of ``--costs`` and ``--vcpus``, the same on every command that prices results.
COSTS_HELP = "cost profile: a shipped name (zvm-2006, kvm-2025) or a .toml file overriding one (docs/costs.md)"
#: Help of ``--quiet`` on every command that shows progress (:mod:`cmmsim.progress`).
QUIET_HELP = "no progress lines or bars on stderr (results are printed all the same)"
VCPUS_HELP = (
    "virtual CPUs of each guest whose trace does not say (default 1): the divisor of overhead_pct by "
    "construction, and of nothing else"
)
#: Help of ``--budget``, the same on every command: what ``50%`` is a share of.
BUDGET_HELP = "host budget: pages (4096), bytes (256MiB) or a percentage of the guests' total memory (50%); repeatable"
#: Help of ``--tier-pages``, the same on every command that replays.
TIER_HELP = (
    "a fast host swap tier of that many pages before the disk (z/VM expanded storage, "
    "zswap), for every strategy that pages on the host (not static, opt, opt-schedule; docs/model.md); 0: none"
)


def cli_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every error a user can cause into one stderr line and exit status 2
    (an interrupt, Ctrl-C, into one line and status 130).

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
        except KeyboardInterrupt:
            # One line, as for an error: each output is written whole or not at all.
            typer.echo("cmmsim: interrupted", err=True)
            raise typer.Exit(130) from None
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


def check_outputs(*named: tuple[str, Path | None], inputs: Sequence[Path] = ()) -> None:
    """Refuse, before any work, output paths that cannot be written, that name one file
    twice or that name an input.

    Parameters
    ----------
    *named : (option, path or None)
        Each output option with its path (None: not asked for).
    inputs : sequence of Path
        The files the command reads (a scenario folder: the traces in it too).
    """
    from cmmsim.replay.scenario import expand_inputs
    from cmmsim.tracer.io import check_output

    read = list(inputs)
    for folder in (i for i in inputs if Path(i).is_dir()):
        try:
            read += expand_inputs([folder])
        except CmmsimError:
            pass  # the command's own reading of it says what is wrong
    given = [(opt, p) for opt, p in named if p is not None]
    seen: dict[Path, str] = {}
    for opt, p in given:
        check_output(p, inputs=read)
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


#: Columns a table keeps however narrow it gets: a cell gets at least this many
#: characters before its text folds onto the next line.
MIN_TEXT_WIDTH = 10
#: Characters a column costs beyond its cells in a rich table: a border and two of padding.
_COLUMN_EXTRA = 3


def print_table(
    title: str, rows: list[dict[str, Any]], *, keys: int | None = None, formats: dict[str, str] | None = None
) -> None:
    """Print a list of same-keyed dicts as a rich table that fits the terminal.

    Numbers are never cut or folded: headers fold at ``_`` and ``-``, text
    cells fold, and when the numbers still do not fit the table is printed
    in parts, each repeating the ``keys`` leading columns.

    Parameters
    ----------
    title : str
        Printed above the table (above each part).
    rows : list of dict
        One dict per row, the same keys in the same order (the columns).
    keys : int, optional
        Leading columns repeated in every part (default: the leading text
        columns and budget columns, e.g. trace_set, label, budget_pages, budget_mib).
    formats : dict of str, optional
        Column -> format spec for its numbers (default: thousands separators,
        three decimals below 1,000).
    """
    if not rows:
        console.print(f"{title}: (empty)")
        return
    names = list(rows[0])
    numeric = [_is_number_column([row[k] for row in rows]) for k in names]
    fmts = formats or {}
    cells = [[printable(_fmt(row[k], fmts.get(k))) for k in names] for row in rows]
    cell_w = [max((len(r[i]) for r in cells), default=0) for i in range(len(names))]
    text_keys = 0
    while text_keys < len(names) - 1 and not numeric[text_keys]:
        text_keys += 1
    if keys is None:
        keys = text_keys
        while keys < len(names) - 1 and numeric[keys] and names[keys].startswith("budget"):
            keys += 1
    # Narrowest each column may get: numbers whole; headers at their longest
    # piece between _ and -; text folds down to MIN_TEXT_WIDTH.
    head_w = [max(len(p) for p in _header_pieces(str(n))) for n in names]
    need = [
        max(cell_w[i], head_w[i]) if numeric[i] else min(max(cell_w[i], head_w[i]), max(MIN_TEXT_WIDTH, head_w[i]))
        for i in range(len(names))
    ]
    natural = [max(cell_w[i], len(str(names[i]))) for i in range(len(names))]
    avail = max(console.width - 1, 20)

    def key_width(k: int) -> int:
        # Parts are packed leaving the repeated text keys (trace set names) whole where they are short.
        return sum(
            (natural[i] if not numeric[i] and natural[i] <= 2 * MIN_TEXT_WIDTH else need[i]) + _COLUMN_EXTRA
            for i in range(k)
        )

    widest = max((need[i] + _COLUMN_EXTRA for i in range(keys, len(names))), default=0)
    for fewer in (text_keys, 1):
        # Keys that leave no room for a value column: repeat fewer of them.
        if key_width(keys) + widest > avail and fewer < keys:
            keys = fewer
            widest = max((need[i] + _COLUMN_EXTRA for i in range(keys, len(names))), default=0)
    parts: list[list[int]] = []
    current: list[int] = []
    base = key_width(keys)
    for i in range(keys, len(names)):
        if current and base + sum(need[j] + _COLUMN_EXTRA for j in current) + need[i] + _COLUMN_EXTRA > avail:
            parts.append(current)
            current = []
        current.append(i)
    parts.append(current)
    for n, part in enumerate(parts):
        cols = [*range(keys), *part]
        widths = _fit(
            [natural[i] for i in cols],
            [need[i] for i in cols],
            avail - _COLUMN_EXTRA * len(cols),
            [numeric[i] for i in cols],
        )
        suffix = f" ({n + 1}/{len(parts)})" if len(parts) > 1 else ""
        table = Table(title=Text(printable(title + suffix)))
        for i, w in zip(cols, widths, strict=True):
            # Text, not markup: a label such as cmm[reclaim_order=lru] would lose its brackets.
            header = Text(printable(_wrap_header(str(names[i]), w)))
            if numeric[i]:
                table.add_column(header, justify="right", no_wrap=True, width=w)
            else:
                table.add_column(header, justify="left", overflow="fold", width=w)
        for row in cells:
            table.add_row(*(Text(row[i]) for i in cols))
        console.print(table)


#: A number already formatted, with its standard error perhaps (``1,908``, ``0.4777±0.0012``).
_NUMBER_TEXT = re.compile(r"^[-+]?[\d,]*\.?\d+(?:e[-+]?\d+)?(?:±[\d,]*\.?\d+(?:e[-+]?\d+)?)?$")


def _is_number_column(values: list[Any]) -> bool:
    """Whether a column holds numbers (nulls aside), so is right-aligned and never folded."""
    known = [v for v in values if v is not None]
    return bool(known) and all(
        (isinstance(v, int | float) and not isinstance(v, bool)) or (isinstance(v, str) and _NUMBER_TEXT.match(v))
        for v in known
    )


def _fit(natural: list[int], need: list[int], room: int, numeric: list[bool]) -> list[int]:
    """Column widths from ``natural`` down towards ``need`` until they sum to ``room``.

    Number columns give up width first (only their headers, broken at ``_``
    and ``-``, get narrower), then text columns (their cells fold), widest
    first; none goes below ``need``.
    """
    widths = list(natural)
    for shrink_text in (False, True):
        while sum(widths) > room:
            slack = [w - n if (shrink_text or num) else 0 for w, n, num in zip(widths, need, numeric, strict=True)]
            if max(slack) <= 0:
                break
            widths[slack.index(max(slack))] -= 1
    return widths


def _header_pieces(name: str) -> list[str]:
    """``budget_from_mib`` -> ``["budget_", "from_", "mib"]``: where a header may break."""
    pieces, word = [], ""
    for ch in name:
        word += ch
        if ch in "_- ":
            pieces.append(word)
            word = ""
    return [*pieces, word] if word else pieces or [""]


def _wrap_header(name: str, width: int) -> str:
    """A header on as few lines of at most ``width`` as its ``_``/``-`` breaks allow."""
    lines, line = [], ""
    for piece in _header_pieces(name):
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += piece
    lines.append(line)
    return "\n".join(lines)


def print_params(title: str, params_cls: type) -> None:
    """Print a params dataclass (a workload's, a strategy's) as a table of its fields."""
    rows = [{"parameter": n, "type": t, "default": d, "meaning": h} for n, t, d, h in params.describe(params_cls)]
    print_table(title, rows or [{"parameter": "(none)", "type": "", "default": "", "meaning": ""}])


def _fmt(v: Any, spec: str | None = None) -> str:
    if spec is not None and isinstance(v, int | float) and not isinstance(v, bool):
        return format(v, spec)
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "" if v is None else str(v)
