"""Slow, obviously-correct pure-Python twins of the replay kernels.

Written for reading, not speed: states are letters, the table of DESIGN.md
section 2 is spelled out case by case, victims are found by scanning. The
tests run these and the numba kernels on the same traces and demand the
same integers and the same final states.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from cmmsim.replay import states as S
from cmmsim.tracer.schema import Op

HINTS_ALL = {Op.SET_STABLE, Op.SET_UNUSED, Op.SET_VOLATILE, Op.SET_POT_VOLATILE, Op.SET_STABLE_IF_RESIDENT}
HINTS_STABLE_UNUSED = {Op.SET_STABLE, Op.SET_UNUSED}
#: The legal (guest, host) state pairs, as letters.
LEGAL_PAIRS = frozenset(S.PAIRS)


@dataclass
class Page:
    """One guest page frame as both sides see it."""

    guest: str  # "S", "U", "V" or "P"
    host: str  # "r", "p" or "z"
    dirty: bool = False  # guest view: differs from the guest's backing
    changed: bool = False  # host change bit: differs from the preserved copy
    copy: bool = False  # the host holds a valid preserved copy

    def byte(self) -> int:
        return S.pack(
            S.GUEST_NAMES.index(self.guest), S.HOST_NAMES.index(self.host), self.dirty, self.changed, self.copy
        )


@dataclass
class ReferenceResult:
    """Counters, host peak and sum of resident frames, final state bytes."""

    counters: np.ndarray  # (guests, N_COUNTERS)
    host_peak: int
    host_sum_resident: int
    final_states: np.ndarray  # uint8 per global page


class TwoListTwin:
    """Twin of :mod:`cmmsim.replay.kernels.two_list`: Linux's active and inactive lists.

    Each list an ordered dict, its tail (the oldest entry) first: a page enters a
    list at the end and leaves the inactive one from the front.
    """

    #: 4 KiB pages per GiB.
    PAGES_PER_GIB = 2**18

    def __init__(self) -> None:
        self.inactive: OrderedDict[int, None] = OrderedDict()
        self.active: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self.inactive) + len(self.active)

    def admit(self, q: int) -> None:
        """A page faulted in starts on the inactive list."""
        self.inactive[q] = None

    def use(self, q: int) -> None:
        """A resident page is used: on the inactive list it is activated; on the active
        list nothing changes."""
        if q in self.inactive:
            del self.inactive[q]
            self.active[q] = None

    @classmethod
    def inactive_ratio(cls, listed_pages: int) -> int:
        """``int_sqrt(10 * GiB)`` of the pages on the two lists, 1 below 1 GiB."""
        gib = listed_pages // cls.PAGES_PER_GIB
        return math.isqrt(10 * gib) if gib else 1

    def inactive_is_low(self) -> bool:
        """Linux's ``inactive_is_low``: ``inactive * ratio < active``."""
        return len(self.inactive) * self.inactive_ratio(len(self)) < len(self.active)

    def victim(self) -> int:
        """Deactivate the active list's oldest pages while the inactive list is low,
        then take the inactive list's oldest page out."""
        while self.inactive_is_low():
            q = next(iter(self.active))
            del self.active[q]
            self.inactive[q] = None
        return self.inactive.popitem(last=False)[0]

    def remove(self, q: int) -> None:
        """Page q loses its frame other than as a victim: it leaves its list."""
        if q in self.inactive:
            del self.inactive[q]
        else:
            del self.active[q]


class LruOrder:
    """Exact LRU with :class:`TwoListTwin`'s methods, for twins that take either order."""

    def __init__(self) -> None:
        self.lru: OrderedDict[int, None] = OrderedDict()  # least recent first

    def __len__(self) -> int:
        return len(self.lru)

    def admit(self, q: int) -> None:
        self.lru[q] = None

    def use(self, q: int) -> None:
        self.lru.move_to_end(q)

    def victim(self) -> int:
        return self.lru.popitem(last=False)[0]

    def remove(self, q: int) -> None:
        del self.lru[q]


