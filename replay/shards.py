"""An approximate miss curve from spatial samples of pages (SHARDS): ``host-lru``'s, or
``cmm``'s with ``state-priority`` reclaim.

Opt-in: the exact one pass (:mod:`cmmsim.replay.onepass`) is the default and the
reference (for state-priority, which has no stack pass, the engine's replay at
each budget). SHARDS (Waldspurger et al., FAST '15) keeps the accesses of the
pages whose hash falls under a threshold, a fraction ``rate`` of the pages,
and replays that smaller trace at budgets scaled by the same fraction: under
LRU a sampled page's reuse distance shrinks, in expectation, by the sampling
fraction, so its hits and misses at budget ``B * fraction`` estimate those at
``B``. Here the fraction is the one measured (sampled footprint over
footprint) rather than the nominal rate, and each guest's counters are
scaled up by its footprint over its sampled footprint: every count is a sum
over pages, and a sum over a uniform sample of pages scaled by the inverse
of the fraction sampled is unbiased (Horvitz-Thompson; SHARDS normalises by
the rate in the same way). Scaling by accesses over sampled accesses instead
was measured too: it is biased wherever a few pages take a share of the
accesses (samples that miss them agree, so their spread cannot show it), and
it was off by 2-35 standard errors on three of the seven sample traces.
The sampling does not remove the approximation in the budget scaling: the
standard error is the samples' spread, not a bound on that.

``state-priority`` (``order``) replays each sample with the engine at every scaled
budget: a sampled page keeps every event on it, hints too, so it moves between the
classes as in the whole trace. The scaling argument is SHARDS's within each class
(the class's pages sampled alike, its recency order kept); that it carries over is an
assumption, and measured it holds less well than under LRU (docs/performance.md,
"cmm state-priority from samples").

The error is reported, not assumed: ``salts`` samples are drawn with
independent hash salts in the same read of the trace; the estimate is their
mean and its standard error the spread of the salts' estimates over
sqrt(salts). At ``rate`` 1 every page is kept: one sample, the exact counters.

The samples are taken as the events stream by (:meth:`_Sampler.feed`), so
:func:`sampled_curve_stream` reads traces of any size in memory proportional
to the sample: a byte of salt bits and a touched byte per guest page (8 bytes of
bits from 9 salts on), and 7 bytes per sampled access per salt.

Layers: :func:`sample_mask` (which pages a salt keeps), ``_sample_chunk``
(numba: one pass takes every salt's events), :func:`sampled_curve` (and
:func:`lru_sampled`, its ``host-lru`` case) and :func:`sampled_curve_stream` (the
estimates), :func:`miss_curve` (either, for files: the command line's call),
:func:`df_sampled_curve` (a table).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numba as nb
import numpy as np
import polars as pl
from numba.cpython.unsafe.numbers import trailing_zeros

from cmmsim.replay.budgets import checked, parse_budgets
from cmmsim.replay.onepass import run_lru_all
from cmmsim.replay.scenario import Scenario
from cmmsim.replay.states import OP_WRITE, C
from cmmsim.tracer.errors import ParamError

__all__ = [
    "CHUNK_EVENTS",
    "ESTIMATED",
    "FEW_PAGES",
    "MAX_SALTS",
    "ORDERS",
    "REPLAY_NAMES",
    "SampledCurve",
    "df_sampled_curve",
    "exact_counters",
    "lru_sampled",
    "sampled_curve_stream",
    "miss_curve",
    "sample_mask",
    "sampled_curve",
    "spread_budgets",
]

#: The replays a curve estimates: ``host-lru`` (exact LRU) and ``cmm`` with
#: ``state-priority`` reclaim.
ORDERS = ("lru", "state-priority")
#: How output names each order's replay.
REPLAY_NAMES = {"lru": "host-lru", "state-priority": "cmm state-priority"}
#: The I/O counters estimated (not the resident-frame ones: under LRU the
#: host holds min(budget, footprint) frames at the end, no sample needed).
ESTIMATED = ("host_reads", "host_writes", "zero_fills", "discards")
#: Most salts one read can draw (a bit each in a uint64 per page).
MAX_SALTS = 64
#: Below this many pages a sample's standard error is not to be trusted (the
#: sample-trace benchmark: samples of a few hundred pages were off by many).
FEW_PAGES = 1000
#: Events handed to the sampling kernel at a time (its output buffers hold
#: this many per salt, allocated lazily by the system).
CHUNK_EVENTS = 1 << 20

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Steele et al.'s SplitMix64 finaliser, elementwise on uint64 (wrapping)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def sample_mask(n_pages: int, rate: float, salt: int) -> np.ndarray:
    """Which of ``n_pages`` global pages the sample with this salt keeps.

    Page p is kept when the top 53 bits of SplitMix64(p XOR SplitMix64(salt))
    fall under ``rate * 2**53``: each page with probability ``rate``,
    independently across pages and salts, the same pages on every run.

    Parameters
    ----------
    n_pages : int
        Pages in the scenario.
    rate : float
        Sampling rate, 0 < rate <= 1.
    salt : int
        Any integer; different salts draw independent samples.

    Returns
    -------
    ndarray[bool], shape (n_pages,)
    """
    if rate >= 1.0:
        return np.ones(n_pages, bool)
    key = _splitmix64(np.array([salt & 0xFFFFFFFFFFFFFFFF], np.uint64))[0]
    h = _splitmix64(np.arange(n_pages, dtype=np.uint64) ^ key)
    return (h >> np.uint64(11)) < np.uint64(int(rate * 2**53))


@nb.njit(cache=True, nogil=True)
def _sample_chunk(page, op, guest, bits, touched, accesses, page_out, op_out, guest_out, taken, hints):
    """Count every access and copy it (and, ``hints``, every hint) to the outputs of
    each salt keeping its page.

    ``bits[p]``: bit k set when salt k keeps page p; ``taken[k]``: rows of
    salt k's outputs filled (updated).
    """
    for i in range(page.shape[0]):
        p = page[i]
        if op[i] <= OP_WRITE:
            touched[p] = 1
            accesses[guest[i]] += 1
        elif not hints:
            continue  # host-lru sees no hints
        b = np.uint64(bits[p])
        while b != 0:
            k = trailing_zeros(b)
            j = taken[k]
            page_out[k, j] = p
            op_out[k, j] = op[i]
            guest_out[k, j] = guest[i]
            taken[k] = j + 1
            b &= b - np.uint64(1)


class _Sampler:
    """Takes the salts' samples from events fed in time order, chunk by chunk."""

    def __init__(self, page_guest: np.ndarray, n_guests: int, rate: float, salts: int, seed: int, hints: bool):
        self.page_guest = page_guest
        self.hints = hints
        self.n_guests = n_guests
        self.salts = salts
        # A byte per page for up to 8 salts: the kernel's one random load per access.
        dtype = np.uint8 if salts <= np.iinfo(np.uint8).bits else np.uint64
        self.bits = np.zeros(len(page_guest), dtype)
        for k in range(salts):
            self.bits |= sample_mask(len(page_guest), rate, seed + k).astype(dtype) << dtype(k)
        self.touched = np.zeros(len(page_guest), np.uint8)
        self.accesses = np.zeros(n_guests, np.int64)
        self.parts: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(salts)]

    def feed(self, page, op, guest, on_events: Callable[[int], None] | None = None) -> None:
        """Take the samples of these events, ``CHUNK_EVENTS`` at a time; ``on_events``
        is called with the events of each chunk taken (progress)."""
        for s in range(0, len(page), CHUNK_EVENTS):
            e = s + CHUNK_EVENTS
            m = len(page[s:e])
            out = (
                np.empty((self.salts, m), np.int32),
                np.empty((self.salts, m), np.uint8),
                np.empty((self.salts, m), np.uint16),
            )
            taken = np.zeros(self.salts, np.int64)
            _sample_chunk(
                page[s:e], op[s:e], guest[s:e], self.bits, self.touched, self.accesses, *out, taken, self.hints
            )
            for k in range(self.salts):
                if taken[k]:
                    self.parts[k].append(tuple(a[k, : taken[k]].copy() for a in out))
            if on_events is not None:
                on_events(m)

    def sample(self, k: int, template) -> tuple[Scenario, float]:
        """Salt k's events as a scenario of the kept pages (renumbered in order,
        so each guest's pages stay contiguous), and the fraction of the footprint kept.

        Its times are not kept (7 bytes a sampled event instead of 15): the
        replays order by position, and its ``t_ns`` reads as zeros. Hints on a
        page never accessed are dropped with it (the footprint is the pages
        accessed; such a page never takes a frame).
        """
        touched = self.touched.astype(bool)
        keep = touched & (((self.bits.astype(np.uint64) >> np.uint64(k)) & np.uint64(1)) == 1)
        new_index = np.full(len(keep), -1, np.int32)
        new_index[keep] = np.arange(int(keep.sum()), dtype=np.int32)
        cols = (
            [np.concatenate(c) for c in zip(*self.parts[k], strict=True)]
            if self.parts[k]
            else [np.zeros(0, d) for d in (np.int32, np.uint8, np.uint16)]
        )
        if self.hints:
            kept = new_index[cols[0]] >= 0
            cols = [c[kept] for c in cols]
        page_guest = self.page_guest[keep]
        scn = Scenario(
            name=template.name,
            guest_names=template.guest_names,
            guest_pages=np.bincount(page_guest, minlength=self.n_guests).astype(np.int64),
            # Zeros of the engine's own layout under state-priority (a broadcast
            # view would compile its kernels again for a strided array).
            t_ns=np.zeros(len(cols[0]), np.int64) if self.hints else np.broadcast_to(np.int64(0), cols[0].shape),
            page=new_index[cols[0]],
            op=cols[1],
            guest=cols[2],
            page_guest=page_guest,
            sources=template.sources,
        )
        # An empty footprint is all sampled (as the exact curve in memory has it).
        footprint = int(touched.sum())
        return scn, float(keep.sum()) / footprint if footprint else 1.0


