"""The line-by-line reference converter: the twin the fast path is held to.

:func:`parse_line` reads one line with the regular expressions of
:mod:`tracer.linux.rules` and :class:`Mapper` applies the mapping rules
stated there, one event at a time, in plain Python dicts. It is slow and
simple on purpose: the tests demand that the fast path
(:mod:`tracer.linux.fast`) gives the same trace and counters.
"""

from __future__ import annotations

import collections
from array import array
from dataclasses import dataclass

import numpy as np

from tracer.linux.counters import Counters
from tracer.linux.rules import (
    BDI_ANY,
    DIRTY_EXPIRE_S,
    EVENT_COLUMNS,
    FIELDS,
    HEX_COLUMNS,
    INITIAL_OPS,
    INT64_MAX,
    LINE_SHAPES,
    MAX_ORDER,
    MAX_RANGE_PAGES,
    NOISE,
    OP_READ,
    OP_SET_POT_VOLATILE,
    OP_SET_STABLE,
    OP_SET_STABLE_IF_RESIDENT,
    OP_SET_UNUSED,
    OP_SET_VOLATILE,
    OP_WRITE,
    ORDER_GROUP,
    PAGE_SHIFT,
    POT_VOLATILE,
    STABLE,
    STATE_NAMES,
    UNUSED,
    VOLATILE,
    clean_after_ns,
)


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
    if NOISE.match(line):
        return "noise", None
    shapes = LINE_SHAPES.items() if fmt == "auto" else ((fmt, LINE_SHAPES[fmt]),)
    m = None
    for _, rx in shapes:
        m = rx.match(line)
        if m:
            break
    if m is None:
        return "bad-line", None
    name = m.group("ev")
    fields_rx = FIELDS.get(name)
    if fields_rx is None:
        return "unused", (f"{m.group('sys')}:{name}" if "sys" in m.groupdict() and m.group("sys")
                          else name)
    f = fields_rx.search(m.group("body"))
    if f is None:
        if name.startswith("writeback_") and BDI_ANY.search(m.group("body")):
            return "unused", f"{name} (non-block bdi)"
        return "bad-fields", name
    if name in ORDER_GROUP and int(f.group(ORDER_GROUP[name])) > MAX_ORDER:
        return "bad-fields", name
    hex_cols = HEX_COLUMNS.get(name, "")
    if any(int(g, 16 if col in hex_cols else 10) > INT64_MAX
           for g, col in zip(f.groups(), EVENT_COLUMNS[name], strict=True)):
        return "bad-fields", name  # as the fast paths, which hold fields in int64
    return "event", Event(_ts_ns(m.group("ts")), name, f.groups())


class Mapper:
    """Turn parsed events into cmmsim ops, frame by frame (the rules of :mod:`tracer.linux.rules`)."""

    def __init__(self, initial: np.ndarray | None = None,
                 dirty_expire_s: float = DIRTY_EXPIRE_S):
        self.initial = initial
        self.expire_ns = clean_after_ns(dirty_expire_s)
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
        st = self._current(phys, VOLATILE)
        if st in (VOLATILE, POT_VOLATILE):
            self._emit(t, phys, OP_SET_STABLE_IF_RESIDENT)
            self._emit(t, phys, OP_READ)
            self._emit(t, phys, OP_SET_VOLATILE if st == VOLATILE else OP_SET_POT_VOLATILE)
        else:
            self._emit(t, phys, OP_READ)

    def _clean(self, t: int, inode: tuple) -> None:
        pages = self.dirty.pop(inode, None)
        for phys in pages or ():
            if self.state.get(phys) == STABLE and phys in self.key_of:
                self.state[phys] = VOLATILE
                self._emit(t, phys, OP_SET_VOLATILE)

    def _expire(self, t: int) -> None:
        q = self.dirty_queue
        while q and t - q[0][0] > self.expire_ns:
            when, inode, phys = q.popleft()
            d = self.dirty.get(inode)
            if d is not None and d.get(phys) == when:
                del d[phys]
                if self.state.get(phys) == STABLE and phys in self.key_of:
                    self.state[phys] = VOLATILE
                    self._emit(when + self.expire_ns, phys, OP_SET_VOLATILE)
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
            self._current(phys, UNUSED)
            self._forget_identity(phys)
            self.state[phys] = STABLE
            self._emit(t, phys, OP_SET_STABLE)
            self._emit(t, phys, OP_WRITE)

    def _free(self, t, frames):
        for phys in frames:
            if self._current(phys, STABLE) == UNUSED:
                self.counters.duplicate_frees += 1
                continue
            self._forget_identity(phys)
            self.state[phys] = UNUSED
            self._emit(t, phys, OP_SET_UNUSED)

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
            if self._current(phys, STABLE) == UNUSED:
                # A frame the converter holds free: its allocation is not in
                # the trace (e.g. lost by perf); allocate it here.
                self.state[phys] = STABLE
                self._emit(t, phys, OP_SET_STABLE)
                self._emit(t, phys, OP_WRITE)
            key = (major, minor, ino, index + i)
            self.page_at[key] = phys
            self.key_of[phys] = key
            self.state[phys] = VOLATILE
            self._emit(t, phys, OP_SET_VOLATILE)

    def _on_mm_filemap_delete_from_page_cache(self, t, f):
        for phys in self._frames(f[3], f[5]):
            self._current(phys, VOLATILE)
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
            if self._current(phys, VOLATILE) in (VOLATILE, POT_VOLATILE):
                # As the guest does before writing a clean cached page: pin it
                # stable if still resident (a discarded one takes the discard
                # fault on the write and is re-read), then keep it stable.
                self._emit(t, phys, OP_SET_STABLE_IF_RESIDENT)
                self._emit(t, phys, OP_WRITE)
                self._emit(t, phys, OP_SET_STABLE)
                self.state[phys] = STABLE
            else:
                self._emit(t, phys, OP_WRITE)
            pages[phys] = t
            self.dirty_queue.append((t, inode, phys))

    def _on_writeback_single_inode(self, t, f):
        if int(f[3]) > 0:
            self._clean(t, (int(f[0]), int(f[1]), int(f[2])))

    _on_ext4_writepages_result = _on_writeback_single_inode

    def _on_mm_lru_activate(self, t, f):
        phys = int(f[0], 16)
        if self._current(phys, STABLE) == UNUSED:
            self.counters.activate_on_free += 1
            return
        self._emit(t, phys, OP_READ)

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
            counters.initial_states[STATE_NAMES[st]] += 1
            d = self.dense[phys]
            ops += [(d, op) for op in INITIAL_OPS[st]]
        arr = np.array(ops, dtype=np.int64).reshape(-1, 2)
        return (np.zeros(len(arr), np.int64), arr[:, 0].astype(np.uint32),
                arr[:, 1].astype(np.uint8))
