"""Reclaim strategies, one module (or package) each, found by :func:`strategies`.

A strategy module defines a frozen params dataclass and a module-level
``STRATEGY = Strategy(...)`` that declares what the strategy can do (stream,
sample page states, write a per-period series), names its plain-Python twin
and gives example parameters for the tests. Nothing else in the code base
names strategies: the API, the command line, streaming and the tests read the
declarations, so adding one touches only its own module.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cmmsim.replay.budgets import validated
from cmmsim.replay.times import T_MAX_NS
from cmmsim.tracer import params as params_mod
from cmmsim.tracer.errors import KernelError, ParamError


@dataclass(frozen=True)
class Series:
    """A per-period series a strategy writes.

    Attributes
    ----------
    columns : tuple of str
        Column names of the kernel's series, in the order of its last axis
        (:attr:`cmmsim.replay.result.EngineResult.series`).
    derive : callable, optional
        ``frame -> frame``: adds columns computed from those (and the frame's
        ``guest_pages``) to the series frame.
    """

    columns: tuple[str, ...]
    derive: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Strategy:
    """A registered strategy and what it can do.

    Attributes
    ----------
    name : str
        Command-line name.
    params : type
        Frozen dataclass of parameters, every field with a default.
    runner : callable
        ``runner(scenario, budgets, params, sample_at, keep_final) -> EngineResult``:
        the numba path, all budgets in one call (``budgets`` a validated
        :class:`cmmsim.replay.budgets.Budgets`); call it through :meth:`run`.
    reference : callable
        ``reference(scenario, budget, params) -> ReferenceResult``: the slow
        twin the tests hold ``run`` to.
    summary : str
        One line for listings.
    offline : bool
        Needs the future (a bound to compare with, not a contender).
    upper_bound : bool
        Offline, and bounds the offline optimum from above (a schedule an
        offline host could run): not a floor under the strategies, as the
        other offline ones are.
    engine : callable, optional
        ``engine(params) -> (honour, order, initial)`` when the strategy is
        one configuration of the common engine kernel: it can then stream
        (:mod:`cmmsim.replay.stream`).
    samples_states : bool
        Keeps the engine's page states, so it can count pages per state pair
        at sample times (``sample_at``).
    series : Series, optional
        The per-period series it writes.
    examples : tuple of dict
        Parameter sets for the tests: together they take every value of every
        choice parameter (periods in nanoseconds suit the random test traces).
    frame_per_guest : bool
        It gives each guest a share of the budget, so a budget needs at least
        a frame per guest.
    """

    name: str
    params: type
    runner: Callable[..., Any]
    reference: Callable[..., Any]
    summary: str
    offline: bool = False
    upper_bound: bool = False
    engine: Callable[[Any], tuple[int, int, int]] | None = None
    samples_states: bool = False
    series: Series | None = None
    examples: tuple[dict, ...] = ({},)
    frame_per_guest: bool = False

    @property
    def streams(self) -> bool:
        """Whether it can replay a trace a chunk at a time (:mod:`cmmsim.replay.stream`)."""
        return self.engine is not None

    def parse_params(self, pairs: list[str] | dict | None) -> Any:
        return params_mod.parse(self.params, pairs, what=f"strategy {self.name}")

    def run(self, scenario, budgets, params, sample_at=None, keep_final: bool = False):
        """Replay ``scenario`` at every budget (frames); see :attr:`runner`.

        Budgets are validated here, once; asking for state samples from a
        strategy without page states is a :class:`cmmsim.tracer.errors.ParamError`,
        and so is a time parameter (``*_ns``) that would carry the scenario's
        last time past 2^63 - 1 ns. Every result is checked to have counted
        every access of the scenario at every budget: a kernel that failed
        part way (an allocation refused inside a parallel loop) raises
        :class:`cmmsim.tracer.errors.KernelError` instead of returning zeros.
        """
        if sample_at is not None:
            self.check_states()
        self.check_times(scenario, params)
        res = self.runner(scenario, validated(budgets, scenario.n_pages), params,
                          sample_at=sample_at, keep_final=keep_final)
        _check_accesses(self.name, scenario, res)
        return res

    def check_times(self, scenario, params) -> None:
        """Refuse a ``*_ns`` parameter that would carry the last event's time past 2^63 - 1 ns."""
        if not scenario.n_events:
            return
        last = int(scenario.t_ns[-1])
        for f in dataclasses.fields(params):
            value = getattr(params, f.name)
            if f.name.endswith("_ns") and isinstance(value, int) and last + value > T_MAX_NS:
                raise ParamError(f"strategy {self.name}: {f.name}={value:,} ns after the last "
                                 f"event (t_ns={last:,}) passes 2^63 - 1 ns")

    def check_states(self) -> None:
        """Refuse a request for page-state samples unless the strategy keeps them."""
        if not self.samples_states:
            raise ParamError(f"strategy {self.name} keeps no page states to sample "
                             f"(strategies that do: {', '.join(names(samples_states=True))})")

    def check_series(self) -> None:
        """Refuse a request for a per-period series unless the strategy writes one."""
        if self.series is None:
            raise ParamError(f"strategy {self.name} writes no per-period series "
                             f"(strategies that do: {', '.join(names(has_series=True))})")

    def check_streams(self) -> None:
        """Refuse to stream a strategy that needs the whole trace."""
        if not self.streams:
            raise ParamError(f"strategy {self.name} cannot stream (it needs the whole trace); "
                             f"streaming strategies: {', '.join(names(streams=True))}")


