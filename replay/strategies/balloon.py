"""``balloon``: the host resizes its guests with balloons set by working-set estimates.

Every ``period_ns`` (counted from the first event) the host estimates each
guest's working set and sets **targets**: the host budget less a ``slack``
fraction, shared in proportion to the estimates, each target clamped to
``[min_fraction x guest memory (>= 1 page), guest memory]``: guests whose
share is above their memory are pinned there first, then (if none is)
guests below their minimum are pinned at it, and the rest share what is
left, again in proportion, until no share is out of bounds. A
guest's balloon (``guest memory - target`` pages) moves toward its target
at most ``rate_pages_per_s`` pages per second (integer arithmetic from the
period's start, applied at event times); at the first event the balloon is
set to its first target at once (the host sizes a booting guest), and that
counts as inflation too.

Guest side (its own view of each page, as in ``static``): the guest keeps
its in-use pages within ``guest memory - balloon``. Inflating takes free
pages first (no cost); past those the guest reclaims its own pages like
Linux: the least recently used clean page cache page is dropped (the next
access is a guest read), else the least recently used stable page is
swapped out (one guest write now, one guest read on the next access).

Host side: exact LRU over host frames, as ``host-lru`` (hints ignored), or
as ``cmm`` with every hint honoured for ``balloon+cmm`` (then the guest's
own reclaim sends *set unused* for the frame it frees and *set stable*
when it takes a frame back). A balloon frame and a guest frame are
disjoint, so ``host-resident frames of a guest + its balloon <= guest
memory``: whenever that would break, the guest frame the balloon really
took is one of the guest's free frames the host still backs, and the host
drops it without I/O (``discards``), oldest-freed first. **Dual paging**:
when the guest swaps out a page the host has paged out, the host must read
it back first (``dual_paging``, also in ``host_reads``); it is then
resident (LRU most recent) until the host or the balloon takes it.

Estimators (``estimator=``):

``sampling`` (VMware ESX)
    at each period start pick ``sample_pages`` random pages of the guest
    (seeded, with replacement); at its end ``current = touched x guest
    pages / sample_pages``; two moving averages (weights ``fast_alpha``,
    ``slow_alpha``, both started at the first measurement) and the estimate
    is ``max(current, fast, slow)``: it rises at once and falls slowly.
``fault-rate``
    starts at guest memory; after a period with more than
    ``fault_threshold`` guest refaults (``guest_reads``) it grows by
    ``grow`` x guest memory, else it shrinks by ``shrink`` x guest memory.
``oracle``
    the number of distinct pages the guest accesses in the next period: a
    bound on what estimation can do, not a real policy.

Result rows carry ``balloon_inflated_pages`` and ``balloon_deflated_pages``;
the per-period series (:attr:`EngineResult.series`, columns
:data:`SERIES`) holds each guest's estimate, target, balloon, in-use and
host-resident pages at the end of every period.

Layers: ``_balloon_one`` (numba, one budget), ``_balloon_budgets``
(prange), :func:`run_balloon`; the twin is :mod:`._balloon_twin`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numba as nb
import numpy as np

from replay.engine import (
    EngineResult,
    _drop_victim,
    _hint,
    _page_in,
    _peak,
    _resident_close,
    _resident_delta,
    _with,
)
from replay.lru_ahead import _list_evict_lru, _list_push_mru, _list_touch, _list_unlink
from replay.states import (
    C_ACCESSES,
    C_CONTENT_LOST,
    C_DEFLATED,
    C_DISCARD_FAULTS,
    C_DISCARDS,
    C_DUAL,
    C_GUEST_READS,
    C_GUEST_WRITES,
    C_HINTS,
    C_INFLATED,
    C_REPAIRS,
    CHANGED,
    COPY,
    DIRTY,
    G_S,
    G_U,
    GUEST_MASK,
    H_P,
    H_R,
    H_Z,
    HONOUR_NONE,
    HOST_MASK,
    HOST_SHIFT,
    INITIAL_NO_HINTS,
    N_COUNTERS,
    OP_SET_STABLE,
    OP_SET_UNUSED,
    OP_WRITE,
)
from replay.strategies import Strategy
from replay.strategies.static import (
    FILE_REFAULT,
    JOINED,
    LEFT,
    LOWERED,
    REFAULTED,
    REPAIRED,
    _cls,
    _guest_heaps,
    _guest_step,
    _push,
    _reclaimed,
    _take_victim,
)
from tracer.errors import ParamError
from tracer.params import need

#: Columns of the per-period series, per guest.
SERIES = ("estimate_pages", "target_pages", "balloon_pages", "in_use_pages", "resident_pages")
ESTIMATORS = {"sampling": 0, "fault-rate": 1, "oracle": 2}
#: In the guest byte: the page is guest-free and the host backs it (on the free list).
ON_FREE_LIST = 0x40
_SHIFT = 56
MAX_PERIODS = 100_000


@dataclass(frozen=True)
class Params:
    estimator: Literal["sampling", "fault-rate", "oracle"] = field(
        default="sampling", metadata={"help": "working-set estimator"})
    period_ns: int = field(default=1_000_000_000, metadata={"help": "target period, ns"})
    slack: float = field(default=0.05, metadata={"help": "fraction of the budget left unassigned [0,1)"})
    min_fraction: float = field(default=0.05, metadata={"help": "smallest target, fraction of guest memory"})
    rate_pages_per_s: int = field(default=32768, metadata={"help": "most balloon change per guest, pages/s"})
    sample_pages: int = field(default=100, metadata={"help": "sampling: pages sampled per period"})
    fast_alpha: float = field(default=0.5, metadata={"help": "sampling: weight of the fast average (0,1]"})
    slow_alpha: float = field(default=0.1, metadata={"help": "sampling: weight of the slow average (0,1]"})
    fault_threshold: int = field(default=64, metadata={"help": "fault-rate: refaults per period that grow"})
    grow: float = field(default=0.1, metadata={"help": "fault-rate: growth, fraction of guest memory"})
    shrink: float = field(default=0.02, metadata={"help": "fault-rate: shrink, fraction of guest memory"})
    seed: int = field(default=1, metadata={"help": "sampling: random seed"})

    def __post_init__(self):
        need(self.period_ns > 0, f"period_ns must be positive, got {self.period_ns}")
        need(0 <= self.slack < 1, f"slack must be in [0,1), got {self.slack}")
        need(0 <= self.min_fraction <= 1, f"min_fraction must be in [0,1], got {self.min_fraction}")
        need(self.rate_pages_per_s >= 1, f"rate_pages_per_s must be >= 1, got {self.rate_pages_per_s}")
        need(self.rate_pages_per_s * self.period_ns < 1 << 62,
             "rate_pages_per_s x period_ns too large for 64-bit arithmetic")
        need(self.sample_pages >= 1, f"sample_pages must be >= 1, got {self.sample_pages}")
        need(0 < self.fast_alpha <= 1, f"fast_alpha must be in (0,1], got {self.fast_alpha}")
        need(0 < self.slow_alpha <= 1, f"slow_alpha must be in (0,1], got {self.slow_alpha}")
        need(self.fault_threshold >= 0, f"fault_threshold must be >= 0, got {self.fault_threshold}")
        need(0 < self.grow <= 1, f"grow must be in (0,1], got {self.grow}")
        need(0 < self.shrink <= 1, f"shrink must be in (0,1], got {self.shrink}")
        need(self.seed >= 0, f"seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class Setup:
    """Everything derived from a scenario and params that both kernel and twin use."""

    estimator: int
    n_periods: int
    min_pages: np.ndarray  # per guest
    grow_pages: np.ndarray
    shrink_pages: np.ndarray
    oracle: np.ndarray  # (n_periods, n_guests) distinct pages accessed per period


def setup(scenario, params: Params) -> Setup:
    """Per-guest bounds and steps in pages, the period count and the oracle's counts."""
    gp = scenario.guest_pages.astype(np.int64)
    n_periods = 0
    if scenario.n_events:
        n_periods = int(scenario.t_ns[-1] - scenario.t_ns[0]) // params.period_ns + 1
        if n_periods > MAX_PERIODS:
            raise ParamError(f"period_ns={params.period_ns} gives {n_periods} periods; at most {MAX_PERIODS}")
    oracle = np.zeros((n_periods, scenario.n_guests), np.int64)
    if params.estimator == "oracle" and n_periods:
        acc = scenario.op <= OP_WRITE
        per = (scenario.t_ns[acc] - scenario.t_ns[0]) // params.period_ns
        pairs = np.unique(per * scenario.n_pages + scenario.page[acc].astype(np.int64))
        k = pairs // scenario.n_pages
        g = scenario.page_guest[pairs % scenario.n_pages].astype(np.int64)
        np.add.at(oracle, (k, g), 1)
    ceil = np.vectorize(lambda x: int(math.ceil(x)), otypes=[np.int64])
    return Setup(ESTIMATORS[params.estimator], n_periods,
                 np.maximum(1, ceil(params.min_fraction * gp)), np.maximum(1, ceil(params.grow * gp)),
                 np.maximum(1, ceil(params.shrink * gp)), oracle)


