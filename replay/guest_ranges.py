"""Which guest a global page belongs to, without a per-page table lookup.

Global pages are numbered guest after guest (:func:`replay.scenario.from_arrays`:
guest g owns ``guest_end[g-1] .. guest_end[g] - 1``), so a page's guest is
found by a search over the guests' ends, which sit in the L1 cache. An
eviction in the ``opt`` kernel looked its victim up in ``page_guest`` (two
bytes per page, far from the core): with one guest the search costs nothing
and the pass ran 1.19x faster on the bench stream.
"""

from __future__ import annotations

import numba as nb
import numpy as np


def guest_ends(guest_pages: np.ndarray) -> np.ndarray:
    """One past each guest's last global page (the cumulative guest sizes), int64."""
    return np.cumsum(np.asarray(guest_pages, np.int64))


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
