"""Progress of long commands, on standard error, the same way for every command.

On a terminal a rich progress bar; otherwise (a log file, a pipe, a batch
job) a plain line every few seconds, so a long run is never silent, and a last
line when it ends (none for work done within the first interval). Nothing
goes to standard output: data a command prints or writes is never mixed
with progress. ``--quiet`` (or ``quiet=True``) silences it all.

The interval between plain lines is ``CMMSIM_PROGRESS_INTERVAL_S`` seconds
(default :data:`DEFAULT_INTERVAL_S`), read when a :class:`Reporter` is made.

When numba's cache held no compiled kernel as a :class:`Reporter` was made
(make it before importing the replay modules: some compile small kernels on
import), its first task starts with one line saying the kernels are compiled
once and cached, and where (``NUMBA_CACHE_DIR``, set by
:mod:`cmmsim.tracer._numba_cache`). Printed at the task, not before, so a
command refusing its arguments still says one line only.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

__all__ = ["DEFAULT_INTERVAL_S", "INTERVAL_ENV", "Reporter", "Task"]

#: Seconds between plain progress lines when standard error is not a terminal.
DEFAULT_INTERVAL_S = 5.0
INTERVAL_ENV = "CMMSIM_PROGRESS_INTERVAL_S"


def _interval_s() -> float:
    raw = os.environ.get(INTERVAL_ENV)
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value >= 0 else DEFAULT_INTERVAL_S


def _amount(n: float, unit: str) -> str:
    if unit == "bytes":
        for size, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if n >= size:
                return f"{n / size:,.1f} {name}"
        return f"{int(n):,} B"
    return f"{int(n):,} {unit}"


class Task:
    """One unit of progress: call :meth:`advance` as work is done."""

    def __init__(
        self, reporter: Reporter, description: str, total: float | None, unit: str, bar: Progress | None
    ) -> None:
        self._r = reporter
        self.description = description
        self.total = total
        self.unit = unit
        self.done = 0.0
        self.fields: dict[str, Any] = {}
        self._bar = bar
        self._id = bar.add_task(description, total=total) if bar is not None else None
        self._t0 = time.monotonic()
        self._last = self._t0
        #: Plain progress lines printed so far (a task shorter than the interval prints none).
        self.lines = 0

    def advance(self, amount: float = 1, **fields: Any) -> None:
        """Count ``amount`` more units done (and set any shown ``fields``, e.g. ``failed=2``)."""
        self.done += amount
        self.fields.update(fields)
        if self._bar is not None:
            self._bar.update(self._id, advance=amount, description=self._described())
            return
        now = time.monotonic()
        if now - self._last >= self._r.interval_s:
            self._last = now
            self.lines += 1
            self._r.line(self.status(now))

    def print(self, text: str) -> None:
        """A line of its own on standard error (above the bar on a terminal)."""
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            self._r.line(text)

    def _described(self) -> str:
        extra = "  ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in self.fields.items())
        return f"{self.description}  {extra}" if extra else self.description

    def status(self, now: float | None = None) -> str:
        """The plain progress line: done of total, share, elapsed seconds."""
        elapsed = (now or time.monotonic()) - self._t0
        if self.total:
            # "1,000 of 5,000 events (20%)"; bytes keep a unit each ("1.0 MiB of 2.0 MiB").
            done = _amount(self.done, self.unit) if self.unit == "bytes" else f"{int(self.done):,}"
            # Rounded down: "100%" only when all is done, not at 99.6 %.
            text = f"{done} of {_amount(self.total, self.unit)} ({int(100 * self.done // self.total)}%)"
        else:
            text = _amount(self.done, self.unit)
        return f"{self._described()}: {text}, {elapsed:,.0f} s"


class Reporter:
    """Where a command's progress goes: a bar on a terminal, plain lines elsewhere, or nowhere.

    Parameters
    ----------
    quiet : bool
        Print nothing.
    stream : text IO, optional
        Where to write (default: standard error).
    interval_s : float, optional
        Seconds between plain lines (default: ``CMMSIM_PROGRESS_INTERVAL_S``
        or :data:`DEFAULT_INTERVAL_S`).
    terminal : bool, optional
        Draw a bar (default: whether ``stream`` is a terminal).
    """

    def __init__(
        self,
        *,
        quiet: bool = False,
        stream: IO[str] | None = None,
        interval_s: float | None = None,
        terminal: bool | None = None,
    ) -> None:
        self.quiet = quiet
        self._stream = stream
        self.interval_s = _interval_s() if interval_s is None else interval_s
        out = self._out()
        self.terminal = bool(out.isatty()) if terminal is None else terminal
        self._cache_dir = os.environ.get("NUMBA_CACHE_DIR")
        self._cold = bool(self._cache_dir) and not any(Path(self._cache_dir).rglob("*.nbi"))

    def _out(self) -> IO[str]:
        # Looked up at each write: a test runner swaps sys.stderr per invocation.
        return self._stream if self._stream is not None else sys.stderr

    def line(self, text: str) -> None:
        """One plain line on standard error (unless quiet)."""
        if not self.quiet:
            out = self._out()
            out.write(text + "\n")
            out.flush()

    @contextlib.contextmanager
    def task(self, description: str, total: float | None = None, unit: str = "events") -> Iterator[Task]:
        """A task with its bar or its plain lines; a last line says what was done.

        Parameters
        ----------
        description : str
            What is being done (``replay``, ``convert``...).
        total : float, optional
            Units expected (None: unknown, no share shown).
        unit : str
            ``events``, ``jobs``, ``bytes``...
        """
        if self.quiet:
            yield Task(self, description, total, unit, None)
            return
        self.compile_notice()
        if not self.terminal:
            task = Task(self, description, total, unit, None)
            yield task
            # Work shorter than one interval says nothing: a short command's
            # standard error stays its own (one line when it fails).
            if task.lines:
                self.line(task.status() + " (done)")
            return
        columns: list[Any] = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn()]
        if unit == "bytes":
            columns += [DownloadColumn(), TransferSpeedColumn()]
        else:
            columns += [MofNCompleteColumn(), TextColumn(unit)]
        columns += [TimeElapsedColumn(), TimeRemainingColumn()]
        console = Console(file=self._out(), stderr=self._stream is None)
        with Progress(*columns, console=console, transient=False) as bar:
            yield Task(self, description, total, unit, bar)

    def compile_notice(self) -> None:
        """Say once that kernels are compiled once and cached, if the cache was empty.

        Nothing is said when the cache folder held compiled kernels (``*.nbi``
        index files) as this reporter was made, or when the folder is unknown.
        """
        if not self._cold:
            return
        self._cold = False
        folder = self._cache_dir
        self.line(
            f"compiling the numba kernels once (on a busy machine this can take minutes); "
            f"they are cached in {folder} for later runs"
        )
