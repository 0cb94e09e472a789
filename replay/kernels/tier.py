"""A fast host swap tier before the disk (z/VM expanded storage, Linux zswap).

The host pages a changed page out to the tier, not to its disk, while the
tier has room; a full tier first *spills* its least recently used page to
the disk. The tier is exclusive: a page-in from it frees the page's place
(zswap's exclusive loads; z/VM releases the expanded-storage block), so the
page has no preserved copy any more and is marked changed (its next
eviction writes it again, to the tier). A hint that frees a paged-out
page's copy (set unused, set volatile) frees its place in the tier too. A
page in the tier is never used there (a use pages it in), so least recently
used is least recently put in.

Every paged-out page (host state ``p``) is in exactly one of the tier or the
disk; a page in the tier never also has a valid disk copy (only changed
pages enter it, and their disk copy, if any, is stale).

Counters (appended to :data:`cmmsim.replay.states.COUNTERS`):
``host_writes_tier`` page-outs to the tier, ``host_reads_tier`` page-ins from
it, ``host_spills_tier`` pages moved from the tier to the disk (each one
also a disk write, in ``host_writes``). At capacity 0 nothing here runs and
a replay is the replay without a tier, bit for bit.

State: one int32 array per budget (:func:`new`, or :func:`alloc` inside a
kernel): each page's position in a ring of page ids in put-in order, the
ring (:data:`RING_PER_PAGE` slots per page of capacity), a bitmap of the
pages in the tier, then five words: the page count, the ring's head and tail
(its oldest entry and the next free slot), the capacity and the pages in the
tier. A page
that leaves the tier only clears its bit: its ring entry goes stale, and a
spill skips stale entries (a page's entry is live while its bit is set and its
position points at it). A ring filled up is compacted in order. So a page-in
from the tier, and the check whether a page is there, touch only the bitmap
(an eighth of a byte per page: it stays in the cache), where a list unlinked
two neighbours. At capacity 0 the array is the four words alone, and every
helper here that could touch a page's entry checks the capacity first, except
:func:`take`, :func:`page_out` and :func:`prefetch_node`, which the engine calls
behind its own check.

Users: the engine kernel (``host-lru``, ``cmm``, ``cmm-light``), the balloons'
kernel and ``free-page-reporting``'s. The twins are
:class:`cmmsim.replay.reference.ReferenceHost` (``tier_pages``; the balloons'
twin builds on it) and ``free-page-reporting``'s own.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from cmmsim.replay.kernels.guest_ranges import guest_of
from cmmsim.replay.kernels.prefetch import prefetch
from cmmsim.replay.kernels.state_machine import EVICT_COUNTER, EVICT_STATE, PAGE_IN_STATE, page_in, reclaim
from cmmsim.replay.states import (
    C_HOST_READS_TIER,
    C_HOST_WRITES,
    C_HOST_WRITES_TIER,
    C_SPILLS_TIER,
    CHANGED,
    H_P,
    HOST_MASK,
    HOST_SHIFT,
)

__all__ = [
    "RING_PER_PAGE",
    "alloc",
    "capacity",
    "evict",
    "in_tier",
    "leave_after_hint",
    "new",
    "page_in_from",
    "page_in_from_tier",
    "page_out",
    "prefetch_node",
    "take",
    "take_if_paged_out",
    "take_paged_out",
    "used",
]

_ONE = np.uint64(1)
_FIVE = np.uint64(5)
_LOW5 = np.uint64(31)
#: Ring slots per page of capacity: a full ring holds at least this many times the
#: capacity's entries minus the live ones as stale, so a compaction (one pass over
#: it, a position written per live entry) comes after that many puts at least.
RING_PER_PAGE = 4
# The words after the bitmap, counted from the end: pages, ring head, ring tail,
# capacity, pages in the tier (a tier of capacity 0 has only the last two, and two spare).
_PAGES, _HEAD, _TAIL, _CAP, _USED = 5, 4, 3, 2, 1


def new(n_pages: int, tier_pages: int) -> np.ndarray:
    """An empty tier of ``tier_pages`` pages over ``n_pages`` pages (see the module docstring)."""
    if tier_pages < 0:
        raise ValueError(f"tier capacity must be >= 0 pages, got {tier_pages}")
    if tier_pages > np.iinfo(np.int32).max // RING_PER_PAGE:
        raise ValueError(f"tier capacity {tier_pages:,} pages: at most {np.iinfo(np.int32).max // RING_PER_PAGE:,}")
    return alloc(n_pages, tier_pages)


@nb.njit(cache=True)
def alloc(n_pages, tier_pages):
    """:func:`new` without its checks, for the kernels that allocate their own state."""
    size = n_pages + RING_PER_PAGE * tier_pages + (n_pages + 31) // 32 + 5 if tier_pages else 4
    tl = np.zeros(size, np.int32)
    if tier_pages:
        tl[size - _PAGES] = n_pages
    tl[size - _CAP] = tier_pages
    return tl


@nb.njit(cache=True, inline="always")
def capacity(tl):
    """The tier's capacity, pages (0: no tier)."""
    return tl[tl.shape[0] - _CAP]


