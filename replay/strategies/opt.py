"""``opt``: the offline floor no online strategy beats (hint-aware Belady MIN).

What is counted. Between two accesses of a page (a *gap*), the host may
drop the page. Dropping it costs nothing when its content need not survive
the gap: the guest freed it in the gap (SET_UNUSED), marked it volatile
and then stable again (its content may be lost), or never wrote it since
it was last freed or lost its content that way (it is logically zero). Otherwise the next access
after a drop costs at least one read, whoever does it: the host (Sp), or
the guest after a discard (Vz, a volatile or clean potentially-volatile
page). Write-backs add to that for some strategies and never subtract.

So renaming a page at every free gap makes each such gap's next access a
first access, and the least number of costly refaults at a budget is
exactly Belady's MIN on the renamed access stream (evict the page whose next
use is farthest; a page with a free gap ahead has none, so it goes first:
pages in U first, volatile ones when their content can be dropped), minus
the first accesses. No strategy can do fewer I/Os than that at the same
budget: ``opt`` reports it as ``host_reads`` (and ``total_io``); its other
I/O counters are zero, its first accesses are ``zero_fills``. Writes are not
part of the floor: offline caching with write-back costs has no simple exact
algorithm, so this is a floor, not a schedule a host could run.

Layers: ``_gaps`` (two passes side by side, numba: each access's next use if
the gap to it keeps the content, and whether written content lies behind it;
the next use is costly when both hold),
``_min_one`` (MIN at one budget; the keys in bit trees, :mod:`cmmsim.replay.kernels.bittree`),
``_min_budgets`` (prange over budgets);
:func:`reference` is the plain-Python twin.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba as nb
import numpy as np

from cmmsim.replay.budgets import validated
from cmmsim.replay.kernels import bittree
from cmmsim.replay.kernels.guest_ranges import guest_ends_of, guest_of
from cmmsim.replay.kernels.prefetch import EVENTS_AHEAD, prefetch
from cmmsim.replay.kernels.resident import peak, resident_close, resident_delta
from cmmsim.replay.result import without_states
from cmmsim.replay.states import (
    C_ACCESSES,
    C_HOST_READS,
    C_ZERO_FILLS,
    N_COUNTERS,
    OP_SET_POT_VOLATILE,
    OP_SET_STABLE,
    OP_SET_UNUSED,
    OP_SET_VOLATILE,
    OP_WRITE,
)
from cmmsim.replay.strategies import Strategy
from cmmsim.replay.watch import reached, watched

DEAD = 1 << 62


@dataclass(frozen=True)
class Params:
    pass


# The gap pass is two passes over the trace that need nothing of each other, so
# they run side by side on two threads: which accesses leave written content
# behind (forward), and which gaps keep it (backward). Together 82 ms against
# 198 for the single forward pass they replaced, on the bench stream (in-process,
# medians of 7): that pass scattered each next use into the slot of the
# previous access, a random write per access, where these write in order.
_GAP_FREE, _GAP_STABLE_LATER = 1, 2
# Below this many events one thread does as well: on the 5.4 M-event linux-cbuild
# (its pages' flags fit in the caches) 15.0 ms on one thread, 16.1 on two; on
# idle-after-boot (0.4 M) 0.9 against 1.9 (starting the thread).
_GAPS_TWO_THREADS_MIN = 1 << 23


@nb.njit(cache=True, nogil=True, _nrt=False)
def _written_after(page, op, written, wt):
    """Forward: ``wt[i]`` = 1 when after access i the page holds content written
    since it was last freed or its content was lost (zero-initialised
    ``written``: one byte per page, bit 0 written, bit 1 set volatile since its
    last access); ``wt`` at hints is left as it was."""
    n = page.shape[0]
    for i in range(n):
        if i + EVENTS_AHEAD < n:
            prefetch(written, np.uint64(page[i + EVENTS_AHEAD]))
        o = op[i]
        p = np.uint64(page[i])  # unsigned: no negative-index fix-up (cmmsim.replay.kernels.lru_list)
        if o <= OP_WRITE:
            w = (written[p] & 1) | (o == OP_WRITE)
            written[p] = w
            wt[i] = w
        elif o == OP_SET_UNUSED:
            written[p] = 0
        elif o == OP_SET_VOLATILE or o == OP_SET_POT_VOLATILE:
            written[p] |= 2
        elif o == OP_SET_STABLE and (written[p] & 2):
            # Stable after volatile: the content may be lost (Vz -> Sz is logically
            # zero), so a later gap is costly only after a new write.
            written[p] = 2


@nb.njit(cache=True, nogil=True, _nrt=False)
def _next_kept(page, op, upcoming, gap, nxt):
    """Backward: ``nxt[i]`` = the page's next access when the gap to it keeps the
    content (no SET_UNUSED in it, no SET_VOLATILE/SET_POT_VOLATILE followed by
    SET_STABLE), else -1; -1 at hints. ``upcoming`` starts at -1, ``gap`` at 0."""
    n = page.shape[0]
    for i in range(n - 1, -1, -1):
        if i >= EVENTS_AHEAD:
            q = np.uint64(page[i - EVENTS_AHEAD])
            prefetch(gap, q)
            prefetch(upcoming, q)
        o = op[i]
        p = np.uint64(page[i])  # unsigned: no negative-index fix-up (cmmsim.replay.kernels.lru_list)
        if o <= OP_WRITE:
            nxt[i] = upcoming[p] if (gap[p] & _GAP_FREE) == 0 else -1
            upcoming[p] = i
            gap[p] = 0
            continue
        nxt[i] = -1
        if o == OP_SET_UNUSED:
            gap[p] |= _GAP_FREE
        elif o == OP_SET_STABLE:
            gap[p] |= _GAP_STABLE_LATER
        elif (o == OP_SET_VOLATILE or o == OP_SET_POT_VOLATILE) and (gap[p] & _GAP_STABLE_LATER):
            gap[p] |= _GAP_FREE


@nb.njit(cache=True, parallel=True, nogil=True, _nrt=False)
def _keep_costly(nxt, wt):
    """``nxt[i]`` = -1 where no written content lies behind access i (``wt[i]`` 0)."""
    for i in nb.prange(nxt.shape[0]):
        # Branch-free: wt is 0 or 1 at accesses (-1 or 0 here); at hints nxt is
        # already -1 and wt unset, and -1 | anything is -1.
        nxt[i] |= nxt.dtype.type(wt[i]) - 1


def _gaps(page, op, n_pages, index, threads):
    """Per event, the page's next access if the gap to it keeps content (else -1),
    and per access whether written content lies behind it (1) or not (0): access
    i's next use is costly exactly when both hold. Event indices of ``index``'s
    dtype; the two passes on two threads when ``threads`` >= 2 and the trace is long."""
    n = page.shape[0]
    nxt = np.empty(n, index.dtype)
    wt = np.empty(n, np.uint8)  # read at accesses only

    def forward():
        _written_after(page, op, np.zeros(n_pages, np.uint8), wt)

    def backward():
        _next_kept(page, op, np.full(n_pages, -1, index.dtype), np.zeros(n_pages, np.uint8), nxt)

    if threads >= 2 and n >= _GAPS_TWO_THREADS_MIN:
        with ThreadPoolExecutor(1, thread_name_prefix="cmmsim-gaps") as pool:
            done = pool.submit(forward)
            backward()
            done.result()
    else:
        forward()
        backward()
    _keep_costly(nxt, wt)
    return nxt


_NEVER, _DEAD = -1, -2


@nb.njit(cache=True)
def _min_one(
    page,
    op,
    guest,
    nxt,
    frames,
    ends,
    cnt,
    host,
    res_g,
    mark_g,
    cur,
    pos_words,
    pos_offsets,
    dead_words,
    dead_offsets,
    done,
    slot,
    mask,
):
    # cur: a page's key since its last access: its next costly use, or _DEAD
    # when it has none (_NEVER before its first access). The keys of resident
    # pages live in two bit trees (cmmsim.replay.kernels.bittree): next-use positions, and
    # dead pages by number. Whether a page is resident is its bit there (at its
    # next use, that position's bit), so an eviction writes no key.
    # The victim is the dead page with the highest number, else the page whose
    # next use is farthest: the order the reference twin's max() gives.
    # Progress: the event index in done[slot] every mask + 1 events (cmmsim.replay.watch).
    resident = 0
    res_sum = host[1]
    res_peak = host[0]
    n = page.shape[0]
    for i in range(n):
        if i + EVENTS_AHEAD < n:
            # The page and next use 32 events on are known: ask for its key and
            # for the bit-tree word its next use will set (1.24x on the bench stream).
            prefetch(cur, np.uint64(page[i + EVENTS_AHEAD]))
            f = nxt[i + EVENTS_AHEAD]
            if f >= 0:
                prefetch(pos_words, pos_offsets[0] + (f >> 6))
        if (i & mask) == 0 and reached(done, slot, i):
            break
        if op[i] > OP_WRITE:
            res_sum += resident
            continue
        p = np.uint64(page[i])  # unsigned: no negative-index fix-up (cmmsim.replay.kernels.lru_list)
        g = guest[i]
        cnt[g, C_ACCESSES] += 1
        key = cur[p]
        if key >= 0:
            # key == i: p was resident holding this next use unless evicted.
            hit = bittree.contains(pos_words, key)
            if hit:
                bittree.remove(pos_words, pos_offsets, key)
            else:
                cnt[g, C_HOST_READS] += 1
        else:
            hit = key == _DEAD and bittree.contains(dead_words, p)
            if hit:
                bittree.remove(dead_words, dead_offsets, p)
            else:
                cnt[g, C_ZERO_FILLS] += 1
        if not hit:
            if resident >= frames:
                v = bittree.maximum(dead_words, dead_offsets)
                if v >= 0:
                    bittree.remove(dead_words, dead_offsets, v)
                else:
                    j = bittree.maximum(pos_words, pos_offsets)
                    bittree.remove(pos_words, pos_offsets, j)
                    if ends.shape[0] > 1:
                        v = page[j]
                        # The next such victim is the page used farthest ahead
                        # now (a new next use rarely lands beyond it): ask for
                        # its page, needed for its guest.
                        j2 = bittree.maximum(pos_words, pos_offsets)
                        if j2 >= 0:
                            prefetch(page, j2)
                    else:
                        v = 0
                # The victim's guest from the guests' page ranges: a load from
                # page_guest stalled every eviction (1.19x on the bench stream).
                resident_delta(cnt, res_g, mark_g, guest_of(v, ends), i, -1)
                resident -= 1
            resident_delta(cnt, res_g, mark_g, g, i, 1)
            peak(cnt, res_g, g)
            resident += 1
            if resident > res_peak:
                res_peak = resident
        if nxt[i] >= 0:
            cur[p] = nxt[i]
            bittree.add(pos_words, pos_offsets, nxt[i])
        else:
            cur[p] = _DEAD
            bittree.add(dead_words, dead_offsets, p)
        res_sum += resident
    host[0] = res_peak
    host[1] = res_sum
    resident_close(cnt, res_g, mark_g, n)


# No reference counting (_nrt=False; the pass allocates nothing, run() does):
# numba would incref and decref the arrays at every helper call, per access.
@nb.njit(cache=True, parallel=True, nogil=True, _nrt=False)
def _min_budgets(
    page,
    op,
    guest,
    nxt,
    frames,
    ends,
    cnt,
    host,
    res_g,
    mark_g,
    cur,
    pos_words,
    pos_offsets,
    dead_words,
    dead_offsets,
    done,
    mask,
):
    for b in nb.prange(frames.shape[0]):
        _min_one(
            page,
            op,
            guest,
            nxt,
            frames[b],
            ends,
            cnt[b],
            host[b],
            res_g[b],
            mark_g[b],
            cur[b],
            pos_words[b],
            pos_offsets,
            dead_words[b],
            dead_offsets,
            done,
            b,
            mask,
        )


def _index_type(n_events: int, n_pages: int) -> type:
    # Event indices and keys in 32 bits when they fit: half the memory traffic.
    # (The kernel's keys go down to -3 - page: within int32 below this bound.)
    return np.int32 if max(n_events, n_pages) < 2**31 - 2 else np.int64


def run(scenario, budgets, params, sample_at=None, keep_final=False, on_events=None):
    """The floor at every budget (no state distribution: opt has no page states);
    ``on_events``: progress of the budgets' passes (:func:`cmmsim.replay.watch.watched`)."""
    b = validated(budgets, scenario.n_pages)
    nb_, ng, n_pages = len(b), scenario.n_guests, scenario.n_pages
    index = _index_type(len(scenario.page), n_pages)
    nxt = _gaps(scenario.page, scenario.op, n_pages, np.zeros(0, index), nb.get_num_threads())
    cnt = np.zeros((nb_, ng, N_COUNTERS), np.int64)
    host = np.zeros((nb_, 2), np.int64)
    pos_offsets = bittree.level_offsets(len(scenario.page))
    dead_offsets = bittree.level_offsets(n_pages)
    args = (
        scenario.page,
        scenario.op,
        scenario.guest,
        nxt,
        b.frames,
        guest_ends_of(scenario.page_guest, ng),
        cnt,
        host,
        np.zeros((nb_, ng), np.int64),
        np.zeros((nb_, ng), np.int64),
        np.full((nb_, n_pages), _NEVER, index),
        np.zeros((nb_, pos_offsets[-1]), np.uint64),
        pos_offsets,
        np.zeros((nb_, dead_offsets[-1]), np.uint64),
        dead_offsets,
    )
    n = scenario.n_events
    watched(lambda done, mask: _min_budgets(*args, done, mask), nb_, n, on_events)
    return without_states(b.pages, cnt, host, np.zeros((0, scenario.n_pages), np.uint8), ng)


def reference_next_uses(scenario) -> dict[int, int | None]:
    """Twin of :func:`_gaps`: each access's next costly use (an event index), None when
    it has none (its next access follows a free gap, or finds no written content)."""
    from cmmsim.tracer.schema import Op

    page = [int(x) for x in scenario.page]
    op = [int(x) for x in scenario.op]
    # A gap is costly when the page was written since it was last freed (or
    # lost its content), and the gap neither frees it nor lets its volatile
    # content be dropped.
    costly = [False] * len(page)
    written, free_gap, volatile, seen = set(), set(), set(), set()
    for i, (p, o) in enumerate(zip(page, op, strict=True)):
        if o in (Op.READ, Op.WRITE):
            costly[i] = p in seen and p in written and p not in free_gap
            seen.add(p)
            free_gap.discard(p)
            volatile.discard(p)
            if o == Op.WRITE:
                written.add(p)
        elif o == Op.SET_UNUSED:
            free_gap.add(p)
            written.discard(p)
        elif o in (Op.SET_VOLATILE, Op.SET_POT_VOLATILE):
            volatile.add(p)
        elif o == Op.SET_STABLE and p in volatile:
            free_gap.add(p)
            written.discard(p)  # the content may be lost: logically zero again
    next_use: dict[int, int | None] = {}
    upcoming: dict[int, int] = {}  # page -> its next access, scanning backwards
    for i in range(len(page) - 1, -1, -1):
        if op[i] in (Op.READ, Op.WRITE):
            j = upcoming.get(page[i])
            next_use[i] = j if j is not None and costly[j] else None
            upcoming[page[i]] = i
    return next_use


