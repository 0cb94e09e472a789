"""The k-way merge of guests' time-ordered runs of events, in one pass.

A streamed scenario (:func:`cmmsim.replay.stream.merged_batches`) cuts every
guest's buffered events at a watermark; the runs cut, one or more per guest
(the guest's batches, in file order), are concatenated column by column and
merged here by ``(t_ns, run)``: by time, ties by guest index, then file order,
the order of :func:`cmmsim.replay.scenario.from_arrays`. The merge writes the
merged columns once, the global page (``pfn`` plus the run's guest offset) and
the guest index included: no stable argsort of the concatenation and no
gather of each column through it.

A binary min-heap holds the runs by their next event. Events come in short
bursts of one guest (several events at one time stamp, a guest's run of
accesses), so the run on top emits every event before the second-least run's
head at once, and the heap is sifted once per burst, not once per event.

The twin is :func:`tests.naive.merge_runs` (the stable argsort it replaces).
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["merge_runs"]


@nb.njit(cache=True, inline="always")
def _before(ta, ra, tb, rb):
    """Run ``ra`` whose head is at ``ta`` comes before run ``rb`` at ``tb``."""
    return ta < tb or (ta == tb and ra < rb)


@nb.njit(cache=True, inline="always")
def _sift_down(heap, key, m, i):
    """Restore the heap (``m`` runs, head times in ``key``) below position ``i``."""
    r = heap[i]
    t = key[i]
    while True:
        c = 2 * i + 1
        if c >= m:
            break
        if c + 1 < m and _before(key[c + 1], heap[c + 1], key[c], heap[c]):
            c += 1
        if not _before(key[c], heap[c], t, r):
            break
        heap[i] = heap[c]
        key[i] = key[c]
        i = c
    heap[i] = r
    key[i] = t


@nb.njit(cache=True, nogil=True)
def merge_runs(t_ns, pfn, op, starts, run_guest, run_offset, t_out, page_out, op_out, guest_out):
    """Merge the runs of ``t_ns``/``pfn``/``op`` into the outputs, by ``(t_ns, run)``.

    Parameters
    ----------
    t_ns, pfn, op : ndarray
        The runs' columns, one run after another; each run's times never decrease.
    starts : ndarray[int64]
        Run ``r`` is ``starts[r] .. starts[r + 1] - 1`` (runs in guest index
        order, a guest's runs in file order).
    run_guest : ndarray[uint16]
        The guest index of each run.
    run_offset : ndarray[int32]
        The first global page of each run's guest.
    t_out, page_out, op_out, guest_out : ndarray
        The merged events (``starts[-1]`` each): times (ns), global pages
        (``pfn + run_offset``), ops, guest indices.
    """
    k = starts.shape[0] - 1
    pos = starts[:-1].copy()
    heap = np.empty(k, np.int64)
    key = np.empty(k, np.int64)
    m = 0
    for r in range(k):
        if starts[r + 1] > starts[r]:
            heap[m] = r
            key[m] = t_ns[starts[r]]
            m += 1
    for i in range(m // 2 - 1, -1, -1):
        _sift_down(heap, key, m, i)
    o = 0
    while m > 0:
        r = heap[0]
        i = pos[r]
        e = starts[r + 1]
        g = run_guest[r]
        off = run_offset[r]
        if m == 1:
            stop = e
        else:
            # The second-least run is a child of the root: this run's events
            # before that one's head go out without touching the heap.
            c = 1
            if m > 2 and _before(key[2], heap[2], key[1], heap[1]):
                c = 2
            t2 = key[c]
            # At t2 itself this run still goes first if its index is lower.
            ties_first = r < heap[c]
            stop = i + 1  # the head is before t2's run (it is on top)
            while stop < e and (t_ns[stop] < t2 or (ties_first and t_ns[stop] == t2)):
                stop += 1
        for j in range(i, stop):
            t_out[o] = t_ns[j]
            page_out[o] = np.int32(pfn[j]) + off
            op_out[o] = op[j]
            guest_out[o] = g
            o += 1
        pos[r] = stop
        if stop == e:
            m -= 1
            heap[0] = heap[m]
            key[0] = key[m]
        else:
            key[0] = t_ns[stop]
        _sift_down(heap, key, m, 0)
