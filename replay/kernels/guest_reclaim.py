"""A guest's own view of its pages and its reclaim inside a page limit.

Shared by ``static`` (a fixed share each) and the balloons (a share set every
period). The guest byte is laid out in :mod:`cmmsim.replay.states`: guest state,
``OUT`` (reclaimed by the guest), ``SWAPPED`` (into guest swap, else dropped
clean to its file), ``DIRTY``. A guest whose in-use pages (not unused, not
reclaimed) pass its limit reclaims one of them as Linux would: the least
recently used clean page cache page (volatile, or potentially volatile and
clean) is dropped with no I/O, else the least recently used other page is
swapped out (one guest write). Victims come from one lazy heap per guest
(:mod:`cmmsim.replay.kernels.lazy_heap`) under ``RULE_GUEST``
(:func:`cmmsim.replay.kernels.reclaim_classes.guest_class`). The twin is
:class:`cmmsim.replay.reference.GuestView` with victims found by scanning.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from cmmsim.replay.kernels import lazy_heap
from cmmsim.replay.kernels.reclaim_classes import RULE_GUEST, clean_or_dirty, in_use
from cmmsim.replay.states import (
    DIRTY,
    G_P,
    G_S,
    G_U,
    G_V,
    GUEST_CLASS_CLEAN,
    GUEST_MASK,
    OP_SET_POT_VOLATILE,
    OP_SET_STABLE,
    OP_SET_STABLE_IF_RESIDENT,
    OP_SET_UNUSED,
    OP_SET_VOLATILE,
    OP_WRITE,
    OUT,
    REF,
    SWAPPED,
)

#: Flags of :func:`guest_step`.
JOINED, LEFT, LOWERED, REPAIRED, REFAULTED, FILE_REFAULT = 1, 2, 4, 8, 16, 32


@nb.njit(cache=True)
def guest_step(st, o):
    """The guest's own view of a page after event ``o``: (new byte, JOINED|LEFT|... flags).

    JOINED: the page entered the guest's in-use set (allocated, repaired or
    brought back from its backing); LEFT: an in-use page was freed; LOWERED:
    a hint made an in-use page cheaper to reclaim; REPAIRED: an access to a
    free page; REFAULTED: an access brought a reclaimed page back (one guest
    read), FILE_REFAULT if it came from its file rather than swap.
    """
    flags = 0
    if o <= OP_WRITE:
        if (st & GUEST_MASK) == G_U:
            flags |= REPAIRED | JOINED
            st = (st & ~GUEST_MASK) | G_S
        elif st & OUT:
            flags |= REFAULTED | JOINED
            if not (st & SWAPPED):
                flags |= FILE_REFAULT
            st &= ~(OUT | SWAPPED)
        if o == OP_WRITE:
            st |= DIRTY
    elif o == OP_SET_UNUSED:
        if (st & GUEST_MASK) != G_U:
            if not (st & OUT):
                flags |= LEFT
            st = G_U | (st & REF)
    elif o == OP_SET_STABLE or o == OP_SET_VOLATILE or o == OP_SET_POT_VOLATILE:
        before = clean_or_dirty(st)
        if (st & GUEST_MASK) == G_U:
            flags |= JOINED
        new_g = G_S if o == OP_SET_STABLE else (G_V if o == OP_SET_VOLATILE else G_P)
        if o != OP_SET_STABLE:
            st &= ~DIRTY
        st = (st & ~GUEST_MASK) | new_g
        if not (flags & JOINED) and in_use(st) and clean_or_dirty(st) < before:
            flags |= LOWERED
    elif o == OP_SET_STABLE_IF_RESIDENT:
        if in_use(st):
            st = (st & ~GUEST_MASK) | G_S
    return st, flags


@nb.njit(cache=True, _nrt=False)
def take_victim(keys, pages, size, avoid, state, stamp):
    """Pop the cheapest-class LRU in-use page other than ``avoid``: (victim, new heap size).

    The caller makes sure one exists (more than one page in use).
    """
    return lazy_heap.pop_current(keys, pages, size, state, stamp, RULE_GUEST, avoid)


@nb.njit(cache=True, inline="always")
def file_page(keys, pages, size, p, state, stamp):
    """File in-use page p in its guest's heap with its current key; returns the new size."""
    return lazy_heap.push_page(keys, pages, size, p, state, stamp, RULE_GUEST)


@nb.njit(cache=True)
def reclaimed(sv):
    """A victim's byte once reclaimed, and 1 if that cost a swap write (else a clean drop)."""
    if clean_or_dirty(sv) == GUEST_CLASS_CLEAN:
        return sv | OUT, 0
    return sv | OUT | SWAPPED, 1


@nb.njit(cache=True)
def guest_heaps(limit):
    """One lazy heap per guest in shared arrays: (capacity, offset, keys, pages, sizes).

    Guest g's heap is ``keys[off[g]:off[g] + cap[g]]``; twice its page limit
    (plus slack) holds every in-use page once and the stale entries between
    compactions.
    """
    n = limit.shape[0]
    cap = 2 * limit + lazy_heap.SLACK
    off = np.zeros(n + 1, np.int64)
    for g in range(n):
        off[g + 1] = off[g] + cap[g]
    return cap, off, np.empty(off[n], np.int64), np.empty(off[n], np.int32), np.zeros(n, np.int64)
