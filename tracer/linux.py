"""Linux tracepoint text (perf script, trace-cmd report, ftrace) -> cmmsim trace.

A Linux VM is itself a hosted guest, so its own page events are real guest
traces. This module streams tracepoint text, one line at a time and in
bounded memory, and maps the events to the guest page hints and accesses of
DESIGN.md section 2. Every rule below names the kernel behaviour it stands
for (Linux 6.x, ``include/trace/events/{kmem,filemap,writeback,pagemap}.h``).

Line shapes (auto-detected per line; ``--format`` restricts to one):

* ``perf script`` default (``comm pid [cpu] time: sys:event: fields``) and
  ``-F`` selections without the cpu column; task names may hold spaces.
* ``trace-cmd report`` (``comm-pid [cpu] time: event: fields``).
* raw ftrace ``trace_pipe`` (``comm-pid [cpu] flags time: event: fields``).

Mapping rules:

``kmem:mm_page_alloc pfn order``
    The page allocator hands out 2^order frames: each becomes SET_STABLE then
    WRITE (its new owner fills it). ``pfn=0x0`` is a failed allocation:
    counted, nothing emitted.
``kmem:mm_page_free pfn order`` / ``kmem:mm_page_free_batched pfn``
    Each frame returns to the buddy allocator: SET_UNUSED, and its page-cache
    identity is forgotten (pfns are reused within milliseconds). Since Linux
    6.x every batched free is also reported by mm_page_free just before it:
    a free of a frame already free is counted (``duplicate_frees``) and
    dropped, which also handles older kernels that report only the batch.
``filemap:mm_filemap_add_to_page_cache dev ino pfn ofs order``
    A folio enters the page cache; its frames are remembered under (dev,
    ino, page index). The folio is clean once its read completes and it is
    unlocked: SET_VOLATILE per frame (the kernel gives no completion event;
    the read follows within microseconds).
``filemap:mm_filemap_delete_from_page_cache``
    The identity is forgotten; the free that follows emits SET_UNUSED.
``filemap:mm_filemap_get_pages / map_pages (dev ino byte range)``, ``mm_filemap_fault (dev ino ofs)``
    read(), fault-around and page faults of cached file pages, by offset.
    Each cached page in the range is read: a clean (volatile) page as
    SET_STABLE_IF_RESIDENT, READ, SET_VOLATILE (the guest pins it while it
    copies it), a dirty one as READ. Offsets with no cached page known are
    counted (``unresolved_accesses``), never guessed.
``writeback:writeback_dirty_folio bdi ino(decimal) index``
    A folio is dirtied: per clean frame SET_STABLE_IF_RESIDENT, WRITE,
    SET_STABLE (the guest pins a volatile page before writing it; if the host
    had discarded it the write takes the discard fault); a frame already
    dirty is just written. The folio is found
    through the page-cache map (the inode number is decimal here, hex in
    filemap); block-device metadata pages show as ``dev 0:3 ino fe00000`` in
    filemap but under the disk's bdi with another inode here, so they do
    not resolve: counted (``unresolved_dirty``).
``writeback:writeback_single_inode (wrote > 0)``, ``ext4:ext4_writepages_result (pages_written > 0)``
    There is no per-folio "writeback done" tracepoint: when an inode's
    writeback wrote pages, its dirty pages are clean again: SET_VOLATILE.
    Pages still dirty ``dirty_expire_s`` (30 s, the kernel's
    ``dirty_expire_centisecs``) plus one writeback period (5 s) after being
    dirtied are taken as written back then (``expired_clean``).
``pagemap:mm_lru_activate pfn``
    The page was referenced again: a READ (the only access event that names
    anonymous pages). On a frame the converter holds free it is counted
    (``activate_on_free``) and dropped.

Initial states: a frame whose first event implies an earlier state (freed,
read from the page cache, activated, deleted before being seen allocated)
gets that state at time 0: stable (SET_STABLE, WRITE) or volatile page cache
(SET_STABLE, WRITE, SET_VOLATILE). With a ``/proc/kpageflags`` snapshot
taken at capture start the snapshot decides instead: buddy pages unused,
clean file LRU pages volatile, dirty or anonymous pages stable.

Physical pfns are renumbered densely in order of first appearance; the map
goes to a side file ``<out stem>.pfnmap.pq`` (Parquet: ``pfn``, ``phys_pfn``; not named
``.parquet`` so that globs for traces do not pick it up).
Timestamps are made relative to the first event; a timestamp earlier than
the one before (per-CPU buffers of trace_pipe) is raised to it and counted
(``reordered``).
"""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import lzma
import os
import re
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tracer.errors import CmmsimError, ParamError
from tracer.io import ColumnSpill, TraceWriter, atomic_output
from tracer.schema import Op, TraceMeta

