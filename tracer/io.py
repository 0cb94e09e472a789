"""Read, write and validate cmmsim trace files (Parquet).

Writes are atomic (temporary file in the target folder, then ``os.replace``),
so a crash never leaves a half-written trace under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cmmsim.tracer.errors import (
    CmmsimError,
    OutputError,
    ResultsError,
    TraceError,
    os_reason,
    show_path,
)
from cmmsim.tracer.schema import (
    ARROW_SCHEMA,
    COLUMNS,
    MAX_GUEST_PAGES,
    MAX_VCPUS,
    META_KEYS,
    N_OPS,
    OPTIONAL_META_KEYS,
    PAGE_SIZE_BYTES,
    SCHEMA_VERSION,
    Op,
    TraceMeta,
    count_ops,
    validate_arrays,
)

#: Rows per Parquet row group: large enough for good compression, small
#: enough that one group streams through the engine in a few MB.
ROW_GROUP_ROWS = 1 << 20

_WRITE_OPTIONS = dict(
    compression="zstd",
    # Level 6: close to level 9's size on the sample traces and faster to
    # write, which conversion speed needs (docs/perf-log.md, Trace size).
    compression_level=6,
    # Timestamps grow slowly, op codes repeat and frame numbers share high
    # bytes: delta, dictionary and byte-stream-split encodings keep the
    # sample traces within 3 bytes per event (docs/performance.md).
    use_dictionary=["op"],
    column_encoding={"t_ns": "DELTA_BINARY_PACKED", "pfn": "BYTE_STREAM_SPLIT"},
    write_statistics=["t_ns"],
    # A CRC per page: a damaged page is refused when read, never decoded into
    # other times or frames (4 bytes a page).
    write_page_checksum=True,
)


#: Suffix of every temporary file a write makes beside its target; the
#: writing process's id is in the name (:func:`stale_temporaries`).
TMP_SUFFIX = ".tmp"


def _temporary_beside(path: Path, tag: str = "") -> Path:
    """A new empty file beside ``path``, named for this process (mode as umask allows)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{tag}.{os.getpid()}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); outputs get the usual umask'd mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def _write_failure(exc: BaseException) -> bool:
    """Whether an exception raised while writing is the file system refusing the write."""
    if isinstance(exc, OSError):
        return True
    # polars reports its own I/O failures as ComputeError/IO errors quoting the OS error.
    return isinstance(exc, pl.exceptions.PolarsError) and "os error" in str(exc)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception (Ctrl-C included) the temporary file is removed, the
    folders this call made are removed again and ``path`` is untouched. A
    write the file system refuses (no space, read-only, no permission)
    becomes an :class:`cmmsim.tracer.errors.OutputError` naming ``path``.
    """
    path = Path(path)
    made = _missing_folders(path.parent)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = _temporary_beside(path)
        yield tmp_path
        os.replace(tmp_path, path)
        tmp_path = None
    except BaseException as exc:
        if tmp_path is not None:
            with contextlib.suppress(OSError):
                tmp_path.unlink(missing_ok=True)
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()
        if _write_failure(exc):
            raise OutputError(f"cannot write {show_path(path)}: {os_reason(exc)}") from exc
        raise


def _missing_folders(folder: Path) -> list[Path]:
    """The folders from ``folder`` up that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _same_file(a: Path, b: str | os.PathLike) -> bool:
    """``a`` and ``b`` are one existing file or folder (either missing: not)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_output(path: str | os.PathLike, *, folder: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Refuse an output path that cannot be written, before any work is done.

    Parameters
    ----------
    path : path-like
        An output file (replaced if it exists) or, with ``folder``, a folder
        (made if missing).
    folder : bool
        ``path`` names a folder.
    inputs : iterable of path-like
        What the command reads: an output that is one of them (however
        spelt, links followed) is refused rather than replaced.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    cmmsim.tracer.errors.OutputError
        ``path`` is a folder (a file was asked for) or a file (a folder was
        asked for), is one of ``inputs``, lies under a file, or its nearest
        existing folder refuses a new file (read-only, no permission, a
        pseudo file system).
    """
    p = Path(path)
    shown = show_path(p)
    if any(_same_file(p, i) for i in inputs):
        raise OutputError(f"cannot write {shown}: it is an input (it would be replaced)")
    if p.is_dir() and not folder:
        raise OutputError(f"cannot write {shown}: is a folder")
    if folder and p.exists() and not p.is_dir():
        raise OutputError(f"cannot write {shown}: exists and is not a folder")
    base = p if folder else p.parent
    missing = _missing_folders(base)
    anchor = missing[-1].parent if missing else base
    if not anchor.is_dir():
        raise OutputError(f"cannot write {shown}: {show_path(anchor)} is not a folder")
    try:
        # A real file, removed at once: permission bits, read-only mounts
        # and pseudo file systems all answer this one way.
        _temporary_beside(anchor / ".cmmsim-probe").unlink()
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {os_reason(exc)}") from None
    return p


