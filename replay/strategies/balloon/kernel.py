"""The balloons' numba kernel: ``_balloon_one`` (one budget), ``_balloon_budgets`` (prange),
:func:`run_balloon`.

One budget's arrays travel in three bundles: :class:`.host.Host` (the host's
state bytes, its victim order, the guests' lists of free frames it backs, the
counters; :mod:`.host`),
:class:`Guests` (each guest's own view of its pages, its balloon and its reclaim
heap) and :class:`Estimates` (the working-set estimators' state).
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from cmmsim.replay.budgets import validated
from cmmsim.replay.kernels import tier as host_tier
from cmmsim.replay.kernels.guest_reclaim import (
    FILE_REFAULT,
    JOINED,
    LEFT,
    LOWERED,
    REFAULTED,
    REPAIRED,
    file_page,
    guest_heaps,
    guest_step,
    reclaimed,
    take_victim,
)
from cmmsim.replay.kernels.lru_list import least_recent, unlink
from cmmsim.replay.kernels.resident import resident_close
from cmmsim.replay.kernels.state_machine import hint, host_state, is_resident, repaired
from cmmsim.replay.result import without_states
from cmmsim.replay.states import (
    C_ACCESSES,
    C_CONTENT_LOST,
    C_DEFLATED,
    C_DISCARD_FAULTS,
    C_DISCARDS,
    C_DISCARDS_GUEST,
    C_DUAL,
    C_GUEST_READS,
    C_GUEST_WRITES,
    C_HINTS,
    C_INFLATED,
    C_INFLATED_INITIAL,
    C_REPAIRS,
    CHANGED,
    DIRTY,
    G_U,
    H_P,
    N_COUNTERS,
    ON_FREE_LIST,
    OP_SET_STABLE,
    OP_SET_UNUSED,
    OP_WRITE,
)
from cmmsim.replay.strategies.balloon.host import (
    ORDERS,
    drop_free,
    free_frame,
    host_in,
    implicit_hint,
    new_host,
    restate,
)
from cmmsim.replay.strategies.balloon.params import (
    EST_FAULT_RATE,
    EST_ORACLE,
    EST_SAMPLING,
    NS_PER_S,
    S_BALLOON,
    S_ESTIMATE,
    S_IN_USE,
    S_RESIDENT,
    S_TARGET,
    SERIES,
    Params,
    available,
    period_ends,
    setup,
)
from cmmsim.replay.watch import reached, watched


class Guests(NamedTuple):
    """The guests' side: the guest byte per page (:mod:`cmmsim.replay.states`), its last
    use, and per guest its memory, balloon, target, balloon moved this period,
    in-use pages and reclaim heap (:func:`cmmsim.replay.kernels.guest_reclaim.guest_heaps`)."""

    gst: np.ndarray
    stamp: np.ndarray
    gp: np.ndarray
    bal: np.ndarray
    tgt: np.ndarray
    moved: np.ndarray
    in_use: np.ndarray
    hcap: np.ndarray
    hoff: np.ndarray
    hkeys: np.ndarray
    hpages: np.ndarray
    hsize: np.ndarray


class Estimates(NamedTuple):
    """The estimators' inputs (kind ``EST_*``, parameters, per-guest bounds in pages,
    the oracle's counts) and state (estimates, averages, refault marks, sampled pages,
    the target sharing's scratch, and under sampling each page's last access)."""

    kind: np.int64
    k_samples: np.int64
    fast_a: np.float64
    slow_a: np.float64
    threshold: np.int64
    grow_p: np.ndarray
    shrink_p: np.ndarray
    mins: np.ndarray
    oracle: np.ndarray
    off: np.ndarray
    est: np.ndarray
    fast: np.ndarray
    slow: np.ndarray
    reads_mark: np.ndarray
    samp: np.ndarray
    fixed: np.ndarray
    share: np.ndarray
    seen: np.ndarray


@nb.njit(cache=True)
def _targets(est, gp, mins, avail, out, fixed, share):
    """Share ``avail`` in proportion to ``est`` within [mins, gp] (see the package docstring).
    ``fixed`` and ``share``: scratch, one per guest."""
    n = est.shape[0]
    fixed[:] = False
    share[:] = 0
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


@nb.njit(cache=True, inline="always")
def _heap_of(gs, g):
    """Guest g's reclaim heap: (keys, pages)."""
    o = gs.hoff[g]
    return gs.hkeys[o : o + gs.hcap[g]], gs.hpages[o : o + gs.hcap[g]]


@nb.njit(cache=True, inline="always")
def _fit(g, i, avoid, host, gs, extra=0):
    """Restore guest g's two bounds (if broken: the usual case is not), with room for
    ``extra`` more host frames (1 before the host backs page ``avoid``)."""
    if gs.in_use[g] > gs.gp[g] - gs.bal[g] or host.res_g[g] + extra + gs.bal[g] > gs.gp[g]:
        # One signature whoever calls (a guest index of the trace's width, a literal -1).
        _restore(np.int64(g), i, np.int64(avoid), host, gs, np.int64(extra))


@nb.njit(cache=True)
def _restore(g, i, avoid, host, gs, extra):
    """Restore guest g's two bounds: in use <= memory - balloon, then resident + ``extra``
    + balloon <= memory."""
    kk, pp = _heap_of(gs, g)
    while gs.in_use[g] > gs.gp[g] - gs.bal[g]:
        v, gs.hsize[g] = take_victim(kk, pp, gs.hsize[g], avoid, gs.gst, gs.stamp)
        gs.gst[v], wrote = reclaimed(gs.gst[v])
        if wrote:
            if not is_resident(host.state[v]):
                if host_state(host.state[v]) == H_P:
                    host.cnt[g, C_DUAL] += 1
                # The host backs v again: a free frame it backs goes first, as at an access.
                _drop_free_frames(g, i, 1, host, gs)
            # The guest reads the page to write it out: a host access.
            host_in(v, g, i, host, gs.gst)
            host.cnt[g, C_GUEST_WRITES] += 1
        else:
            host.cnt[g, C_DISCARDS] += 1
            host.cnt[g, C_DISCARDS_GUEST] += 1
        gs.in_use[g] -= 1
        implicit_hint(v, g, OP_SET_UNUSED, host)
        free_frame(v, g, host, gs.gst)
    _drop_free_frames(g, i, extra, host, gs)


@nb.njit(cache=True, inline="always")
def _drop_free_frames(g, i, extra, host, gs):
    """Drop guest g's free frames the host backs, oldest freed first, until resident +
    ``extra`` + balloon <= memory or none is left."""
    fhead = host.page_guest.shape[0] + g
    while host.res_g[g] + extra + gs.bal[g] > gs.gp[g]:
        q = least_recent(host.flinks, fhead)
        if q == fhead:
            return
        drop_free(q, g, i, host, gs.gst)


@nb.njit(cache=True, inline="always")
def _move(g, i, t, p_start, rate, host, gs):
    """Move guest g's balloon toward its target as far as the rate allows by time t."""
    # At its target (the usual case): no call, no division on every event.
    if gs.gp[g] - gs.tgt[g] != gs.bal[g]:
        _move_toward(g, i, t, p_start, rate, host, gs)


@nb.njit(cache=True)
def _move_toward(g, i, t, p_start, rate, host, gs):
    want = (gs.gp[g] - gs.tgt[g]) - gs.bal[g]
    allowed = rate * (t - p_start) // NS_PER_S - gs.moved[g]
    step = min(abs(want), allowed)
    if step <= 0:
        return
    gs.moved[g] += step
    if want < 0:
        gs.bal[g] -= step
        host.cnt[g, C_DEFLATED] += step
        return
    gs.bal[g] += step
    host.cnt[g, C_INFLATED] += step
    _fit(g, i, -1, host, gs)


@nb.njit(cache=True)
def _end_period(k, i, t_end, p_start, rate, host, gs, es, series):
    """Catch every balloon up with this period's target, and record the period's row."""
    for g in range(gs.gp.shape[0]):
        _move(g, i, t_end, p_start, rate, host, gs)
        series[k, g, S_ESTIMATE] = es.est[g]
        series[k, g, S_TARGET] = gs.tgt[g]
        series[k, g, S_BALLOON] = gs.bal[g]
        series[k, g, S_IN_USE] = gs.in_use[g]
        series[k, g, S_RESIDENT] = host.res_g[g]


