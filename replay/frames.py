"""Result frames: what a replay's raw integers become (polars, long format).

Result frame columns (one row per budget for the host, ``guest`` null, and
one row per budget and guest):

==========================  ===================================================
scenario (str)              scenario name
strategy (str)              strategy name
params (str)                strategy parameters, canonical JSON
engine_version (int)        :data:`cmmsim.replay.engine.ENGINE_VERSION`
budget_pages (int)          host memory budget, 4 KiB frames
guest (int, null for host)  guest index
guest_name (str)            guest name, ``host`` for the total row
guest_pages (int)           guest memory, pages (sum over guests on host rows)
events (int)                events replayed (of that guest)
accesses ... content_lost   counters of :data:`cmmsim.replay.states.COUNTERS`
host_reads_tier ...         the host's fast swap tier: page-ins from it, page-outs to
host_spills_tier (int)      it, pages spilled from it to disk (each also in
                            ``host_writes``); 0 without a tier
discards_by_guest ...       who chose: of ``discards``, the clean pages a guest's
discards_released (int)     own reclaim dropped, and the frames the guest gave up
                            (a balloon's take, a free page report)
balloon_initial_pages (int) of ``balloon_inflated_pages``, the first sizing
tier_pages (int)            capacity of that tier, pages (0: none)
total_io (int)              host reads + host writes + guest reads + guest writes:
                            disk I/O (the tier's copies are not in it)
peak_resident_pages (int)   most frames resident at once
mean_resident_pages (float) resident frames averaged over events
duration_ns (int)           the scenario's first to last event, ns
guests (int)                guests the row covers (1; all on host rows)
vcpus (int)                 the guest's virtual CPUs: its trace's metadata, else
                            the replay's ``vcpus`` (default 1); summed on host rows
==========================  ===================================================

:func:`cmmsim.replay.costs.price` adds the time and CPU columns (``stall_ns`` ...)
from these.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from cmmsim.replay.engine import ENGINE_VERSION
from cmmsim.replay.result import EngineResult
from cmmsim.replay.states import COUNTERS, PAIRS
from cmmsim.tracer import params as params_mod
from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.schema import MAX_VCPUS

__all__ = [
    "DEFAULT_VCPUS",
    "IO_COLUMNS",
    "Replayed",
    "check_vcpus",
    "guest_vcpus",
    "nan_column",
    "params_json",
    "results_frame",
    "series_frame",
    "states_frame",
]

IO_COLUMNS = ("host_reads", "host_writes", "guest_reads", "guest_writes")
#: vCPUs of a guest whose trace does not say.
DEFAULT_VCPUS = 1


class Replayed(NamedTuple):
    """What one replay produces: result rows, and the optional time series."""

    results: pl.DataFrame
    states: pl.DataFrame | None
    series: pl.DataFrame | None


def params_json(params: Any) -> str:
    """Canonical JSON of a params dataclass (the ``params`` column)."""
    return json.dumps(params_mod.as_dict(params), sort_keys=True)


def _labelled(frame: pl.DataFrame, scenario, strategy: str, params: Any) -> pl.DataFrame:
    """``frame`` with the scenario, strategy and params columns first."""
    return frame.select(
        pl.lit(scenario.name, dtype=pl.String).alias("scenario"),
        pl.lit(strategy, dtype=pl.String).alias("strategy"),
        pl.lit(params_json(params), dtype=pl.String).alias("params"),
        pl.all(),
    )


def check_vcpus(vcpus: int) -> None:
    """Refuse a vCPU count that is not a whole number >= 1 (2.5 would price as 2)."""
    if isinstance(vcpus, bool) or not isinstance(vcpus, int | np.integer):
        raise ParamError(f"vcpus must be a whole number of CPUs, got {vcpus!r}")
    if not 1 <= vcpus <= MAX_VCPUS:
        raise ParamError(f"vcpus must be >= 1 and <= {MAX_VCPUS:,}, got {vcpus:,}")


def guest_vcpus(scenario, vcpus: int | None = None) -> np.ndarray:
    """Each guest's virtual CPUs: from its trace's metadata, else ``vcpus``
    (default :data:`DEFAULT_VCPUS`)."""
    fallback = DEFAULT_VCPUS if vcpus is None else vcpus
    check_vcpus(fallback)
    known = getattr(scenario, "guest_vcpus", None)
    if known is None:
        return np.full(scenario.n_guests, fallback, np.int64)
    return np.where(known > 0, known, fallback).astype(np.int64)


def nan_column(df: pl.DataFrame) -> str | None:
    """The first float column of ``df`` holding NaN, or None.

    cmmsim writes an undefined figure (``overhead_pct`` of a trace with no
    duration) as null, never NaN, so a NaN says the rows were not written by it
    (and a plot of NaN is empty axes).
    """
    return next((c for c, t in df.schema.items() if t.is_float() and df[c].is_nan().any()), None)


def outdated(columns: list[str]) -> list[str]:
    """The counters of :data:`cmmsim.replay.states.COUNTERS` a result frame of
    ``columns`` lacks: rows written before those counters were (empty: none lacks).
    ``sum_resident_pages`` is never a column: rows hold its mean."""
    return [c for c in COUNTERS if c != "sum_resident_pages" and c not in columns]


def results_frame(scenario, strategy: str, params: Any, res: EngineResult, *, vcpus: int | None = None) -> pl.DataFrame:
    """Host and per-guest result rows (columns in the module docstring).

    ``vcpus`` counts the virtual CPUs of every guest whose trace does not
    say (default :data:`DEFAULT_VCPUS`).
    """
    nb, ng, _ = res.counters.shape
    cpus = guest_vcpus(scenario, vcpus)
    duration = int(getattr(scenario, "duration_ns", 0))
    events_g = scenario.events_per_guest
    base = {
        "scenario": scenario.name,
        "strategy": strategy,
        "params": params_json(params),
        "engine_version": ENGINE_VERSION,
    }
    rows: list[dict[str, Any]] = []
    n_events = max(scenario.n_events, 1)
    for b in range(nb):
        total = res.counters[b].sum(axis=0)
        host = dict(zip(COUNTERS, (int(x) for x in total), strict=True))
        host["peak_resident_pages"] = int(res.host_peak[b])
        host["sum_resident_pages"] = int(res.host_sum_resident[b])
        per = [(None, "host", int(scenario.guest_pages.sum()), scenario.n_events, host, ng, int(cpus.sum()))]
        for g in range(ng):
            c = dict(zip(COUNTERS, (int(x) for x in res.counters[b, g]), strict=True))
            per.append((g, scenario.guest_names[g], int(scenario.guest_pages[g]), int(events_g[g]), c, 1, int(cpus[g])))
        for guest, gname, gpages, ev, c, n_guests, n_cpus in per:
            mean = c.pop("sum_resident_pages") / n_events
            row = base | {
                "budget_pages": int(res.budgets[b]),
                "guest": guest,
                "guest_name": gname,
                "guest_pages": gpages,
                "events": ev,
            }
            row |= c
            row["tier_pages"] = int(res.tier_pages)
            row["total_io"] = sum(c[k] for k in IO_COLUMNS)
            row["mean_resident_pages"] = mean
            row |= {"duration_ns": duration, "guests": n_guests, "vcpus": n_cpus}
            rows.append(row)
    schema = {"guest": pl.Int32, "mean_resident_pages": pl.Float64}
    return pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)


def states_frame(scenario, strategy: str, params: Any, res: EngineResult, at: np.ndarray) -> pl.DataFrame:
    """State-distribution time series, long format.

    Columns: scenario, strategy, params, budget_pages, t_ns (int, sample
    time), guest (int), guest_name (str), state (str: Sr Sp Sz Ur Uz Vr Vz
    Pr), pages (int).
    """
    nb, ns, ng, npairs = res.samples.shape
    b_idx, s_idx, g_idx, k_idx = np.indices((nb, ns, ng, npairs)).reshape(4, -1)
    names = pl.Series(list(scenario.guest_names), dtype=pl.String)
    pairs = pl.Series(list(PAIRS), dtype=pl.String)
    frame = pl.DataFrame(
        {
            "budget_pages": res.budgets[b_idx],
            "t_ns": at[s_idx],
            "guest": g_idx.astype(np.int32),
            "guest_name": names.gather(g_idx),
            "state": pairs.gather(k_idx),
            "pages": res.samples.reshape(-1),
        }
    )
    return _labelled(frame, scenario, strategy, params)


def series_frame(
    scenario, strategy: str, params: Any, res: EngineResult, columns: tuple[str, ...], derive=None
) -> pl.DataFrame:
    """A strategy's per-period series, long by guest.

    Columns: scenario, strategy, params, budget_pages, period (int), t_ns
    (int, end of the period), guest (int), guest_name (str), guest_pages, then
    the strategy's own ``columns`` (:attr:`cmmsim.replay.strategies.Strategy.series`)
    and what its ``derive`` adds, all at the end of the period.
    """
    nb, npd, ng, nk = res.series.shape
    b_idx, k_idx, g_idx = np.indices((nb, npd, ng)).reshape(3, -1)
    flat = res.series.reshape(-1, nk)
    names = pl.Series(list(scenario.guest_names), dtype=pl.String)
    gp = scenario.guest_pages.astype(np.int64)[g_idx]
    frame = pl.DataFrame(
        {
            "budget_pages": res.budgets[b_idx],
            "period": k_idx.astype(np.int64),
            "t_ns": res.series_t_ns[k_idx],
            "guest": g_idx.astype(np.int32),
            "guest_name": names.gather(g_idx),
            "guest_pages": gp,
            **{name: flat[:, j] for j, name in enumerate(columns)},
        }
    )
    if derive is not None:
        frame = derive(frame)
    return _labelled(frame, scenario, strategy, params)
