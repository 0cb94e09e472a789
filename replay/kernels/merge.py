"""The k-way merge of guests' time-ordered runs of events, in one pass.

A streamed scenario (:func:`cmmsim.replay.stream.merged_batches`) cuts every
guest's buffered events at a watermark; the runs cut, one or more per guest
(the guest's batches, in file order), are concatenated column by column and
merged here by ``(t_ns, run)``: by time, ties by guest index, then file order,
the order of :func:`cmmsim.replay.scenario.from_arrays`. The merge writes the
merged columns once, the global page (``pfn`` plus the run's guest offset) and
the guest index included: no stable argsort of the concatenation and no
gather of each column through it.

Runs are ordered by one int64 key per head, ``(t_ns - t_min) << bits | run``
(``bits`` enough for the run count), when the cut's time span leaves room
for it (always, for spans below 2^46 ns at 65536 runs): a loser tree then holds
the runs, and replacing the head of the run on top is one comparison per
level with no data-dependent branch (a ``min`` and a ``max``), where a heap's
sift takes two comparisons per level, each a branch the processor cannot
predict. Events come in short bursts of one guest (several events at one time
stamp, a guest's run of accesses), so the run on top emits every event before
the second-least run's head at once (the least key of the losers on the top
run's path) and the tree is replayed once per burst, not once per event.
Spans too wide for the key take a binary min-heap by ``(t_ns, run)``, the
same bursts, the same order.

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


#: The key's top bit is kept clear (a sign bit) and one more is left spare.
_KEY_BITS = 62


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
    bits = 0
    while (1 << bits) < k:
        bits += 1
    # The span of times the key can hold (ns): the first and last events of
    # the runs bound it, as each run's times never decrease.
    t_lo = np.int64(0)
    t_hi = np.int64(0)
    seen = False
    for r in range(k):
        if starts[r + 1] > starts[r]:
            a = t_ns[starts[r]]
            b = t_ns[starts[r + 1] - 1]
            if not seen or a < t_lo:
                t_lo = a
            if not seen or b > t_hi:
                t_hi = b
            seen = True
    room = np.int64(1) << (_KEY_BITS - bits)
    # t_hi - t_lo would overflow for spans past 2^63 ns: compare without it.
    fits = t_hi < t_lo + room if t_lo < 0 else t_hi - t_lo < room
    if fits:
        _merge_tree(t_ns, pfn, op, starts, run_guest, run_offset, t_out, page_out, op_out, guest_out, t_lo, bits)
    else:
        _merge_heap(t_ns, pfn, op, starts, run_guest, run_offset, t_out, page_out, op_out, guest_out)


@nb.njit(cache=True, nogil=True)
def _merge_tree(t_ns, pfn, op, starts, run_guest, run_offset, t_out, page_out, op_out, guest_out, t_lo, bits):
    """:func:`merge_runs` by a loser tree of keys ``(t_ns - t_lo) << bits | run``.

    Leaves are the ``2**bits`` runs (padded with exhausted ones); node ``i``
    holds the loser (the larger key) of the match between its children's
    winners (node 1 the final, whose winner is the least key). An exhausted run's key is the int64
    maximum, above every real key.
    """
    k = starts.shape[0] - 1
    size = np.int64(1) << bits
    run_mask = size - 1
    done = np.iinfo(np.int64).max
    win = np.empty(2 * size, np.int64)  # winners, built bottom-up, leaves at size + r
    for r in range(size):
        if r < k and starts[r + 1] > starts[r]:
            win[size + r] = ((t_ns[starts[r]] - t_lo) << bits) | r
        else:
            win[size + r] = done
    tree = np.empty(max(size, 1), np.int64)
    for i in range(size - 1, 0, -1):
        a = win[2 * i]
        b = win[2 * i + 1]
        win[i] = min(a, b)
        tree[i] = max(a, b)
    top = win[1]
    # Unsigned positions in the copy loop: numba checks every signed index for
    # wraparound, which there costs as much as the merge's own work.
    pos = starts[:-1].astype(np.uint64)
    one = np.uint64(1)
    o = np.uint64(0)
    while top != done:
        r = top & run_mask
        # The second-least key lost to this run on its way up: the least of
        # the losers on its path. This run's events below it go out at once.
        second = done
        i = (size + r) >> 1
        while i > 0:
            second = min(second, tree[i])
            i >>= 1
        j = pos[r]
        e = np.uint64(starts[r + 1])
        g = run_guest[r]
        off = run_offset[r]
        while True:
            t_out[o] = t_ns[j]
            page_out[o] = np.int32(pfn[j]) + off
            op_out[o] = op[j]
            guest_out[o] = g
            o += one
            j += one
            if j == e:
                key = done
                break
            key = ((t_ns[j] - t_lo) << bits) | r
            if key > second:
                break
        pos[r] = j
        # Replay this run's new key from its leaf up: at each node the larger
        # stays, the smaller goes on.
        i = (size + r) >> 1
        while i > 0:
            other = tree[i]
            tree[i] = max(key, other)
            key = min(key, other)
            i >>= 1
        top = key


@nb.njit(cache=True, nogil=True)
def _merge_heap(t_ns, pfn, op, starts, run_guest, run_offset, t_out, page_out, op_out, guest_out):
    """:func:`merge_runs` by a binary min-heap of runs keyed ``(t_ns, run)`` (any time span)."""
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