@nb.njit(cache=True)
def _sampled_estimate(g, k, i_start, gs, es):
    """ESX sampling: the touched fraction of the sampled pages, with a fast and a
    slow moving average; rises at once, falls slowly."""
    # Touched = accessed in the period: ESX sees a sampled page's next access, never a
    # hint (the guest's reclaim stamps also move when a page is allocated).
    touched = 0
    for j in range(es.k_samples):
        if es.seen[es.samp[g, j]] >= i_start:
            touched += 1
    cur = touched * gs.gp[g] // es.k_samples
    if k == 0:
        es.fast[g] = cur
        es.slow[g] = cur
    else:
        es.fast[g] = es.fast[g] + es.fast_a * (cur - es.fast[g])
        es.slow[g] = es.slow[g] + es.slow_a * (cur - es.slow[g])
    return max(cur, np.int64(es.fast[g] + 0.5), np.int64(es.slow[g] + 0.5))


@nb.njit(cache=True)
def _next_estimates(k, i_start, host, gs, es):
    """Each guest's estimate for period k + 1, from period k."""
    for g in range(gs.gp.shape[0]):
        if es.kind == EST_SAMPLING:
            es.est[g] = _sampled_estimate(g, k, i_start, gs, es)
        elif es.kind == EST_FAULT_RATE:
            refaults = host.cnt[g, C_GUEST_READS] - es.reads_mark[g]
            es.reads_mark[g] = host.cnt[g, C_GUEST_READS]
            if refaults > es.threshold:
                es.est[g] = min(gs.gp[g], es.est[g] + es.grow_p[g])
            else:
                es.est[g] = max(es.mins[g], es.est[g] - es.shrink_p[g])
        else:
            es.est[g] = es.oracle[k + 1, g]
        gs.moved[g] = 0


@nb.njit(cache=True, inline="always")
def _guest_event(i, p, g, o, host, gs):
    """Event i (page p of guest g, op o) on both sides, then the guest's bounds."""
    old = gs.gst[p]
    new, flags = guest_step(old, o)
    new |= old & ON_FREE_LIST  # list membership is this kernel's, not the guest's
    if (flags & JOINED) and (new & ON_FREE_LIST):
        new &= ~ON_FREE_LIST
        unlink(host.flinks, p)
    gs.gst[p] = new
    cnt = host.cnt
    if o <= OP_WRITE:
        cnt[g, C_ACCESSES] += 1
        cnt[g, C_REPAIRS] += (flags & REPAIRED) != 0
        if flags & REFAULTED:
            cnt[g, C_GUEST_READS] += 1
            cnt[g, C_DISCARD_FAULTS] += (flags & FILE_REFAULT) != 0
            # The guest allocates a frame for the page it brings back.
            implicit_hint(p, g, OP_SET_STABLE, host)
        # The host's view of an access to a page it holds unused (engine rule).
        restate(p, repaired(host.state[p]), host)
        gs.stamp[p] = i
        _guest_books(i, p, g, flags, host, gs)
        if not is_resident(host.state[p]):
            # The guest makes room before the host backs the page: the frame the
            # balloon really took is one the guest frees now (dropped without I/O),
            # not one the host must evict.
            _fit(g, i, p, host, gs, 1)
        host_in(p, g, i, host, gs.gst)
        if o == OP_WRITE:
            restate(p, host.state[p] | DIRTY | CHANGED, host)
    else:
        if (host.honour >> o) & 1:
            cnt[g, C_HINTS] += 1
            old = host.state[p]
            hs, lost = hint(old, o)
            cnt[g, C_CONTENT_LOST] += lost
            restate(p, hs, host)
            host_tier.leave_after_hint(host.tier, p, old, hs)
        _guest_books(i, p, g, flags, host, gs)
    if (flags & JOINED) or o <= OP_WRITE:
        # A page joined, or the host backs one more frame of this guest.
        _fit(g, i, p, host, gs)


@nb.njit(cache=True, inline="always")
def _guest_books(i, p, g, flags, host, gs):
    """Guest g's in-use count and reclaim heap after event i changed page p (``flags``)."""
    kk, pp = _heap_of(gs, g)
    if flags & LEFT:
        gs.in_use[g] -= 1
        free_frame(p, g, host, gs.gst)
    elif flags & LOWERED:
        gs.hsize[g] = file_page(kk, pp, gs.hsize[g], p, gs.gst, gs.stamp)
    if flags & JOINED:
        gs.stamp[p] = i
        gs.in_use[g] += 1
        gs.hsize[g] = file_page(kk, pp, gs.hsize[g], p, gs.gst, gs.stamp)


@nb.njit(cache=True)
def _balloon_one(
    t_ns,
    page,
    op,
    guest,
    page_guest,
    gp,
    off,
    frames,
    avail,
    honour,
    initial,
    estimator,
    period,
    n_periods,
    k_samples,
    seed,
    fast_a,
    slow_a,
    threshold,
    grow_p,
    shrink_p,
    mins,
    rate,
    oracle,
    tier_pages,
    ends,
    order,
    done,
    slot,
    mask,
):
    n_pages = page_guest.shape[0]
    n_guests = gp.shape[0]
    n = page.shape[0]
    host = new_host(page_guest, n_guests, frames, honour, initial, tier_pages, ends, order)
    cap, hoff, hkeys, hpages, hsize = guest_heaps(gp)
    gs = Guests(
        np.full(n_pages, G_U, np.uint8),
        np.full(n_pages, -1, np.int64),
        gp,
        np.zeros(n_guests, np.int64),
        np.zeros(n_guests, np.int64),
        np.zeros(n_guests, np.int64),
        np.zeros(n_guests, np.int64),
        cap,
        hoff,
        hkeys,
        hpages,
        hsize,
    )
    es = Estimates(
        estimator,
        k_samples,
        fast_a,
        slow_a,
        threshold,
        grow_p,
        shrink_p,
        mins,
        oracle,
        off,
        np.zeros(n_guests, np.int64),
        np.zeros(n_guests, np.float64),
        np.zeros(n_guests, np.float64),
        np.zeros(n_guests, np.int64),
        np.zeros((n_guests, k_samples if estimator == EST_SAMPLING else 0), np.int64),
        np.zeros(n_guests, np.bool_),
        np.zeros(n_guests, np.int64),
        np.full(n_pages if estimator == EST_SAMPLING else 0, -1, np.int64),
    )
    series = np.zeros((n_periods, n_guests, len(SERIES)), np.int64)
    host_sum = np.int64(0)
    if n > 0:
        host_sum = _balloon_replay(
            t_ns, page, op, guest, avail, period, seed, rate, host, gs, es, series, done, slot, mask
        )
    return host.cnt, host.tot, host_sum, host.state, series


# The event loop apart from the allocations, without reference counting
# (_nrt=False): with it, every use of an array of the bundles in the inlined
# helpers counted a reference (twice the time).
@nb.njit(cache=True, _nrt=False)
def _balloon_replay(t_ns, page, op, guest, avail, period, seed, rate, host, gs, es, series, done, slot, mask):
    """Replay every event at one budget; returns the sum over events of host frames.
    The event index goes to ``done[slot]`` every ``mask + 1`` events (:mod:`cmmsim.replay.watch`)."""
    n = page.shape[0]
    n_guests = gs.gp.shape[0]
    gp = gs.gp
    host_sum = np.int64(0)
    rng = np.uint64(seed)
    k = 0
    p_start = t_ns[0]
    i_start = 0
    for g in range(n_guests):
        es.est[g] = es.oracle[0, g] if es.kind == EST_ORACLE else gp[g]
    _targets(es.est, gp, es.mins, avail, gs.tgt, es.fixed, es.share)
    for g in range(n_guests):
        # At the first event each balloon is set to its target at once. That counts as
        # inflation too, and apart: the replay's initial condition (a trace usually
        # starts mid-life of its guests), not work done during the trace.
        gs.bal[g] = gp[g] - gs.tgt[g]
        host.cnt[g, C_INFLATED] += gs.bal[g]
        host.cnt[g, C_INFLATED_INITIAL] += gs.bal[g]
    if es.kind == EST_SAMPLING:
        rng = _draw_samples(rng, es.samp, es.off, gp)
    for i in range(n + 1):
        if (i & mask) == 0 and reached(done, slot, i):
            break
        t = t_ns[i] if i < n else t_ns[n - 1]
        last = i == n
        # Period ends up to t (the last period closes after the last event).
        while last or t >= p_start + period:
            _end_period(k, i, t if last else p_start + period, p_start, rate, host, gs, es, series)
            if last:
                break
            _next_estimates(k, i_start, host, gs, es)
            _targets(es.est, gp, es.mins, avail, gs.tgt, es.fixed, es.share)
            k += 1
            p_start += period
            i_start = i
            if es.kind == EST_SAMPLING:
                rng = _draw_samples(rng, es.samp, es.off, gp)
        if last:
            break
        # Balloon movement inside the period, up to t.
        for g in range(n_guests):
            _move(g, i, t, p_start, rate, host, gs)
        _guest_event(i, page[i], guest[i], op[i], host, gs)
        if es.kind == EST_SAMPLING and op[i] <= OP_WRITE:
            es.seen[page[i]] = i
        host_sum += host.tot[0]
    resident_close(host.cnt, host.res_g, host.mark, n)
    return host_sum


