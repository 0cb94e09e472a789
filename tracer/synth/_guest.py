"""A small model of a Linux guest's page allocator and page cache.

Every synthetic workload drives one :class:`GuestSim` per guest. The model
emits page events the way a hinting Linux guest would (docs/model.md, section 3):

* allocation: SET_STABLE, WRITE (the new owner fills the page);
* free: SET_UNUSED;
* page-cache fill: SET_STABLE, WRITE (read from disk), then SET_VOLATILE, or
  SET_POT_VOLATILE when the file is mapped writable;
* lookup of a clean cached page: SET_STABLE_IF_RESIDENT, READ, then volatile
  again (the guest pins it stable while copying it out);
* dirtying a clean cached page: SET_STABLE_IF_RESIDENT, WRITE, SET_STABLE (if
  the host had discarded it, the write takes the discard fault and the guest
  re-reads it; the final SET_STABLE makes it stable in both cases). Pages of
  writably mapped files are dirtied by a plain WRITE: that is what P is for;
* writeback done: SET_VOLATILE (or SET_POT_VOLATILE) again;
* anonymous pages stay stable until freed or swapped out (swap-out frees
  them: SET_UNUSED; swap-in allocates again).

The guest never holds more in-use pages than its memory: when its free list
is empty it reclaims its own page cache, clean pages first in LRU order,
then writes back dirty pages, and as a last resort swaps anonymous pages.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

from tracer.schema import Op

_READ = int(Op.READ)
_WRITE = int(Op.WRITE)
_S = int(Op.SET_STABLE)
_U = int(Op.SET_UNUSED)
_V = int(Op.SET_VOLATILE)
_P = int(Op.SET_POT_VOLATILE)
_SIR = int(Op.SET_STABLE_IF_RESIDENT)

_GAP_BLOCK = 1 << 15


class GuestSim:
    """Emit the page events of one Linux guest.

    Parameters
    ----------
    guest_pages : int
        Guest memory in 4 KiB pages.
    rng : numpy.random.Generator
        Source of all randomness (seeded by the caller).
    events_per_s : float
        Mean event rate while the guest is busy; gaps are exponential.
    reclaim_batch : int
        Pages the guest frees per reclaim pass when memory runs out.
    """

    def __init__(self, guest_pages: int, rng: np.random.Generator, events_per_s: float,
                 reclaim_batch: int = 32):
        self.guest_pages = guest_pages
        self.rng = rng
        self.now_ns = 0
        self._mean_gap_ns = 1e9 / events_per_s
        self._gaps = np.empty(0, dtype=np.int64)
        self._gap_i = 0
        self.t_ns = array("q")
        self.pfn = array("L")
        self.op = array("B")
        self.reclaim_batch = reclaim_batch
        # Low pfns first, like a freshly booted buddy allocator handing out memory.
        self.free: list[int] = list(range(guest_pages - 1, -1, -1))
        self.owner: dict[int, Hashable] = {}
        self.where: dict[Hashable, int] = {}
        self.mapped: set[int] = set()
        self.clean_cache: OrderedDict[int, None] = OrderedDict()
        self.dirty_cache: OrderedDict[int, int] = OrderedDict()
        self.anon: OrderedDict[int, None] = OrderedDict()
        self.swapped: set[Hashable] = set()

    # -- time and emission ---------------------------------------------------------------------
    def _gap(self) -> int:
        if self._gap_i >= len(self._gaps):
            gaps = self.rng.exponential(self._mean_gap_ns, _GAP_BLOCK)
            self._gaps = np.maximum(gaps, 1.0).astype(np.int64)
            self._gap_i = 0
        g = self._gaps[self._gap_i]
        self._gap_i += 1
        return int(g)

    def emit(self, pfn: int, op: int) -> None:
        self.t_ns.append(self.now_ns)
        self.pfn.append(pfn)
        self.op.append(op)
        self.now_ns += self._gap()

    def think(self, ns: int) -> None:
        """Let ``ns`` nanoseconds pass with no page events (CPU work, idle)."""
        self.now_ns += int(ns)

    @property
    def n_events(self) -> int:
        return len(self.op)

    @property
    def in_use(self) -> int:
        return self.guest_pages - len(self.free)

    def arrays(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The events so far as schema arrays, cut to at most ``limit`` rows."""
        n = self.n_events if limit is None else min(limit, self.n_events)
        t = np.frombuffer(self.t_ns, dtype=np.int64)[:n].copy()
        p = np.frombuffer(self.pfn, dtype=np.dtype(f"u{self.pfn.itemsize}"))[:n].astype(np.uint32)
        o = np.frombuffer(self.op, dtype=np.uint8)[:n].copy()
        return t, p, o

    # -- allocation ---------------------------------------------------------------------------
    def _take_free(self) -> int:
        if not self.free:
            self.reclaim(self.reclaim_batch)
        return self.free.pop()

    def _release(self, pfn: int) -> None:
        key = self.owner.pop(pfn)
        del self.where[key]
        self.clean_cache.pop(pfn, None)
        self.dirty_cache.pop(pfn, None)
        self.anon.pop(pfn, None)
        self.mapped.discard(pfn)
        self.emit(pfn, _U)
        self.free.append(pfn)

    def reclaim(self, n: int) -> None:
        """Free ``n`` pages as Linux reclaim would: clean cache, dirty cache, then anon."""
        for _ in range(n):
            if self.clean_cache:
                pfn = next(iter(self.clean_cache))
                self._release(pfn)
            elif self.dirty_cache:
                pfn = next(iter(self.dirty_cache))
                self._writeback_page(pfn)
                self._release(pfn)
            elif self.anon:
                pfn = next(iter(self.anon))
                self.swapped.add(self.owner[pfn])
                self._release(pfn)
            elif not self.free:
                raise RuntimeError("guest has no reclaimable memory left")

    def alloc_anon(self, key: Hashable) -> int:
        """Allocate an anonymous page for ``key`` (zeroed by the kernel: a write)."""
        pfn = self._take_free()
        self.owner[pfn] = key
        self.where[key] = pfn
        self.anon[pfn] = None
        self.emit(pfn, _S)
        self.emit(pfn, _WRITE)
        return pfn

    def touch_anon(self, key: Hashable, write: bool) -> None:
        """Access an anonymous page; a swapped-out one is swapped in first."""
        pfn = self.where.get(key)
        if pfn is None:
            if key not in self.swapped:
                raise KeyError(key)
            self.swapped.discard(key)
            self.alloc_anon(key)
            return
        self.anon.move_to_end(pfn)
        self.emit(pfn, _WRITE if write else _READ)

    def free_key(self, key: Hashable) -> None:
        """Free the page of ``key`` (anonymous or cached); a no-op if it has none."""
        pfn = self.where.get(key)
        if pfn is not None:
            self._release(pfn)
        self.swapped.discard(key)

    # -- page cache ---------------------------------------------------------------------------
    def _new_cache_page(self, key: Hashable, mapped_writable: bool) -> int:
        pfn = self._take_free()
        self.owner[pfn] = key
        self.where[key] = pfn
        if mapped_writable:
            self.mapped.add(pfn)
        return pfn

    def _clean_op(self, pfn: int) -> int:
        return _P if pfn in self.mapped else _V

    def file_read(self, key: Hashable, mapped_writable: bool = False) -> bool:
        """Read one file page through the page cache. Returns True on a cache hit."""
        pfn = self.where.get(key)
        if pfn is None:
            pfn = self._new_cache_page(key, mapped_writable)
            self.emit(pfn, _S)
            self.emit(pfn, _WRITE)
            self.emit(pfn, self._clean_op(pfn))
            self.clean_cache[pfn] = None
            return False
        if pfn in self.clean_cache:
            self.clean_cache.move_to_end(pfn)
            self.emit(pfn, _SIR)
            self.emit(pfn, _READ)
            self.emit(pfn, self._clean_op(pfn))
        else:
            self.emit(pfn, _READ)
        return True

    def file_write(self, key: Hashable, mapped_writable: bool = False) -> None:
        """Write one whole file page (new data) through the page cache."""
        pfn = self.where.get(key)
        if pfn is None:
            pfn = self._new_cache_page(key, mapped_writable)
            if mapped_writable:
                self.emit(pfn, _S)
                self.emit(pfn, _WRITE)
                self.emit(pfn, _P)
                self.emit(pfn, _WRITE)
            else:
                self.emit(pfn, _S)
                self.emit(pfn, _WRITE)
        elif pfn in self.clean_cache:
            del self.clean_cache[pfn]
            if pfn in self.mapped:
                self.emit(pfn, _WRITE)
            else:
                self.emit(pfn, _SIR)
                self.emit(pfn, _WRITE)
                self.emit(pfn, _S)
        else:
            self.emit(pfn, _WRITE)
            del self.dirty_cache[pfn]
        self.dirty_cache[pfn] = self.now_ns

    def _writeback_page(self, pfn: int) -> None:
        del self.dirty_cache[pfn]
        self.emit(pfn, self._clean_op(pfn))
        self.clean_cache[pfn] = None

    def writeback(self, older_than_ns: int = 0) -> int:
        """Write back dirty pages dirtied at least ``older_than_ns`` ago; returns how many."""
        cutoff = self.now_ns - older_than_ns
        done = 0
        while self.dirty_cache:
            pfn, dirtied = next(iter(self.dirty_cache.items()))
            if dirtied > cutoff:
                break
            self._writeback_page(pfn)
            done += 1
        return done

    def drop_file(self, file_id: Hashable, n_pages: int) -> None:
        """Delete a file: its cached pages are freed."""
        for i in range(n_pages):
            self.free_key((file_id, i))


class ZipfChooser:
    """Draw ranks ``0..n-1`` with probability proportional to ``1 / (rank+1)**alpha``.

    Draws are made in blocks (one numpy call per block) to keep generators fast.
    """

    def __init__(self, rng: np.random.Generator, n: int, alpha: float, block: int = 4096):
        weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** alpha
        self._cdf = np.cumsum(weights / weights.sum())
        self._cdf[-1] = 1.0
        self._rng = rng
        self._block = block
        self._buf: list[int] = []

    def __call__(self) -> int:
        if not self._buf:
            u = self._rng.random(self._block)
            self._buf = np.searchsorted(self._cdf, u, side="right").tolist()[::-1]
        return self._buf.pop()
