"""The library entry points of the replay engine: budgets, ``replay``, result frames.

Result frame columns (one row per budget for the host, ``guest`` null, and
one row per budget and guest):

==========================  ===================================================
scenario (str)              scenario name
strategy (str)              strategy name
params (str)                strategy parameters, canonical JSON
engine_version (int)        :data:`replay.engine.ENGINE_VERSION`
budget_pages (int)          host memory budget, 4 KiB frames
guest (int, null for host)  guest index
guest_name (str)            guest name, ``host`` for the total row
guest_pages (int)           guest memory, pages (sum over guests on host rows)
events (int)                events replayed (of that guest)
accesses ... content_lost   counters of :data:`replay.states.COUNTERS`
total_io (int)              host reads + host writes + guest reads + guest writes
peak_resident_pages (int)   most frames resident at once
mean_resident_pages (float) resident frames averaged over events
==========================  ===================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from replay import engine
from replay.scenario import Scenario
from replay.states import COUNTERS, PAIRS
from replay.strategies import get_strategy
from tracer import params as params_mod
from tracer.errors import ParamError
from tracer.schema import PAGE_SIZE_BYTES

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 10**6,
          "mib": 1 << 20, "g": 1 << 30, "gb": 10**9, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40}
_BUDGET_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z%]*)\s*$")
IO_COLUMNS = ("host_reads", "host_writes", "guest_reads", "guest_writes")


def parse_budget(spec: str | int, total_pages: int) -> int:
    """A host budget in frames.

    Parameters
    ----------
    spec : str or int
        Pages (``"4096"``), bytes with a unit (``"256MiB"``, ``"1.5GiB"``) or
        a percentage of total guest memory (``"50%"``).
    total_pages : int
        Total guest memory of the scenario, pages.
    """
    if isinstance(spec, int | np.integer) and not isinstance(spec, bool):
        pages = int(spec)
    else:
        m = _BUDGET_RE.match(str(spec))
        if not m:
            raise ParamError(f"budget {spec!r}: expected pages, bytes with a unit (256MiB) or a percentage (50%)")
        num, unit = float(m.group(1)), m.group(2).lower()
        if unit == "%":
            pages = int(round(total_pages * num / 100))
        elif unit in ("", "p", "pages"):
            if not num.is_integer():
                raise ParamError(f"budget {spec!r}: a page count must be a whole number")
            pages = int(num)
        elif unit in _UNITS:
            pages = int(num * _UNITS[unit]) // PAGE_SIZE_BYTES
        else:
            raise ParamError(f"budget {spec!r}: unknown unit {m.group(2)!r}")
    if pages < 1:
        raise ParamError(f"budget {spec!r}: must be at least one page")
    return pages


def parse_budgets(specs: Sequence[str | int], total_pages: int) -> np.ndarray:
    """Several budgets (sorted, duplicates removed), frames."""
    if not specs:
        raise ParamError("no budget given")
    return np.array(sorted({parse_budget(s, total_pages) for s in specs}), dtype=np.int64)


def params_json(params: Any) -> str:
    """Canonical JSON of a params dataclass (the ``params`` column)."""
    return json.dumps(params_mod.as_dict(params), sort_keys=True)


def sample_times(scenario: Scenario, interval_ns: int) -> np.ndarray:
    """State-sample times from the first event to past the last, every ``interval_ns``."""
    span = (int(scenario.t_ns[0]), int(scenario.t_ns[-1])) if scenario.n_events else None
    return sample_times_between(span, interval_ns)


def sample_times_between(span: tuple[int, int] | None, interval_ns: int) -> np.ndarray:
    """Sample times from ``span[0]`` to past ``span[1]`` (ns), every ``interval_ns``; [0] if None."""
    if interval_ns <= 0:
        raise ParamError(f"state sampling interval must be positive, got {interval_ns}")
    if span is None:
        return np.zeros(1, np.int64)
    t0, t1 = span
    n = (t1 - t0) // interval_ns + 2
    if n > 100_000:
        raise ParamError(f"state sampling interval {interval_ns} ns gives {n} samples; at most 100000")
    return t0 + interval_ns * np.arange(n, dtype=np.int64)


def results_frame(scenario: Scenario, strategy: str, params: Any,
                  res: engine.EngineResult) -> pl.DataFrame:
    """Host and per-guest result rows (columns in the module docstring)."""
    nb, ng, _ = res.counters.shape
    events_g = scenario.events_per_guest
    base = {"scenario": scenario.name, "strategy": strategy, "params": params_json(params),
            "engine_version": engine.ENGINE_VERSION}
    rows: list[dict[str, Any]] = []
    n_events = max(scenario.n_events, 1)
    for b in range(nb):
        total = res.counters[b].sum(axis=0)
        host = dict(zip(COUNTERS, (int(x) for x in total), strict=True))
        host["peak_resident_pages"] = int(res.host_peak[b])
        host["sum_resident_pages"] = int(res.host_sum_resident[b])
        per = [(None, "host", int(scenario.guest_pages.sum()), scenario.n_events, host)]
        for g in range(ng):
            c = dict(zip(COUNTERS, (int(x) for x in res.counters[b, g]), strict=True))
            per.append((g, scenario.guest_names[g], int(scenario.guest_pages[g]),
                        int(events_g[g]), c))
        for guest, gname, gpages, ev, c in per:
            mean = c.pop("sum_resident_pages") / n_events
            row = base | {"budget_pages": int(res.budgets[b]), "guest": guest,
                          "guest_name": gname, "guest_pages": gpages, "events": ev}
            row |= c
            row["total_io"] = sum(c[k] for k in IO_COLUMNS)
            row["mean_resident_pages"] = mean
            rows.append(row)
    schema = {"guest": pl.Int32, "mean_resident_pages": pl.Float64}
    return pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)


def states_frame(scenario: Scenario, strategy: str, params: Any, res: engine.EngineResult,
                 at: np.ndarray) -> pl.DataFrame:
    """State-distribution time series, long format.

    Columns: scenario, strategy, params, budget_pages, t_ns (int, sample
    time), guest (int), guest_name (str), state (str: Sr Sp Sz Ur Uz Vr Vz
    Pr), pages (int).
    """
    nb, ns, ng, npairs = res.samples.shape
    b_idx, s_idx, g_idx, k_idx = np.indices((nb, ns, ng, npairs)).reshape(4, -1)
    at = np.zeros(1, np.int64) if ns == 0 else at  # a strategy without page states (opt)
    names = pl.Series(list(scenario.guest_names), dtype=pl.String)
    pairs = pl.Series(list(PAIRS), dtype=pl.String)
    return pl.DataFrame({
        "budget_pages": res.budgets[b_idx],
        "t_ns": at[s_idx],
        "guest": g_idx.astype(np.int32),
        "guest_name": names.gather(g_idx),
        "state": pairs.gather(k_idx),
        "pages": res.samples.reshape(-1),
    }).select(
        pl.lit(scenario.name, dtype=pl.String).alias("scenario"),
        pl.lit(strategy, dtype=pl.String).alias("strategy"),
        pl.lit(params_json(params), dtype=pl.String).alias("params"),
        pl.all(),
    )


def series_frame(scenario: Scenario, strategy: str, params: Any,
                 res: engine.EngineResult) -> pl.DataFrame | None:
    """A balloon strategy's per-period series, long by guest; None for other strategies.

    Columns: scenario, strategy, params, budget_pages, period (int), t_ns
    (int, end of the period), guest (int), guest_name (str), guest_pages,
    estimate_pages, target_pages, balloon_pages, size_pages (guest memory -
    balloon), in_use_pages, resident_pages (host frames backing the guest),
    all pages at the end of the period.
    """
    if res.series is None:
        return None
    from replay.strategies.balloon import SERIES

    nb, npd, ng, nk = res.series.shape
    b_idx, k_idx, g_idx = np.indices((nb, npd, ng)).reshape(3, -1)
    flat = res.series.reshape(-1, nk)
    names = pl.Series(list(scenario.guest_names), dtype=pl.String)
    gp = scenario.guest_pages.astype(np.int64)[g_idx]
    cols = {name: flat[:, j] for j, name in enumerate(SERIES)}
    return pl.DataFrame({
        "budget_pages": res.budgets[b_idx], "period": k_idx.astype(np.int64),
        "t_ns": res.series_t_ns[k_idx], "guest": g_idx.astype(np.int32),
        "guest_name": names.gather(g_idx), "guest_pages": gp,
        **cols, "size_pages": gp - cols["balloon_pages"],
    }).select(
        pl.lit(scenario.name, dtype=pl.String).alias("scenario"),
        pl.lit(strategy, dtype=pl.String).alias("strategy"),
        pl.lit(params_json(params), dtype=pl.String).alias("params"),
        pl.all(),
    )


class Replayed(NamedTuple):
    """What one replay produces: result rows, and the optional time series."""

    results: pl.DataFrame
    states: pl.DataFrame | None
    balloon: pl.DataFrame | None


def replay_full(scenario: Scenario, strategy: str, budgets: Sequence[str | int],
                params: list[str] | dict | None = None, *,
                states_interval_ns: int | None = None) -> Replayed:
    """Replay a scenario: results, states (if asked) and balloon series (balloon strategies).

    Parameters
    ----------
    scenario : Scenario
        From :func:`replay.scenario.load`.
    strategy : str
        Registered strategy name.
    budgets : sequence of str or int
        Host budgets (see :func:`parse_budget`).
    params : list of ``k=v`` or dict, optional
        Strategy parameters.
    states_interval_ns : int, optional
        Sample the state distribution every this many ns.
    """
    strat = get_strategy(strategy)
    p = strat.parse_params(params)
    b = parse_budgets(budgets, int(scenario.guest_pages.sum()))
    at = sample_times(scenario, states_interval_ns) if states_interval_ns else None
    res = strat.run(scenario, b, p, sample_at=at)
    results = results_frame(scenario, strategy, p, res)
    states = states_frame(scenario, strategy, p, res, at) if at is not None else None
    return Replayed(results, states, series_frame(scenario, strategy, p, res))


def replay(scenario: Scenario, strategy: str, budgets: Sequence[str | int],
           params: list[str] | dict | None = None) -> pl.DataFrame:
    """Replay a scenario under one strategy at several budgets; one frame of results.

    See :func:`replay_full` for the arguments and the module docstring for
    the columns.
    """
    return replay_full(scenario, strategy, budgets, params).results


_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s|m|h)?\s*$")
_DURATION_NS = {None: 1, "ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9,
                "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration_ns(spec: str | int) -> int:
    """``"1s"``, ``"250ms"``, ``"10us"`` or plain nanoseconds -> int ns (>= 0)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        value = spec
    else:
        m = _DURATION_RE.match(str(spec))
        if not m:
            raise ParamError(f"duration {spec!r}: expected a number with ns, us, ms, s, m or h")
        value = int(round(float(m.group(1)) * _DURATION_NS[m.group(2)]))
    if value < 0:
        raise ParamError(f"duration {spec!r}: must not be negative")
    return value
