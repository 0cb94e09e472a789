"""Which guest a global page belongs to, without a per-page table lookup.

Global pages are numbered guest after guest (:func:`cmmsim.replay.scenario.from_arrays`:
guest g owns ``guest_end[g-1] .. guest_end[g] - 1``), so a page's guest is
found by a search over the guests' ends, which sit in the L1 cache. The
evictions of ``opt`` and of the engine looked their victim up in
``page_guest`` (two bytes per page, far from the core): with one guest the
search costs nothing (the gain measured: docs/perf-log.md, session 6).
"""

from __future__ import annotations

import numba as nb
import numpy as np


def guest_ends_of(page_guest: np.ndarray, n_guests: int) -> np.ndarray:
    """One past each guest's last global page, from the per-page guest table
    (ascending, as numbered), int64.

    The keys are searched in the table's own dtype: int64 keys in a uint16
    table made numpy cast the whole table first (one pass over every page),
    and the engine asks for the ends at every chunk of a stream.
    """
    keys = np.arange(n_guests)
    if page_guest.dtype.kind in "iu" and n_guests <= np.iinfo(page_guest.dtype).max + 1:
        keys = keys.astype(page_guest.dtype)
    return np.searchsorted(page_guest, keys, side="right").astype(np.int64)


@nb.njit(cache=True, inline="always")
def guest_of(p, ends):
    """The guest owning global page ``p`` (``0 <= p < ends[-1]``)."""
    lo = 0
    hi = ends.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if p < ends[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo
