"""Pure-Python twins of the kernels' building blocks (test-only, written for reading).

The strategies' twins are named by their ``Strategy.reference``; these stand
beside the shared numba building blocks of :mod:`cmmsim.replay.kernels` and the LRU
walk, and the tests demand the same answers of both.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from cmmsim.tracer.schema import Op


def lru_victims(page, op, n_pages: int, budget: int) -> list[int]:
    """Twin of :func:`cmmsim.replay.lru_ahead.lru_victims`: the pages exact LRU evicts, in order."""
    lru: OrderedDict[int, None] = OrderedDict()  # least recent first
    victims = []
    for q, o in zip(page.tolist(), op.tolist(), strict=True):
        if o not in (Op.READ, Op.WRITE):
            continue
        if q in lru:
            lru.move_to_end(q)
            continue
        if len(lru) >= min(budget, n_pages):
            victim, _ = lru.popitem(last=False)
            victims.append(victim)
        lru[q] = None
    return victims


def previous_accesses(page, op) -> list[int]:
    """Twin of :func:`cmmsim.replay.kernels.steps.walk_prev`: for each event, the index of
    its page's last access (read or write) before it, -1 if none."""
    last: dict[int, int] = {}
    out = []
    for i, (q, o) in enumerate(zip(page.tolist(), op.tolist(), strict=True)):
        out.append(last.get(q, -1))
        if o in (Op.READ, Op.WRITE):
            last[q] = i
    return out


class LruList:
    """Twin of :mod:`cmmsim.replay.kernels.lru_list`: pages least recent first."""

    def __init__(self):
        self.order: OrderedDict[int, None] = OrderedDict()

    def push_mru(self, p: int) -> None:
        self.order[p] = None

    def touch(self, p: int) -> None:
        self.order.move_to_end(p)

    def unlink(self, p: int) -> None:
        del self.order[p]

    def least_recent(self) -> int:
        return next(iter(self.order))

    def evict_lru(self) -> int:
        return self.order.popitem(last=False)[0]


class ClassLru:
    """Twin of a lazy heap (:mod:`cmmsim.replay.kernels.lazy_heap`): the page with a class whose
    key (class, last use) is least, found by scanning."""

    def __init__(self, class_of):
        self.class_of = class_of  # page -> class, or None without one
        self.stamp: dict[int, int] = {}

    def use(self, p: int, i: int) -> None:
        self.stamp[p] = i

    def least(self, avoid: int = -1) -> int:
        keyed = [
            (self.class_of(p), self.stamp[p], p) for p in self.stamp if p != avoid and self.class_of(p) is not None
        ]
        return min(keyed)[2]


def guest_of(p: int, guest_pages: list[int]) -> int:
    """Twin of :func:`cmmsim.replay.kernels.guest_ranges.guest_of`: count the pages off guest by guest."""
    for g, n in enumerate(guest_pages):
        if p < n:
            return g
        p -= n
    raise ValueError("page past the last guest")


def stack_distances(page) -> list[int]:
    """LRU stack distance of each access (-1 for a first access): an explicit LRU stack.

    Twin of :func:`cmmsim.compare.stack_distances`: the distance is the
    page's depth in the stack (distinct other pages used since its last use).
    """
    stack: list[int] = []  # most recent first
    out = []
    for p in page:
        p = int(p)
        if p in stack:
            d = stack.index(p)
            stack.pop(d)
            out.append(d)
        else:
            out.append(-1)
        stack.insert(0, p)
    return out


def merge_runs(t_ns, pfn, op, starts, run_guest, run_offset):
    """:func:`cmmsim.replay.kernels.merge.merge_runs` by a stable argsort of the concatenated runs (the twin):
    (times, global pages, ops, guests)."""
    t_ns = np.asarray(t_ns, np.int64)
    starts = np.asarray(starts, np.int64)
    lengths = np.diff(starts)
    run = np.repeat(np.arange(len(lengths)), lengths)
    order = np.argsort(t_ns, kind="stable")  # runs are in guest, then file order
    page = np.asarray(pfn).astype(np.int32) + np.asarray(run_offset, np.int32)[run]
    return t_ns[order], page[order], np.asarray(op)[order], np.asarray(run_guest, np.uint16)[run][order]