def available(budget: int, slack: float) -> int:
    """Frames the targets share: the budget less the slack."""
    return int(budget * (1.0 - slack))


# -- numba helpers ----------------------------------------------------------------------------------
@nb.njit(cache=True)
def _targets(est, gp, mins, avail, out):
    """Share ``avail`` in proportion to ``est`` within [mins, gp] (see the module docstring)."""
    n = est.shape[0]
    fixed = np.zeros(n, np.bool_)
    share = np.zeros(n, np.int64)
    rem = avail
    while True:
        wsum = 0
        free = 0
        for g in range(n):
            if not fixed[g]:
                wsum += est[g]
                free += 1
        if free == 0:
            return
        over = False
        under = False
        for g in range(n):
            if not fixed[g]:
                share[g] = rem * est[g] // wsum if wsum > 0 else rem // free
                over |= share[g] > gp[g]
                under |= share[g] < mins[g]
        if not over and not under:
            for g in range(n):
                if not fixed[g]:
                    out[g] = share[g]
            return
        # Pin guests above their memory first: what they leave goes to the others.
        for g in range(n):
            if fixed[g]:
                continue
            if over and share[g] > gp[g]:
                out[g] = gp[g]
            elif not over and share[g] < mins[g]:
                out[g] = mins[g]
            else:
                continue
            fixed[g] = True
            rem -= out[g]


