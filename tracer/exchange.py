"""Trace exchange with libCacheSim: export accesses, import its traces as guest traces.

Three of libCacheSim's trace formats, both ways (docs/exchange.md):

``csv``
    A header ``time,obj_id,obj_size`` then one request a line; libCacheSim
    reads it as a csv trace with ``time-col=1, obj-id-col=2, obj-size-col=3,
    has-header=true, delimiter=,`` (columns count from 1, as its readers do).
``txt``
    libCacheSim's plain text trace: one object id a line, nothing else.
``oracle-general``
    libCacheSim's oracleGeneral binary trace: packed little-endian records
    ``<IQIq``, 24 bytes each: ``time`` (uint32, seconds), ``obj_id`` (uint64),
    ``obj_size`` (uint32, bytes), ``next_access_vtime`` (int64: the index of
    the next request for the same object, -1 when there is none).

Export writes the trace's accesses (READ and WRITE; hints have no meaning
to a cache simulator) as 4 KiB objects. The object id is the page's rank
among the pages the trace accesses, in frame order: its pfn with the
frames the trace never names squeezed out. Times are whole units of
``time_unit`` (seconds by default, what libCacheSim's traces hold) since
the trace's zero. So export, import and export again give the same bytes.

Import reads accesses only: every request becomes READ events, one per
4 KiB page the request covers, at the request's time. Objects are mapped
densely to pages in ascending id order (numeric order when every id is a
number, else text order), each object as many pages as its largest request
needs; a request touches the first pages of its object. Requests of size 0
are skipped (and counted), as libCacheSim's readers skip them by default.
An imported trace carries no guest hints: only host policies (``host-lru``,
``static``, ``opt`` ...) are meaningful on it, and its metadata says so
(``params["hints"] == "none"``).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from cmmsim.tracer.errors import ParamError, TraceError, show_path
from cmmsim.tracer.io import atomic_output, read_arrays, write_trace
from cmmsim.tracer.schema import MAX_GUEST_PAGES, PAGE_SIZE_BYTES, Op, TraceMeta, count_ops

__all__ = [
    "FORMATS",
    "NO_HINTS",
    "ORACLE_GENERAL_DTYPE",
    "TIME_UNITS_NS",
    "CsvLayout",
    "ExportSummary",
    "ImportSummary",
    "export_requests",
    "export_trace",
    "import_trace",
    "next_access_vtime",
]

#: The formats both ways, by their command-line names.
FORMATS = ("csv", "txt", "oracle-general")
#: libCacheSim's oracleGeneral record (packed, little-endian, 24 bytes).
ORACLE_GENERAL_DTYPE = np.dtype([("time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access_vtime", "<i8")])
#: Nanoseconds per unit of the exchanged ``time`` column.
TIME_UNITS_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
#: Header of the exported csv (libCacheSim: time-col=1, obj-id-col=2, obj-size-col=3).
CSV_COLUMNS = ("time", "obj_id", "obj_size")
#: ``TraceMeta.params["hints"]`` of an imported trace: it has none.
NO_HINTS = "none"


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ParamError(f"--format {fmt}: unknown (known: {', '.join(FORMATS)})")
    return fmt


def _unit_ns(time_unit: str) -> int:
    if time_unit not in TIME_UNITS_NS:
        raise ParamError(f"--time-unit {time_unit}: unknown (known: {', '.join(TIME_UNITS_NS)})")
    return TIME_UNITS_NS[time_unit]


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote.

    Attributes
    ----------
    requests : int
        Requests written (the trace's READ and WRITE events).
    objects : int
        Distinct objects (4 KiB pages) among them.
    skipped_hints : int
        Hint events left out (they have no meaning to a cache simulator).
    """

    requests: int
    objects: int
    skipped_hints: int