@nb.njit(cache=True, inline="always")
def used(tl):
    """Pages in the tier."""
    return tl[tl.shape[0] - _USED]


@nb.njit(cache=True, inline="always")
def _ring0(tl):
    """Where the ring starts: after the positions, one per page."""
    return tl[tl.shape[0] - _PAGES]


@nb.njit(cache=True, inline="always")
def _bit_word(tl, p):
    """The bitmap's word holding page p's bit (the bitmap follows the ring)."""
    return np.uint64(_ring0(tl) + RING_PER_PAGE * capacity(tl)) + (np.uint64(p) >> _FIVE)


@nb.njit(cache=True, inline="always")
def in_tier(tl, p):
    """Page p is in the tier (a tier of capacity > 0)."""
    return (np.int64(tl[_bit_word(tl, p)]) >> np.int64(np.uint64(p) & _LOW5)) & 1 != 0


@nb.njit(cache=True, inline="always")
def _flip(tl, p):
    """Set or clear page p's bit (it is known to be the other)."""
    w = _bit_word(tl, p)
    tl[w] = np.int32(np.int64(tl[w]) ^ (np.int64(1) << np.int64(np.uint64(p) & _LOW5)))


@nb.njit(cache=True, inline="always")
def take(tl, p):
    """Page p is paged in: it leaves the tier if it is there (True), before any victim
    is written (its place is free for it). Its ring entry goes stale."""
    if in_tier(tl, p):
        _flip(tl, p)
        tl[tl.shape[0] - _USED] -= 1
        return True
    return False


@nb.njit(cache=True, inline="always")
def take_if_paged_out(tiered, tl, p, st):
    """:func:`take` for page p in state ``st`` (not resident) when ``tiered`` (the
    tier's capacity is > 0, which a replay loop knows once): only a paged-out page
    (host state p) can be in a tier, so no other costs a load of its node."""
    return tiered and ((st & HOST_MASK) >> HOST_SHIFT) == H_P and take(tl, p)


@nb.njit(cache=True, inline="always")
def take_paged_out(tl, p, st):
    """:func:`take_if_paged_out` on any tier (its capacity read here)."""
    return take_if_paged_out(capacity(tl) != 0, tl, p, st)


@nb.njit(cache=True, inline="always")
def prefetch_node(tl, p):
    """Ask for page p's ring position now (a tier of capacity > 0): the replay loops
    know their victims a few evictions on, and :func:`page_out` writes it."""
    prefetch(tl, np.uint64(p))


@nb.njit(cache=True, inline="always")
def page_in_from(from_tier, st, g, cnt):
    """The state of a page given a frame: from the tier (:func:`page_in_from_tier`)
    when :func:`take` found it there, else as without a tier."""
    if from_tier:
        return page_in_from_tier(st, g, cnt)
    return page_in(st, g, cnt)


