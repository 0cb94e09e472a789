"""Resident pages in time slots: exact LRU, or exact LRU inside reclaim classes.

A page that holds a frame holds a *slot*: the number of its last access in a
window of ``W`` slots handed out in access order (``slot[p]``, -1 for a page
without a frame; ``slot_page[s]`` the page in slot ``s``). Slot order is access
order, so the least recently used page is the one in the lowest slot. One bit
tree per reclaim class (a row of ``bits``, laid out as :mod:`cmmsim.replay.kernels.bittree`)
marks the slots its pages hold:

* a use moves the page to the next slot (its bit leaves the old slot of its
  old class and is set at the new slot of its new class);
* a hint that changes a resident page's class moves its bit from one class's
  tree to the other's *at the same slot*: the page keeps its place in time;
* the victim is the lowest set slot of the cheapest class with one.

So the victim is the page whose (class, last access) is least: the least
recently used page of the cheapest class, as DESIGN.md section 2 defines
``state-priority`` (slots rank resident pages exactly as the events of their
last accesses do: both grow with each access, and no two pages share either).
With one class it is plain exact LRU. The twins are the scans of
:class:`cmmsim.replay.reference.ReferenceHost` and :class:`tests.naive.ClassLru`.

Each class's row ends, after its tree, with the lowest slot it may hold (its
*cursor*): a victim is searched upward from there (usually within one word),
the victim's slot + 1 becomes the cursor, a hint that moves a page into the
class at a lower slot lowers it, a compaction resets it.

When the window is used up, the live slots are renumbered ``0 ..`` in order
(:func:`compact`). A window of at least twice the frames leaves at least half
of it free after a compaction, so the renumbering (one pass over the window)
costs O(1) per slot handed out, amortized.

Slot numbers are indexed unsigned (see :mod:`cmmsim.replay.kernels.lru_list`).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from cmmsim.replay.kernels.bittree import level_offsets
from cmmsim.replay.kernels.prefetch import prefetch

__all__ = [
    "MAX_CLASSES",
    "alloc",
    "WINDOW_PER_FRAME",
    "compact",
    "evict_least",
    "levels_of",
    "move",
    "n_levels",
    "new",
    "place",
    "reclass",
    "remove",
    "window",
]

#: Slots of the window per host frame (at least 2 for the amortized bound).
WINDOW_PER_FRAME = 4

_SIX = np.uint64(6)
_ONE = np.uint64(1)
_LOW6 = np.uint64(63)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
# How far past a victim's slot the next victims' pages, and the slots' pages
# further on, are asked for (docs/perf-log.md).
_VICTIMS_AHEAD = np.uint64(32)
_PAGES_AHEAD = np.uint64(64)


@nb.njit(cache=True)
def window(frames):
    """Slots of the window for a budget of ``frames`` (a multiple of 64)."""
    return max(64, (WINDOW_PER_FRAME * frames + 63) // 64 * 64)


@nb.njit(cache=True)
def n_levels(frames):
    """Levels of the bit trees of the window for ``frames``."""
    size = window(frames)
    k = 1
    while size > 64:
        size = (size + 63) // 64
        k += 1
    return k


def levels_of(frames: int) -> np.ndarray:
    """The bit-tree level offsets of the window of ``frames`` (:func:`bittree.level_offsets`)."""
    return level_offsets(int(window(frames)))


def new(n_pages: int, frames: int, n_classes: int):
    """Empty time slots for ``n_pages`` pages and a budget of ``frames``, in ``n_classes``
    classes: (slot, slot_page, bits, levels), the next free slot being 0."""
    return alloc(n_pages, frames, n_classes)


@nb.njit(cache=True)
def alloc(n_pages, frames, n_classes):
    """:func:`new` inside a kernel (the levels as :func:`levels_of` gives them)."""
    size = window(frames)
    k = n_levels(frames)
    levels = np.zeros(k + 1, np.int64)
    words = size
    for j in range(k):
        words = (words + 63) // 64
        levels[j + 1] = levels[j] + words
    return (
        np.full(n_pages, -1, np.int32),
        np.zeros(size, np.int32),
        np.zeros((n_classes, levels[k] + 1), np.uint64),
        levels,
    )


@nb.njit(cache=True, inline="always")
def _set(words, offsets, x):
    x = np.uint64(x)
    for k in range(offsets.shape[0] - 1):
        w = np.uint64(offsets[k]) + (x >> _SIX)
        was = words[w]
        words[w] = was | (_ONE << (x & _LOW6))
        if was != 0:
            return
        x >>= _SIX


@nb.njit(cache=True, inline="always")
def _clear(words, offsets, x):
    x = np.uint64(x)
    for k in range(offsets.shape[0] - 1):
        w = np.uint64(offsets[k]) + (x >> _SIX)
        now = words[w] & ~(_ONE << (x & _LOW6))
        words[w] = now
        if now != 0:
            return
        x >>= _SIX


@nb.njit(cache=True, inline="always")
def _first_from(words, offsets, x):
    """The lowest set slot at or above ``x`` of one class's tree, or -1 when there is none.

    Up from the lowest level while the word holding x has nothing at or above
    it (x then moves to the next word's bit one level up), then down, one
    trailing-zero count per level.
    """
    top = offsets.shape[0] - 1
    x = np.uint64(x)
    k = 0
    while True:
        w = np.uint64(offsets[k]) + (x >> _SIX)
        if w >= np.uint64(offsets[k + 1]):
            return -1
        word = words[w] & (_ALL << (x & _LOW6))
        if word != 0:
            break
        x = (x >> _SIX) + _ONE
        k += 1
        if k == top:
            return -1
    x = ((x >> _SIX) << _SIX) + np.uint64(trailing_zeros(word))
    while k > 0:
        k -= 1
        x = (x << _SIX) + np.uint64(trailing_zeros(words[np.uint64(offsets[k]) + x]))
    return np.int64(x)


#: The most reclaim classes a window keeps apart (the engine's state-priority order has 3).
MAX_CLASSES = 3


@nb.njit(cache=True, inline="always")
def _class_of_bit(a0, a1, b):
    """The class whose word holds bit b, given the words of classes 0 and 1."""
    if (a0 >> b) & _ONE:
        return 0
    if (a1 >> b) & _ONE:
        return 1
    return 2


@nb.njit(cache=True)
def compact(slot, slot_page, bits, offsets):
    """Renumber the live slots ``0 ..`` in order, each class keeping its pages;
    returns the next free slot."""
    n_classes = bits.shape[0]
    n_words = offsets[1]  # the lowest level: one bit per slot
    j = np.uint64(0)
    # The output word being filled (index j >> 6), per class, in registers: it
    # is written once j leaves it, which is never before the input has left it
    # (j never passes the slot being read).
    o0 = o1 = o2 = np.uint64(0)
    for w in range(n_words):
        a0 = bits[0, w]
        a1 = bits[1, w] if n_classes > 1 else np.uint64(0)
        a2 = bits[2, w] if n_classes > 2 else np.uint64(0)
        live = a0 | a1 | a2
        while live != 0:
            b = np.uint64(trailing_zeros(live))
            live &= live - _ONE
            p = slot_page[(np.uint64(w) << _SIX) + b]
            c = _class_of_bit(a0, a1, b)
            jb = j & _LOW6
            if c == 0:
                o0 |= _ONE << jb
            elif c == 1:
                o1 |= _ONE << jb
            else:
                o2 |= _ONE << jb
            slot_page[j] = p
            slot[np.uint64(p)] = np.int32(j)
            j += _ONE
            if jb == _LOW6:
                jw = (j - _ONE) >> _SIX
                bits[0, jw] = o0
                if n_classes > 1:
                    bits[1, jw] = o1
                if n_classes > 2:
                    bits[2, jw] = o2
                o0 = o1 = o2 = np.uint64(0)
    # The partly filled output word, then nothing above it.
    first_empty = j >> _SIX
    if j & _LOW6:
        bits[0, first_empty] = o0
        if n_classes > 1:
            bits[1, first_empty] = o1
        if n_classes > 2:
            bits[2, first_empty] = o2
        first_empty += _ONE
    for c in range(n_classes):
        bits[c, offsets[offsets.shape[0] - 1]] = 0  # the lowest possible slot
        for w in range(first_empty, n_words):
            bits[c, w] = 0
        # The levels above: a bit per non-empty word below.
        for k in range(1, offsets.shape[0] - 1):
            for x in range(offsets[k], offsets[k + 1]):
                bits[c, x] = 0
            for x in range(offsets[k] - offsets[k - 1]):
                if bits[c, offsets[k - 1] + x] != 0:
                    bits[c, np.uint64(offsets[k]) + (np.uint64(x) >> _SIX)] |= _ONE << (np.uint64(x) & _LOW6)
    return np.int64(j)


@nb.njit(cache=True, inline="always")
def _next_slot(slot, slot_page, bits, offsets, nxt):
    """The slot to hand out next (after a compaction when the window is used up)."""
    if nxt == slot_page.shape[0]:
        nxt = compact(slot, slot_page, bits, offsets)
    return nxt


@nb.njit(cache=True, inline="always")
def place(slot, slot_page, bits, offsets, nxt, p, cls):
    """Page p (without a slot) takes the next slot in class ``cls``; returns the
    next free slot."""
    nxt = _next_slot(slot, slot_page, bits, offsets, nxt)
    slot[np.uint64(p)] = nxt
    slot_page[np.uint64(nxt)] = p
    _set(bits[cls], offsets, nxt)
    return nxt + 1


@nb.njit(cache=True, inline="always")
def reclass(slot, bits, offsets, p, old_cls, cls):
    """Page p changes class from ``old_cls`` to ``cls`` and keeps its slot."""
    s = slot[np.uint64(p)]
    _clear(bits[old_cls], offsets, s)
    _set(bits[cls], offsets, s)
    cur = offsets[offsets.shape[0] - 1]
    if s < bits[cls, cur]:
        bits[cls, cur] = s


@nb.njit(cache=True, inline="always")
def remove(slot, bits, offsets, p, cls):
    """Page p, in class ``cls``, loses its frame other than as a victim (a balloon
    took it): its slot is freed (-1) and its bit cleared. A class's cursor stays a
    lower bound of its slots."""
    s = slot[np.uint64(p)]
    _clear(bits[cls], offsets, s)
    slot[np.uint64(p)] = -1


@nb.njit(cache=True, inline="always")
def move(slot, slot_page, bits, offsets, nxt, p, old_cls, cls):
    """Page p, in class ``old_cls``, is used: it takes the next slot, in class
    ``cls``; returns the next free slot."""
    s = slot[np.uint64(p)]
    if s == nxt - 1:
        # Already the most recent: only its class may change.
        if cls != old_cls:
            reclass(slot, bits, offsets, p, old_cls, cls)
        return nxt
    _clear(bits[old_cls], offsets, s)
    nxt = _next_slot(slot, slot_page, bits, offsets, nxt)
    slot[np.uint64(p)] = nxt
    slot_page[np.uint64(nxt)] = p
    _set(bits[cls], offsets, nxt)
    return nxt + 1


@nb.njit(cache=True, inline="always")
def evict_least(slot, slot_page, bits, offsets):
    """Take the page of the lowest slot of the cheapest non-empty class out: (that page,
    the page of a slot a little further on). The victim's slot becomes -1. There must
    be a page in some class.

    Victims come in slot order within a class, so the second page is likely a
    victim soon: a kernel may ask for its lines early (it may hold no frame).
    """
    top = offsets[offsets.shape[0] - 2]
    cur = offsets[offsets.shape[0] - 1]  # each class's lowest possible slot
    c = 0
    while bits[c, top] == 0:
        c += 1
    words = bits[c]
    s = _first_from(words, offsets, words[cur])
    words[cur] = s + 1
    _clear(words, offsets, s)
    us = np.uint64(s)
    v = slot_page[us]
    slot[np.uint64(v)] = -1
    # Victims come in slot order (within a class): the page a little further
    # on is likely a victim soon, and the slots' pages further still will be read.
    last = np.uint64(slot_page.shape[0] - 1)
    prefetch(slot_page, min(us + _PAGES_AHEAD, last))
    return v, slot_page[min(us + _VICTIMS_AHEAD, last)]