@contextlib.contextmanager
def folder_output(path: str | os.PathLike) -> Iterator[Path]:
    """Around work that writes into the folder ``path``: on failure, remove the empty
    folders it made (``path`` and missing parents); files written are kept."""
    p = Path(path)
    made = _missing_folders(p)
    try:
        yield p
    except BaseException:
        for top in made[-1:]:
            for folder, _dirs, files in os.walk(top, topdown=False):
                if not files:
                    with contextlib.suppress(OSError):
                        os.rmdir(folder)
        raise


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Temporary files in ``folder`` left by writers that no longer run (killed, not cleaned).

    A temporary file's name holds its writer's process id; one whose process
    is alive (a sweep still writing into the same folder) is not stale.
    """
    stale = []
    for tmp in Path(folder).glob(f".*{TMP_SUFFIX}"):
        pid = tmp.name.removesuffix(TMP_SUFFIX).rsplit(".", 2)[-2]
        if not pid.isdigit() or not _alive(int(pid)):
            stale.append(tmp)
    return stale


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def meta_to_arrow(meta: TraceMeta) -> dict[bytes, bytes]:
    """Encode a :class:`TraceMeta` as Arrow schema metadata."""
    values = {
        "schema_version": meta.schema_version,
        "page_size": meta.page_size,
        "guest_pages": meta.guest_pages,
        "source": meta.source,
        "params": meta.params,
        "seed": meta.seed,
        "event_counts": meta.event_counts,
        "converter": meta.converter,
    }
    out = {META_KEYS[k].encode(): json.dumps(v, sort_keys=True).encode() for k, v in values.items()}
    if meta.vcpus is not None:
        out[OPTIONAL_META_KEYS["vcpus"].encode()] = json.dumps(meta.vcpus).encode()
    return out


def meta_from_arrow(md: dict[bytes, bytes] | None, where: str) -> TraceMeta:
    """Decode Arrow schema metadata; refuse unknown schema versions."""
    md = md or {}
    key = META_KEYS["schema_version"].encode()
    if key not in md:
        raise TraceError(f"{where}: not a cmmsim trace (no {META_KEYS['schema_version']} metadata)")
    try:
        values = {k: json.loads(md[META_KEYS[k].encode()]) for k in META_KEYS}
    except (KeyError, ValueError) as exc:
        raise TraceError(f"{where}: damaged cmmsim metadata ({exc})") from None
    version = values["schema_version"]
    if version != SCHEMA_VERSION:
        raise TraceError(
            f"{where}: trace schema version {version} is not supported (this cmmsim reads version {SCHEMA_VERSION})"
        )
    _check_meta(values, where)
    vcpus = md.get(OPTIONAL_META_KEYS["vcpus"].encode())
    if vcpus is not None:
        try:
            vcpus = json.loads(vcpus)
        except ValueError:
            vcpus = None
        if not _is_int(vcpus) or not 1 <= vcpus <= MAX_VCPUS:
            raise TraceError(
                f"{where}: damaged cmmsim metadata ({OPTIONAL_META_KEYS['vcpus']} must be 1..{MAX_VCPUS:,})"
            )
    return TraceMeta(**values, vcpus=vcpus)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_meta(values: dict, where: str) -> None:
    """Refuse metadata values of the wrong type or out of range, naming the key."""

    def bad(key: str, what: str) -> TraceError:
        return TraceError(f"{where}: damaged cmmsim metadata: {META_KEYS[key]} = {values[key]!r:.60}: {what}")

    gp = values["guest_pages"]
    if not _is_int(gp) or not 0 < gp <= MAX_GUEST_PAGES:
        raise bad("guest_pages", f"expected a whole number of pages, 1..{MAX_GUEST_PAGES:,}")
    if values["page_size"] != PAGE_SIZE_BYTES or not _is_int(values["page_size"]):
        raise bad("page_size", f"this cmmsim replays {PAGE_SIZE_BYTES}-byte pages only")
    if not isinstance(values["source"], str):
        raise bad("source", "expected text")
    if values["seed"] is not None and not _is_int(values["seed"]):
        raise bad("seed", "expected a whole number or null")
    for key in ("params", "converter", "event_counts"):
        if not isinstance(values[key], dict):
            raise bad(key, "expected an object")
    counts = values["event_counts"]
    if any(not _is_int(v) or v < 0 for v in counts.values()):
        raise bad("event_counts", "expected counts >= 0")


def write_trace(
    path: str | os.PathLike,
    t_ns: np.ndarray,
    pfn: np.ndarray,
    op: np.ndarray,
    meta: TraceMeta,
    *,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> TraceMeta:
    """Validate and write one guest trace atomically.

    Parameters
    ----------
    path : path-like
        Destination ``.parquet`` file.
    t_ns, pfn, op : numpy.ndarray
        Columns with the dtypes of :data:`cmmsim.tracer.schema.COLUMNS`.
    meta : TraceMeta
        Metadata; ``event_counts`` is recomputed from ``op``.
    row_group_rows : int
        Rows per row group.

    Returns
    -------
    TraceMeta
        The metadata as written.
    """
    validate_arrays(t_ns, pfn, op, meta.guest_pages, where=str(path))
    meta = replace(meta, event_counts=count_ops(op), schema_version=SCHEMA_VERSION)
    schema = ARROW_SCHEMA.with_metadata(meta_to_arrow(meta))
    table = pa.Table.from_arrays([pa.array(t_ns), pa.array(pfn), pa.array(op)], schema=schema)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        pq.write_table(table, f, row_group_size=row_group_rows, **_WRITE_OPTIONS)
    return meta


class TraceWriter:
    """Write a trace batch by batch (bounded memory), atomically on close.

    Use as a context manager; call :meth:`write` with column batches and set
    the final metadata with :meth:`finish` before the block ends.
    """

    def __init__(self, path: str | os.PathLike, guest_pages: int):
        self.path = Path(path)
        self.guest_pages = guest_pages
        self._counts = np.zeros(N_OPS, dtype=np.int64)
        self._last_t = -1
        self._rows = 0
        self._meta: TraceMeta | None = None

    def __enter__(self) -> TraceWriter:
        self._ctx = atomic_output(self.path)
        self._tmp = self._ctx.__enter__()
        try:
            self._file = open(self._tmp, "wb")  # noqa: SIM115 (closed in __exit__)
            # Metadata is only known at the end; Parquet keeps it in the footer,
            # so the writer gets a placeholder schema and the footer the real one.
            self._writer = pq.ParquetWriter(self._file, ARROW_SCHEMA, **_WRITE_OPTIONS)
        except BaseException as err:
            if not self._ctx.__exit__(type(err), err, err.__traceback__):
                raise
        return self

    def write(self, t_ns: np.ndarray, pfn: np.ndarray, op: np.ndarray) -> None:
        """Append one batch; it is validated against the rows before it."""
        validate_arrays(t_ns, pfn, op, self.guest_pages, where=str(self.path))
        if len(t_ns) == 0:
            return
        if t_ns[0] < self._last_t:
            raise TraceError(f"{self.path}: row {self._rows}: timestamp decreases across batches")
        self._last_t = int(t_ns[-1])
        self._rows += len(t_ns)
        self._counts += np.bincount(op, minlength=N_OPS)
        self._writer.write_table(
            pa.Table.from_arrays([pa.array(t_ns), pa.array(pfn), pa.array(op)], schema=ARROW_SCHEMA)
        )

    def finish(self, meta: TraceMeta) -> TraceMeta:
        """Set the metadata written into the footer; returns it with event counts."""
        counts = {o.name: int(self._counts[o]) for o in Op}
        self._meta = replace(meta, event_counts=counts, schema_version=SCHEMA_VERSION)
        return self._meta

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._abandon()
            return bool(self._ctx.__exit__(exc_type, exc, tb))
        try:
            if self._meta is None:
                raise RuntimeError("TraceWriter closed without finish(meta)")
            self._writer.add_key_value_metadata({k.decode(): v.decode() for k, v in meta_to_arrow(self._meta).items()})
            # The footer is written here: a full disk shows now, and must not
            # leave a file without one under the final name.
            self._writer.close()
            self._file.close()
        except BaseException as err:
            self._abandon()
            if not self._ctx.__exit__(type(err), err, err.__traceback__):
                raise
            return False
        return bool(self._ctx.__exit__(None, None, None))

    def _abandon(self) -> None:
        """Drop a writer that failed: its file closed, and no second close when collected."""
        self._writer.is_open = False  # pyarrow's flag: its __del__ would close (and fail) again
        with contextlib.suppress(OSError):
            self._file.close()


#: What a file that is compressed or plain text starts with: a trace given as
#: tracepoint text (which ``cmmsim trace convert`` reads) is named as such.
_TEXT_MAGIC = (b"\x1f\x8b", b"\xfd7zXZ", b"BZh", b"\x28\xb5\x2f\xfd")


def _source(p: Path):
    """What pyarrow opens: the path, or an open file when the path is not UTF-8."""
    try:
        os.fsdecode(p).encode("utf-8")
    except UnicodeEncodeError:
        return open(p, "rb")  # noqa: SIM115 (owned by the ParquetFile)
    return str(p)


def _check_parquet_file(p: Path, what: str, error: type[CmmsimError]) -> None:
    """Refuse a missing path, a folder, or a file that does not start as Parquet does."""
    shown = show_path(p)
    if not p.exists():
        raise error(f"{shown}: no such file")
    if p.is_dir():
        raise error(f"{shown}: is a folder, not a {what} file")
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise error(f"{shown}: cannot read ({os_reason(exc)})") from None
    if head != b"PAR1":
        raise error(f"{shown}: not a Parquet file ({_not_parquet(p, head)})")


def _open(path: str | os.PathLike, *, pre_buffer: bool = True) -> pq.ParquetFile:
    p = Path(path)
    shown = show_path(p)
    _check_parquet_file(p, "trace", TraceError)
    try:
        pf = pq.ParquetFile(_source(p), page_checksum_verification=True, pre_buffer=pre_buffer)
    except (pa.ArrowException, OSError) as exc:
        raise TraceError(f"{shown}: not a Parquet file, or a damaged one ({os_reason(exc)})") from None
    schema = pf.schema_arrow
    for name, dt in COLUMNS.items():
        idx = schema.get_field_index(name)
        if idx < 0:
            raise TraceError(f"{shown}: missing column {name!r} (not a cmmsim trace)")
        got = schema.field(idx).type
        if got != pa.from_numpy_dtype(dt):
            raise TraceError(f"{shown}: column {name!r} has type {got}, expected {pa.from_numpy_dtype(dt)}")
    return pf


def _not_parquet(p: Path, head: bytes) -> str:
    """Why a file that does not start as Parquet does is not a trace, in a few words."""
    if not head:
        return "the file is empty"
    text_like = head.startswith(_TEXT_MAGIC) or p.suffix in (".txt", ".gz", ".xz", ".bz2", ".zst")
    if not text_like:
        try:
            text_like = head.decode("ascii").isprintable()
        except UnicodeDecodeError:
            text_like = False
    if text_like:
        return "it looks like text: convert tracepoint text with `cmmsim trace convert`"
    return "it does not start with the Parquet magic bytes"


def _damaged(path, exc: BaseException) -> TraceError:
    return TraceError(f"{show_path(path)}: damaged Parquet data ({os_reason(exc)})")


def read_meta(path: str | os.PathLike) -> TraceMeta:
    """Read only the metadata of a trace (the footer), checking its schema."""
    pf = _open(path)
    md = dict(pf.schema_arrow.metadata or {})
    md.update({k: v for k, v in (pf.metadata.metadata or {}).items() if k not in md})
    return meta_from_arrow(md, str(path))


@dataclass(frozen=True)
class TraceArrays:
    """A trace loaded as contiguous numpy arrays (what the engine consumes)."""

    t_ns: np.ndarray
    pfn: np.ndarray
    op: np.ndarray
    meta: TraceMeta

    def __len__(self) -> int:
        return len(self.t_ns)


def read_arrays(path: str | os.PathLike, *, validate: bool = True) -> TraceArrays:
    """Read a whole trace into preallocated contiguous arrays.

    Each row group is decoded straight into its slice of the output arrays,
    so peak memory is the arrays plus one row group.
    """
    pf = _open(path)
    meta = read_meta(path)
    n = pf.metadata.num_rows
    out = {name: np.empty(n, dtype=dt) for name, dt in COLUMNS.items()}
    pos = 0
    try:
        for batch in pf.iter_batches(batch_size=ROW_GROUP_ROWS, columns=list(COLUMNS)):
            m = batch.num_rows
            if pos + m > n:
                raise TraceError(f"{show_path(path)}: more rows than the footer says ({n})")
            for name in COLUMNS:
                col = batch.column(name)
                if col.null_count:
                    raise TraceError(f"{show_path(path)}: column {name!r} has null values")
                out[name][pos : pos + m] = col.to_numpy(zero_copy_only=False)
            pos += m
    except (pa.ArrowException, OSError) as exc:
        raise _damaged(path, exc) from None
    if pos != n:
        raise TraceError(f"{show_path(path)}: {pos} rows where the footer says {n}")
    arrays = TraceArrays(out["t_ns"], out["pfn"], out["op"], meta)
    if validate:
        validate_arrays(arrays.t_ns, arrays.pfn, arrays.op, meta.guest_pages, where=str(path))
        check_event_counts(meta, np.bincount(arrays.op, minlength=N_OPS), path)
    return arrays


def check_event_counts(meta: TraceMeta, counts: np.ndarray, path: str | os.PathLike) -> None:
    """Refuse a trace whose footer's event counts are not its rows' (``counts``: events per op).

    A footer that disagrees with the rows means the file was altered after it was
    written: its rows may not be what its metadata describes.
    """
    if meta.event_counts and meta.event_counts != {o.name: int(counts[o]) for o in Op}:
        raise TraceError(f"{show_path(path)}: metadata event counts do not match the rows")


def iter_batches(
    path: str | os.PathLike, batch_rows: int = ROW_GROUP_ROWS
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Stream a trace as ``(t_ns, pfn, op)`` numpy batches, one row group in memory at a time."""
    # Read on the calling thread, column chunks as they come: a stream's reads
    # overlap the replay already, and a fleet's row groups are small (64 Ki
    # events at 200 guests), so Arrow's coalesced reads and its thread pool
    # cost more than they save (docs/perf-log.md, Fleet scale).
    pf = _open(path, pre_buffer=False)
    # Row group by row group: pyarrow's iter_batches keeps every decoded buffer
    # alive to the end of the file here (memory grows with the trace; see
    # apache/arrow#39808), a row group read on its own is freed with it.
    for i in range(pf.metadata.num_row_groups):
        try:
            table = pf.read_row_group(i, columns=list(COLUMNS), use_threads=False)
        except (pa.ArrowException, OSError) as exc:
            raise _damaged(path, exc) from None
        for name in COLUMNS:
            if table.column(name).null_count:
                raise TraceError(f"{show_path(path)}: column {name!r} has null values")
        for batch in table.to_batches(max_chunksize=batch_rows):
            yield tuple(batch.column(name).to_numpy(zero_copy_only=False) for name in COLUMNS)
        del table


