"""The line-by-line reference converter: the twin the fast path is held to.

:func:`parse_line` reads one line with the regular expressions of
:mod:`cmmsim.tracer.linux.rules` and :class:`Mapper` applies the mapping rules
stated there, one event at a time, in plain Python dicts. It is slow and
simple on purpose: the tests demand that the fast path
(:mod:`cmmsim.tracer.linux.fast`) gives the same trace and counters.
"""

from __future__ import annotations

import collections
from array import array
from dataclasses import dataclass

import numpy as np

from cmmsim.tracer.linux.counters import (
    CAUSE_FILE_NOT_SEEN,
    CAUSE_PAGE_NOT_SEEN,
    CAUSE_PSEUDO_FS,
    Counters,
)
from cmmsim.tracer.linux.rules import (
    BDI_ANY,
    DIRTY_EXPIRE_S,
    EVENT_COLUMNS,
    FIELDS,
    FILL_WINDOW_NS,
    HEX_COLUMNS,
    INITIAL_OPS,
    INT64_MAX,
    LINE_SHAPES,
    LOST,
    MAX_ORDER,
    MAX_RANGE_PAGES,
    MAX_TIME_S,
    MINOR_BITS,
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
    PFN_NAMES,
    POT_VOLATILE,
    RETRY_WINDOW_NS,
    STABLE,
    STATE_NAMES,
    UNUSED,
    VOLATILE,
    clean_after_ns,
    frames_in_range,
)
from cmmsim.tracer.linux.snapshot import snapshot_rows


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

    Returns ``("event", Event)`` for a supported event, ``("lost", n)`` for
    ftrace's mark of ``n`` events dropped, ``("unused", name)``
    for a well-formed line of another event, ``("noise", None)`` for
    comments and headers, ``("bad-line", None)`` for a line in no supported
    format and ``("bad-fields", name)`` for a supported event whose fields do
    not parse. Never raises.
    """
    if NOISE.match(line):
        return "noise", None
    if lost := LOST.match(line):
        n = int(lost.group(1))  # a count past int64 is no count the fast paths can hold
        return ("lost", n) if n <= INT64_MAX else ("bad-line", None)
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
        return "unused", (f"{m.group('sys')}:{name}" if "sys" in m.groupdict() and m.group("sys") else name)
    f = fields_rx.search(m.group("body"))
    if f is None:
        if name.startswith("writeback_") and BDI_ANY.search(m.group("body")):
            return "unused", f"{name} (non-block bdi)"
        return "bad-fields", name
    if name in ORDER_GROUP and int(f.group(ORDER_GROUP[name])) > MAX_ORDER:
        return "bad-fields", name
    hex_cols = HEX_COLUMNS.get(name, "")
    cols = {col: int(g, 16 if col in hex_cols else 10) for g, col in zip(f.groups(), EVENT_COLUMNS[name], strict=True)}
    if any(v > INT64_MAX for v in cols.values()):
        return "bad-fields", name  # as the fast paths, which hold fields in int64
    order = cols["b"] if name in ORDER_GROUP else 0
    if name in PFN_NAMES and not frames_in_range(cols["a"], order):
        return "bad-fields", name  # no machine has such a frame; never allocate by it
    if int(m.group("ts").partition(".")[0]) > MAX_TIME_S:
        return "bad-fields", name  # a time whose nanoseconds do not fit int64
    return "event", Event(_ts_ns(m.group("ts")), name, f.groups())


class Mapper:
    """Turn parsed events into cmmsim ops, frame by frame (the rules of :mod:`cmmsim.tracer.linux.rules`)."""

    def __init__(
        self,
        initial: np.ndarray | None = None,
        dirty_expire_s: float = DIRTY_EXPIRE_S,
        initial_pages: np.ndarray | None = None,
    ):
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
        self.files_with_pages: set[tuple] = set()  # files with a page known (cached in the capture)
        self.requests: dict[tuple, tuple] = {}  # file -> its last read: (last index, turn start, read up to)
        self.pending_fault: dict[tuple, tuple] = {}  # file -> (index, t, cause) of a fault before its fill
        self.last_fault: dict[tuple, tuple] = {}  # file -> (index, t) of its last fault
        self.last_window: dict[tuple, tuple] = {}  # file -> (first, last index) of its last fault-around
        self.bdev_file: dict[int, tuple] = {}  # block device inode (a dev_t) -> its file in filemap
        self.counters = Counters()
        for major, minor, ino, index, phys in snapshot_rows(initial_pages):
            self.page_at[(major, minor, ino, index)] = phys
            self.key_of[phys] = (major, minor, ino, index)
            self.files_with_pages.add((major, minor, ino))
            self.counters.snapshot_pages += 1
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
        self._pinned_read(t, phys, self._current(phys, VOLATILE))

    def _pinned_read(self, t: int, phys: int, st: int) -> None:
        """A READ of a frame in state st; a volatile page is pinned stable around it."""
        if st in (VOLATILE, POT_VOLATILE):
            self._emit(t, phys, OP_SET_STABLE_IF_RESIDENT)
            self._emit(t, phys, OP_READ)
            self._emit(t, phys, OP_SET_VOLATILE if st == VOLATILE else OP_SET_POT_VOLATILE)
        else:
            self._emit(t, phys, OP_READ)

    def _unresolved_cause(self, file: tuple) -> str:
        if file[0] == 0:
            return CAUSE_PSEUDO_FS
        return CAUSE_PAGE_NOT_SEEN if file in self.files_with_pages else CAUSE_FILE_NOT_SEEN

    def _unresolved(self, cause: str) -> None:
        self.counters.unresolved_accesses += 1
        self.counters.unresolved_causes[cause] += 1

    def _read_page(self, t: int, file: tuple, index: int) -> None:
        """A page the task certainly read: read it, or count it unresolved."""
        phys = self.page_at.get(file + (index,))
        if phys is None:
            self._unresolved(self._unresolved_cause(file))
        else:
            self.counters.page_cache_reads += 1
            self._read_cached(t, phys)

    def _block_device_file(self, file: tuple) -> tuple:
        """The file filemap names the block device's own page cache by, for writeback events."""
        major, minor, ino = file
        if ino == (major << MINOR_BITS) | minor:
            return self.bdev_file.get(ino, file)
        return file

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
        file = (major, minor, ino)
        self.files_with_pages.add(file)
        if major == 0 and ino >> MINOR_BITS:
            self.bdev_file[ino] = file
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
        pend = self.pending_fault.get(file)
        if pend is not None and index <= pend[0] < index + len(frames) and t - pend[1] <= FILL_WINDOW_NS:
            # The fault before this fill read the page: it reads it now.
            del self.pending_fault[file]
            self.counters.faults_filled += 1
            self.counters.page_cache_reads += 1
            self._read_cached(t, frames[pend[0] - index])

    def _on_mm_filemap_delete_from_page_cache(self, t, f):
        for phys in self._frames(f[3], f[5]):
            self._current(phys, VOLATILE)
            self._forget_identity(phys)

    def _range(self, f) -> tuple[tuple, int, int, int]:
        """(file, first index, last index clamped, last index) of a range event."""
        lo, last = int(f[3]) >> PAGE_SHIFT, int(f[4]) >> PAGE_SHIFT
        hi = last
        if hi - lo >= MAX_RANGE_PAGES:
            self.counters.clamped_ranges += 1
            hi = lo + MAX_RANGE_PAGES - 1
        return (int(f[0]), int(f[1]), int(f[2], 16)), lo, hi, last

    def _on_mm_filemap_get_pages(self, t, f):
        file, lo, hi, last = self._range(f)
        req = self.requests.get(file)
        if req is not None and req[0] == last and lo > req[1]:
            # The next turn of the same read: the last one read up to here.
            for index in range(req[2], min(lo, req[2] + MAX_RANGE_PAGES)):
                self._read_page(t, file, index)
            index = max(req[2], lo)
        else:
            self._read_page(t, file, lo)  # a turn reads its first page, always
            index = lo + 1
        while index <= hi:
            phys = self.page_at.get(file + (index,))
            if phys is None:
                break
            self.counters.page_cache_reads += 1
            self._read_cached(t, phys)
            index += 1
        self.counters.get_pages_unread += max(0, hi + 1 - index)
        self.requests[file] = (last, lo, index)

    def _on_mm_filemap_map_pages(self, t, f):
        file, lo, hi, _ = self._range(f)
        fault = self.last_fault.get(file)
        retry = fault is not None and lo <= fault[0] <= hi and t - fault[1] <= RETRY_WINDOW_NS
        if retry:  # the fault's retry: the fault read its page
            del self.last_fault[file]
            self.counters.fault_around_retries += 1
        start = lo
        window = self.last_window.get(file)
        if window is not None and window[0] <= lo <= window[1] < hi:
            start = window[1] + 1  # the last fault-around mapped the range's front
        self.last_window[file] = (lo, hi)
        first = None
        mapped = unknown = 0
        for index in range(start, hi + 1):
            if retry and index == fault[0]:
                continue
            phys = self.page_at.get(file + (index,))
            if phys is None:
                unknown += 1
            elif first is None and not retry:
                first = phys
            else:
                mapped += 1
        if first is not None:
            self.counters.page_cache_reads += 1
            self._read_cached(t, first)
        elif not retry:  # the faulting page is one of them, none known
            self._unresolved(self._unresolved_cause(file))
            unknown -= 1
        self.counters.fault_around_mapped += mapped
        self.counters.fault_around_unknown += unknown

    def _on_mm_filemap_fault(self, t, f):
        file = (int(f[0]), int(f[1]), int(f[2], 16))
        index = int(f[3]) >> PAGE_SHIFT
        self.last_fault[file] = (index, t)
        phys = self.page_at.get(file + (index,))
        if phys is not None:
            self.counters.page_cache_reads += 1
            self._read_cached(t, phys)
            return
        old = self.pending_fault.get(file)
        if old is not None:
            self._unresolved(old[2])
        self.pending_fault[file] = (index, t, self._unresolved_cause(file))

    def _on_writeback_dirty_folio(self, t, f):
        major, minor, ino = self._block_device_file(tuple(int(x) for x in f[:3]))
        index = int(f[3])
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
            self._clean(t, self._block_device_file((int(f[0]), int(f[1]), int(f[2]))))

    _on_ext4_writepages_result = _on_writeback_single_inode

    def _on_mm_lru_activate(self, t, f):
        phys = int(f[0], 16)
        if self._current(phys, STABLE) == UNUSED:
            self.counters.activate_on_free += 1
            return
        self._emit(t, phys, OP_READ)

    def _on_cmmsim_sampled_access(self, t, f):
        phys = int(f[0], 16)
        st = self._current(phys, STABLE)
        if st == UNUSED:
            self.counters.sampled_on_free += 1
            return
        self._pinned_read(t, phys, st)

    def finish(self) -> None:
        """End of input: faults whose fill never came are unresolved."""
        for _, _, cause in self.pending_fault.values():
            self._unresolved(cause)
        self.pending_fault.clear()

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
        return (np.zeros(len(arr), np.int64), arr[:, 0].astype(np.uint32), arr[:, 1].astype(np.uint8))