@dataclass(frozen=True)
class SampledCurve:
    """SHARDS estimates of a replay's counters at several budgets: ``host-lru``'s (exact
    LRU) or ``cmm``'s with ``state-priority`` reclaim (``order``).

    Attributes
    ----------
    budgets : ndarray[int64], shape (budgets,)
        Host budgets, frames (pages), as asked.
    estimate : ndarray[float64], shape (budgets, guests, len(ESTIMATED))
        Mean over the salts of each counter's estimate, events.
    stderr : ndarray[float64], same shape
        Standard error of ``estimate`` (the salts' spread over sqrt(salts));
        0 at rate 1; NaN from one salt below rate 1.
    per_salt : ndarray[float64], shape (salts, budgets, guests, len(ESTIMATED))
        Each salt's estimates (NaN for a guest none of whose pages was sampled).
    accesses : ndarray[int64], shape (guests,)
        Accesses per guest, counted exactly.
    footprint_pages : int
        Distinct pages accessed.
    rate : float
        Nominal sampling rate.
    page_fraction : ndarray[float64], shape (salts,)
        Sampled footprint over footprint, per salt: its budgets' scale.
    sampled_events : ndarray[int64], shape (salts,)
        Events replayed, per salt: its accesses (and under state-priority its
        hints).
    order : str
        The replay estimated, one of :data:`ORDERS`: ``lru`` (``host-lru``) or
        ``state-priority`` (``cmm`` with that reclaim order).
    """

    budgets: np.ndarray
    estimate: np.ndarray
    stderr: np.ndarray
    per_salt: np.ndarray
    accesses: np.ndarray
    footprint_pages: int
    rate: float
    page_fraction: np.ndarray
    sampled_events: np.ndarray
    order: str = "lru"

    @property
    def salts(self) -> int:
        return int(self.per_salt.shape[0])

    @property
    def exact(self) -> bool:
        return self.rate >= 1.0

    @property
    def sampled_pages(self) -> np.ndarray:
        """Pages in each salt's sample (its share of the footprint)."""
        return np.rint(self.page_fraction * self.footprint_pages).astype(np.int64)


