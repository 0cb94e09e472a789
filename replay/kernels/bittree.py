"""A set of integers in [0, n) with O(log64 n) insert, remove and max (for ``opt``).

Belady's MIN evicts the resident page used farthest in the future. Its keys
are event positions, each held by at most one page, so a bit per position
does: a 64-ary tree of bit words, each level's bit saying "the word below
is not empty". Insert and remove touch one word per level (usually only the
lowest); the maximum is found top-down with one leading-zero count per level.
A binary heap in its place pushed every access to near its root (a later
next use is a larger key): ~17 dependent steps instead of 1-2 word updates.

Layout: one uint64 array, the levels from the bottom (``n`` bits) up to a
single word; ``offsets[k]`` is where level k starts, ``offsets[-1]`` the
total length.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros


def level_offsets(n: int) -> np.ndarray:
    """Start of each level in the word array (the last entry: its length)."""
    offsets = [0]
    size = max(1, n)
    while True:
        words = (size + 63) // 64
        offsets.append(offsets[-1] + words)
        if words == 1:
            return np.array(offsets, np.int64)
        size = words


# Word indices are unsigned: numba adds a negative-index fix-up to every index
# of a signed type (see cmmsim.replay.lru_ahead); members are never negative.
_SIX = np.uint64(6)


@nb.njit(cache=True)
def add(words, offsets, x):
    """Insert x."""
    x = np.uint64(x)
    for k in range(offsets.shape[0] - 1):
        w = np.uint64(offsets[k]) + (x >> _SIX)
        was = words[w]
        words[w] = was | (np.uint64(1) << (x & np.uint64(63)))
        if was != 0:
            return  # the levels above already say this word is not empty
        x >>= _SIX


@nb.njit(cache=True)
def remove(words, offsets, x):
    """Remove x (which must be present)."""
    x = np.uint64(x)
    for k in range(offsets.shape[0] - 1):
        w = np.uint64(offsets[k]) + (x >> _SIX)
        words[w] &= ~(np.uint64(1) << (x & np.uint64(63)))
        if words[w] != 0:
            return
        x >>= _SIX


@nb.njit(cache=True, inline="always")
def contains(words, x):
    """Whether x is a member (its bit in the lowest level, which starts the array)."""
    x = np.uint64(x)
    return ((words[x >> _SIX] >> (x & np.uint64(63))) & np.uint64(1)) != 0


@nb.njit(cache=True)
def maximum(words, offsets):
    """The largest member, or -1 when empty."""
    top = offsets.shape[0] - 2
    if words[offsets[top]] == 0:
        return -1
    x = np.uint64(0)
    for k in range(top, -1, -1):
        word = words[np.uint64(offsets[k]) + x]
        x = (x << _SIX) + np.uint64(63) - np.uint64(leading_zeros(word))
    return np.int64(x)