def host_order(replacement: str) -> TwoListTwin | LruOrder:
    """The twin's victim order for ``replacement`` (``lru`` or ``two-list``)."""
    return TwoListTwin() if replacement == "two-list" else LruOrder()


class ReferenceHost:
    """The host and its guests' pages, replayed one event at a time.

    Parameters
    ----------
    page_guest : ndarray
        Guest index of every global page.
    budget : int
        Host frames.
    honoured : set of Op
        Hint ops the host acts on; the others are never sent.
    victims : str
        ``lru``, ``clock``, ``state-priority`` or ``two-list``.
    tier_pages : int
        Capacity of the host's fast swap tier (:mod:`cmmsim.replay.kernels.tier`):
        a changed page paged out goes there, the tier's least recently put in
        page spilled to disk when it is full; a page-in from it frees its place.
        0: no tier.
    """

    def __init__(self, page_guest: np.ndarray, budget: int, honoured: set, victims: str, tier_pages: int = 0):
        hinting = bool(honoured)
        start = "U" if hinting else "S"
        self.pages = [Page(start, "z") for _ in range(len(page_guest))]
        self.page_guest = [int(g) for g in page_guest]
        self.budget = budget
        self.honoured = honoured
        self.victims = victims
        n_guests = (max(self.page_guest) + 1) if self.page_guest else 0
        self.counters = [dict.fromkeys(S.COUNTERS, 0) for _ in range(n_guests)]
        self.resident_of_guest = [0] * n_guests
        self.lru: OrderedDict[int, None] = OrderedDict()  # least recent first
        self.two_list = TwoListTwin()
        self.frames: list[int] = []  # CLOCK frame table
        self.referenced: set[int] = set()
        self.hand = 0
        self.host_peak = 0
        self.host_sum = 0
        self.tier_pages = tier_pages
        self.tier: OrderedDict[int, None] = OrderedDict()  # least recently put in first

    # -- helpers --------------------------------------------------------------------------------
    def count(self, page: int, name: str, n: int = 1) -> None:
        self.counters[self.page_guest[page]][name] += n

    @property
    def resident(self) -> int:
        if self.victims == "clock":
            return len(self.frames)
        return len(self.two_list) if self.victims == "two-list" else len(self.lru)

    def unlist(self, q: int) -> None:
        """Resident page q loses its frame other than as a victim (a balloon took it):
        it leaves the victim order (LRU, state-priority or two-list; no strategy that
        drops frames so runs CLOCK)."""
        if self.victims == "two-list":
            self.two_list.remove(q)
        else:
            del self.lru[q]

    def reclaim_class(self, page: Page) -> int:
        if page.guest == "U":
            return 0
        if page.guest == "V" or (page.guest == "P" and not page.dirty):
            return 1
        return 2

    # -- host reclaim --------------------------------------------------------------------------
    def pick_victim(self) -> tuple[int, int | None]:
        """(victim page, CLOCK frame index or None)."""
        if self.victims == "lru":
            return next(iter(self.lru)), None
        if self.victims == "two-list":
            return self.two_list.victim(), None  # already off its list
        if self.victims == "state-priority":
            # The least recently used page of the cheapest class present.
            first_of_class: dict[int, int] = {}
            for q in self.lru:  # least recently used first
                cls = self.reclaim_class(self.pages[q])
                if cls == 0:
                    return q, None
                first_of_class.setdefault(cls, q)
            return first_of_class[min(first_of_class)], None
        while self.frames[self.hand] in self.referenced:
            self.referenced.discard(self.frames[self.hand])
            self.hand = (self.hand + 1) % len(self.frames)
        return self.frames[self.hand], self.hand

    def evict(self, q: int) -> None:
        page = self.pages[q]
        self.referenced.discard(q)
        if page.guest == "P" and page.dirty:
            page.guest = "S"  # a dirty P page leaves residency as Sp
        if page.guest == "P":
            page.guest, page.host = "V", "z"  # a clean P page is discarded
            page.changed = page.copy = False
            self.count(q, "discards")
        elif page.guest == "S":
            if page.changed and self.tier_pages:
                self.count(q, "host_writes_tier")
                if len(self.tier) == self.tier_pages:
                    spilled, _ = self.tier.popitem(last=False)
                    self.count(spilled, "host_spills_tier")
                    self.count(spilled, "host_writes")  # to the disk
                self.tier[q] = None
                page.host, page.copy, page.changed = "p", True, False
            elif page.changed:
                self.count(q, "host_writes")
                page.host, page.copy, page.changed = "p", True, False
            elif page.copy:
                self.count(q, "discards")  # unchanged copy still valid: no write
                page.host = "p"
            else:
                self.count(q, "discards")  # never written since zero fill
                page.host = "z"
        else:  # U or V: dropped, no I/O
            self.count(q, "discards")
            page.host = "z"
            page.changed = page.copy = False
        self.resident_of_guest[self.page_guest[q]] -= 1

    # -- events --------------------------------------------------------------------------------
    def access(self, q: int, write: bool) -> None:
        page = self.pages[q]
        self.count(q, "accesses")
        if page.guest == "U":
            self.count(q, "repairs")
            page.guest = "S"
        self.touch(q, write)

    def touch(self, q: int, write: bool) -> None:
        """The guest uses frame q: the host pages it in (victim first) or marks it recent."""
        page = self.pages[q]
        if page.host != "r":
            frame = None
            # A page in the tier leaves it before any victim is written.
            from_tier = q in self.tier
            self.tier.pop(q, None)
            if self.resident >= min(self.budget, len(self.pages)):
                victim, frame = self.pick_victim()
                if self.victims in ("lru", "state-priority"):
                    del self.lru[victim]
                self.evict(victim)
            if page.host == "p" and from_tier:
                # Its only copy was the tier's, now freed: it differs from any on disk.
                self.count(q, "host_reads_tier")
                page.guest, page.changed = "S", True
            elif page.host == "p":
                self.count(q, "host_reads")
                page.guest, page.changed = "S", False
            elif page.guest == "V":
                self.count(q, "discard_faults")
                self.count(q, "guest_reads")
                page.changed = True
            else:
                self.count(q, "zero_fills")
                page.changed = page.copy = False
            page.host = "r"
            g = self.page_guest[q]
            self.resident_of_guest[g] += 1
            self.counters[g]["peak_resident_pages"] = max(
                self.counters[g]["peak_resident_pages"], self.resident_of_guest[g]
            )
            if self.victims == "clock":
                if frame is None:
                    self.frames.append(q)
                    self.hand = len(self.frames) % min(self.budget, len(self.pages))
                else:
                    self.frames[frame] = q
                    self.hand = (frame + 1) % len(self.frames)
            elif self.victims == "two-list":
                self.two_list.admit(q)
            else:
                self.lru[q] = None
            self.host_peak = max(self.host_peak, self.resident)
        elif self.victims == "clock":
            self.referenced.add(q)
        elif self.victims == "two-list":
            self.two_list.use(q)
        else:
            self.lru.move_to_end(q)
        if write:
            page.dirty = page.changed = True

    def hint(self, q: int, op: Op) -> None:
        if op not in self.honoured:
            return
        self.count(q, "hints")
        page = self.pages[q]
        resident = page.host == "r"
        if op == Op.SET_STABLE:
            if page.guest == "V" and page.host == "z":
                self.count(q, "content_lost")
            page.guest = "S"
        elif op == Op.SET_UNUSED:
            if page.guest != "U":
                page.guest = "U"
                # A resident page's content now lives in its frame only: changed.
                page.changed = page.changed or (resident and page.copy)
                page.dirty = page.copy = False
                if not resident:
                    page.host = "z"
        elif op in (Op.SET_VOLATILE, Op.SET_POT_VOLATILE):
            page.dirty = False
            if resident:
                page.guest = "V" if op == Op.SET_VOLATILE else "P"
            else:
                page.guest, page.host, page.copy = "V", "z", False
        elif op == Op.SET_STABLE_IF_RESIDENT:
            if resident:
                page.guest = "S"
        if page.host != "p":
            self.tier.pop(q, None)  # its copy is gone: its place in the tier too

    def run(self, page: np.ndarray, op: np.ndarray) -> ReferenceResult:
        n_events = len(page)
        for i in range(n_events):
            q = int(page[i])
            o = Op(int(op[i]))
            if o in (Op.READ, Op.WRITE):
                self.access(q, o == Op.WRITE)
            else:
                self.hint(q, o)
            self.host_sum += self.resident
            for g, res in enumerate(self.resident_of_guest):
                self.counters[g]["sum_resident_pages"] += res
        counters = np.array([[c[name] for name in S.COUNTERS] for c in self.counters], dtype=np.int64).reshape(
            len(self.counters), S.N_COUNTERS
        )
        final = np.array([p.byte() for p in self.pages], dtype=np.uint8)
        return ReferenceResult(counters, self.host_peak, self.host_sum, final)


