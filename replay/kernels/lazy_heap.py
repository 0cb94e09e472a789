"""The lazy min-heap of (key, page) behind a guest's own reclaim order.

Keys are ``class << CLASS_SHIFT | stamp`` (:mod:`cmmsim.replay.states`): a page's
reclaim class by a *class rule* of :mod:`cmmsim.replay.kernels.reclaim_classes`
(``NO_CLASS`` for a page that has no place in the heap), and the event of its
last use, ``stamp[p]``. Least key first: the least recently used page of the
cheapest class.

The heap is lazy: every page with a class has at least one entry whose key is
<= its current key. A use only raises a page's key (uses never lower its class),
so it costs no heap work; a hint that lowers the class pushes a new entry. A
popped entry whose page now has a larger key is pushed again with that key, one
with a smaller key is stale (:func:`pop_current`): what comes out first with its
current key is exactly the cheapest-class LRU page. Hot pages cost a re-push once
per trip through the heap, not per use. When the array is full of stale entries,
:func:`push` compacts it to one entry per page with a class first.

The guest reclaim's rule is ``RULE_GUEST``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from cmmsim.replay.kernels.reclaim_classes import class_by
from cmmsim.replay.states import CLASS_SHIFT, NO_CLASS, REF

#: Entries a heap holds beyond two per page it may hold: room for the stale
#: entries between compactions.
SLACK = 64


def capacity(max_pages: int) -> int:
    """Entries of a heap for at most ``max_pages`` pages with a class."""
    return 2 * max_pages + SLACK


@nb.njit(cache=True, inline="always")
def heap_key(cls, stamp):
    """The key of a page of class ``cls`` last used at event ``stamp``."""
    return (np.int64(cls) << CLASS_SHIFT) | stamp


# The helpers that are calls of their own run without reference counting, as the
# kernels calling them per event do (see cmmsim.replay.engine): they allocate nothing.
@nb.njit(cache=True, _nrt=False)
def sift_up(keys, pages, i):
    k = keys[i]
    p = pages[i]
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= k:
            break
        keys[i] = keys[parent]
        pages[i] = pages[parent]
        i = parent
    keys[i] = k
    pages[i] = p


@nb.njit(cache=True, _nrt=False)
def sift_down(keys, pages, i, size):
    k = keys[i]
    p = pages[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and keys[c + 1] < keys[c]:
            c += 1
        if keys[c] >= k:
            break
        keys[i] = keys[c]
        pages[i] = pages[c]
        i = c
    keys[i] = k
    pages[i] = p


@nb.njit(cache=True, inline="always")
def pop(keys, pages, size):
    """Remove the least entry: (its key, its page, the new size)."""
    key = keys[0]
    p = pages[0]
    size -= 1
    keys[0] = keys[size]
    pages[0] = pages[size]
    sift_down(keys, pages, 0, size)
    return key, p, size


@nb.njit(cache=True, _nrt=False)
def push(keys, pages, size, key, p, state, stamp, rule):
    """Add entry (key, p); returns the new size. A full array is compacted first
    to one entry per page that ``rule`` gives a class (REF marks the pages
    already taken, then is cleared)."""
    if size == keys.shape[0]:
        j = 0
        for i in range(size):
            q = pages[i]
            cls = class_by(rule, state[q])
            if cls != NO_CLASS and not (state[q] & REF):
                state[q] |= REF
                keys[j] = heap_key(cls, stamp[q])
                pages[j] = q
                j += 1
        for i in range(j):
            state[pages[i]] &= ~REF
        size = j
        for i in range(size // 2 - 1, -1, -1):
            sift_down(keys, pages, i, size)
    keys[size] = key
    pages[size] = p
    sift_up(keys, pages, size)
    return size + 1


@nb.njit(cache=True, inline="always")
def push_page(keys, pages, size, p, state, stamp, rule):
    """:func:`push` page p with its current key."""
    return push(keys, pages, size, heap_key(class_by(rule, state[p]), stamp[p]), p, state, stamp, rule)


@nb.njit(cache=True, inline="always")
def pop_current(keys, pages, size, state, stamp, rule, avoid):
    """Pop the least page by its current key, other than ``avoid`` (-1: none):
    (that page, the new size). Entries of pages without a class or older than
    their page's key are dropped, those of pages used since are filed anew;
    ``avoid``, met, goes back in. The caller makes sure such a page exists."""
    held = False
    while True:
        key, v, size = pop(keys, pages, size)
        cls = class_by(rule, state[v])
        if cls == NO_CLASS:
            continue
        cur = heap_key(cls, stamp[v])
        if cur > key:
            # Used (or promoted) since this entry: file it anew.
            size = push(keys, pages, size, cur, v, state, stamp, rule)
            continue
        if cur < key:
            continue
        if v == avoid:
            held = True
            continue
        break
    if held:
        size = push_page(keys, pages, size, avoid, state, stamp, rule)
    return v, size