FORMATS = ("auto", "perf", "trace-cmd", "ftrace")

_LINE = {
    "perf": re.compile(
        r"^\s*(?P<task>.*?)\s+(?P<pid>-?[0-9]+)\s+(?:\[(?P<cpu>[0-9]+)\]\s+)?(?P<ts>[0-9]+\.[0-9]+):\s+"
        r"(?P<sys>\w+):(?P<ev>\w+):\s?(?P<body>.*)$"),
    "ftrace": re.compile(
        r"^\s*(?P<task>.*?)-(?P<pid>[0-9]+)\s+(?:\(\s*[0-9-]+\)\s+)?\[(?P<cpu>[0-9]+)\]\s+"
        r"(?P<flags>[^\s\[\]]{4,6})\s+(?P<ts>[0-9]+\.[0-9]+):\s+(?P<ev>\w+):\s?(?P<body>.*)$"),
    "trace-cmd": re.compile(
        r"^\s*(?P<task>.*?)-(?P<pid>[0-9]+)\s+\[(?P<cpu>[0-9]+)\]\s+(?P<ts>[0-9]+\.[0-9]+):\s+"
        r"(?P<ev>\w+):\s?(?P<body>.*)$"),
}
#: Lines that are no events at all: comments, trace-cmd's header, perf's notes.
_NOISE = re.compile(r"^\s*(#|$|cpus=|version\s*=|CPU\s*\d+\s+is empty|\[\s*perf)")

_HEX = r"0x([0-9a-fA-F]+)"
_FIELDS = {
    "mm_page_alloc": re.compile(rf"pfn={_HEX} order=([0-9]+)"),
    "mm_page_free": re.compile(rf"pfn={_HEX} order=([0-9]+)"),
    "mm_page_free_batched": re.compile(rf"pfn={_HEX}"),
    "mm_filemap_add_to_page_cache": re.compile(
        rf"dev ([0-9]+):([0-9]+) ino ([0-9a-fA-F]+) pfn={_HEX} ofs=([0-9]+) order=([0-9]+)"),
    "mm_filemap_delete_from_page_cache": re.compile(
        rf"dev ([0-9]+):([0-9]+) ino ([0-9a-fA-F]+) pfn={_HEX} ofs=([0-9]+) order=([0-9]+)"),
    "mm_filemap_get_pages": re.compile(r"dev=([0-9]+):([0-9]+) ino=([0-9a-fA-F]+) ofs=([0-9]+)-([0-9]+)"),
    "mm_filemap_map_pages": re.compile(r"dev=([0-9]+):([0-9]+) ino=([0-9a-fA-F]+) ofs=([0-9]+)-([0-9]+)"),
    "mm_filemap_fault": re.compile(r"dev=([0-9]+):([0-9]+) ino=([0-9a-fA-F]+) ofs=([0-9]+)"),
    "writeback_dirty_folio": re.compile(r"bdi ([0-9]+):([0-9]+): ino=([0-9]+) index=([0-9]+)"),
    "writeback_single_inode": re.compile(r"bdi ([0-9]+):([0-9]+): ino=([0-9]+) .*\bwrote=([0-9]+)"),
    "ext4_writepages_result": re.compile(r"dev ([0-9]+),([0-9]+) ino ([0-9]+) ret -?[0-9]+ pages_written ([0-9]+)"),
    "mm_lru_activate": re.compile(rf"pfn={_HEX}"),
}
#: Events whose bdi is not a block device ("(unknown)", "fuse", ...) are well
#: formed: the bdi field then simply does not resolve to a page-cache device.
_BDI_ANY = re.compile(r"bdi ([^:]+): ino=[0-9]+")
EVENTS = tuple(_FIELDS)
#: Regex group holding the folio order, for the events that have one.
_ORDER_FIELD = {"mm_page_alloc": 2, "mm_page_free": 2, "mm_filemap_add_to_page_cache": 6,
                "mm_filemap_delete_from_page_cache": 6}