class GuestView:
    """The twins' record of every page as its guest sees it (``static`` and the balloons).

    ``state`` S/U/V/P, ``dirty``, ``out``: None, or where a page the guest
    reclaimed went ("file": dropped clean cache, "swap").
    """

    def __init__(self, n_pages: int):
        self.state = ["U"] * n_pages
        self.dirty = [False] * n_pages
        self.out: list[str | None] = [None] * n_pages

    def clean(self, q: int) -> bool:
        return self.state[q] == "V" or (self.state[q] == "P" and not self.dirty[q])

    def is_free(self, q: int) -> bool:
        return self.state[q] == "U" or self.out[q] is not None

    def step(self, p: int, o: int, c: dict) -> tuple[bool, bool, bool]:
        """Apply event ``o`` to page p, counting accesses, repairs and refaults in ``c``.

        Returns (joined the in-use set, left it, brought back from its backing).
        """
        joined = left = back = False
        if o in (Op.READ, Op.WRITE):
            c["accesses"] += 1
            if self.state[p] == "U":
                c["repairs"] += 1
                self.state[p] = "S"
                joined = True
            elif self.out[p] is not None:
                c["guest_reads"] += 1
                if self.out[p] == "file":
                    c["discard_faults"] += 1
                self.out[p] = None
                joined = back = True
            if o == Op.WRITE:
                self.dirty[p] = True
        elif o == Op.SET_UNUSED:
            if self.state[p] != "U":
                left = self.out[p] is None
                self.state[p], self.dirty[p], self.out[p] = "U", False, None
        elif o in (Op.SET_STABLE, Op.SET_VOLATILE, Op.SET_POT_VOLATILE):
            joined = self.state[p] == "U"
            if o != Op.SET_STABLE:
                self.dirty[p] = False
            self.state[p] = {Op.SET_STABLE: "S", Op.SET_VOLATILE: "V", Op.SET_POT_VOLATILE: "P"}[o]
        elif o == Op.SET_STABLE_IF_RESIDENT:
            if not self.is_free(p):
                self.state[p] = "S"
        return joined, left, back


def replay_reference(scenario, budget: int, honoured: set, victims: str, tier_pages: int = 0) -> ReferenceResult:
    """Replay a :class:`cmmsim.replay.scenario.Scenario` at one budget, slowly."""
    host = ReferenceHost(scenario.page_guest, budget, honoured, victims, tier_pages)
    return host.run(scenario.page, scenario.op)


def host_lru(scenario, budget: int, params, tier_pages: int = 0) -> ReferenceResult:
    """Twin of ``host-lru``: no hints, exact LRU, CLOCK or two-list."""
    return replay_reference(scenario, budget, set(), params.replacement, tier_pages)


def cmm(scenario, budget: int, params, tier_pages: int = 0) -> ReferenceResult:
    """Twin of ``cmm``: every hint, LRU, state-priority or two-list victims."""
    return replay_reference(scenario, budget, HINTS_ALL, params.reclaim_order, tier_pages)


def cmm_light(scenario, budget: int, params, tier_pages: int = 0) -> ReferenceResult:
    """Twin of ``cmm-light``: stable/unused hints only, LRU or two-list victims."""
    return replay_reference(scenario, budget, HINTS_STABLE_UNUSED, params.replacement, tier_pages)
