"""Two traces side by side: how alike their page behaviour is, measure by measure.

``cmmsim trace compare A B`` prints these; a generator's fidelity to a real
capture (docs/fidelity.md) is read from them. Functions named ``df_*``
return polars DataFrames and document their columns.

Measures (:func:`trace_profile` computes them for one trace):

- footprint over time: distinct pages accessed so far, as a fraction of
  guest pages, at ``points`` evenly spaced fractions of the trace's duration;
- reuse distance: each access's LRU stack distance (distinct other pages
  accessed since this page's last access; first accesses are cold);
- op mix: share of each op among all events;
- rates per second of guest time: accesses, hints (the ``SET_*`` ops),
  allocations (``SET_STABLE``) and frees (``SET_UNUSED``);
- guest state fractions (S, U, V, P of guest pages) over time, at the same
  fractions of the duration. A page's state is the one its last hint set;
  pages never hinted are unused (a hinting guest marks free memory unused
  at boot). An access to an unused page (a protocol repair) is not counted
  as making it stable here.

Distances (:func:`df_distances`): Wasserstein-1 between the reuse-distance
distributions (pages); total variation between the op mixes; relative
difference ``|a - b| / max(|a|, |b|)`` for each rate and for the cold-access
share; the mean over the time points of the total variation between the
state fractions, and of the absolute difference of the footprint fractions.
Time is compared relative to each trace's duration (a 5 s synthetic trace
and a 32 s capture are set side by side from start to end).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numba as nb
import numpy as np
import polars as pl

from cmmsim.tracer.io import read_arrays
from cmmsim.tracer.schema import Op

#: Time points of the curves over time (fractions of the duration, 1/points .. 1).
POINTS = 20
#: Guest states, in the order of the fraction columns.
STATES = "SUVP"
_STATE_OF_OP = {
    Op.SET_STABLE: "S",
    Op.SET_STABLE_IF_RESIDENT: "S",
    Op.SET_UNUSED: "U",
    Op.SET_VOLATILE: "V",
    Op.SET_POT_VOLATILE: "P",
}


@nb.njit(cache=True, nogil=True)
def _stack_distances(page, n_pages):  # pragma: no cover - numba (twin: tests/naive.py)
    # LRU stack distance per access: a Fenwick tree over access positions
    # holds a 1 at each page's latest access; the distinct pages accessed
    # since page p's last access are the ones set after that position.
    n = page.shape[0]
    out = np.empty(n, np.int64)
    last = np.full(n_pages, -1, np.int64)
    tree = np.zeros(n + 1, np.int64)
    live = 0
    for i in range(n):
        p = page[i]
        q = last[p]
        if q < 0:
            out[i] = -1
            live += 1
        else:
            # set at positions <= q
            s = 0
            j = q + 1
            while j > 0:
                s += tree[j]
                j -= j & -j
            out[i] = live - s
            j = q + 1
            while j <= n:
                tree[j] -= 1
                j += j & -j
        j = i + 1
        while j <= n:
            tree[j] += 1
            j += j & -j
        last[p] = i
    return out


def stack_distances(page: np.ndarray, n_pages: int) -> np.ndarray:
    """LRU stack distance of each access (int64, pages; -1 for a first access).

    The distance of an access is the number of distinct other pages accessed
    since the same page's previous access: under LRU it hits at any budget
    above it. ``page`` holds page numbers below ``n_pages``.
    """
    page = np.ascontiguousarray(page, np.int64)
    return _stack_distances(page, max(int(n_pages), 1))


def wasserstein_1(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 (earth mover's) distance between two samples' distributions.

    The integral of the absolute difference of their empirical CDFs, in the
    samples' unit; 0 for equal distributions, NaN when either is empty.
    """
    a = np.sort(np.asarray(a, np.float64))
    b = np.sort(np.asarray(b, np.float64))
    if not len(a) or not len(b):
        return float("nan")
    xs = np.concatenate([a, b])
    xs.sort(kind="mergesort")
    widths = np.diff(xs)
    cdf_a = np.searchsorted(a, xs[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, xs[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * widths))


@dataclass
class TraceProfile:
    """What :func:`df_distances` compares, for one trace (see the module's measures)."""

    path: str
    guest_pages: int
    duration_s: float
    events: int
    reuse: np.ndarray  # int64: stack distances of the non-cold accesses, pages
    cold: int  # first accesses
    op_events: dict[str, int]
    footprint: np.ndarray  # float [points]: fraction of guest pages accessed so far
    states: np.ndarray  # float [points, 4]: S, U, V, P fractions of guest pages

    @property
    def accesses(self) -> int:
        return len(self.reuse) + self.cold

    def rates(self) -> dict[str, float]:
        """Events per second of guest time (0 for a trace of no duration)."""
        per_s = 1.0 / self.duration_s if self.duration_s > 0 else 0.0
        ops = self.op_events
        hints = sum(ops[o.name] for o in _STATE_OF_OP)
        return {
            "accesses_per_s": self.accesses * per_s,
            "hints_per_s": hints * per_s,
            "allocs_per_s": ops[Op.SET_STABLE.name] * per_s,
            "frees_per_s": ops[Op.SET_UNUSED.name] * per_s,
        }


def trace_profile(path: str | os.PathLike, points: int = POINTS) -> TraceProfile:
    """Read one trace and compute its measures (memory: the trace's columns and a few
    int64 arrays per access)."""
    tr = read_arrays(path)
    n, gp = len(tr.op), tr.meta.guest_pages
    t = tr.t_ns
    t0, t1 = (int(t[0]), int(t[-1])) if n else (0, 0)
    ends = t0 + (t1 - t0) * np.arange(1, points + 1) / points
    upto = np.searchsorted(t, ends, side="right")  # events at or before each time point
    access = tr.op <= Op.WRITE
    dist = stack_distances(tr.pfn[access], gp)
    # Footprint: first accesses, counted up to each point.
    first = np.zeros(n, np.int64)
    first[np.flatnonzero(access)[dist < 0]] = 1
    seen = np.concatenate([[0], np.cumsum(first)])
    footprint = seen[upto] / gp
    return TraceProfile(
        path=str(path),
        guest_pages=gp,
        duration_s=(t1 - t0) / 1e9,
        events=n,
        reuse=dist[dist >= 0],
        cold=int((dist < 0).sum()),
        op_events={o.name: int((tr.op == o).sum()) for o in Op},
        footprint=footprint,
        states=_state_fractions(tr.pfn, tr.op, gp, upto),
    )


def _state_fractions(pfn: np.ndarray, op: np.ndarray, guest_pages: int, upto: np.ndarray) -> np.ndarray:
    """Fractions of guest pages in S, U, V, P after each ``upto`` events (vectorized:
    each hint moves its page from the state of the page's previous hint, or U)."""
    code = np.full(256, -1, np.int64)
    for o, s in _STATE_OF_OP.items():
        code[int(o)] = STATES.index(s)
    rows = np.flatnonzero(code[op] >= 0)
    new = code[op[rows]]
    page = pfn[rows].astype(np.int64)
    order = np.lexsort((np.arange(len(rows)), page))  # by page, then time
    prev = np.full(len(rows), STATES.index("U"), np.int64)
    same = page[order][1:] == page[order][:-1]
    prev[order[1:][same]] = new[order[:-1][same]]
    delta = np.zeros((len(rows), len(STATES)), np.int64)
    np.add.at(delta, (np.arange(len(rows)), new), 1)
    np.add.at(delta, (np.arange(len(rows)), prev), -1)
    counts = np.concatenate([np.zeros((1, len(STATES)), np.int64), np.cumsum(delta, axis=0)])
    counts[:, STATES.index("U")] += guest_pages
    return counts[np.searchsorted(rows, upto)] / guest_pages


def _relative(a: float, b: float) -> float:
    top = max(abs(a), abs(b))
    return abs(a - b) / top if top else 0.0


def df_profile(p: TraceProfile) -> pl.DataFrame:
    """One trace's curves over time.

    Returns
    -------
    polars.DataFrame
        One row per time point: ``time_fraction`` (of the trace's duration),
        ``t_s`` (guest time since the first event, seconds),
        ``footprint_fraction`` (distinct pages accessed so far over guest
        pages) and ``S``, ``U``, ``V``, ``P`` (fractions of guest pages).
    """
    k = len(p.footprint)
    frac = np.arange(1, k + 1) / k
    return pl.DataFrame(
        {
            "time_fraction": frac,
            "t_s": frac * p.duration_s,
            "footprint_fraction": p.footprint,
            **{s: p.states[:, i] for i, s in enumerate(STATES)},
        }
    )


def df_reuse_histogram(p: TraceProfile) -> pl.DataFrame:
    """Reuse (LRU stack) distances of one trace in power-of-two bins.

    Returns
    -------
    polars.DataFrame
        ``distance_lo``, ``distance_hi`` (pages, the bin is lo..hi inclusive;
        the first bin is 0..0), ``accesses`` (int) and ``fraction`` (of the
        non-cold accesses).
    """
    top = int(p.reuse.max()) if len(p.reuse) else 0
    edges = np.concatenate([[0], 2 ** np.arange(0, max(top, 1).bit_length() + 1)])
    counts = np.histogram(p.reuse, bins=edges)[0]
    return pl.DataFrame(
        {
            "distance_lo": edges[:-1],
            "distance_hi": edges[1:] - 1,
            "accesses": counts.astype(np.int64),
            "fraction": counts / max(len(p.reuse), 1),
        }
    )


def df_distances(a: TraceProfile, b: TraceProfile) -> pl.DataFrame:
    """The two traces' figures and their distance, one row per measure.

    Returns
    -------
    polars.DataFrame
        ``measure`` (str), ``a`` and ``b`` (float: the figure of each trace,
        null where the measure is a curve or distribution), ``distance``
        (float) and ``kind`` (str: ``wasserstein-1 (pages)``,
        ``total variation``, ``relative difference``, ``mean total variation``
        or ``mean absolute difference``; 0 means alike; NaN where a trace has
        none of what is compared: no reuse, no access for the cold share, no
        event for the op mix).
    """
    rows: list[tuple[str, float | None, float | None, float, str]] = []
    w = wasserstein_1(a.reuse, b.reuse)
    rows.append(("reuse distance (pages, mean)", _mean(a.reuse), _mean(b.reuse), w, "wasserstein-1 (pages)"))
    # A trace with no access has no cold share, one with no event no op mix: their
    # distances are NaN, not a comparison with zeros.
    cold_a, cold_b = (p.cold / p.accesses if p.accesses else None for p in (a, b))
    cold = _relative(cold_a, cold_b) if cold_a is not None and cold_b is not None else float("nan")
    rows.append(("cold access share", cold_a, cold_b, cold, "relative difference"))
    mix = float("nan")
    if a.events and b.events:
        mix_a = np.array([a.op_events[o.name] for o in Op], np.float64) / a.events
        mix_b = np.array([b.op_events[o.name] for o in Op], np.float64) / b.events
        mix = float(np.abs(mix_a - mix_b).sum() / 2)
    rows.append(("op mix", None, None, mix, "total variation"))
    ra, rb = a.rates(), b.rates()
    for name in ra:
        rows.append((name, ra[name], rb[name], _relative(ra[name], rb[name]), "relative difference"))
    rows.append(
        (
            "footprint over time",
            float(a.footprint[-1]),
            float(b.footprint[-1]),
            float(np.abs(a.footprint - b.footprint).mean()) if len(a.footprint) == len(b.footprint) else float("nan"),
            "mean absolute difference",
        )
    )
    tv = (np.abs(a.states - b.states).sum(axis=1) / 2).mean() if a.states.shape == b.states.shape else float("nan")
    rows.append(("state fractions over time", None, None, float(tv), "mean total variation"))
    return pl.DataFrame(
        rows,
        schema={"measure": pl.String, "a": pl.Float64, "b": pl.Float64, "distance": pl.Float64, "kind": pl.String},
        orient="row",
    )


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if len(x) else None


def df_compare(path_a: str | os.PathLike, path_b: str | os.PathLike, points: int = POINTS) -> pl.DataFrame:
    """:func:`df_distances` of two trace files, with their names.

    Returns
    -------
    polars.DataFrame
        ``trace_a``, ``trace_b`` (str, the paths as given), then the columns
        of :func:`df_distances`.
    """
    a, b = trace_profile(path_a, points), trace_profile(path_b, points)
    return df_distances(a, b).select(
        pl.lit(str(path_a)).alias("trace_a"), pl.lit(str(path_b)).alias("trace_b"), pl.all()
    )
