"""Linux's two-list (active/inactive) reclaim, as the host of a KVM guest runs it.

The model (docs/model.md, "Two-list reclaim", has the Linux sources it follows and
what it leaves out):

* a page the host faults in goes to the head of the *inactive* list (Linux >= 5.9
  puts new anonymous pages there; guest memory is anonymous to the host);
* a use of a page on the inactive list *activates* it: it moves to the head of
  the *active* list. The fault was the page's first reference, so this use is
  its second, and Linux activates a page referenced twice on the inactive list;
* a use of a page on the active list changes nothing: Linux does not reorder
  the active list on a reference, and its scan of the active list deactivates
  referenced anonymous pages too (only executable file pages are rotated);
* before each eviction, while the inactive list is low (``inactive * ratio <
  active``, ``ratio`` = ``int_sqrt(10 * GiB)`` of the two lists, 1 below 1 GiB:
  Linux's ``inactive_is_low``), the active list's tail moves to the inactive
  list's head (deactivation);
* the victim is the inactive list's tail.

Hints move no page between lists (they never change recency in the engine). A
page the host drops without choosing it (``free-page-reporting``'s reported
blocks, the balloons' frames) leaves its list (:func:`remove`).

Storage: one int32 array per budget (the engine's ``frames`` row), laid out as
``links`` of :mod:`cmmsim.replay.kernels.lru_list` for pages ``0 .. n-1``, the
inactive list's head node ``n``, the active list's head node ``n + 1``, then the
two lists' lengths. A page on the active list has the engine state byte's REF
bit set (CLOCK's reference bit; the two orders never meet), so a use tells the
two lists apart without another load. The twin is
:class:`cmmsim.replay.reference.TwoListTwin`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from cmmsim.replay.kernels.lru_list import evict_lru, init_list, least_recent, push_mru, unlink
from cmmsim.replay.states import REF

__all__ = [
    "PAGES_PER_GIB",
    "activate_or_keep",
    "admit",
    "inactive_ratio",
    "init",
    "lengths",
    "remove",
    "size",
    "victim",
]

#: 4 KiB pages per GiB (Linux's ``1 << (30 - PAGE_SHIFT)``).
PAGES_PER_GIB = 1 << 18
_EXTRA = 6  # two head nodes (two links each) and the two lengths
_NOT_REF = np.uint8(0xFF ^ REF)


@nb.njit(cache=True)
def size(n_pages):
    """Entries of the array of one budget over ``n_pages`` pages."""
    return 2 * n_pages + _EXTRA


@nb.njit(cache=True)
def init(tl):
    """Two empty lists in ``tl`` (an array of :func:`size` entries)."""
    n = (tl.shape[0] - _EXTRA) // 2
    init_list(tl, n)
    init_list(tl, n + 1)
    tl[tl.shape[0] - 2] = 0
    tl[tl.shape[0] - 1] = 0


def lengths(tl) -> tuple[int, int]:
    """(inactive, active) pages of ``tl``."""
    return int(tl[-2]), int(tl[-1])


@nb.njit(cache=True, inline="always")
def _isqrt(x):
    """The integer square root of x >= 0 (Linux's ``int_sqrt``)."""
    r = np.int64(np.sqrt(np.float64(x)))
    # The float root may be one off for large x.
    while r * r > x:
        r -= 1
    while (r + 1) * (r + 1) <= x:
        r += 1
    return r


@nb.njit(cache=True, inline="always")
def inactive_ratio(listed_pages):
    """Linux's ``inactive_is_low`` ratio for ``listed_pages`` on the two lists."""
    gib = np.int64(listed_pages) // PAGES_PER_GIB
    if gib == 0:
        return np.int64(1)
    return _isqrt(10 * gib)


@nb.njit(cache=True, inline="always")
def admit(tl, p):
    """Page p got a frame: it goes to the inactive list's head."""
    n = (tl.shape[0] - _EXTRA) // 2
    push_mru(tl, n, p)
    tl[tl.shape[0] - 2] += 1


@nb.njit(cache=True, inline="always")
def activate_or_keep(tl, p, st):
    """Resident page p, state byte ``st``, is used: an inactive page is activated.
    Returns its state byte (REF set: on the active list)."""
    if st & REF:
        return st
    n = (tl.shape[0] - _EXTRA) // 2
    unlink(tl, p)
    push_mru(tl, n + 1, p)
    tl[tl.shape[0] - 2] -= 1
    tl[tl.shape[0] - 1] += 1
    return st | np.uint8(REF)


@nb.njit(cache=True, inline="always")
def remove(tl, p, st):
    """Resident page p, state byte ``st``, loses its frame other than as a victim (a
    reported free block, a frame a balloon took): it leaves its list. Returns its state
    byte with REF clear (on no list)."""
    unlink(tl, p)
    if st & REF:
        tl[tl.shape[0] - 1] -= 1
    else:
        tl[tl.shape[0] - 2] -= 1
    return np.uint8(st & _NOT_REF)


@nb.njit(cache=True, inline="always")
def victim(tl, state):
    """Deactivate while the inactive list is low, then take the inactive list's tail
    out; returns that page. There must be a page on some list."""
    n = (tl.shape[0] - _EXTRA) // 2
    i_len = tl.shape[0] - 2
    a_len = tl.shape[0] - 1
    ratio = inactive_ratio(tl[i_len] + tl[a_len])
    while np.int64(tl[i_len]) * ratio < tl[a_len]:
        q = least_recent(tl, n + 1)
        unlink(tl, q)
        push_mru(tl, n, q)
        state[np.uint64(q)] &= ~REF
        tl[a_len] -= 1
        tl[i_len] += 1
    tl[i_len] -= 1
    return evict_lru(tl, n)