def time_span(path: str | os.PathLike) -> tuple[int, int] | None:
    """First and last ``t_ns`` of a trace (None if empty), reading two row groups at most.

    Times never decrease in a valid trace; the rows in between are checked
    when they are read.
    """
    pf = _open(path)
    groups = [g for g in range(pf.metadata.num_row_groups) if pf.metadata.row_group(g).num_rows]
    if not groups:
        return None
    try:
        first = pf.read_row_group(groups[0], columns=["t_ns"]).column(0)
        last = pf.read_row_group(groups[-1], columns=["t_ns"]).column(0)
    except (pa.ArrowException, OSError) as exc:
        raise _damaged(path, exc) from None
    if first.null_count or last.null_count:
        raise TraceError(f"{show_path(path)}: column 't_ns' has null values")
    return int(first[0].as_py()), int(last[-1].as_py())


def scan_trace(path: str | os.PathLike) -> pl.LazyFrame:
    """A polars LazyFrame over the trace (metadata checked first).

    Only the footer is checked: a query over a damaged file fails when it is
    collected (:func:`validate_trace` reads every row first).
    """
    read_meta(path)
    src = _source(Path(path))
    return pl.scan_parquet(src) if isinstance(src, str) else pl.read_parquet(src).lazy()


def validate_trace(path: str | os.PathLike) -> TraceMeta:
    """Fully validate a trace file; return its metadata or raise TraceError."""
    return read_arrays(path, validate=True).meta