@nb.njit(cache=True, inline="always")
def _splitmix(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x, z ^ (z >> np.uint64(31))


@nb.njit(cache=True)
def _draw_samples(rng, samp, off, gp):
    for g in range(samp.shape[0]):
        for j in range(samp.shape[1]):
            rng, z = _splitmix(rng)
            samp[g, j] = off[g] + np.int64(z % np.uint64(gp[g]))
    return rng


@nb.njit(cache=True)
def _host_in(p, g, i, frames, state, gst, links, flinks, cnt, res_g, mark, page_guest, tot):
    """Give page p a host frame if it has none (LRU victim first); else make it most recent.

    ``state``/``gst``: host and guest byte per page; ``links``: host LRU
    (sentinel ``n_pages``); ``flinks``: per-guest free lists (sentinel
    ``n_pages + g``); ``tot``: resident frames, host peak.
    """
    head = page_guest.shape[0]
    st = state[p]
    if ((st & HOST_MASK) >> HOST_SHIFT) == H_R:
        _list_touch(links, head, p)
        return
    if tot[0] >= frames:
        v = _list_evict_lru(links, head)
        if gst[v] & ON_FREE_LIST:
            gst[v] &= ~ON_FREE_LIST
            _list_unlink(flinks, v)
        _drop_victim(v, page_guest[v], state, cnt, res_g, mark, i)
        tot[0] -= 1
    state[p] = _page_in(st, g, cnt)
    _resident_delta(cnt, res_g, mark, g, i, 1)
    _peak(cnt, res_g, g)
    tot[0] += 1
    if tot[0] > tot[1]:
        tot[1] = tot[0]
    _list_push_mru(links, head, p)


@nb.njit(cache=True)
def _free_frame(p, g, state, gst, flinks, n_pages):
    """p just became guest-free: if the host backs it, it joins the guest's free list."""
    if ((state[p] & HOST_MASK) >> HOST_SHIFT) == H_R and not (gst[p] & ON_FREE_LIST):
        gst[p] |= ON_FREE_LIST
        _list_push_mru(flinks, n_pages + g, p)


@nb.njit(cache=True)
def _fit(g, i, honour, gp, bal, in_use, kk, pp, hsize, avoid, frames, state, gst, stamp, links,
         flinks, cnt, res_g, mark, page_guest, tot):
    """Restore guest g's two bounds: in use <= memory - balloon, then resident + balloon <= memory."""
    n_pages = page_guest.shape[0]
    while in_use[g] > gp[g] - bal[g]:
        v, hsize = _take_victim(kk, pp, hsize, avoid, gst, stamp)
        new_v, wrote = _reclaimed(gst[v])
        gst[v] = new_v
        if wrote:
            if ((state[v] & HOST_MASK) >> HOST_SHIFT) == H_P:
                cnt[g, C_DUAL] += 1
            # The guest reads the page to write it out: a host access.
            _host_in(v, g, i, frames, state, gst, links, flinks, cnt, res_g, mark, page_guest, tot)
            cnt[g, C_GUEST_WRITES] += 1
        else:
            cnt[g, C_DISCARDS] += 1
        in_use[g] -= 1
        if (honour >> OP_SET_UNUSED) & 1:
            cnt[g, C_HINTS] += 1
            state[v] = _hint(state[v], OP_SET_UNUSED)[0]
        _free_frame(v, g, state, gst, flinks, n_pages)
    fhead = n_pages + g
    while res_g[g] + bal[g] > gp[g]:
        q = flinks[2 * fhead + 1]  # the oldest freed
        _list_unlink(flinks, q)
        gst[q] &= ~ON_FREE_LIST
        _list_unlink(links, q)
        gl = G_U if honour else G_S
        state[q] = _with(state[q] & ~(CHANGED | COPY | DIRTY), gl, H_Z)
        cnt[g, C_DISCARDS] += 1
        _resident_delta(cnt, res_g, mark, g, i, -1)
        tot[0] -= 1
    return hsize


@nb.njit(cache=True)
def _move(g, i, t, p_start, rate, honour, gp, tgt, bal, moved, in_use, kk, pp, hsize, frames,
          state, gst, stamp, links, flinks, cnt, res_g, mark, page_guest, tot):
    """Move guest g's balloon toward its target as far as the rate allows by time t."""
    want = (gp[g] - tgt[g]) - bal[g]
    if want == 0:  # at its target (the usual case): no division on every event
        return hsize
    allowed = rate * (t - p_start) // 1_000_000_000 - moved[g]
    step = min(abs(want), allowed)
    if step <= 0:
        return hsize
    moved[g] += step
    if want < 0:
        bal[g] -= step
        cnt[g, C_DEFLATED] += step
        return hsize
    bal[g] += step
    cnt[g, C_INFLATED] += step
    return _fit(g, i, honour, gp, bal, in_use, kk, pp, hsize, -1, frames, state, gst, stamp,
                links, flinks, cnt, res_g, mark, page_guest, tot)


@nb.njit(cache=True)
def _balloon_one(t_ns, page, op, guest, page_guest, gp, off, budget, avail, honour, initial,
                 estimator, period, n_periods, k_samples, seed, fast_a, slow_a, threshold,
                 grow_p, shrink_p, mins, rate, oracle):
    n_pages = page_guest.shape[0]
    n_guests = gp.shape[0]
    n = page.shape[0]
    frames = min(budget, n_pages)
    state = np.full(n_pages, initial, np.uint8)
    gst = np.full(n_pages, G_U, np.uint8)
    stamp = np.full(n_pages, -1, np.int64)
    cnt = np.zeros((n_guests, N_COUNTERS), np.int64)
    res_g = np.zeros(n_guests, np.int64)
    mark = np.zeros(n_guests, np.int64)
    tot = np.zeros(2, np.int64)
    host_sum = np.int64(0)
    series = np.zeros((n_periods, n_guests, 5), np.int64)
    links = np.empty(2 * (n_pages + 1), np.int32)
    links[2 * n_pages] = n_pages
    links[2 * n_pages + 1] = n_pages
    flinks = np.empty(2 * (n_pages + n_guests), np.int32)
    for g in range(n_guests):
        flinks[2 * (n_pages + g)] = n_pages + g
        flinks[2 * (n_pages + g) + 1] = n_pages + g
    cap, hoff, hkeys, hpages, hsize = _guest_heaps(gp)
    in_use = np.zeros(n_guests, np.int64)
    bal = np.zeros(n_guests, np.int64)
    est = np.zeros(n_guests, np.int64)
    tgt = np.zeros(n_guests, np.int64)
    moved = np.zeros(n_guests, np.int64)
    reads_mark = np.zeros(n_guests, np.int64)
    fast = np.zeros(n_guests, np.float64)
    slow = np.zeros(n_guests, np.float64)
    samp = np.zeros((n_guests, k_samples if estimator == 0 else 0), np.int64)
    rng = np.uint64(seed)
    if n == 0:
        return cnt, tot, host_sum, state, series
    t0 = t_ns[0]
    k = 0
    p_start = t0
    i_start = 0
    for g in range(n_guests):
        est[g] = oracle[0, g] if estimator == 2 else gp[g]
    _targets(est, gp, mins, avail, tgt)
    for g in range(n_guests):
        bal[g] = gp[g] - tgt[g]
        cnt[g, C_INFLATED] += bal[g]
    if estimator == 0:
        rng = _draw_samples(rng, samp, off, gp)
    for i in range(n + 1):
        t = t_ns[i] if i < n else t_ns[n - 1]
        last = i == n
        # Period ends up to t (the last period closes after the last event).
        while last or t >= p_start + period:
            t_end = t if last else p_start + period
            for g in range(n_guests):
                # Catch the balloon up with this period's target first.
                o_ = hoff[g]
                hsize[g] = _move(g, i, t_end, p_start, rate, honour, gp, tgt, bal, moved, in_use,
                                 hkeys[o_:o_ + cap[g]], hpages[o_:o_ + cap[g]], hsize[g], frames,
                                 state, gst, stamp, links, flinks, cnt, res_g, mark, page_guest,
                                 tot)
                series[k, g, 0] = est[g]
                series[k, g, 1] = tgt[g]
                series[k, g, 2] = bal[g]
                series[k, g, 3] = in_use[g]
                series[k, g, 4] = res_g[g]
            if last:
                break
            for g in range(n_guests):
                if estimator == 0:
                    touched = 0
                    for j in range(k_samples):
                        if stamp[samp[g, j]] >= i_start:
                            touched += 1
                    cur = touched * gp[g] // k_samples
                    if k == 0:
                        fast[g] = cur
                        slow[g] = cur
                    else:
                        fast[g] = fast[g] + fast_a * (cur - fast[g])
                        slow[g] = slow[g] + slow_a * (cur - slow[g])
                    e = cur
                    f = np.int64(fast[g] + 0.5)
                    s_ = np.int64(slow[g] + 0.5)
                    if f > e:
                        e = f
                    if s_ > e:
                        e = s_
                    est[g] = e
                elif estimator == 1:
                    refaults = cnt[g, C_GUEST_READS] - reads_mark[g]
                    reads_mark[g] = cnt[g, C_GUEST_READS]
                    if refaults > threshold:
                        est[g] = min(gp[g], est[g] + grow_p[g])
                    else:
                        est[g] = max(mins[g], est[g] - shrink_p[g])
                else:
                    est[g] = oracle[k + 1, g]
                moved[g] = 0
            _targets(est, gp, mins, avail, tgt)
            k += 1
            p_start += period
            i_start = i
            if estimator == 0:
                rng = _draw_samples(rng, samp, off, gp)
        if last:
            break
        # Balloon movement inside the period, up to t.
        for g in range(n_guests):
            o_ = hoff[g]
            hsize[g] = _move(g, i, t, p_start, rate, honour, gp, tgt, bal, moved, in_use,
                             hkeys[o_:o_ + cap[g]], hpages[o_:o_ + cap[g]], hsize[g], frames,
                             state, gst, stamp, links, flinks, cnt, res_g, mark, page_guest, tot)
        p = page[i]
        g = guest[i]
        o = op[i]
        old = gst[p]
        new, flags = _guest_step(old, o)
        new |= old & ON_FREE_LIST  # list membership is this kernel's, not the guest's
        o_ = hoff[g]
        kk = hkeys[o_:o_ + cap[g]]
        pp = hpages[o_:o_ + cap[g]]
        if (flags & JOINED) and (new & ON_FREE_LIST):
            new &= ~ON_FREE_LIST
            _list_unlink(flinks, p)
        gst[p] = new
        if o <= OP_WRITE:
            cnt[g, C_ACCESSES] += 1
            cnt[g, C_REPAIRS] += (flags & REPAIRED) != 0
            if flags & REFAULTED:
                cnt[g, C_GUEST_READS] += 1
                cnt[g, C_DISCARD_FAULTS] += (flags & FILE_REFAULT) != 0
                if (honour >> OP_SET_STABLE) & 1:
                    # The guest allocates a frame for the page it brings back.
                    cnt[g, C_HINTS] += 1
                    state[p] = _hint(state[p], OP_SET_STABLE)[0]
            st = state[p]
            if (st & GUEST_MASK) == G_U:
                # The host's view of an access to a page it holds unused (engine rule).
                state[p] = _with(st, G_S, (st & HOST_MASK) >> HOST_SHIFT)
            _host_in(p, g, i, frames, state, gst, links, flinks, cnt, res_g, mark, page_guest, tot)
            if o == OP_WRITE:
                state[p] |= DIRTY | CHANGED
            stamp[p] = i
        elif (honour >> o) & 1:
            cnt[g, C_HINTS] += 1
            hs, lost = _hint(state[p], o)
            cnt[g, C_CONTENT_LOST] += lost
            state[p] = hs
        if flags & LEFT:
            in_use[g] -= 1
            _free_frame(p, g, state, gst, flinks, n_pages)
        elif flags & LOWERED:
            hsize[g] = _push(kk, pp, hsize[g], (np.int64(_cls(gst[p])) << _SHIFT) | stamp[p], p,
                             gst, stamp)
        if flags & JOINED:
            stamp[p] = i
            in_use[g] += 1
            hsize[g] = _push(kk, pp, hsize[g], (np.int64(_cls(gst[p])) << _SHIFT) | stamp[p], p,
                             gst, stamp)
        if (flags & JOINED) or o <= OP_WRITE:
            # A page joined, or the host backs one more frame of this guest.
            hsize[g] = _fit(g, i, honour, gp, bal, in_use, kk, pp, hsize[g], p, frames, state,
                            gst, stamp, links, flinks, cnt, res_g, mark, page_guest, tot)
        host_sum += tot[0]
    _resident_close(cnt, res_g, mark, n)
    return cnt, tot, host_sum, state, series


@nb.njit(cache=True, parallel=True)
def _balloon_budgets(t_ns, page, op, guest, page_guest, gp, off, budgets, avails, honour, initial,
                     estimator, period, n_periods, k_samples, seed, fast_a, slow_a, threshold,
                     grow_p, shrink_p, mins, rate, oracle, keep_final):
    nb_ = budgets.shape[0]
    n_guests = gp.shape[0]
    cnt = np.zeros((nb_, n_guests, N_COUNTERS), np.int64)
    host = np.zeros((nb_, 2), np.int64)
    final = np.zeros((nb_ if keep_final else 0, page_guest.shape[0]), np.uint8)
    series = np.zeros((nb_, n_periods, n_guests, 5), np.int64)
    for b in nb.prange(nb_):
        c, tot, hsum, st, ser = _balloon_one(
            t_ns, page, op, guest, page_guest, gp, off, budgets[b], avails[b], honour, initial,
            estimator, period, n_periods, k_samples, seed, fast_a, slow_a, threshold, grow_p,
            shrink_p, mins, rate, oracle)
        cnt[b] = c
        host[b, 0] = tot[1]
        host[b, 1] = hsum
        series[b] = ser
        if keep_final:
            final[b] = st
    return cnt, host, final, series


def run_balloon(scenario, budgets, params: Params, honour: int, initial: int,
                keep_final: bool = False) -> EngineResult:
    """Replay with balloons at every budget; ``series`` holds the per-period targets."""
    b = np.asarray(budgets, dtype=np.int64)
    s = setup(scenario, params)
    avails = np.array([available(int(x), params.slack) for x in b], np.int64)
    cnt, host, final, series = _balloon_budgets(
        scenario.t_ns, scenario.page, scenario.op, scenario.guest, scenario.page_guest,
        scenario.guest_pages.astype(np.int64), scenario.page_offset, b, avails, np.int64(honour),
        np.uint8(initial), np.int64(s.estimator), np.int64(params.period_ns),
        np.int64(s.n_periods), np.int64(params.sample_pages), np.uint64(params.seed),
        float(params.fast_alpha), float(params.slow_alpha), np.int64(params.fault_threshold),
        s.grow_pages, s.shrink_pages, s.min_pages, np.int64(params.rate_pages_per_s), s.oracle,
        keep_final)
    t_end = (scenario.t_ns[0] + params.period_ns * (1 + np.arange(s.n_periods, dtype=np.int64))
             if s.n_periods else np.zeros(0, np.int64))
    if s.n_periods:
        t_end[-1] = scenario.t_ns[-1]
    return EngineResult(b, cnt, host[:, 0].copy(), host[:, 1].copy(), final,
                        np.zeros((len(b), 0, scenario.n_guests, 8), np.int64),
                        series=series, series_t_ns=t_end)


def run(scenario, budgets, params, sample_at=None, keep_final=False):
    """``balloon``: hints ignored by the host."""
    return run_balloon(scenario, budgets, params, HONOUR_NONE, INITIAL_NO_HINTS, keep_final)


def reference(scenario, budget: int, params):
    from replay.strategies._balloon_twin import reference_balloon

    return reference_balloon(scenario, budget, params, honour_all=False)


STRATEGY = Strategy(
    name="balloon",
    params=Params,
    run=run,
    reference=reference,
    summary="balloons sized every period from working-set estimates; host LRU underneath",
)
