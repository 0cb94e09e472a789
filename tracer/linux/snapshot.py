"""Which file pages sit in which frames at capture start: the mapped ones, from /proc.

A capture never sees pages enter the page cache before it began, so their
reads cannot be resolved to a frame. Dropping the caches first (``trace
record --drop-caches``) removes the clean unmapped ones; what stays is mapped
by running processes (their binaries and libraries), and for those
``/proc/<pid>/maps`` names the file and offset of every mapped page and
``/proc/<pid>/pagemap`` its frame (the frame number needs root).
:func:`mapped_file_pages` reads both into rows ``(major, minor, inode,
page index, pfn)``, the start snapshot both mappers accept. A large folio
stays cached whole while any of its pages is mapped (drop_caches keeps it):
:func:`whole_folios` adds its unmapped pages, found from ``/proc/kpageflags``
(a folio's pages are contiguous in frames and in file offsets).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cmmsim.tracer.linux.kpageflags import KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL

#: Columns of a snapshot row.
SNAPSHOT_COLUMNS = ("major", "minor", "ino", "index", "pfn")
# /proc/<pid>/pagemap: bit 63 page present, bit 61 file page or shared anonymous, bits 0-54 pfn.
_PRESENT, _FILE_PAGE, _PFN_MASK = 1 << 63, 1 << 61, (1 << 55) - 1
_PAGE = 4096
_MAPS_LINE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+)\s+(/.*)$")


def snapshot_rows(snapshot: np.ndarray | None) -> Iterator[tuple[int, int, int, int, int]]:
    """The rows of a snapshot as Python ints (none for None)."""
    if snapshot is None:
        return iter(())
    return (tuple(int(x) for x in row) for row in np.asarray(snapshot, np.int64).reshape(-1, 5))


def _process_pages(pid_dir: Path) -> list[np.ndarray]:
    out = []
    try:
        maps = (pid_dir / "maps").read_text().splitlines()
        fd = os.open(pid_dir / "pagemap", os.O_RDONLY)
    except OSError:  # the process ended, or is a kernel thread
        return out
    try:
        for line in maps:
            m = _MAPS_LINE.match(line)
            if m is None or m.group(6) == "0":
                continue
            start, end, offset = (int(m.group(i), 16) for i in (1, 2, 3))
            n = (end - start) // _PAGE
            raw = os.pread(fd, 8 * n, 8 * (start // _PAGE))
            entries = np.frombuffer(raw, np.uint64)
            hit = np.flatnonzero((entries & np.uint64(_PRESENT | _FILE_PAGE)) == np.uint64(_PRESENT | _FILE_PAGE))
            if not len(hit):
                continue
            rows = np.empty((len(hit), 5), np.int64)
            rows[:, 0] = int(m.group(4), 16)
            rows[:, 1] = int(m.group(5), 16)
            rows[:, 2] = int(m.group(6))
            rows[:, 3] = offset // _PAGE + hit
            rows[:, 4] = (entries[hit] & np.uint64(_PFN_MASK)).astype(np.int64)
            out.append(rows)
    except OSError:
        pass
    finally:
        os.close(fd)
    return out


def mapped_file_pages(proc: str | os.PathLike = "/proc") -> np.ndarray:
    """Rows (major, minor, inode, page index, pfn) of every file page mapped by a process now.

    Needs root (pagemap hides frame numbers otherwise: those rows are dropped).
    A page and a frame each appear once (the first row found).
    """
    parts = []
    for pid_dir in Path(proc).iterdir():
        if pid_dir.name.isdigit():
            parts += _process_pages(pid_dir)
    rows = np.concatenate(parts) if parts else np.zeros((0, 5), np.int64)
    return unique_snapshot(rows[rows[:, 4] > 0])


def unique_snapshot(rows: np.ndarray) -> np.ndarray:
    """Snapshot rows with each page and each frame once (the first row of each), as int64."""
    rows = np.asarray(rows, np.int64).reshape(-1, 5)
    _, first = np.unique(rows[:, :4], axis=0, return_index=True)
    rows = rows[np.sort(first)]
    _, first = np.unique(rows[:, 4], return_index=True)
    return np.ascontiguousarray(rows[np.sort(first)])


#: The largest folio :func:`whole_folios` follows, in pages.
_MAX_FOLIO_PAGES = 1 << 10


def whole_folios(rows: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Snapshot rows extended to every page of the large folios they fall in.

    ``flags`` are ``/proc/kpageflags`` read at the same time
    (:func:`cmmsim.tracer.linux.kpageflags.read_kpageflags`).
    """
    rows = np.asarray(rows, np.int64).reshape(-1, 5)
    pfn = rows[:, 4]
    inside = pfn < len(flags)
    bit = lambda arr, n: ((flags[arr] >> np.uint64(n)) & np.uint64(1)).astype(bool)  # noqa: E731
    compound = np.zeros(len(rows), bool)
    compound[inside] = bit(pfn[inside], KPF_COMPOUND_HEAD) | bit(pfn[inside], KPF_COMPOUND_TAIL)
    extra = []
    last = None  # (head, end, file and index - pfn) of the last folio extended
    for r in np.flatnonzero(compound).tolist():
        p = int(pfn[r])
        same = (int(rows[r, 0]), int(rows[r, 1]), int(rows[r, 2]), int(rows[r, 3]) - p)
        if last is not None and last[0] <= p < last[1] and last[2] == same:
            continue  # the next page of the folio just extended: the same rows again
        head = p
        while head > 0 and p - head < _MAX_FOLIO_PAGES and bit(np.array([head]), KPF_COMPOUND_TAIL)[0]:
            head -= 1
        end = p + 1
        while end < len(flags) and end - head < _MAX_FOLIO_PAGES and bit(np.array([end]), KPF_COMPOUND_TAIL)[0]:
            end += 1
        last = (head, end, same)
        frames = np.arange(head, end, dtype=np.int64)
        part = np.empty((len(frames), 5), np.int64)
        part[:, :3] = rows[r, :3]
        part[:, 3] = rows[r, 3] + frames - p
        part[:, 4] = frames
        extra.append(part[part[:, 3] >= 0])
    if not extra:
        return rows
    return unique_snapshot(np.concatenate([rows] + extra))