def reference(scenario, budget: int, params):
    """Plain-Python twin: classify gaps, then MIN by scanning for the farthest next use."""
    from cmmsim.replay.reference import ReferenceResult
    from cmmsim.replay.states import COUNTERS
    from cmmsim.tracer.schema import Op

    page = [int(x) for x in scenario.page]
    op = [int(x) for x in scenario.op]
    guest = [int(x) for x in scenario.guest]
    next_use = reference_next_uses(scenario)
    n_guests = scenario.n_guests
    counters = [dict.fromkeys(COUNTERS, 0) for _ in range(n_guests)]
    page_guest = dict(zip(page, guest, strict=True))
    resident: dict[int, float] = {}  # page -> its next use
    per_guest = [0] * n_guests
    frames = min(budget, scenario.n_pages)
    host_peak = host_sum = 0
    previous: dict[int, int] = {}  # page -> its last access
    for i, (p, o) in enumerate(zip(page, op, strict=True)):
        if o in (Op.READ, Op.WRITE):
            c = counters[guest[i]]
            c["accesses"] += 1
            if p not in resident:
                costly = p in previous and next_use[previous[p]] == i
                c["host_reads" if costly else "zero_fills"] += 1
                if len(resident) >= frames:
                    victim = max(resident, key=lambda q: resident[q])
                    del resident[victim]
                    per_guest[page_guest[victim]] -= 1
                per_guest[guest[i]] += 1
                c["peak_resident_pages"] = max(c["peak_resident_pages"], per_guest[guest[i]])
                host_peak = max(host_peak, len(resident) + 1)
            nu = next_use[i]
            resident[p] = nu if nu is not None else DEAD + p
            previous[p] = i
        host_sum += len(resident)
        for g in range(n_guests):
            counters[g]["sum_resident_pages"] += per_guest[g]
    arr = np.array([[c[k] for k in COUNTERS] for c in counters], np.int64)
    return ReferenceResult(arr, host_peak, host_sum, np.zeros(0, np.uint8))


STRATEGY = Strategy(
    name="opt",
    params=Params,
    runner=run,
    reference=reference,
    summary="offline floor: hint-aware Belady MIN; its refaults bound every strategy's I/O",
    offline=True,
)