def _check_accesses(name: str, scenario, res) -> None:
    """Every budget's counters hold every access of the scenario, or the kernel failed."""
    from cmmsim.replay.states import C_ACCESSES, OP_WRITE

    want = np.bincount(scenario.guest[scenario.op <= OP_WRITE], minlength=scenario.n_guests)
    got = res.counters[:, :, C_ACCESSES]
    bad = np.flatnonzero((got != want[None, :]).any(axis=1))
    if bad.size:
        b = int(bad[0])
        raise KernelError(f"strategy {name}: the kernel counted {int(got[b].sum()):,} accesses at "
                          f"budget {int(res.budgets[b]):,} where the trace has {int(want.sum()):,} "
                          "(it failed part way: out of memory?)")


@functools.cache
def strategies() -> dict[str, Strategy]:
    """Every strategy module or package in this package, by name."""
    found: dict[str, Strategy] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        strat = getattr(module, "STRATEGY", None)
        if isinstance(strat, Strategy):
            found[strat.name] = strat
    return dict(sorted(found.items()))


def names(*, streams: bool | None = None, samples_states: bool | None = None,
          has_series: bool | None = None) -> list[str]:
    """Names of the registered strategies with the capabilities asked for."""
    return [s.name for s in strategies().values()
            if (streams is None or s.streams == streams)
            and (samples_states is None or s.samples_states == samples_states)
            and (has_series is None or (s.series is not None) == has_series)]


def get_strategy(name: str) -> Strategy:
    """Look a strategy up by name; unknown names list the known ones."""
    known = strategies()
    if name not in known:
        raise ParamError(f"unknown strategy {name!r} (known: {', '.join(known)})")
    return known[name]


def engine_config(honour: int, initial: int,
                  order_of: Callable[[Any], str]) -> Callable[[Any], tuple[int, int, int]]:
    """``params -> (honour, order, initial)`` for a strategy that is one engine configuration."""
    from cmmsim.replay import engine

    return lambda params: (honour, engine.ORDERS[order_of(params)], initial)


def engine_runner(config: Callable[[Any], tuple[int, int, int]]) -> Callable[..., Any]:
    """A ``runner`` for strategies that are one configuration of the common kernel."""
    from cmmsim.replay import engine

    def run(scenario, budgets, params, sample_at=None, keep_final=False):
        honour, order, initial = config(params)
        return engine.run(scenario, budgets, honour=honour, order=order, initial=initial,
                          sample_at=sample_at, keep_final=keep_final)

    return run