def check_trace(path: str | os.PathLike) -> TraceMeta:
    """Validate a trace as :func:`validate_trace` does, one row group in memory at a time."""
    meta = read_meta(path)
    counts = np.zeros(N_OPS, np.int64)
    last_t = None
    row = 0
    for t, pfn, op in iter_batches(path):
        validate_arrays(t, pfn, op, meta.guest_pages, where=f"{show_path(path)} (rows from {row})")
        if len(t) and last_t is not None and t[0] < last_t:
            raise TraceError(f"{show_path(path)}: row {row}: timestamp decreases (t_ns={int(t[0])} after {last_t})")
        if len(t):
            last_t = int(t[-1])
            counts += np.bincount(op, minlength=N_OPS)
        row += len(t)
    check_event_counts(meta, counts, path)
    return meta


def write_frame(df: pl.DataFrame, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write a polars frame to Parquet (zstd) atomically; returns the path.

    Pages carry checksums, so :func:`read_frame` finds a damaged page rather
    than decoding wrong numbers from it. ``metadata``: key-value pairs for the
    file's footer (:func:`frame_metadata` reads them back).
    """
    path = Path(path)
    # The oldest Arrow layout polars writes (large strings, not views): what
    # every pyarrow this package supports reads and writes.
    level = getattr(pl, "CompatLevel", None)  # polars >= 1.1
    table = df.to_arrow(compat_level=level.oldest()) if level else df.to_arrow()
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        pq.write_table(table, f, compression="zstd", write_page_checksum=True)
    return path


def read_frame(path: str | os.PathLike, what: str = "results") -> pl.DataFrame:
    """Read a Parquet frame (results, states, series), verifying page checksums where written.

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What it should hold, for messages ("results", "states", ...).

    Raises
    ------
    cmmsim.tracer.errors.ResultsError
        Missing, a folder, not Parquet, or damaged; the message names ``path``.
    """
    p = Path(path)
    _check_parquet_file(p, what, ResultsError)
    try:
        table = pq.read_table(_source(p), page_checksum_verification=True)
        return pl.from_arrow(table)
    except (pa.ArrowException, OSError, pl.exceptions.PolarsError) as exc:
        raise ResultsError(f"{show_path(p)}: damaged or not a Parquet {what} file ({os_reason(exc)})") from None


def frame_metadata(path: str | os.PathLike, what: str = "results") -> tuple[list[str], dict[str, str]]:
    """A Parquet frame's column names and footer key-value metadata, from its footer alone.

    Raises
    ------
    cmmsim.tracer.errors.ResultsError
        Missing, a folder, or not Parquet; the message names ``path``.
    """
    p = Path(path)
    _check_parquet_file(p, what, ResultsError)
    try:
        schema = pq.read_schema(_source(p))
    except (pa.ArrowException, OSError) as exc:
        raise ResultsError(f"{show_path(p)}: damaged or not a Parquet {what} file ({os_reason(exc)})") from None
    meta = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in (schema.metadata or {}).items()}
    return list(schema.names), meta


class ColumnSpill:
    """Trace columns spilled raw to disk, batch by batch, to be read back once.

    For a body that must wait for rows written before it (the converter's
    initial-state events are known only at the end): plain column bytes (no
    encoding, no compression) cost next to nothing on the same machine, and
    the final Parquet file is encoded (and validated) once. The file is
    removed on exit, errors included.
    """

    #: The columns' dtypes, in the order they are written and read.
    DTYPES = (np.int64, np.uint32, np.uint8)

    def __init__(self, path: Path):
        #: Where the spill goes: beside ``path``, named for this process (two
        #: runs writing the same output never share it), until :meth:`__enter__`.
        self.path = Path(path)
        self.sizes: list[int] = []

    def __enter__(self) -> ColumnSpill:
        self.path = _temporary_beside(self.path)
        self._f = open(self.path, "wb")  # noqa: SIM115 (closed in __exit__)
        return self

    def write(self, t_ns: np.ndarray, pfn: np.ndarray, op: np.ndarray) -> None:
        if len(t_ns):
            try:
                for col, dtype in zip((t_ns, pfn, op), self.DTYPES, strict=True):
                    np.ascontiguousarray(col, dtype).tofile(self._f)
            except OSError as exc:
                raise OutputError(f"cannot write {show_path(self.path)}: {os_reason(exc)}") from exc
            self.sizes.append(len(t_ns))

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        try:
            self._f.close()
        except OSError as exc:
            raise OutputError(f"cannot write {show_path(self.path)}: {os_reason(exc)}") from exc
        with open(self.path, "rb") as f:
            for n in self.sizes:
                yield tuple(np.fromfile(f, dtype, count=n) for dtype in self.DTYPES)

    def __exit__(self, *exc) -> None:
        try:
            self._f.close()
        except OSError:
            pass  # the spill is dropped either way; a write error was raised already
        finally:
            self.path.unlink(missing_ok=True)
