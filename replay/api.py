"""The library entry points of the replay engine: ``replay_full`` and ``replay``.

Result frames and their columns are :mod:`cmmsim.replay.frames`; budgets are parsed
by :mod:`cmmsim.replay.budgets`, durations and sample times by :mod:`cmmsim.replay.times`
(their names are re-exported here for callers of the API).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from cmmsim.replay.budgets import parse_budget, parse_budgets
from cmmsim.replay.costs import load_profile, price
from cmmsim.replay.frames import (
    IO_COLUMNS,
    Replayed,
    check_vcpus,
    params_json,
    results_frame,
    series_frame,
    states_frame,
)
from cmmsim.replay.scenario import Scenario
from cmmsim.replay.strategies import get_strategy
from cmmsim.replay.times import parse_duration_ns, sample_times, sample_times_between

__all__ = [
    "IO_COLUMNS",
    "Replayed",
    "params_json",
    "parse_budget",
    "parse_budgets",
    "parse_duration_ns",
    "replay",
    "replay_full",
    "results_frame",
    "sample_times",
    "sample_times_between",
    "series_frame",
    "states_frame",
]


def __dir__() -> list[str]:
    # The public names only: dir() and tab completion do not offer np, pl or helpers.
    return sorted(__all__)


def replay_full(
    scenario: Scenario,
    strategy: str,
    budgets: Sequence[str | int],
    params: list[str] | dict | None = None,
    *,
    states_interval_ns: int | None = None,
    series: bool | None = None,
    costs=None,
    vcpus: int | None = None,
    tier_pages: int = 0,
    on_events: Callable[[int], None] | None = None,
) -> Replayed:
    """Replay a scenario: results, states (if asked) and the strategy's per-period series.

    Parameters
    ----------
    scenario : Scenario
        From :func:`cmmsim.replay.scenario.load`.
    strategy : str
        Registered strategy name.
    budgets : sequence of str or int
        Host budgets (see :func:`cmmsim.replay.budgets.parse_budget`).
    params : list of ``k=v`` or dict, optional
        Strategy parameters.
    states_interval_ns : int, optional
        Sample the state distribution every this many ns (a
        :class:`cmmsim.tracer.errors.ParamError` for a strategy without page states).
    series : bool, optional
        The per-period series: None, when the strategy writes one; True, asked
        for (a ParamError for a strategy without one); False, not wanted.
    costs : str, path or cmmsim.replay.costs.CostProfile, optional
        The cost profile the rows are priced under (:func:`cmmsim.replay.costs.price`;
        default :data:`cmmsim.replay.costs.DEFAULT_PROFILE`).
    vcpus : int, optional
        Virtual CPUs of each guest whose trace does not say (default 1).
    tier_pages : int
        A fast host swap tier of that many pages before the disk
        (:mod:`cmmsim.replay.kernels.tier`), for a strategy that has one
        (:attr:`cmmsim.replay.strategies.Strategy.host_tier`); 0: none.
    on_events : callable, optional
        Progress: called with the events replayed so far since the last call,
        every event once in all. A strategy on the engine reports chunk by chunk
        (:func:`cmmsim.replay.engine.run`); the others, all at the end.
    """
    strat = get_strategy(strategy)
    strat.check_tier(tier_pages)
    if states_interval_ns:
        strat.check_states()
    if series:
        strat.check_series()
    p = strat.parse_params(params)
    profile = load_profile(costs)  # a bad profile fails before the replay
    if vcpus is not None:  # and so does a bad vCPU count
        check_vcpus(vcpus)
    b = parse_budgets(budgets, int(scenario.guest_pages.sum()))
    at = sample_times(scenario, states_interval_ns) if states_interval_ns else None
    reported = 0

    def counted(n: int) -> None:
        nonlocal reported
        reported += n
        on_events(n)

    res = strat.run(scenario, b, p, sample_at=at, tier_pages=tier_pages, on_events=counted if on_events else None)
    if on_events is not None and scenario.n_events > reported:
        on_events(scenario.n_events - reported)
    results = price(results_frame(scenario, strategy, p, res, vcpus=vcpus), profile)
    states = states_frame(scenario, strategy, p, res, at) if at is not None else None
    per_period = None
    if strat.series is not None and series is not False:
        per_period = series_frame(scenario, strategy, p, res, strat.series.columns, strat.series.derive)
    return Replayed(results, states, per_period)


def replay(
    scenario: Scenario,
    strategy: str,
    budgets: Sequence[str | int],
    params: list[str] | dict | None = None,
    *,
    costs=None,
    vcpus: int | None = None,
    tier_pages: int = 0,
) -> pl.DataFrame:
    """Replay a scenario under one strategy at several budgets; one frame of results.

    See :func:`replay_full` for the arguments and :mod:`cmmsim.replay.frames` for
    the columns.
    """
    return replay_full(scenario, strategy, budgets, params, costs=costs, vcpus=vcpus, tier_pages=tier_pages).results
