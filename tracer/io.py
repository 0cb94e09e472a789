"""Read, write and validate cmmsim trace files (Parquet).

Writes are atomic (temporary file in the target folder, then ``os.replace``),
so a crash never leaves a half-written trace under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tracer.errors import TraceError
from tracer.schema import (
    ARROW_SCHEMA,
    COLUMNS,
    META_KEYS,
    N_OPS,
    OPTIONAL_META_KEYS,
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
)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); outputs get the usual umask'd mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


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
    out = {
        META_KEYS[k].encode(): json.dumps(v, sort_keys=True).encode() for k, v in values.items()
    }
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
            f"{where}: trace schema version {version} is not supported "
            f"(this cmmsim reads version {SCHEMA_VERSION})"
        )
    vcpus = md.get(OPTIONAL_META_KEYS["vcpus"].encode())
    if vcpus is not None:
        try:
            vcpus = json.loads(vcpus)
        except ValueError:
            vcpus = None
        if not isinstance(vcpus, int) or isinstance(vcpus, bool) or vcpus < 1:
            raise TraceError(f"{where}: damaged cmmsim metadata ({OPTIONAL_META_KEYS['vcpus']} "
                             "must be a positive integer)")
    return TraceMeta(**values, vcpus=vcpus)


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
        Columns with the dtypes of :data:`tracer.schema.COLUMNS`.
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
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_rows, **_WRITE_OPTIONS)
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
        # Metadata is only known at the end; Parquet keeps it in the footer,
        # so the writer gets a placeholder schema and the footer the real one.
        self._writer = pq.ParquetWriter(self._tmp, ARROW_SCHEMA, **_WRITE_OPTIONS)
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

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self._meta is None:
                    raise RuntimeError("TraceWriter closed without finish(meta)")
                self._writer.add_key_value_metadata(
                    {k.decode(): v.decode() for k, v in meta_to_arrow(self._meta).items()}
                )
            self._writer.close()
        finally:
            self._ctx.__exit__(exc_type, exc, tb)


def _open(path: str | os.PathLike) -> pq.ParquetFile:
    p = Path(path)
    if not p.exists():
        raise TraceError(f"{p}: no such file")
    if p.is_dir():
        raise TraceError(f"{p}: is a folder, not a trace file")
    try:
        pf = pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TraceError(f"{p}: not a Parquet file ({str(exc).splitlines()[0]})") from None
    schema = pf.schema_arrow
    for name, dt in COLUMNS.items():
        idx = schema.get_field_index(name)
        if idx < 0:
            raise TraceError(f"{p}: missing column {name!r}")
        got = schema.field(idx).type
        if got != pa.from_numpy_dtype(dt):
            raise TraceError(f"{p}: column {name!r} has type {got}, expected {pa.from_numpy_dtype(dt)}")
    return pf


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
    for batch in pf.iter_batches(batch_size=ROW_GROUP_ROWS, columns=list(COLUMNS)):
        m = batch.num_rows
        for name in COLUMNS:
            col = batch.column(name)
            if col.null_count:
                raise TraceError(f"{path}: column {name!r} has null values")
            out[name][pos : pos + m] = col.to_numpy(zero_copy_only=False)
        pos += m
    arrays = TraceArrays(out["t_ns"], out["pfn"], out["op"], meta)
    if validate:
        validate_arrays(arrays.t_ns, arrays.pfn, arrays.op, meta.guest_pages, where=str(path))
    return arrays


def iter_batches(
    path: str | os.PathLike, batch_rows: int = ROW_GROUP_ROWS
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Stream a trace as ``(t_ns, pfn, op)`` numpy batches, one row group in memory at a time."""
    pf = _open(path)
    # Row group by row group: pyarrow's iter_batches keeps every decoded buffer
    # alive to the end of the file here (memory grows with the trace; see
    # apache/arrow#39808), a row group read on its own is freed with it.
    for i in range(pf.metadata.num_row_groups):
        table = pf.read_row_group(i, columns=list(COLUMNS))
        for batch in table.to_batches(max_chunksize=batch_rows):
            yield tuple(batch.column(name).to_numpy(zero_copy_only=False) for name in COLUMNS)
        del table


def scan_trace(path: str | os.PathLike) -> pl.LazyFrame:
    """A polars LazyFrame over the trace (metadata checked first)."""
    read_meta(path)
    return pl.scan_parquet(path)


def validate_trace(path: str | os.PathLike) -> TraceMeta:
    """Fully validate a trace file; return its metadata or raise TraceError."""
    arrays = read_arrays(path, validate=True)
    counts = count_ops(arrays.op)
    if arrays.meta.event_counts and arrays.meta.event_counts != counts:
        raise TraceError(f"{path}: metadata event counts do not match the rows")
    return arrays.meta


def write_frame(df: pl.DataFrame, path: str | os.PathLike) -> Path:
    """Write a polars frame to Parquet (zstd) atomically; returns the path."""
    path = Path(path)
    with atomic_output(path) as tmp:
        df.write_parquet(tmp, compression="zstd")
    return path


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
        self.path = path
        self.sizes: list[int] = []

    def __enter__(self) -> ColumnSpill:
        self._f = open(self.path, "wb")  # noqa: SIM115 (closed in __exit__)
        return self

    def write(self, t_ns: np.ndarray, pfn: np.ndarray, op: np.ndarray) -> None:
        if len(t_ns):
            for col, dtype in zip((t_ns, pfn, op), self.DTYPES, strict=True):
                np.ascontiguousarray(col, dtype).tofile(self._f)
            self.sizes.append(len(t_ns))

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        self._f.close()
        with open(self.path, "rb") as f:
            for n in self.sizes:
                yield tuple(np.fromfile(f, dtype, count=n) for dtype in self.DTYPES)

    def __exit__(self, *exc) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)
