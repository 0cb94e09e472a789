"""An open-addressing hash table (file, page index) -> slot for the numba mapper.

numba's typed ``Dict`` with tuple keys cost about half of the mapper's time
on real captures (every page of a ``get_pages``/``map_pages`` range is one
lookup). This table keeps keys and values in three flat int64 arrays, probes
linearly from a multiplicative hash and deletes by backward shift (no
tombstones, so probe chains stay short however many pages come and go). The
arrays never grow inside numba: the caller sizes them before each batch
(:func:`reserve`), at most half full.
"""

from __future__ import annotations

import numba as nb
import numpy as np

EMPTY = -1


def new_table(capacity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty table with room for ``capacity`` keys (file, index, value arrays)."""
    size = 1 << max(4, int(2 * capacity - 1).bit_length())
    return np.full(size, EMPTY, np.int64), np.zeros(size, np.int64), np.zeros(size, np.int64)


@nb.njit(cache=True, inline="always")
def _home(f, idx, mask):
    h = np.uint64(f) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(idx) * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= h >> np.uint64(31)
    return np.int64(h & np.uint64(mask))


@nb.njit(cache=True, inline="always")
def find(f, idx, hf, hi):
    """Position of key (f >= 0, idx) or ``-1 - p`` with p the empty position it would take."""
    mask = hf.shape[0] - 1
    j = _home(f, idx, mask)
    while True:
        k = hf[j]
        if k == EMPTY:
            return -1 - j
        if k == f and hi[j] == idx:
            return j
        j = (j + 1) & mask


@nb.njit(cache=True, inline="always")
def get(f, idx, hf, hi, hv):
    """Value of key (f, idx), or -1."""
    p = find(f, idx, hf, hi)
    return hv[p] if p >= 0 else -1


@nb.njit(cache=True, inline="always")
def put(f, idx, value, hf, hi, hv):
    """Set key (f, idx) to value; returns 1 when the key is new, else 0."""
    p = find(f, idx, hf, hi)
    new = 0
    if p < 0:
        p = -1 - p
        hf[p] = f
        hi[p] = idx
        new = 1
    hv[p] = value
    return new


@nb.njit(cache=True, inline="always")
def remove_at(p, hf, hi, hv):
    """Delete the key at position p, moving later keys of its probe chain back."""
    mask = hf.shape[0] - 1
    i = p
    j = p
    while True:
        j = (j + 1) & mask
        if hf[j] == EMPTY:
            break
        k = _home(hf[j], hi[j], mask)
        # The key at j may fill the hole at i only if its home is not in (i, j].
        if (i < j and i < k <= j) or (i > j and (k > i or k <= j)):
            continue
        hf[i] = hf[j]
        hi[i] = hi[j]
        hv[i] = hv[j]
        i = j
    hf[i] = EMPTY


@nb.njit(cache=True)
def _rehash(hf, hi, hv, nf, ni, nv):
    for j in range(hf.shape[0]):
        if hf[j] != EMPTY:
            put(hf[j], hi[j], hv[j], nf, ni, nv)


def reserve(
    table: tuple[np.ndarray, np.ndarray, np.ndarray], used: int, more: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The table, rehashed into larger arrays if ``used + more`` keys would fill it past half."""
    hf, hi, hv = table
    if 2 * (used + more) <= hf.shape[0]:
        return table
    bigger = new_table(max(used + more, hf.shape[0]))
    _rehash(hf, hi, hv, *bigger)
    return bigger
