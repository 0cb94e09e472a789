"""The ``convert`` entry: reads tracepoint text, picks a path, writes the trace.

Three paths give the same trace: the reference (:mod:`cmmsim.tracer.linux.reference`,
line by line), chunks of text lines (:mod:`cmmsim.tracer.linux.parse` then
:mod:`cmmsim.tracer.linux.fast`) for a given text stream, and the default for files
and standard input: blocks of bytes, which the byte scanner
(:mod:`cmmsim.tracer.linux.scan`) parses where it can, the polars parse where it
cannot, mapped by :mod:`cmmsim.tracer.linux.fast`.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cmmsim.tracer.errors import CmmsimError, ParamError, TraceError, show_path
from cmmsim.tracer.io import ColumnSpill, TraceWriter, atomic_output
from cmmsim.tracer.linux.counters import SKIP_BAD_LINE, SKIP_NOISE, Counters, skip_bad_fields
from cmmsim.tracer.linux.fast import FastMapper
from cmmsim.tracer.linux.parse import (
    LINE_BAD,
    LINE_BAD_FIELDS,
    LINE_EVENT,
    LINE_KIND_NAMES,
    parse_chunk,
    tally,
)
from cmmsim.tracer.linux.reference import Mapper, parse_line
from cmmsim.tracer.linux.rules import COLUMNS, FORMATS
from cmmsim.tracer.linux.scan import LEFT, SHAPE_BITS, UNUSED, count_unused, line_bounds, scan_lines
from cmmsim.tracer.linux.snapshot import unique_snapshot
from cmmsim.tracer.linux.textio import CountingReader, line_blocks, open_binary, open_text
from cmmsim.tracer.schema import TraceMeta

#: Lines per chunk of the text-stream path.
CHUNK_LINES = 1 << 17
#: The reference path spills its ops every this many.
FLUSH_EVENTS = 1 << 18


class ConvertError(CmmsimError):
    """A malformed line in strict mode: names file, line number and the line."""


def convert(
    inp: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    fmt: str = "auto",
    lenient: bool = False,
    guest_pages: int | None = None,
    initial: np.ndarray | None = None,
    extra_meta: dict | None = None,
    stream: IO | None = None,
    engine: str = "fast",
    initial_pages: np.ndarray | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> TraceMeta:
    """Convert tracepoint text to a cmmsim trace, streaming.

    Parameters
    ----------
    inp : path-like or None
        Text file (plain, .gz, .xz, .bz2, .zst) or ``-``/None for stdin.
    out : path-like
        Output ``.parquet``; the pfn map goes to :func:`pfnmap_path`.
    fmt : str
        ``auto``, ``perf``, ``trace-cmd`` or ``ftrace``.
    lenient : bool
        Skip and count malformed lines instead of stopping at the first.
    guest_pages : int, optional
        Guest memory in pages (default: the frames the trace names).
    initial : ndarray, optional
        Initial state per physical pfn (:func:`cmmsim.tracer.linux.kpageflags.read_kpageflags_states`).
    extra_meta : dict, optional
        Capture facts (kernel release, command, lost events) for the metadata.
    stream : text or binary IO, optional
        Read from this instead of opening ``inp``.
    engine : str
        ``fast`` (polars + numba, chunks of lines) or ``python`` (the
        line-by-line reference twin); both give the same trace.
    initial_pages : ndarray, optional
        File pages cached at capture start, rows (major, minor, inode, page
        index, pfn) (:func:`cmmsim.tracer.linux.snapshot.mapped_file_pages`).
    on_bytes : callable, optional
        Called with the bytes of each read (decompressed), for progress; the
        fast engine on binary input only.
    """
    if fmt not in FORMATS:
        raise ParamError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    out = Path(out)
    where = "<stdin>" if inp in (None, "-") else str(inp)
    c = Counters()
    pages = None if initial_pages is None else unique_snapshot(initial_pages)
    with ColumnSpill(out.with_name(f".{out.name}.body")) as w:
        if engine == "python":
            with stream or open_text(inp) as text:
                mapper = _convert_lines(text, w, fmt, lenient, where, Mapper(initial, initial_pages=pages), c)
        elif isinstance(stream, io.TextIOBase):
            mapper = _convert_chunks(stream, w, fmt, lenient, where, FastMapper(initial, initial_pages=pages), c)
        else:
            with stream or open_binary(inp) as raw:
                src = CountingReader(raw, on_bytes) if on_bytes else raw
                mapper = _convert_blocks(src, w, fmt, lenient, where, FastMapper(initial, initial_pages=pages), c)
        if not sum(c.events.values()):
            skipped = sum(c.skipped.values())
            raise TraceError(
                f"{show_path(where)}: no page tracepoint events to convert "
                f"({c.lines_read:,} lines read, {skipped:,} skipped)"
            )
        n_frames = mapper.n_frames
        if guest_pages is None:
            guest_pages = max(n_frames, 1)
        elif guest_pages < n_frames:
            raise ParamError(f"guest memory of {guest_pages} pages is less than the {n_frames} frames the trace names")
        init = mapper.initial_events(c)
        meta = TraceMeta(
            guest_pages=guest_pages,
            source=f"linux:{fmt}",
            params={"input": where, **(extra_meta or {})},
            converter=c.as_dict() | {"frames": n_frames},
        )
        phys = mapper.phys_of_dense()
        # Both files are whole before either is renamed (the trace first, the map
        # right after): a failed write leaves the old trace and the old map, a pair.
        with atomic_output(pfnmap_path(out)) as map_tmp:
            pq.write_table(
                pa.table({"pfn": np.arange(n_frames, dtype=np.uint32), "phys_pfn": phys}), map_tmp, compression="zstd"
            )
            with TraceWriter(out, guest_pages) as tw:
                tw.write(*init)
                for batch in w.batches():
                    tw.write(*batch)
                meta = tw.finish(meta)
    return meta


def _bad_line_error(where: str, lineno: int, kind: str, name: str | None, line: str) -> ConvertError:
    reason = SKIP_BAD_LINE if kind == LINE_KIND_NAMES[LINE_BAD] else skip_bad_fields(name)
    return ConvertError(f"{where}:{lineno}: {reason}: {line.rstrip()[:200]!r}")


def _screen(
    parsed: pl.DataFrame, lines: list[str], line_numbers: np.ndarray, lenient: bool, where: str, c: Counters
) -> np.ndarray:
    """Stop at the first malformed line (strict) or count it (lenient); returns the line kinds."""
    kind = parsed["kind"].to_numpy()
    bad = np.flatnonzero((kind == LINE_BAD) | (kind == LINE_BAD_FIELDS))
    if not lenient and len(bad):
        i = int(bad[0])
        raise _bad_line_error(where, int(line_numbers[i]), LINE_KIND_NAMES[kind[i]], parsed["name"][i], lines[i])
    tally(parsed, c)
    return kind


def _convert_lines(text, w, fmt, lenient, where, mapper: Mapper, c: Counters) -> Mapper:
    """The reference path: one line at a time through :class:`Mapper`."""
    c.snapshot_pages += mapper.counters.snapshot_pages
    mapper.counters = c
    for lineno, line in enumerate(text, 1):
        c.lines_read += 1
        kind, what = parse_line(line, fmt)
        if kind == "event":
            mapper.feed(what)
        elif kind == "noise":
            c.skipped[SKIP_NOISE] += 1
        elif kind == "lost":
            c.lost_events += what
        elif kind == "unused":
            c.unused_events[what] += 1
        else:
            if not lenient:
                raise _bad_line_error(where, lineno, kind, what, line)
            c.skipped[SKIP_BAD_LINE if kind == "bad-line" else skip_bad_fields(what)] += 1
        if len(mapper.op) >= FLUSH_EVENTS:
            w.write(*mapper.take())
    mapper.finish()
    w.write(*mapper.take())
    return mapper


def _convert_chunks(text, w, fmt, lenient, where, mapper: FastMapper, c: Counters) -> FastMapper:
    """The text-stream path: polars parses chunks of lines, numba maps the events."""
    start = 0
    while True:
        lines = list(itertools.islice(text, CHUNK_LINES))
        if not lines:
            break
        parsed = parse_chunk(lines, fmt)
        c.lines_read += len(lines)
        _screen(parsed, lines, start + 1 + np.arange(len(lines)), lenient, where, c)
        w.write(*mapper.feed(parsed.filter(pl.col("kind") == LINE_EVENT)))
        start += len(lines)
    mapper.fill_counters(c)
    return mapper


def _scan_block(block: memoryview, fmt: str):
    """Parse one block: the byte scanner first, the polars path for what it leaves."""
    buf = np.frombuffer(block, np.uint8)
    starts, ends = line_bounds(buf)
    code, t, vals = scan_lines(buf, starts, ends, SHAPE_BITS[fmt])
    unused = count_unused(buf, code, vals)
    if unused is None:  # more event names than the scanner tells apart: polars counts them
        code[code == UNUSED] = LEFT
        unused = {}
    rest = np.flatnonzero(code == LEFT)
    lines = [
        str(block[a:b], "utf-8", "replace") for a, b in zip(starts[rest].tolist(), ends[rest].tolist(), strict=True)
    ]
    parsed = parse_chunk(lines, fmt) if lines else None
    return len(starts), code, t, vals, rest, lines, parsed, unused


def _convert_blocks(raw, w, fmt, lenient, where, mapper: FastMapper, c: Counters) -> FastMapper:
    """The fastest path: bytes in blocks, numba claims the common perf lines, polars the rest.

    Three stages on three threads (the numba kernels and file writes release
    the GIL): the next block is scanned while this one is mapped and the last
    one spilled (``w``, a :class:`cmmsim.tracer.io.ColumnSpill`); the mapper's order
    is the input's.
    """
    first_line = 0

    def finish(n, code, t, vals, rest, lines, parsed, unused):
        nonlocal first_line
        c.lines_read += n
        c.unused_events.update(unused)
        if parsed is not None:
            kind = _screen(parsed, lines, first_line + 1 + rest, lenient, where, c)
            ev = np.flatnonzero(kind == LINE_EVENT)
            code[rest[ev]] = parsed["code"].to_numpy()[ev]
            t[rest[ev]] = parsed["t_ns"].to_numpy()[ev]
            for q, col in enumerate(COLUMNS):
                vals[q, rest[ev]] = parsed[col].to_numpy()[ev]
        keep = np.flatnonzero(code >= 0)
        out = mapper.feed_arrays(code[keep], t[keep], [v[keep] for v in vals])
        if writing[0] is not None:
            writing[0].result()  # one write in flight; its errors surface here
        writing[0] = writer.submit(w.write, *out)
        first_line += n

    writing = [None]
    with ThreadPoolExecutor(max_workers=1) as pool, ThreadPoolExecutor(max_workers=1) as writer:
        pending = None
        for block in line_blocks(raw):
            nxt = pool.submit(_scan_block, block, fmt)
            if pending is not None:
                finish(*pending.result())
            pending = nxt
        if pending is not None:
            finish(*pending.result())
        if writing[0] is not None:
            writing[0].result()
    mapper.fill_counters(c)
    return mapper


def pfnmap_path(out: str | os.PathLike) -> Path:
    """Where the dense-pfn -> physical-pfn map of a converted trace goes."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".parquet") + ".pfnmap.pq")
