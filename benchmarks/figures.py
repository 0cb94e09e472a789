"""Benchmark figures: one structure printed to the terminal and written as JSON.

Every ``bench_*.py`` builds its results as :class:`Table` objects and a few
summary lines, prints them, and writes a record with :func:`write_record`:

.. code-block:: text

    {"schema": 1, "benchmark": "replay", "date": "2026-12-01T09:30:00Z",
     "commit": "<git HEAD>", "dirty": false,
     "command": "python benchmarks/bench_replay.py --events 20000000",
     "machine": {"cores": 2, "cpu_model": ..., "python": ..., "numba": ..., ...},
     "params": {...the run's arguments...},
     "tables": [{"title": ..., "columns": [{"key", "header", "format"}], "rows": [{...}]}],
     "lines": ["summary line", ...]}

By default the record goes to ``benchmarks/results/<benchmark>.json``, the
runs ``docs/performance.md`` quotes (``python benchmarks/render.py`` turns
them into its tables); ``--json PATH`` sends a scratch run elsewhere.
Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from cmmsim.tracer.io import atomic_output

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCHEMA = 1


@dataclass(frozen=True)
class Column:
    """One column: the row key, its header and a format spec (``",.2f"``, ``""``).

    ``suffix`` follows every formatted value (``"x"`` for ratios).
    """

    key: str
    header: str
    fmt: str = ""
    suffix: str = ""

    def cell(self, value: Any) -> str:
        """``value`` formatted for this column (``nan`` for missing numbers)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "nan"
        if isinstance(value, str):  # also "inf", which JSON cannot hold as a number
            return value + (self.suffix if self.fmt else "")
        return format(value, self.fmt) + self.suffix


@dataclass
class Table:
    """A titled table of rows (dicts keyed by the columns' keys)."""

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, **row: Any) -> None:
        """Append a row; every column's key must be given."""
        missing = [c.key for c in self.columns if c.key not in row]
        if missing:
            raise KeyError(f"{self.title}: row lacks {missing}")
        self.rows.append(row)

    def text(self) -> str:
        """The title, then fixed-width columns: the first left-aligned, the others right."""
        cells = [[c.header for c in self.columns]] + [[c.cell(r[c.key]) for c in self.columns] for r in self.rows]
        widths = [max(len(row[k]) for row in cells) for k in range(len(self.columns))]
        lines = [self.title] if self.title else []
        for row in cells:
            parts = [row[0].ljust(widths[0])] + [v.rjust(w + 2) for v, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("".join(parts).rstrip())
        return "\n".join(lines)

    def markdown(self) -> str:
        """A markdown table (numbers right-aligned)."""
        head = "| " + " | ".join(c.header for c in self.columns) + " |"
        rule = "|" + "|".join("---" if k == 0 else "---:" for k in range(len(self.columns))) + "|"
        body = ["| " + " | ".join(c.cell(r[c.key]) for c in self.columns) + " |" for r in self.rows]
        return "\n".join([head, rule, *body])

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": [{"key": c.key, "header": c.header, "format": c.fmt, "suffix": c.suffix} for c in self.columns],
            "rows": [{k: _plain(v) for k, v in r.items()} for r in self.rows],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Table:
        cols = [Column(c["key"], c["header"], c.get("format", ""), c.get("suffix", "")) for c in d["columns"]]
        return cls(d["title"], cols, [dict(r) for r in d["rows"]])


def _plain(v: Any) -> Any:
    """numpy scalars and paths as JSON values (NaN as null, infinities as "inf")."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, Path):
        return str(v)
    return v


def add_json_argument(ap: argparse.ArgumentParser) -> None:
    """``--json PATH``: where the record goes (default: benchmarks/results/<name>.json)."""
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the figures here instead of benchmarks/results/<name>.json (the runs docs/performance.md quotes)",
    )


def git_state(root: Path = ROOT) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether tracked files differ from it); Nones outside a checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return head, bool(status.strip())


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _version(module: str) -> str | None:
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None


def machine_facts() -> dict[str, Any]:
    """Cores, CPU model, OS and the versions the figures depend on."""
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{name: _version(name) for name in ("numba", "numpy", "polars", "pyarrow", "libcachesim")},
    }


def command_line(argv: list[str] | None = None) -> str:
    """The command as run, the script's path relative to the checkout when it is inside."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    if script.is_relative_to(ROOT):
        argv[0] = script.relative_to(ROOT).as_posix()
    return shlex.join(["python", *argv])


def record(
    name: str,
    tables: list[Table],
    *,
    params: dict[str, Any] | None = None,
    lines: list[str] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The JSON record of one run (see the module docstring)."""
    commit, dirty = git_state()
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "schema": SCHEMA,
        "benchmark": name,
        "date": when,
        "commit": commit,
        "dirty": dirty,
        "command": command_line(),
        "machine": machine_facts(),
        "params": {k: _plain(v) for k, v in (params or {}).items()},
        "tables": [t.to_json() for t in tables],
        "lines": list(lines or []),
    }


def write_record(
    name: str,
    tables: list[Table],
    *,
    path: Path | None = None,
    params: dict[str, Any] | None = None,
    lines: list[str] | None = None,
) -> Path:
    """Write the run's record as JSON, atomically; returns the path written.

    Parameters
    ----------
    name : str
        Benchmark name; the default file is ``benchmarks/results/<name>.json``.
    tables : list of Table
        The figures.
    path : Path, optional
        Where to write instead (``--json``).
    params : dict, optional
        The run's arguments (sizes, repeats, inputs).
    lines : list of str, optional
        Summary lines as printed.
    """
    out = Path(path) if path is not None else RESULTS_DIR / f"{name}.json"
    text = json.dumps(record(name, tables, params=params, lines=lines), indent=2, allow_nan=False) + "\n"
    with atomic_output(out) as tmp:
        tmp.write_text(text)
    print(f"figures written to {out}")
    return out


def emit(name: str, tables: list[Table], args: argparse.Namespace, lines: list[str] | None = None) -> Path:
    """Print the tables and the summary lines, then write the record (``args.json`` or the default).

    ``args`` (the parsed command line, less ``--json``) is recorded as the run's parameters.
    """
    for t in tables:
        print(t.text())
    for line in lines or []:
        print(line)
    params = {k: v for k, v in vars(args).items() if k != "json"}
    return write_record(name, tables, path=args.json, params=params, lines=lines)
