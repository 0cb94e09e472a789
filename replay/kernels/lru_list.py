"""The intrusive LRU list of the list-based kernels: two links per page, a sentinel head.

Its users: two-list (:mod:`cmmsim.replay.kernels.two_list`), free page reporting,
the balloons' host and the tier (:mod:`cmmsim.replay.kernels.tier`); exact LRU
in the engine keeps time slots or a marker instead.

``links[2p]`` is p's predecessor (less recent), ``links[2p+1]`` its successor:
interleaved so one cache line holds both. ``links[2p+1] == -1``: p was taken
off by :func:`evict_lru` (the tier keeps every page off its list so, and tests
it). The head is a node of its own past the pages (``links[2 head]`` the most
recent page, ``links[2 head + 1]`` the least recent); a kernel may keep several
lists in one array, each with its own head (the balloons' per-guest free lists).

Nodes are indexed in uint64: numba adds a negative-index fix-up (two
instructions, and registers) to every index of a signed type it cannot prove
non-negative, as every page read from an array; unsigned, there is none
(docs/perf-log.md, sessions 7 and 8). Other kernels index the same way for
the same reason.
"""

from __future__ import annotations

import numba as nb
import numpy as np

ONE = np.uint64(1)


@nb.njit(cache=True, inline="always")
def node(p):
    """Index of page p's predecessor link (its successor's is one up)."""
    return np.uint64(p) << ONE


@nb.njit(cache=True)
def init_list(links, head):
    """An empty list with sentinel ``head`` (its two links point at itself)."""
    links[2 * head] = head
    links[2 * head + 1] = head


@nb.njit(cache=True, inline="always")
def unlink(links, p):
    """Take page p off its list."""
    a = links[node(p)]
    b = links[node(p) + ONE]
    links[node(a) + ONE] = b
    links[node(b)] = a


@nb.njit(cache=True, inline="always")
def push_mru(links, head, p):
    """Put page p at the most recent end of the list of ``head``."""
    last = links[node(head)]
    links[node(last) + ONE] = p
    links[node(p)] = last
    links[node(p) + ONE] = head
    links[node(head)] = p


@nb.njit(cache=True, inline="always")
def touch(links, head, p):
    """Make listed page p the most recent (nothing to move if it already is)."""
    if links[node(p) + ONE] != head:
        unlink(links, p)
        push_mru(links, head, p)


@nb.njit(cache=True, inline="always")
def least_recent(links, head):
    """The least recent page of the list of ``head`` (``head`` when it is empty)."""
    return links[node(head) + ONE]


@nb.njit(cache=True, inline="always")
def evict_lru(links, head):
    """Take the least recent page off the list, marked as holding no frame; returns it."""
    # unlink without loading v's predecessor: it is the head.
    v = links[node(head) + ONE]
    after = links[node(v) + ONE]
    links[node(head) + ONE] = after
    links[node(after)] = head
    links[node(v) + ONE] = -1
    return v