def _mean_se(per_salt: np.ndarray, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the first axis and its standard error (0 when exact, NaN from one sample)."""
    mean = per_salt.mean(axis=0)
    if exact:
        return mean, np.zeros_like(mean)
    if per_salt.shape[0] < 2:
        return mean, np.full_like(mean, np.nan)
    return mean, per_salt.std(axis=0, ddof=1) / np.sqrt(per_salt.shape[0])


def _check(budgets, rate: float, salts: int, order: str = "lru") -> tuple[np.ndarray, int]:
    if order not in ORDERS:
        raise ParamError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    b = checked(budgets)
    if not (0.0 < rate <= 1.0):
        raise ParamError(f"sample rate must be in (0, 1], got {rate}")
    if not (1 <= salts <= MAX_SALTS):
        raise ParamError(f"salts must be in [1, {MAX_SALTS}], got {salts}")
    return b, (1 if rate >= 1.0 else salts)


def exact_counters(scenario, budgets: np.ndarray, order: str, on_events=None) -> np.ndarray:
    """The exact replay's counters at ``budgets`` (budgets, guests, counters): the stack
    pass of ``host-lru``, or ``cmm`` with state-priority reclaim at each budget (one
    engine call); ``order`` one of :data:`ORDERS`, ``on_events`` progress."""
    if order == "lru":
        return run_lru_all(scenario, budgets, on_events=on_events).counters
    from cmmsim.replay.strategies import get_strategy

    cmm = get_strategy("cmm")
    params = cmm.parse_params({"reclaim_order": "state-priority"})
    return cmm.run(scenario, budgets, params, on_events=on_events).counters


def _estimate(sampler: _Sampler, template, b: np.ndarray, rate: float, order: str) -> SampledCurve:
    ng = sampler.n_guests
    cols = [C[k] for k in ESTIMATED]
    est = np.full((sampler.salts, len(b), ng, len(cols)), np.nan)
    fractions = np.zeros(sampler.salts)
    sampled = np.zeros(sampler.salts, np.int64)
    touched = np.bincount(sampler.page_guest[sampler.touched.astype(bool)], minlength=ng)
    for k in range(sampler.salts):
        sub, fractions[k] = sampler.sample(k, template)
        sampled[k] = sub.n_events
        kept = sub.guest_pages  # each guest's sampled footprint
        # A guest none of whose pages was sampled has no estimate, unless it
        # touched none: then every counter is exactly 0.
        scale = np.where(kept > 0, touched / np.maximum(kept, 1), np.where(touched == 0, 0.0, np.nan))
        if sub.n_events == 0:
            est[k] = 0.0 * scale[None, :, None]
            continue
        scaled = np.maximum(1, np.rint(b * fractions[k])).astype(np.int64)
        cnt = exact_counters(sub, scaled, order)[:, :, cols].astype(np.float64)
        est[k] = cnt * scale[None, :, None]
    mean, se = _mean_se(est, rate >= 1.0)
    return SampledCurve(
        b, mean, se, est, sampler.accesses.copy(), int(sampler.touched.sum()), rate, fractions, sampled, order
    )


def sampled_curve(
    scenario,
    budgets,
    rate: float,
    *,
    order: str = "lru",
    salts: int = 8,
    seed: int = 0,
    on_events: Callable[[int], None] | None = None,
) -> SampledCurve:
    """Estimate a replay's counters at every budget from ``salts`` spatial samples.

    Parameters
    ----------
    scenario : Scenario
        The merged guest traces.
    budgets : array_like of int
        Host budgets, frames (pages), each >= 1.
    rate : float
        Fraction of pages sampled, 0 < rate <= 1 (1: exact, one sample).
    order : str
        ``lru``: ``host-lru`` (exact LRU; each sample by the stack pass);
        ``state-priority``: ``cmm`` with state-priority reclaim (each sample, hints
        and all, replayed at every scaled budget).
    salts : int
        Independent samples, 1 to 64 (the standard error needs 2 or more).
    seed : int
        Salt k is ``seed + k``.
    on_events : callable, optional
        Progress, every event once in all: at rate 1 as the exact replay goes
        (:func:`cmmsim.replay.watch.watched`), below it as the samples are
        taken (the passes over the samples, shorter, report nothing).

    Returns
    -------
    SampledCurve
    """
    b, salts = _check(budgets, rate, salts, order)
    if rate >= 1.0:
        # The trace is in memory already: the exact replay of it, no copy.
        is_access = scenario.op <= OP_WRITE
        cnt = exact_counters(scenario, b, order, on_events)[:, :, [C[k] for k in ESTIMATED]]
        cnt = cnt.astype(np.float64)
        accesses = np.bincount(scenario.guest[is_access], minlength=scenario.n_guests)
        return SampledCurve(
            b,
            cnt,
            np.zeros_like(cnt),
            cnt[None],
            accesses.astype(np.int64),
            int(np.unique(scenario.page[is_access]).size),
            1.0,
            np.ones(1),
            np.array([int(is_access.sum()) if order == "lru" else scenario.n_events], np.int64),
            order,
        )
    sampler = _Sampler(scenario.page_guest, scenario.n_guests, rate, salts, seed, order != "lru")
    sampler.feed(scenario.page, scenario.op, scenario.guest, on_events)
    return _estimate(sampler, scenario, b, rate, order)


def lru_sampled(
    scenario,
    budgets,
    rate: float,
    *,
    salts: int = 8,
    seed: int = 0,
    on_events: Callable[[int], None] | None = None,
) -> SampledCurve:
    """:func:`sampled_curve` of ``host-lru`` (exact LRU)."""
    return sampled_curve(scenario, budgets, rate, order="lru", salts=salts, seed=seed, on_events=on_events)


def spread_budgets(budgets: np.ndarray, points: int) -> np.ndarray:
    """``points`` budgets evenly spaced from the smallest to the largest, frames
    (rounded, duplicates dropped); the budgets as given when ``points`` < 2."""
    if points < 0:
        raise ParamError(f"points must be >= 0, got {points}")
    b = np.asarray(budgets, np.int64)
    if points < 2 or b.size == 0:
        return b
    # More points than whole budgets in the range give every budget of it:
    # as many as that (no array sized by an untrusted count).
    points = min(points, int(b.max()) - int(b.min()) + 1)
    if points < 2:
        return np.unique(b)
    return np.unique(np.rint(np.linspace(b.min(), b.max(), points)).astype(np.int64))


def sampled_curve_stream(
    paths: Sequence[str | os.PathLike],
    budgets: Sequence[str | int],
    rate: float,
    *,
    salts: int = 8,
    seed: int = 0,
    copies: int = 1,
    stagger_ns: int = 0,
    batch_rows: int | None = None,
    points: int = 0,
    order: str = "lru",
    on_events: Callable[[int], None] | None = None,
) -> SampledCurve:
    """:func:`sampled_curve` reading trace files as a stream (memory: the samples).

    ``budgets`` are parsed as by :func:`cmmsim.replay.budgets.parse_budget` (and spread by
    :func:`spread_budgets` over ``points``); ``copies`` and ``stagger_ns``
    replicate the guests as :func:`cmmsim.replay.scenario.load` does;
    ``on_events`` is called with the events of each chunk read (progress).
    """
    from cmmsim.replay.scenario import scenario_name
    from cmmsim.replay.stream import StreamedScenario, merged_batches, stream_guests
    from cmmsim.tracer.io import ROW_GROUP_ROWS

    guests = stream_guests(paths, copies, stagger_ns)
    gp = np.array([g.guest_pages for g in guests], np.int64)
    page_guest = np.repeat(np.arange(len(guests), dtype=np.uint16), gp)
    b, salts = _check(spread_budgets(parse_budgets(budgets, int(gp.sum())), points), rate, salts, order)
    sampler = _Sampler(page_guest, len(guests), rate, salts, seed, order != "lru")
    for _, page, op, guest in merged_batches(guests, batch_rows or ROW_GROUP_ROWS):
        sampler.feed(page, op, guest)
        if on_events is not None:
            on_events(len(page))
    template = StreamedScenario(
        scenario_name(list(paths)),
        tuple(g.label for g in guests),
        gp,
        page_guest,
        0,
        np.zeros(len(guests), np.int64),
        tuple(g.path for g in guests),
    )
    return _estimate(sampler, template, b, rate, order)


def miss_curve(
    paths: Sequence[str | os.PathLike],
    budgets: Sequence[str | int],
    *,
    points: int = 0,
    rate: float = 1.0,
    salts: int = 8,
    seed: int = 0,
    stream: bool = False,
    copies: int = 1,
    stagger_ns: int = 0,
    order: str = "lru",
    on_events: Callable[[int], None] | None = None,
) -> SampledCurve:
    """A replay's curve for trace files (``order``: ``lru``, ``host-lru``'s, or
    ``state-priority``, ``cmm``'s with that reclaim): what ``cmmsim mrc`` prints.

    Budgets are parsed as by :func:`cmmsim.replay.budgets.parse_budget` against the
    scenario's guest memory and spread over ``points`` (:func:`spread_budgets`);
    exact at ``rate`` 1, else estimated (:func:`sampled_curve`); ``stream`` reads the
    files as a stream (:func:`sampled_curve_stream`) instead of loading them.
    ``on_events`` is called with the events done as they are done (progress:
    chunk by chunk read when streamed, else as :func:`sampled_curve` reports).
    """
    if stream:
        return sampled_curve_stream(
            paths,
            budgets,
            rate,
            salts=salts,
            seed=seed,
            copies=copies,
            stagger_ns=stagger_ns,
            points=points,
            order=order,
            on_events=on_events,
        )
    from cmmsim.replay.scenario import load

    scn = load(list(paths), copies=copies, stagger_ns=stagger_ns)
    b = spread_budgets(parse_budgets(budgets, scn.n_pages), points)
    return sampled_curve(scn, b, rate, order=order, salts=salts, seed=seed, on_events=on_events)


def df_sampled_curve(r: SampledCurve) -> pl.DataFrame:
    """A :class:`SampledCurve` as a table, one row per budget (all guests summed).

    Columns: ``budget_pages``; ``accesses`` (exact); for each of
    ``host_reads``, ``host_writes``, ``zero_fills``, ``discards``:
    ``<name>_est`` (events) and ``<name>_se`` (its standard error, events);
    ``miss_ratio_est`` and ``miss_ratio_se`` (host reads plus zero fills per
    access); ``rate``, ``salts``, ``page_fraction`` (mean over the salts),
    ``min_sampled_pages`` (the smallest sample, pages), ``footprint_pages``,
    ``exact`` (rate 1: the estimates are the counters) and ``order`` (the replay
    estimated, one of :data:`ORDERS`).
    """
    # Totals over the guests salt by salt, then their spread: the guests share
    # the sampled pages, so their errors are not independent.
    totals = r.per_salt.sum(axis=2)  # (salts, budgets, counters)
    est, se = _mean_se(totals, r.exact)
    n = len(r.budgets)
    total = int(r.accesses.sum())
    data: dict[str, object] = {"budget_pages": r.budgets, "accesses": np.full(n, total)}
    for j, name in enumerate(ESTIMATED):
        data[f"{name}_est"] = est[:, j]
        data[f"{name}_se"] = se[:, j]
    miss = [ESTIMATED.index("host_reads"), ESTIMATED.index("zero_fills")]
    ratio, ratio_se = _mean_se(totals[:, :, miss].sum(axis=2) / max(total, 1), r.exact)
    data |= {
        "miss_ratio_est": ratio,
        "miss_ratio_se": ratio_se,
        "rate": np.full(n, r.rate),
        "salts": np.full(n, r.salts),
        "page_fraction": np.full(n, r.page_fraction.mean()),
        "min_sampled_pages": np.full(n, int(r.sampled_pages.min())),
        "footprint_pages": np.full(n, r.footprint_pages),
        "exact": np.full(n, r.exact),
        "order": np.full(n, r.order),
    }
    return pl.DataFrame(data)