@nb.njit(cache=True, inline="always")
def evict(v, gv, state, cnt, tl, ends):
    """The host reclaims frame v of guest gv: :func:`page_out` with a tier, else
    :func:`cmmsim.replay.kernels.state_machine.reclaim` (the replay without one)."""
    if capacity(tl) > 0:
        page_out(v, gv, state, cnt, tl, ends)
    else:
        reclaim(v, gv, state, cnt)


@nb.njit(cache=True, inline="always")
def page_in_from_tier(st, g, cnt):
    """State of page ``st`` (host state p) paged in from the tier, counted to guest g:
    as from the disk but changed, its only copy gone."""
    cnt[g, C_HOST_READS_TIER] += 1
    return PAGE_IN_STATE[st] | CHANGED


@nb.njit(cache=True)
def _compact(tl, ring0):
    """Move the ring's live entries to its start, in order (stale ones dropped)."""
    head = tl[tl.shape[0] - _HEAD]
    tail = tl[tl.shape[0] - _TAIL]
    k = 0
    for j in range(head, tail):
        q = tl[ring0 + j]
        if in_tier(tl, q) and tl[q] == j:
            # Written at or before where it was read: in-place, in order.
            tl[ring0 + k] = q
            tl[q] = k
            k += 1
    tl[tl.shape[0] - _HEAD] = 0
    tl[tl.shape[0] - _TAIL] = k


@nb.njit(cache=True, inline="always")
def page_out(v, gv, state, cnt, tl, ends):
    """The host reclaims frame v (of guest gv) with a tier: a page it must write goes
    to the tier (the tier's least recently put in page spilled to disk first when
    full); any other reclaim is counted as without a tier
    (:func:`cmmsim.replay.kernels.state_machine.reclaim`). ``ends``: one past each
    guest's last page, for the spilled page's guest."""
    v = np.uint64(v)
    sv = state[v]
    state[v] = EVICT_STATE[sv]
    c = EVICT_COUNTER[sv]
    if c != C_HOST_WRITES:
        cnt[gv, c] += 1
        return
    cnt[gv, C_HOST_WRITES_TIER] += 1
    end = tl.shape[0]
    ring0 = _ring0(tl)
    if used(tl) >= capacity(tl):
        # The oldest live entry: stale ones (pages that left) are passed over.
        head = tl[end - _HEAD]
        while True:
            s = tl[ring0 + head]
            head += 1
            if in_tier(tl, s) and tl[s] == head - 1:
                break
        tl[end - _HEAD] = head
        _flip(tl, s)
        tl[end - _USED] -= 1
        gs = guest_of(s, ends)
        cnt[gs, C_SPILLS_TIER] += 1
        cnt[gs, C_HOST_WRITES] += 1  # the spill is a disk write
        # The next spills read the positions of the entries after it: ask for one now.
        ahead = head + 8
        if ahead < tl[end - _TAIL]:
            prefetch(tl, np.uint64(tl[ring0 + ahead]))
    tail = tl[end - _TAIL]
    if tail == RING_PER_PAGE * capacity(tl):
        _compact(tl, ring0)
        tail = tl[end - _TAIL]
    tl[ring0 + tail] = np.int32(v)
    tl[v] = tail
    tl[end - _TAIL] = tail + 1
    _flip(tl, v)
    tl[end - _USED] += 1


@nb.njit(cache=True, inline="always")
def leave_after_hint(tl, p, old_state, new_state):
    """After a hint took page p from ``old_state`` to ``new_state``: a page in the tier
    whose copy the hint freed (host state p before, not after) leaves it, with no I/O
    (its ring entry goes stale); on a tier of capacity 0 nothing happens."""
    h_p = np.uint8(H_P << HOST_SHIFT)
    if (old_state & HOST_MASK) == h_p and (new_state & HOST_MASK) != h_p and capacity(tl) > 0 and in_tier(tl, p):
        _flip(tl, p)
        tl[tl.shape[0] - _USED] -= 1
