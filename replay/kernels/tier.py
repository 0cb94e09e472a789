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
kernel), the tier's LRU list laid out as :mod:`cmmsim.replay.kernels.lru_list`
(sentinel head ``n_pages``; a page off the list has successor -1) followed by
two slots: the capacity and the pages in the tier. At capacity 0 it is those
slots alone (4 words), and every helper here that could touch a page's links
checks the capacity first, except :func:`take`, :func:`page_out` and
:func:`prefetch_node`, which the engine calls behind its own check.

Users: the engine kernel (``host-lru``, ``cmm``, ``cmm-light``), the balloons'
kernel and ``free-page-reporting``'s. The twins are
:class:`cmmsim.replay.reference.ReferenceHost` (``tier_pages``; the balloons'
twin builds on it) and ``free-page-reporting``'s own.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from cmmsim.replay.kernels.guest_ranges import guest_of
from cmmsim.replay.kernels.lru_list import least_recent, node, push_mru, unlink
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


def new(n_pages: int, tier_pages: int) -> np.ndarray:
    """An empty tier of ``tier_pages`` pages over ``n_pages`` pages (see the module docstring)."""
    if tier_pages < 0:
        raise ValueError(f"tier capacity must be >= 0 pages, got {tier_pages}")
    if tier_pages > np.iinfo(np.int32).max:
        raise ValueError(f"tier capacity {tier_pages:,} pages: at most 2^31 - 1")
    return alloc(n_pages, tier_pages)


@nb.njit(cache=True)
def alloc(n_pages, tier_pages):
    """:func:`new` without its checks, for the kernels that allocate their own state."""
    size = 2 * (n_pages + 1) + 2 if tier_pages else 4
    tl = np.full(size, -1, np.int32)
    if tier_pages:
        tl[2 * n_pages] = n_pages  # the empty list's head
        tl[2 * n_pages + 1] = n_pages
    tl[size - 2] = tier_pages
    tl[size - 1] = 0
    return tl


@nb.njit(cache=True, inline="always")
def capacity(tl):
    """The tier's capacity, pages (0: no tier)."""
    return tl[tl.shape[0] - 2]


@nb.njit(cache=True, inline="always")
def used(tl):
    """Pages in the tier."""
    return tl[tl.shape[0] - 1]


@nb.njit(cache=True, inline="always")
def _head(tl):
    return np.uint64((tl.shape[0] - 4) // 2)


@nb.njit(cache=True, inline="always")
def in_tier(tl, p):
    """Page p is in the tier (a tier of capacity > 0)."""
    return tl[node(p) + _ONE] != -1


@nb.njit(cache=True, inline="always")
def _remove(tl, p):
    unlink(tl, p)
    tl[node(p) + _ONE] = -1
    tl[tl.shape[0] - 1] -= 1


@nb.njit(cache=True, inline="always")
def take(tl, p):
    """Page p is paged in: it leaves the tier if it is there (True), before any victim
    is written (its place is free for it)."""
    if in_tier(tl, p):
        _remove(tl, p)
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
    """Ask for page p's tier links now (a tier of capacity > 0): the replay loops
    know the pages a few dozen events on, and without it the check of
    :func:`take` and the links :func:`page_out` writes wait on memory."""
    prefetch(tl, node(p) + _ONE)


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


@nb.njit(cache=True, inline="always")
def page_out(v, gv, state, cnt, tl, ends):
    """The host reclaims frame v (of guest gv) with a tier: a page it must write goes
    to the tier (the tier's least recently used page spilled to disk first when
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
    head = _head(tl)
    if used(tl) >= capacity(tl):
        s = least_recent(tl, head)
        _remove(tl, s)
        gs = guest_of(s, ends)
        cnt[gs, C_SPILLS_TIER] += 1
        cnt[gs, C_HOST_WRITES] += 1  # the spill is a disk write
        # The next spill unlinks the page after the new least recent one, which
        # writes that page's links: ask for them now (they are far apart in memory).
        prefetch(tl, node(tl[node(least_recent(tl, head)) + _ONE]))
    push_mru(tl, head, v)
    tl[tl.shape[0] - 1] += 1


@nb.njit(cache=True, inline="always")
def leave_after_hint(tl, p, old_state, new_state):
    """After a hint took page p from ``old_state`` to ``new_state``: a page in the tier
    whose copy the hint freed (host state p before, not after) leaves it, with no I/O.
    Only such a page costs a load of its links (hints mostly find pages resident); on
    a tier of capacity 0 nothing happens."""
    h_p = np.uint8(H_P << HOST_SHIFT)
    if (old_state & HOST_MASK) == h_p and (new_state & HOST_MASK) != h_p and capacity(tl) > 0 and in_tier(tl, p):
        _remove(tl, p)