@nb.njit(cache=True, parallel=True, nogil=True)
def _balloon_budgets(
    t_ns,
    page,
    op,
    guest,
    page_guest,
    gp,
    off,
    frames,
    avails,
    honour,
    initial,
    estimator,
    period,
    n_periods,
    k_samples,
    seed,
    fast_a,
    slow_a,
    threshold,
    grow_p,
    shrink_p,
    mins,
    rate,
    oracle,
    tier_pages,
    order,
    keep_final,
    done,
    mask,
):
    nb_ = frames.shape[0]
    n_guests = gp.shape[0]
    cnt = np.zeros((nb_, n_guests, N_COUNTERS), np.int64)
    host = np.zeros((nb_, 2), np.int64)
    final = np.zeros((nb_ if keep_final else 0, page_guest.shape[0]), np.uint8)
    series = np.zeros((nb_, n_periods, n_guests, len(SERIES)), np.int64)
    ends = np.zeros(n_guests, np.int64)
    for g in range(n_guests):
        ends[g] = off[g] + gp[g]
    for b in nb.prange(nb_):
        c, tot, hsum, st, ser = _balloon_one(
            t_ns,
            page,
            op,
            guest,
            page_guest,
            gp,
            off,
            frames[b],
            avails[b],
            honour,
            initial,
            estimator,
            period,
            n_periods,
            k_samples,
            seed,
            fast_a,
            slow_a,
            threshold,
            grow_p,
            shrink_p,
            mins,
            rate,
            oracle,
            tier_pages,
            ends,
            order,
            done,
            np.int64(b),  # prange's index is unsigned in its parallel body: one signature
            mask,
        )
        cnt[b] = c
        host[b, 0] = tot[1]
        host[b, 1] = hsum
        series[b] = ser
        if keep_final:
            final[b] = st
    return cnt, host, final, series


def run_balloon(
    scenario,
    budgets,
    params: Params,
    honour: int,
    initial: int,
    keep_final: bool = False,
    tier_pages: int = 0,
    on_events=None,
):
    """Replay with balloons at every budget; ``series`` holds the per-period targets.
    ``tier_pages``: the host's fast swap tier (:mod:`cmmsim.replay.kernels.tier`; 0: none);
    ``on_events``: progress of the budgets' passes (:func:`cmmsim.replay.watch.watched`)."""
    b = validated(budgets, scenario.n_pages)
    s = setup(scenario, params)
    avails = np.array([available(int(x), params.slack) for x in b.pages], np.int64)
    n = scenario.n_events
    cnt, host, final, series = watched(
        lambda done, mask: _balloon_budgets(
            scenario.t_ns,
            scenario.page,
            scenario.op,
            scenario.guest,
            scenario.page_guest,
            scenario.guest_pages.astype(np.int64),
            scenario.page_offset,
            b.frames,
            avails,
            np.int64(honour),
            np.uint8(initial),
            np.int64(s.estimator),
            np.int64(params.period_ns),
            np.int64(s.n_periods),
            np.int64(params.sample_pages),
            np.uint64(params.seed),
            float(params.fast_alpha),
            float(params.slow_alpha),
            np.int64(params.fault_threshold),
            s.grow_pages,
            s.shrink_pages,
            s.min_pages,
            np.int64(params.rate_pages_per_s),
            s.oracle,
            np.int64(tier_pages),
            np.int64(ORDERS[params.replacement]),
            keep_final,
            done,
            mask,
        ),
        len(b.pages),
        n,
        on_events,
    )
    return without_states(
        b.pages,
        cnt,
        host,
        final,
        scenario.n_guests,
        series=series,
        series_t_ns=period_ends(scenario, params, s.n_periods),
        tier_pages=int(tier_pages),
    )