def export_requests(path: str | os.PathLike, *, time_unit: str = "s") -> tuple[pl.DataFrame, int]:
    """The accesses of one trace as libCacheSim requests, plus the hint events left out.

    Returns
    -------
    (polars.DataFrame, int)
        Columns ``time`` (uint64, units of ``time_unit``), ``obj_id`` (uint64,
        the page's rank among accessed pages), ``obj_size`` (uint32, bytes,
        always 4096), ``next_access_vtime`` (int64, index of the next request
        of the same object or -1); and the number of hint events skipped.
    """
    unit_ns = _unit_ns(time_unit)
    arr = read_arrays(path)
    access = arr.op <= Op.WRITE
    pfn = arr.pfn[access]
    t_ns = arr.t_ns[access]
    _, obj = np.unique(pfn, return_inverse=True)
    obj = obj.astype(np.uint64)
    return pl.DataFrame(
        {
            "time": (t_ns // unit_ns).astype(np.uint64),
            "obj_id": obj,
            "obj_size": np.full(len(obj), PAGE_SIZE_BYTES, np.uint32),
            "next_access_vtime": next_access_vtime(obj),
        }
    ), int(len(arr.op) - len(pfn))


def next_access_vtime(obj_id: np.ndarray) -> np.ndarray:
    """For each request, the index of the next request of the same object (-1: none).

    Parameters
    ----------
    obj_id : numpy.ndarray
        Object ids in request order.

    Returns
    -------
    numpy.ndarray
        int64, one per request.
    """
    n = len(obj_id)
    order = np.argsort(obj_id, kind="stable")
    ks = obj_id[order]
    same = ks[1:] == ks[:-1]
    nxt = np.full(n, -1, np.int64)
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def export_trace(path: str | os.PathLike, out: str | os.PathLike, fmt: str, *, time_unit: str = "s") -> ExportSummary:
    """Write one guest trace's accesses as a libCacheSim trace (atomically).

    Parameters
    ----------
    path : path-like
        A cmmsim trace (.parquet).
    out : path-like
        Output file.
    fmt : str
        ``csv``, ``txt`` or ``oracle-general``.
    time_unit : str
        Unit of the ``time`` column: ``s`` (libCacheSim's, default), ``ms``,
        ``us`` or ``ns``; times are truncated to whole units.

    Returns
    -------
    ExportSummary
    """
    _check_format(fmt)
    df, skipped = export_requests(path, time_unit=time_unit)
    if fmt == "oracle-general":
        big = df["time"] > np.iinfo(np.uint32).max
        if big.any():
            row = int(big.arg_max())
            raise ParamError(
                f"{show_path(path)}: access {row}: time {df['time'][row]} {time_unit} does not fit "
                "oracleGeneral's uint32 (use a coarser --time-unit)"
            )
        rec = np.empty(df.height, ORACLE_GENERAL_DTYPE)
        for name in ORACLE_GENERAL_DTYPE.names:
            rec[name] = df[name].to_numpy()
    with atomic_output(out) as tmp:
        if fmt == "oracle-general":
            rec.tofile(tmp)
        elif fmt == "csv":
            df.select(CSV_COLUMNS).write_csv(tmp, include_header=True)
        else:
            df.select("obj_id").write_csv(tmp, include_header=False)
    objects = int(df["obj_id"].max()) + 1 if df.height else 0
    return ExportSummary(requests=df.height, objects=objects, skipped_hints=skipped)


# ---------------------------------------------------------------- import


@dataclass(frozen=True)
class CsvLayout:
    """Where a libCacheSim csv trace keeps its fields (columns count from 1; 0: absent).

    Attributes
    ----------
    time_col, obj_id_col, obj_size_col : int
        Column of the request time, the object id and the object size (bytes).
    delimiter : str
        One character.
    header : bool or None
        Whether the first line is a header; None: a first line whose time or
        size field is not a number (or, with neither, whose id is not) is one.
    """

    time_col: int = 1
    obj_id_col: int = 2
    obj_size_col: int = 3
    delimiter: str = ","
    header: bool | None = None


def _read_bytes(path: Path) -> bytes:
    from cmmsim.tracer.linux.textio import open_binary

    with open_binary(path) as f:
        return f.read()


def _lines(path: Path, data: bytes) -> pl.Series:
    """Every line of a text file as one string (an empty line: empty), in order."""
    if not data:
        return pl.Series("line", [], pl.String)
    # One column whose separator never occurs: polars splits lines only, in parallel;
    # an empty line stays a row (null), so row i is line i + 1.
    try:
        df = pl.read_csv(
            io.BytesIO(data),
            has_header=False,
            separator="\x1f",
            quote_char=None,
            schema={"line": pl.String},
            encoding="utf8-lossy",
        )
    except pl.exceptions.PolarsError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TraceError(f"{show_path(path)}: cannot read as text: {first}") from None
    return df["line"].fill_null("").str.strip_chars_end("\r")


def _bad_line(path: Path, rows: pl.Series, mask: pl.Series, first_line: int, what: str) -> None:
    """Raise naming the first line where ``mask`` holds."""
    if mask.any():
        i = int(mask.arg_max())
        text = rows[i]
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise TraceError(f"{show_path(path)}: line {first_line + i}: {what}: {shown!r}")


def _parse_txt(path: Path, data: bytes) -> tuple[pl.Series, None, None, int]:
    lines = _lines(path, data)
    ids = lines.str.strip_chars()
    _bad_line(path, lines, (ids == "") | ids.str.contains(r"\s"), 1, "expected one object id (no blanks)")
    return ids, None, None, 1


def _field(parts: pl.Series, col: int) -> pl.Series:
    return parts.list.get(col - 1, null_on_oob=True).str.strip_chars()


def _parse_csv(path: Path, data: bytes, layout: CsvLayout) -> tuple[pl.Series, pl.Series | None, pl.Series | None, int]:
    if len(layout.delimiter) != 1:
        raise ParamError(f"--delimiter {layout.delimiter!r}: must be one character")
    if layout.obj_id_col < 1:
        raise ParamError(f"--obj-id-col {layout.obj_id_col}: must be 1 or more")
    for opt, col in (("--time-col", layout.time_col), ("--obj-size-col", layout.obj_size_col)):
        if col < 0:
            raise ParamError(f"{opt} {col}: must be 0 (absent) or more")
    lines = _lines(path, data)
    header = layout.header
    if header is None and len(lines):
        first = lines[:1].str.split(layout.delimiter)
        numeric = [c for c in (layout.time_col, layout.obj_size_col) if c] or [layout.obj_id_col]
        header = any(_field(first, c).cast(pl.Float64, strict=False).is_null().any() for c in numeric)
    first_line = 2 if header else 1
    if header:
        lines = lines[1:]
    parts = lines.str.split(layout.delimiter)
    need = max(layout.time_col, layout.obj_id_col, layout.obj_size_col)
    _bad_line(path, lines, parts.list.len() < need, first_line, f"expected at least {need} fields")
    ids = _field(parts, layout.obj_id_col)
    _bad_line(path, lines, ids == "", first_line, "empty object id")
    time = size = None
    if layout.time_col:
        raw = _field(parts, layout.time_col)
        time = raw.cast(pl.Int64, strict=False)
        if time.is_null().any():  # fractional times are allowed, any other text is not
            as_float = raw.cast(pl.Float64, strict=False)
            # "nan" and "inf" parse as floats: NaN became int64's minimum (and a
            # warning), a negative time blamed on the output's row 0.
            bad = as_float.is_null() | ~as_float.is_finite() | (as_float < 0)
            _bad_line(path, lines, bad, first_line, "time is not a number >= 0")
            time = as_float
        _bad_line(path, lines, time < 0, first_line, "time is not a number >= 0")
    if layout.obj_size_col:
        size = _field(parts, layout.obj_size_col).cast(pl.Int64, strict=False)
        _bad_line(path, lines, size.is_null() | (size < 0), first_line, "object size is not an integer >= 0")
    return ids, time, size, first_line


def _parse_oracle_general(path: Path, data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rec_size = ORACLE_GENERAL_DTYPE.itemsize
    if len(data) % rec_size:
        raise TraceError(
            f"{show_path(path)}: record {len(data) // rec_size}: cut short "
            f"({len(data):,} bytes is not a whole number of {rec_size}-byte oracleGeneral records)"
        )
    rec = np.frombuffer(data, ORACLE_GENERAL_DTYPE)
    return rec["obj_id"], rec["time"].astype(np.int64), rec["obj_size"].astype(np.int64)


def _times_ns(path: Path, time: np.ndarray, unit_ns: int) -> np.ndarray:
    """Times in ``unit_ns`` units as int64 ns: exact for whole numbers, rounded for fractions."""
    limit = np.iinfo(np.int64).max // unit_ns
    big = np.flatnonzero(time > limit)
    if big.size:
        raise TraceError(
            f"{show_path(path)}: request {int(big[0])}: time {time[big[0]]} does not fit "
            "int64 nanoseconds (check --time-unit)"
        )
    if time.dtype.kind == "f":
        return np.rint(time * unit_ns).astype(np.int64)
    return time.astype(np.int64) * unit_ns


def _dense(ids: pl.Series | np.ndarray) -> tuple[np.ndarray, int]:
    """Each id's rank among the distinct ids (numeric order if all are numbers, else text)."""
    if isinstance(ids, pl.Series):
        as_int = ids.cast(pl.UInt64, strict=False)
        ids = as_int.to_numpy() if not as_int.is_null().any() else ids.to_numpy()
    uniq, inv = np.unique(ids, return_inverse=True)
    return inv.astype(np.int64).reshape(-1), len(uniq)


@dataclass(frozen=True)
class ImportSummary:
    """What an import made of a libCacheSim trace (the counters also go into the trace's metadata)."""

    requests: int
    objects: int
    guest_pages: int
    events: int
    size_zero_skipped: int
    time_repaired: int


def import_trace(
    path: str | os.PathLike,
    out: str | os.PathLike,
    fmt: str,
    *,
    layout: CsvLayout | None = None,
    time_unit: str = "s",
    request_ns: int = 1000,
) -> ImportSummary:
    """Read a libCacheSim csv, txt or oracleGeneral trace and write it as a guest trace.

    Parameters
    ----------
    path : path-like
        Input trace (plain, .gz, .xz, .bz2 or .zst).
    out : path-like
        Output cmmsim trace (.parquet), written atomically.
    fmt : str
        ``csv``, ``txt`` or ``oracle-general``.
    layout : CsvLayout, optional
        Columns of a csv trace (default: cmmsim's export layout).
    time_unit : str
        Unit of the input's times: ``s`` (default), ``ms``, ``us`` or ``ns``.
    request_ns : int
        Nanoseconds between requests when the input has no times (txt, or csv
        without a time column). It sets the trace's duration, and so every
        per-second figure of a replay, by construction.

    Returns
    -------
    ImportSummary
    """
    _check_format(fmt)
    unit_ns = _unit_ns(time_unit)
    if request_ns < 0:
        raise ParamError(f"--request-ns {request_ns}: must be 0 or more")
    path = Path(path)
    data = _read_bytes(path)
    if fmt == "oracle-general":
        ids, time, size = _parse_oracle_general(path, data)
    else:
        ids, time, size, _ = _parse_txt(path, data) if fmt == "txt" else _parse_csv(path, data, layout or CsvLayout())
        time = None if time is None else time.to_numpy()  # int64, or float64 if fractional
        size = None if size is None else size.to_numpy()
    del data
    n = len(ids)
    keep = np.ones(n, bool) if size is None else size > 0
    zero = int(n - keep.sum())
    obj, n_obj = _dense(ids.filter(pl.Series(keep)) if isinstance(ids, pl.Series) else ids[keep])
    n_req = len(obj)
    if not n_req:  # a trace of 0 events would replay to all zeros, as if it were a result
        sized = f" ({zero:,} of size 0)" if zero else ""
        raise TraceError(f"{show_path(path)}: no request to import{sized}")
    if time is None:
        t_req = np.arange(n_req, dtype=np.int64) * request_ns
        repaired = 0
    else:
        t_req = _times_ns(path, time[keep], unit_ns)
        back = np.concatenate([[False], np.diff(t_req) < 0]) if n_req else np.zeros(0, bool)
        repaired = int(back.sum())
        # libCacheSim traces may step back in time; the schema's time never does.
        t_req = np.maximum.accumulate(t_req) if n_req else t_req
    if size is None:
        pages_req = np.ones(n_req, np.int64)
    else:
        pages_req = -(-size[keep] // PAGE_SIZE_BYTES)
    obj_pages = np.zeros(n_obj, np.int64)
    np.maximum.at(obj_pages, obj, pages_req)
    guest_pages = int(obj_pages.sum())
    if guest_pages > MAX_GUEST_PAGES:
        raise TraceError(
            f"{show_path(path)}: the objects need {guest_pages:,} pages, more than a guest "
            f"may have ({MAX_GUEST_PAGES:,})"
        )
    base = np.cumsum(obj_pages) - obj_pages
    ends = np.cumsum(pages_req)
    total = int(ends[-1]) if n_req else 0
    within = np.arange(total, dtype=np.int64) - np.repeat(ends - pages_req, pages_req)
    pfn = (np.repeat(base[obj], pages_req) + within).astype(np.uint32)
    t_ns = np.repeat(t_req, pages_req)
    op = np.zeros(total, np.uint8)  # READ: the formats carry no operation
    summary = ImportSummary(
        requests=n_req,
        objects=n_obj,
        guest_pages=max(guest_pages, 1),
        events=total,
        size_zero_skipped=zero,
        time_repaired=repaired,
    )
    meta = TraceMeta(
        guest_pages=summary.guest_pages,
        source=f"libcachesim:{fmt}",
        params={
            "hints": NO_HINTS,
            "file": Path(path).name,
            "format": fmt,
            "time_unit": time_unit if time is not None else None,
            "request_ns": request_ns if time is None else None,
            "note": "accesses only, no guest hints: only host policies are meaningful",
        },
        event_counts=count_ops(op),
        converter={
            "requests": n_req,
            "objects": n_obj,
            "size_zero_skipped": zero,
            "time_repaired": repaired,
            "page_events": total,
        },
    )
    write_trace(out, t_ns, pfn, op, meta)
    return summary