#: read()/fault-around ranges longer than this many pages are clamped (and
#: counted): a range names offsets, not pages the cache holds.
MAX_RANGE_PAGES = 1 << 16

_U, _S, _V, _P = 0, 1, 2, 3
_READ, _WRITE = int(Op.READ), int(Op.WRITE)
_SS, _SU, _SV, _SIR = (int(Op.SET_STABLE), int(Op.SET_UNUSED), int(Op.SET_VOLATILE),
                       int(Op.SET_STABLE_IF_RESIDENT))
PAGE_SHIFT = 12
MAX_ORDER = 10
DIRTY_EXPIRE_S = 30.0
WRITEBACK_PERIOD_S = 5.0
_FLUSH_EVENTS = 1 << 18


class ConvertError(CmmsimError):
    """A malformed line in strict mode: names file, line number and the line."""


def open_binary(path: str | os.PathLike | None) -> IO[bytes]:
    """Open plain, .gz, .xz, .bz2 or .zst input as bytes (``-`` or None: standard input)."""
    if path is None or str(path) == "-":
        return sys.stdin.buffer
    p = Path(path)
    if not p.exists():
        raise ParamError(f"{p}: no such file")
    name = p.name.lower()
    if name.endswith(".gz"):
        return gzip.open(p, "rb")
    if name.endswith(".xz"):
        return lzma.open(p, "rb")
    if name.endswith(".bz2"):
        return bz2.open(p, "rb")
    if name.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise ParamError(f"{p}: reading .zst needs the zstandard package") from None
        return zstandard.ZstdDecompressor().stream_reader(open(p, "rb"))
    return open(p, "rb")


