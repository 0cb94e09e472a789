"""The pure-Python twin of the guest model in :mod:`cmmsim.tracer.synth._model`.

:class:`GuestSim` follows the same rules (documented there) with Python's own
structures instead of linked arrays: an ``OrderedDict`` per LRU list (oldest
first) and per buddy free list (newest last), dicts for page identities. Its
methods have the names and arguments of the model's ``njit`` functions, so a
workload's code runs unchanged on either (:mod:`cmmsim.tracer.synth._twin`); the
tests demand the same events from both.
"""

from __future__ import annotations

from collections import OrderedDict, deque

import numpy as np

from cmmsim.tracer.synth import _model as m
from cmmsim.tracer.synth import _state as st

_READ, _WRITE, _S, _U, _V, _P, _SIR = m._READ, m._WRITE, m._S, m._U, m._V, m._P, m._SIR


class GuestSim:
    """One guest: its memory, page cache, devices and the events emitted so far."""

    def __init__(self, cfg: st.Config, cpus: int, n_keys: int, capacity: int):
        self.cfg = cfg
        self.capacity = capacity
        self.limit = capacity
        self.out: list[tuple[int, int, int]] = []
        self.last_t = 0
        self.cpu_free = [0] * cpus
        self.disk_free = 0
        self.nic_free = 0
        self.next_flush = cfg.wb_interval_ns
        self.n_keys = n_keys
        self.where: dict[int, int] = {}  # key -> pfn or SWAPPED; absent keys have no page
        self.key: dict[int, int] = {}  # pfn -> key
        self.mapped: set[int] = set()
        self.kernel = 0
        self.free_lists = [OrderedDict() for _ in range(st.MAX_ORDER + 1)]  # newest last
        self.block_order: dict[int, int] = {}
        self.free = 0
        self.pcp: deque[int] = deque()  # head first
        for pfn, order in reversed(m.free_blocks(cfg.reserved, cfg.pages)):
            self._push_free(pfn, order)
            self.free += 1 << order
        # LRU lists, oldest first.
        self.inactive: OrderedDict[int, None] = OrderedDict()
        self.active: OrderedDict[int, None] = OrderedDict()
        self.referenced: set[int] = set()
        self.dirty: OrderedDict[int, int] = OrderedDict()  # pfn -> time dirtied
        self.anon: OrderedDict[int, None] = OrderedDict()
        self.swapped = 0
        self.stats = dict.fromkeys(
            ("cache_hits", "cache_misses", "reclaimed_pages", "written_back_pages", "swap_outs", "swap_ins"), 0
        )

    # -- events and time ----------------------------------------------------------------------
    def emit(self, t: int, p: int, op: int) -> None:
        if len(self.out) >= self.capacity:
            raise RuntimeError("guest model: event buffer overflow (a step exceeded its headroom)")
        self.last_t = max(self.last_t, int(t))
        self.out.append((self.last_t, int(p), op))

    def more(self) -> bool:
        return len(self.out) < self.limit

    def compute(self, t: int, ns: int) -> int:
        idle = [i for i, f in enumerate(self.cpu_free) if f <= t]
        if idle:
            c = max(idle, key=lambda i: (self.cpu_free[i], -i))
        else:
            c = min(range(len(self.cpu_free)), key=lambda i: (self.cpu_free[i], i))
        start = max(int(t), self.cpu_free[c])
        self.cpu_free[c] = start + ns
        return start + ns

    def disk_io(self, t: int, ns: int) -> int:
        self.disk_free = max(int(t), self.disk_free) + ns
        return self.disk_free

    def net_send(self, t: int, pages: int) -> int:
        self.nic_free = max(int(t), self.nic_free) + int(pages) * self.cfg.net_ns
        return max(int(t), self.nic_free - self.cfg.sndbuf_ns)

    def net_recv(self, t: int, pages: int) -> int:
        self.nic_free = max(int(t), self.nic_free) + int(pages) * self.cfg.net_ns
        return self.nic_free

    # -- buddy allocator ----------------------------------------------------------------------
    def _push_free(self, pfn: int, order: int) -> None:
        self.block_order[pfn] = order
        self.free_lists[order][pfn] = None

    def _buddy_alloc(self, order: int) -> int:
        k = next((k for k in range(order, st.MAX_ORDER + 1) if self.free_lists[k]), None)
        if k is None:
            return -1
        p, _ = self.free_lists[k].popitem(last=True)
        del self.block_order[p]
        while k > order:
            k -= 1
            self._push_free(p + (1 << k), k)
        self.free -= 1 << order
        return p

    def _buddy_free(self, p: int, order: int) -> None:
        size = 1 << order
        while order < st.MAX_ORDER:
            b = p ^ (1 << order)
            if b + (1 << order) > self.cfg.pages or self.block_order.get(b) != order:
                break
            del self.free_lists[order][b]
            del self.block_order[b]
            p = min(p, b)
            order += 1
        self._push_free(p, order)
        self.free += size

    def _alloc0(self) -> int:
        if not self.pcp:
            for _ in range(self.cfg.pcp_batch):
                p = self._buddy_alloc(0)
                if p < 0:
                    break
                self.pcp.append(p)
                self.free += 1
            if not self.pcp:
                return -1
        self.free -= 1
        return self.pcp.popleft()

    def _free0(self, p: int) -> None:
        self.pcp.appendleft(p)
        self.free += 1
        if len(self.pcp) > self.cfg.pcp_high:
            for _ in range(self.cfg.pcp_batch):
                self.free -= 1
                self._buddy_free(self.pcp.pop(), 0)

    # -- bookkeeping --------------------------------------------------------------------------
    def _lists(self):
        return (self.inactive, self.active, self.dirty, self.anon)

    def _unlist(self, p: int) -> None:
        for lst in self._lists():
            if p in lst:
                del lst[p]
                return
        raise AssertionError(f"page {p} is on no list")

    def _is_clean(self, p: int) -> bool:
        return p in self.inactive or p in self.active

    def _release(self, p: int, t: int) -> None:
        self._unlist(p)
        self.emit(t, p, _U)
        del self.where[self.key.pop(p)]
        self.mapped.discard(p)
        self.referenced.discard(p)
        self._free0(p)

    def _clean_op(self, p: int) -> int:
        return _P if p in self.mapped else _V

    def _add_clean(self, p: int) -> None:
        self.referenced.discard(p)
        self.inactive[p] = None

    def _add_dirty(self, p: int, t: int) -> None:
        self.referenced.discard(p)
        self.dirty[p] = t

    def _add_anon(self, p: int) -> None:
        self.referenced.discard(p)
        self.anon[p] = None

    def _bind(self, p: int, key: int, mapped: bool) -> None:
        self.key[p] = int(key)
        self.where[int(key)] = p
        if mapped:
            self.mapped.add(p)

    def _writeback(self, p: int, t: int) -> None:
        del self.dirty[p]
        self.emit(t, p, _READ)
        self.emit(t, p, self._clean_op(p))
        self.disk_io(t, self.cfg.disk_write_ns)
        self._add_clean(p)
        self.stats["written_back_pages"] += 1

    def _flush(self, t: int) -> None:
        due = t >= self.next_flush
        if not due and len(self.dirty) <= self.cfg.bg_dirty_pages:
            return
        cutoff = t - self.cfg.expire_ns
        budget = self.cfg.wb_batch
        while budget > 0 and self.dirty:
            p, dirtied = next(iter(self.dirty.items()))
            if len(self.dirty) <= self.cfg.bg_dirty_pages and (not due or dirtied > cutoff):
                break
            self._writeback(p, t)
            budget -= 1
        if due and budget > 0:
            self.next_flush = t + self.cfg.wb_interval_ns

    def _reclaim(self, t: int, target: int) -> None:
        while self.free < target:
            if self.inactive or self.active:
                while len(self.active) > len(self.inactive):
                    q, _ = self.active.popitem(last=False)
                    self.referenced.discard(q)
                    self.inactive[q] = None
                self._release(next(iter(self.inactive)), t)
                self.stats["reclaimed_pages"] += 1
            elif self.dirty:
                p = next(iter(self.dirty))
                self._writeback(p, t)
                self._release(p, t)
                self.stats["reclaimed_pages"] += 1
            elif self.anon:
                p = next(iter(self.anon))
                if p in self.referenced:
                    self.referenced.discard(p)
                    self.anon.move_to_end(p)
                    continue
                key = self.key[p]
                self.emit(t, p, _READ)
                self.disk_io(t, self.cfg.disk_write_ns)
                self._release(p, t)
                self.where[key] = st.SWAPPED
                self.swapped += 1
                self.stats["swap_outs"] += 1
            else:
                break

    def _take(self, order: int, t: int) -> int:
        need = 1 << order
        if self.free - need < self.cfg.wmark_low:
            self._reclaim(t, self.cfg.wmark_high + need)
        p = self._alloc0() if order == 0 else self._buddy_alloc(order)
        if p < 0 and order == 0:
            raise RuntimeError("guest model: out of memory (nothing left to reclaim)")
        return p

    # -- the operations workloads call --------------------------------------------------------
    def kmem_alloc(self, key0: int, order: int, t: int) -> int:
        self._flush(t)
        n = 1 << int(order)
        p = self._take(int(order), t)
        for i in range(n):
            q = p + i if p >= 0 else self._take(0, t)
            self._bind(q, key0 + i, False)
            self.emit(t, q, _S)
            self.emit(t, q, _WRITE)
        self.kernel += n
        return self.compute(t, self.cfg.zero_ns * n)

    def kmem_free(self, key0: int, order: int, t: int) -> int:
        n = 1 << int(order)
        frames = [self.where.pop(int(key0 + i)) for i in range(n)]
        whole = frames[0] % n == 0 and frames == list(range(frames[0], frames[0] + n))
        for p in frames:
            self.emit(t, p, _U)
            del self.key[p]
            if not whole:
                self._free0(p)
        self.kernel -= n
        if whole:
            self._buddy_free(frames[0], int(order))
        return t

    def kernel_reserve(self, p0: int, n: int, t: int) -> int:
        for p in range(int(p0), int(p0 + n)):
            self.emit(t, p, _S)
            self.emit(t, p, _WRITE)
        self.kernel += int(n)
        return t

    def anon_alloc(self, key: int, t: int) -> int:
        self._flush(t)
        p = self._take(0, t)
        start = self.compute(t, self.cfg.zero_ns)
        self._bind(p, key, False)
        self._add_anon(p)
        self.emit(start, p, _S)
        self.emit(start, p, _WRITE)
        return start + self.cfg.zero_ns

    def anon_alloc_block(self, key0: int, order: int, t: int) -> int:
        self._flush(t)
        n = 1 << int(order)
        p = self._take(int(order), t)
        if p < 0:
            for i in range(n):
                t = self.anon_alloc(key0 + i, t)
            return t
        start = self.compute(t, self.cfg.zero_ns * n)
        for i in range(n):
            self._bind(p + i, key0 + i, False)
            self._add_anon(p + i)
            self.emit(start, p + i, _S)
            self.emit(start, p + i, _WRITE)
        return start + self.cfg.zero_ns * n

    def anon_touch(self, key: int, write: bool, t: int) -> int:
        self._flush(t)
        p = self.where.get(int(key), st.NO_PAGE)
        if p == st.SWAPPED:
            p = self._take(0, t)
            self._bind(p, key, False)
            self._add_anon(p)
            self.emit(t, p, _S)
            t = self.disk_io(t, self.cfg.disk_read_ns)
            self.emit(t, p, _WRITE)
            self.swapped -= 1
            self.stats["swap_ins"] += 1
        elif p < 0:
            raise RuntimeError("guest model: access to a key with no page")
        self.referenced.add(p)
        self.emit(t, p, _WRITE if write else _READ)
        return t

    def page_free(self, key: int, t: int) -> int:
        p = self.where.get(int(key), st.NO_PAGE)
        if p >= 0:
            self._release(p, t)
        elif p == st.SWAPPED:
            del self.where[int(key)]
            self.swapped -= 1
        return t

    def file_read(self, key: int, mapped: bool, t: int) -> int:
        self._flush(t)
        p = self.where.get(int(key), st.NO_PAGE)
        if p >= 0:
            start = self.compute(t, self.cfg.copy_ns)
            if self._is_clean(p):
                self.emit(start, p, _SIR)
                self.emit(start, p, _READ)
                self.emit(start, p, self._clean_op(p))
                if p in self.active:
                    self.referenced.add(p)
                elif p in self.referenced:
                    del self.inactive[p]
                    self.referenced.discard(p)
                    self.active[p] = None
                else:
                    self.referenced.add(p)
            else:
                self.emit(start, p, _READ)
            self.stats["cache_hits"] += 1
            return start + self.cfg.copy_ns
        p = self._take(0, t)
        self._bind(p, key, mapped)
        self.emit(t, p, _S)
        t = self.disk_io(t, self.cfg.disk_read_ns)
        self.emit(t, p, _WRITE)
        self.emit(t, p, self._clean_op(p))
        self._add_clean(p)
        self.stats["cache_misses"] += 1
        return self.compute(t, self.cfg.copy_ns)

    def file_write(self, key: int, mapped: bool, t: int) -> int:
        self._flush(t)
        p = self.where.get(int(key), st.NO_PAGE)
        if p < 0:
            p = self._take(0, t)
            start = self.compute(t, self.cfg.copy_ns)
            self._bind(p, key, mapped)
            self.emit(start, p, _S)
            self.emit(start, p, _WRITE)
            if mapped:
                self.emit(start, p, _P)
                self.emit(start, p, _WRITE)
            self._add_dirty(p, start)
            return start + self.cfg.copy_ns
        start = self.compute(t, self.cfg.copy_ns)
        if self._is_clean(p):
            self._unlist(p)
            if p in self.mapped:
                self.emit(start, p, _WRITE)
            else:
                self.emit(start, p, _SIR)
                self.emit(start, p, _WRITE)
                self.emit(start, p, _S)
            self._add_dirty(p, start)
        else:
            self.emit(start, p, _WRITE)
        return start + self.cfg.copy_ns

    # -- what the driver reads back -----------------------------------------------------------
    def facts(self) -> dict[str, int]:
        return {
            "free_pages": self.free,
            "inactive_pages": len(self.inactive),
            "active_pages": len(self.active),
            "dirty_pages": len(self.dirty),
            "anon_pages": len(self.anon),
            "kernel_pages": self.kernel,
            "swapped_pages": self.swapped,
            "mapped_clean_pages": sum(1 for p in self.mapped if self._is_clean(p)),
            "mapped_dirty_pages": sum(1 for p in self.mapped if p in self.dirty),
            **self.stats,
            "guest_pages": self.cfg.pages,
        }

    def drain(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out, self.out = self.out, []
        if not out:
            return np.zeros(0, np.int64), np.zeros(0, np.uint32), np.zeros(0, np.uint8)
        t, pfn, op = zip(*out, strict=True)
        return np.array(t, np.int64), np.array(pfn, np.uint32), np.array(op, np.uint8)

    def set_limit(self, events: int) -> None:
        self.limit = min(events, self.capacity)


#: The model's operations -> the twin's methods (called as ``method(guest, ...)``).
TWINS = {
    getattr(m, name): getattr(GuestSim, name)
    for name in (
        "emit",
        "more",
        "compute",
        "disk_io",
        "net_send",
        "net_recv",
        "kernel_reserve",
        "anon_alloc",
        "anon_alloc_block",
        "anon_touch",
        "page_free",
        "file_read",
        "file_write",
        "kmem_alloc",
        "kmem_free",
    )
}