def open_text(path: str | os.PathLike | None) -> IO[str]:
    """Open plain, .gz, .xz, .bz2 or .zst text (``-`` or None: standard input)."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", errors="replace")


@dataclass(frozen=True)
class Event:
    """One parsed tracepoint line."""

    t_ns: int
    name: str
    fields: tuple


def _ts_ns(ts: str) -> int:
    sec, _, frac = ts.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def parse_line(line: str, fmt: str = "auto") -> tuple[str, Event | str | None]:
    """Parse one line.

    Returns ``("event", Event)`` for a supported event, ``("unused", name)``
    for a well-formed line of another event, ``("noise", None)`` for
    comments and headers, ``("bad-line", None)`` for a line in no supported
    format and ``("bad-fields", name)`` for a supported event whose fields do
    not parse. Never raises.
    """
    if _NOISE.match(line):
        return "noise", None
    shapes = _LINE.items() if fmt == "auto" else ((fmt, _LINE[fmt]),)
    m = None
    for _, rx in shapes:
        m = rx.match(line)
        if m:
            break
    if m is None:
        return "bad-line", None
    name = m.group("ev")
    fields_rx = _FIELDS.get(name)
    if fields_rx is None:
        return "unused", (f"{m.group('sys')}:{name}" if "sys" in m.groupdict() and m.group("sys")
                          else name)
    f = fields_rx.search(m.group("body"))
    if f is None:
        if name.startswith("writeback_") and _BDI_ANY.search(m.group("body")):
            return "unused", f"{name} (non-block bdi)"
        return "bad-fields", name
    if name in _ORDER_FIELD and int(f.group(_ORDER_FIELD[name])) > MAX_ORDER:
        return "bad-fields", name
    return "event", Event(_ts_ns(m.group("ts")), name, f.groups())


def read_kpageflags_states(path: str = "/proc/kpageflags") -> np.ndarray:
    """Initial guest state per physical pfn from a kpageflags snapshot (uint8: 0 U 1 S 2 V)."""
    flags = np.fromfile(path, dtype=np.uint64)
    return kpageflags_to_states(flags)


def kpageflags_to_states(flags: np.ndarray) -> np.ndarray:
    """Buddy pages unused; clean, unmapped-anon file LRU pages volatile; the rest stable."""
    bit = lambda n: (flags >> np.uint64(n)) & np.uint64(1)  # noqa: E731
    dirty, lru, buddy, anon = bit(4), bit(5), bit(10), bit(12)
    states = np.full(flags.shape, _S, np.uint8)
    states[(lru == 1) & (anon == 0) & (dirty == 0)] = _V
    states[buddy == 1] = _U
    return states


@dataclass
class Counters:
    """What the converter read, skipped and repaired (goes into the metadata)."""

    lines_read: int = 0
    events: collections.Counter = field(default_factory=collections.Counter)
    skipped: collections.Counter = field(default_factory=collections.Counter)
    unused_events: collections.Counter = field(default_factory=collections.Counter)
    unresolved_accesses: int = 0
    unresolved_dirty: int = 0
    duplicate_frees: int = 0
    failed_allocations: int = 0
    activate_on_free: int = 0
    expired_clean: int = 0
    reordered: int = 0
    clamped_ranges: int = 0
    initial_states: collections.Counter = field(default_factory=collections.Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines_read": self.lines_read,
            "events": dict(sorted(self.events.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "unused_events": dict(sorted(self.unused_events.items())),
            "unresolved_accesses": self.unresolved_accesses,
            "unresolved_dirty": self.unresolved_dirty,
            "duplicate_frees": self.duplicate_frees,
            "failed_allocations": self.failed_allocations,
            "activate_on_free": self.activate_on_free,
            "expired_clean": self.expired_clean,
            "reordered": self.reordered,
            "clamped_ranges": self.clamped_ranges,
            "initial_states": dict(sorted(self.initial_states.items())),
        }


class Mapper:
    """Turn parsed events into cmmsim ops, frame by frame (see the module docstring)."""

    def __init__(self, initial: np.ndarray | None = None,
                 dirty_expire_s: float = DIRTY_EXPIRE_S):
        self.initial = initial
        self.expire_ns = int((dirty_expire_s + WRITEBACK_PERIOD_S) * 1e9)
        self.dense: dict[int, int] = {}
        self.state: dict[int, int] = {}  # phys pfn -> U/S/V/P as the guest holds it
        self.first_state: dict[int, int] = {}  # inferred initial state of a phys pfn
        self.page_at: dict[tuple, int] = {}  # (major, minor, ino, index) -> phys pfn
        self.key_of: dict[int, tuple] = {}  # phys pfn -> (major, minor, ino, index)
        self.folio_order: dict[int, int] = {}  # head phys pfn -> order
        self.dirty: dict[tuple, dict[int, int]] = {}  # (major, minor, ino) -> {pfn: t}
        self.dirty_queue: collections.deque = collections.deque()
        self.counters = Counters()
        self.t0: int | None = None
        self.last_t = 0
        self.t_ns = array("q")
        self.pfn = array("L")
        self.op = array("B")

    # -- helpers -------------------------------------------------------------------------------
    def _id(self, phys: int) -> int:
        d = self.dense.get(phys)
        if d is None:
            d = self.dense[phys] = len(self.dense)
        return d

    def _emit(self, t: int, phys: int, op: int) -> None:
        self.t_ns.append(t)
        self.pfn.append(self._id(phys))
        self.op.append(op)

    def _current(self, phys: int, implied: int) -> int:
        """The frame's state; on first sight, the implied (or snapshot) initial state."""
        st = self.state.get(phys)
        if st is None:
            if self.initial is not None and phys < len(self.initial):
                st = int(self.initial[phys])
            else:
                st = implied
            self.state[phys] = st
            self.first_state[phys] = st
            self._id(phys)
        return st

    def _forget_identity(self, phys: int) -> None:
        key = self.key_of.pop(phys, None)
        if key is not None:
            if self.page_at.get(key) == phys:
                del self.page_at[key]
            d = self.dirty.get(key[:3])
            if d is not None:
                d.pop(phys, None)
        self.folio_order.pop(phys, None)

    def _read_cached(self, t: int, phys: int) -> None:
        st = self._current(phys, _V)
        if st in (_V, _P):
            self._emit(t, phys, _SIR)
            self._emit(t, phys, _READ)
            self._emit(t, phys, _SV if st == _V else int(Op.SET_POT_VOLATILE))
        else:
            self._emit(t, phys, _READ)

    def _clean(self, t: int, inode: tuple) -> None:
        pages = self.dirty.pop(inode, None)
        for phys in pages or ():
            if self.state.get(phys) == _S and phys in self.key_of:
                self.state[phys] = _V
                self._emit(t, phys, _SV)

    def _expire(self, t: int) -> None:
        q = self.dirty_queue
        while q and t - q[0][0] > self.expire_ns:
            when, inode, phys = q.popleft()
            d = self.dirty.get(inode)
            if d is not None and d.get(phys) == when:
                del d[phys]
                if self.state.get(phys) == _S and phys in self.key_of:
                    self.state[phys] = _V
                    self._emit(when + self.expire_ns, phys, _SV)
                    self.counters.expired_clean += 1

    # -- events --------------------------------------------------------------------------------
    def feed(self, ev: Event) -> None:
        if self.t0 is None:
            self.t0 = ev.t_ns
        t = ev.t_ns - self.t0
        if t < self.last_t:
            self.counters.reordered += 1
            t = self.last_t
        self.last_t = t
        self.counters.events[ev.name] += 1
        if self.dirty_queue:
            self._expire(t)
        getattr(self, "_on_" + ev.name)(t, ev.fields)

    def _frames(self, pfn_hex: str, order: str | int) -> range:
        pfn = int(pfn_hex, 16)
        return range(pfn, pfn + (1 << int(order)))

    def _on_mm_page_alloc(self, t, f):
        if int(f[0], 16) == 0:
            self.counters.failed_allocations += 1
            return
        for phys in self._frames(f[0], f[1]):
            self._current(phys, _U)
            self._forget_identity(phys)
            self.state[phys] = _S
            self._emit(t, phys, _SS)
            self._emit(t, phys, _WRITE)

    def _free(self, t, frames):
        for phys in frames:
            if self._current(phys, _S) == _U:
                self.counters.duplicate_frees += 1
                continue
            self._forget_identity(phys)
            self.state[phys] = _U
            self._emit(t, phys, _SU)

    def _on_mm_page_free(self, t, f):
        self._free(t, self._frames(f[0], f[1]))

    def _on_mm_page_free_batched(self, t, f):
        self._free(t, self._frames(f[0], 0))

    def _on_mm_filemap_add_to_page_cache(self, t, f):
        major, minor, ino = int(f[0]), int(f[1]), int(f[2], 16)
        frames = self._frames(f[3], f[5])
        index = int(f[4]) >> PAGE_SHIFT
        for phys in frames:
            self._forget_identity(phys)
        self.folio_order[frames[0]] = int(f[5])
        for i, phys in enumerate(frames):
            if self._current(phys, _S) == _U:
                # A frame the converter holds free: its allocation is not in
                # the trace (e.g. lost by perf); allocate it here.
                self.state[phys] = _S
                self._emit(t, phys, _SS)
                self._emit(t, phys, _WRITE)
            key = (major, minor, ino, index + i)
            self.page_at[key] = phys
            self.key_of[phys] = key
            self.state[phys] = _V
            self._emit(t, phys, _SV)

    def _on_mm_filemap_delete_from_page_cache(self, t, f):
        for phys in self._frames(f[3], f[5]):
            self._current(phys, _V)
            self._forget_identity(phys)

    def _access_range(self, t, f, first: int, last: int):
        major, minor, ino = int(f[0]), int(f[1]), int(f[2], 16)
        lo, hi = first >> PAGE_SHIFT, last >> PAGE_SHIFT
        if hi - lo >= MAX_RANGE_PAGES:
            self.counters.clamped_ranges += 1
            hi = lo + MAX_RANGE_PAGES - 1
        for index in range(lo, hi + 1):
            phys = self.page_at.get((major, minor, ino, index))
            if phys is None:
                self.counters.unresolved_accesses += 1
            else:
                self._read_cached(t, phys)

    def _on_mm_filemap_get_pages(self, t, f):
        self._access_range(t, f, int(f[3]), int(f[4]))

    _on_mm_filemap_map_pages = _on_mm_filemap_get_pages

    def _on_mm_filemap_fault(self, t, f):
        self._access_range(t, f, int(f[3]), int(f[3]))

    def _on_writeback_dirty_folio(self, t, f):
        major, minor, ino, index = (int(x) for x in f)
        head = self.page_at.get((major, minor, ino, index))
        if head is None:
            self.counters.unresolved_dirty += 1
            return
        order = self.folio_order.get(head, 0)
        inode = (major, minor, ino)
        pages = self.dirty.setdefault(inode, {})
        for phys in range(head, head + (1 << order)):
            if self.page_at.get((major, minor, ino, index + phys - head)) != phys:
                continue
            if self._current(phys, _V) in (_V, _P):
                # As the guest does before writing a clean cached page: pin it
                # stable if still resident (a discarded one takes the discard
                # fault on the write and is re-read), then keep it stable.
                self._emit(t, phys, _SIR)
                self._emit(t, phys, _WRITE)
                self._emit(t, phys, _SS)
                self.state[phys] = _S
            else:
                self._emit(t, phys, _WRITE)
            pages[phys] = t
            self.dirty_queue.append((t, inode, phys))

    def _on_writeback_single_inode(self, t, f):
        if int(f[3]) > 0:
            self._clean(t, (int(f[0]), int(f[1]), int(f[2])))

    _on_ext4_writepages_result = _on_writeback_single_inode

    def _on_mm_lru_activate(self, t, f):
        phys = int(f[0], 16)
        if self._current(phys, _S) == _U:
            self.counters.activate_on_free += 1
            return
        self._emit(t, phys, _READ)

    # -- output --------------------------------------------------------------------------------
    def take(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The events buffered so far (dense pfns) as schema arrays; clears the buffer."""
        t = np.frombuffer(self.t_ns, dtype=np.int64).copy()
        p = np.frombuffer(self.pfn, dtype=np.dtype(f"u{self.pfn.itemsize}")).astype(np.uint32)
        o = np.frombuffer(self.op, dtype=np.uint8).copy()
        self.t_ns, self.pfn, self.op = array("q"), array("L"), array("B")
        return t, p, o

    @property
    def n_frames(self) -> int:
        return len(self.dense)

    def phys_of_dense(self) -> np.ndarray:
        return np.fromiter(self.dense.keys(), dtype=np.uint64, count=len(self.dense))

    def initial_events(self, counters: Counters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Events at t=0 that put every frame into its inferred initial state."""
        ops: list[tuple[int, int]] = []
        for phys, st in self.first_state.items():
            name = "USVP"[st]
            counters.initial_states[name] += 1
            d = self.dense[phys]
            if st == _S:
                ops += [(d, _SS), (d, _WRITE)]
            elif st in (_V, _P):
                ops += [(d, _SS), (d, _WRITE), (d, _SV if st == _V else int(Op.SET_POT_VOLATILE))]
        arr = np.array(ops, dtype=np.int64).reshape(-1, 2)
        return (np.zeros(len(arr), np.int64), arr[:, 0].astype(np.uint32),
                arr[:, 1].astype(np.uint8))


def convert(inp: str | os.PathLike | None, out: str | os.PathLike, *, fmt: str = "auto",
            lenient: bool = False, guest_pages: int | None = None,
            initial: np.ndarray | None = None, extra_meta: dict | None = None,
            stream: IO[str] | None = None, engine: str = "fast") -> TraceMeta:
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
        Initial state per physical pfn (:func:`read_kpageflags_states`).
    extra_meta : dict, optional
        Capture facts (kernel release, command, lost events) for the metadata.
    stream : text IO, optional
        Read from this instead of opening ``inp``.
    engine : str
        ``fast`` (polars + numba, chunks of lines) or ``python`` (the
        line-by-line reference twin); both give the same trace.
    """
    if fmt not in FORMATS:
        raise ParamError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    out = Path(out)
    where = "<stdin>" if inp in (None, "-") else str(inp)
    c = Counters()
    with ColumnSpill(out.with_name(f".{out.name}.body")) as w:
        if engine == "python":
            with stream or open_text(inp) as text:
                mapper = _convert_lines(text, w, fmt, lenient, where, Mapper(initial), c)
        elif stream is not None:
            mapper = _convert_chunks(stream, w, fmt, lenient, where, initial, c)
        else:
            with open_binary(inp) as raw:
                mapper = _convert_blocks(raw, w, fmt, lenient, where, initial, c)
        n_frames = mapper.n_frames
        if guest_pages is None:
            guest_pages = max(n_frames, 1)
        elif guest_pages < n_frames:
            raise ParamError(f"guest memory of {guest_pages} pages is less than the "
                             f"{n_frames} frames the trace names")
        init = mapper.initial_events(c)
        meta = TraceMeta(
            guest_pages=guest_pages,
            source=f"linux:{fmt}",
            params={"input": where, **(extra_meta or {})},
            converter=c.as_dict() | {"frames": n_frames},
        )
        with TraceWriter(out, guest_pages) as tw:
            tw.write(*init)
            for batch in w.batches():
                tw.write(*batch)
            meta = tw.finish(meta)
        phys = mapper.phys_of_dense()
        with atomic_output(pfnmap_path(out)) as tmp:
            pq.write_table(pa.table({"pfn": np.arange(n_frames, dtype=np.uint32),
                                     "phys_pfn": phys}), tmp, compression="zstd")
    return meta


CHUNK_LINES = 1 << 17


def _bad_line_error(where: str, lineno: int, kind: str, name: str | None, line: str) -> ConvertError:
    reason = "not a tracepoint line" if kind == "bad-line" else f"fields of {name} do not parse"
    return ConvertError(f"{where}:{lineno}: {reason}: {line.rstrip()[:200]!r}")


def _screen(parsed, lines: list[str], line_numbers: np.ndarray, lenient: bool, where: str,
            c: Counters) -> np.ndarray:
    """Stop at the first malformed line (strict) or count it (lenient); returns the kinds."""
    from tracer.linux_fast import K_BAD_FIELDS, K_BAD_LINE, KIND_NAMES, tally

    kind = parsed["kind"].to_numpy()
    bad = np.flatnonzero((kind == K_BAD_LINE) | (kind == K_BAD_FIELDS))
    if not lenient and len(bad):
        i = int(bad[0])
        raise _bad_line_error(where, int(line_numbers[i]), KIND_NAMES[kind[i]], parsed["name"][i],
                              lines[i])
    tally(parsed, c)
    return kind


def _convert_lines(text, w, fmt, lenient, where, mapper: Mapper, c: Counters) -> Mapper:
    """The reference path: one line at a time through :class:`Mapper`."""
    mapper.counters = c
    for lineno, line in enumerate(text, 1):
        c.lines_read += 1
        kind, what = parse_line(line, fmt)
        if kind == "event":
            mapper.feed(what)
        elif kind == "noise":
            c.skipped["header or comment"] += 1
        elif kind == "unused":
            c.unused_events[what] += 1
        else:
            if not lenient:
                raise _bad_line_error(where, lineno, kind, what, line)
            c.skipped["not a tracepoint line" if kind == "bad-line"
                      else f"fields of {what} do not parse"] += 1
        if len(mapper.op) >= _FLUSH_EVENTS:
            w.write(*mapper.take())
    w.write(*mapper.take())
    return mapper


def _convert_chunks(text, w, fmt, lenient, where, initial, c: Counters):
    """The fast path: polars parses chunks of lines, numba maps the events."""
    import itertools

    from tracer.linux_fast import (
        K_EVENT,
        FastMapper,
        parse_chunk,
    )

    mapper = FastMapper(initial)
    start = 0
    while True:
        lines = list(itertools.islice(text, CHUNK_LINES))
        if not lines:
            break
        parsed = parse_chunk(lines, fmt)
        c.lines_read += len(lines)
        _screen(parsed, lines, start + 1 + np.arange(len(lines)), lenient, where, c)
        w.write(*mapper.feed(parsed.filter(pl.col("kind") == K_EVENT)))
        start += len(lines)
    mapper.fill_counters(c)
    return mapper


BLOCK_BYTES = 16 << 20


def _blocks(raw) -> Iterator[bytes | memoryview]:
    """The input in blocks of whole lines (universal newlines; a last line gets its ``\\n``).

    Each block is a fresh buffer filled by ``readinto`` (one copy of the
    input in all: the blocks are in flight in the pipeline while the next is
    read).
    """
    carry = b""
    while True:
        buf = bytearray(len(carry) + BLOCK_BYTES + 1)
        buf[: len(carry)] = carry
        got = raw.readinto(memoryview(buf)[len(carry): len(carry) + BLOCK_BYTES])
        end = len(carry) + got
        eof = got == 0
        if buf.find(b"\r", 0, end) >= 0:
            # Universal newlines, as the text reader of the reference; a
            # "\r\n" split across reads is one line end.
            block = bytes(buf[:end])
            if block.endswith(b"\r") and not eof:
                block += raw.read(1)
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            buf = bytearray(block)
            end = len(buf)
        if eof:
            if end and buf[end - 1] != 10:
                buf[end: end + 1] = b"\n"
                end += 1
            if end:
                yield memoryview(buf)[:end]
            return
        cut = buf.rfind(b"\n", 0, end) + 1
        carry = bytes(buf[cut:end])
        if cut:
            yield memoryview(buf)[:cut]


def _scan_block(block: bytes, fmt: str):
    """Parse one block: the byte scanner first, the polars path for what it leaves."""
    from tracer.linux_fast import parse_chunk
    from tracer.linux_scan import TABLES, line_bounds, scan_lines

    buf = np.frombuffer(block, np.uint8)
    starts, ends = line_bounds(buf)
    if fmt in ("auto", "perf"):
        code, t, vals = scan_lines(buf, starts, ends, *TABLES)
    else:
        code = np.full(len(starts), -1, np.int16)
        t = np.zeros(len(starts), np.int64)
        vals = np.zeros((6, len(starts)), np.int64)
    rest = np.flatnonzero(code < 0)
    lines = [str(block[a:b], "utf-8", "replace")
             for a, b in zip(starts[rest].tolist(), ends[rest].tolist(), strict=True)]
    parsed = parse_chunk(lines, fmt) if lines else None
    return len(starts), code, t, vals, rest, lines, parsed


def _convert_blocks(raw, w, fmt, lenient, where, initial, c: Counters):
    """The fastest path: bytes in blocks, numba claims the common perf lines, polars the rest.

    Three stages on three threads (the numba kernels and file writes release
    the GIL): the next block is scanned while this one is mapped and the last
    one spilled (``w``, a :class:`tracer.io.ColumnSpill`); the mapper's order
    is the input's.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tracer.linux_fast import K_EVENT, FastMapper

    mapper = FastMapper(initial)
    first_line = 0

    def finish(n, code, t, vals, rest, lines, parsed):
        nonlocal first_line
        c.lines_read += n
        if parsed is not None:
            kind = _screen(parsed, lines, first_line + 1 + rest, lenient, where, c)
            ev = np.flatnonzero(kind == K_EVENT)
            code[rest[ev]] = parsed["code"].to_numpy()[ev]
            t[rest[ev]] = parsed["t_ns"].to_numpy()[ev]
            for q, col in enumerate("abcdef"):
                vals[q, rest[ev]] = parsed[col].to_numpy()[ev]
        keep = np.flatnonzero(code >= 0)
        out = mapper.feed_arrays(code[keep], t[keep], [vals[q, keep] for q in range(6)])
        if writing[0] is not None:
            writing[0].result()  # one write in flight; its errors surface here
        writing[0] = writer.submit(w.write, *out)
        first_line += n

    writing = [None]
    with ThreadPoolExecutor(max_workers=1) as pool, ThreadPoolExecutor(max_workers=1) as writer:
        pending = None
        for block in _blocks(raw):
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
