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
        Every runner takes ``on_events=`` (progress as it goes: chunk by chunk
        on the engine, else its kernel watched, :func:`cmmsim.replay.watch.watched`);
        a strategy with an :attr:`engine` takes ``chunk_events=`` too
        (:func:`cmmsim.replay.engine.run`).
    reference : callable
        ``reference(scenario, budget, params) -> ReferenceResult``: the slow
        twin the tests hold ``run`` to (with ``tier_pages=`` too when
        :attr:`host_tier`).
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
    host_tier : bool
        It pages on the host and takes a fast host swap tier before the disk
        (``tier_pages``, :mod:`cmmsim.replay.kernels.tier`): its ``runner``
        accepts ``tier_pages=``. Every strategy that pages on the host has one
        (docs/model.md); its victim order is a parameter of its own (``replacement``
        or ``reclaim_order``: LRU or Linux's two lists; CLOCK for ``host-lru``,
        state-priority for ``cmm``).
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
    host_tier: bool = False

    @property
    def streams(self) -> bool:
        """Whether it can replay a trace a chunk at a time (:mod:`cmmsim.replay.stream`)."""
        return self.engine is not None

    def parse_params(self, pairs: list[str] | dict | None) -> Any:
        return params_mod.parse(self.params, pairs, what=f"strategy {self.name}")

    def run(
        self,
        scenario,
        budgets,
        params,
        sample_at=None,
        keep_final: bool = False,
        tier_pages: int = 0,
        on_events: Callable[[int], None] | None = None,
        chunk_events: int | None = None,
    ):
        """Replay ``scenario`` at every budget (frames); see :attr:`runner`.

        ``tier_pages``: a fast host swap tier of that many pages (0: none), for a
        strategy with :attr:`host_tier` only (any other is a ParamError).
        ``on_events``: progress, called with the events replayed since its last
        call: by the strategies that run on the engine (:attr:`streams`) for
        each chunk, ``chunk_events`` at a time (:func:`cmmsim.replay.engine.run`),
        by ``host-lru``'s one stack pass and the other strategies as their
        kernel goes (:func:`cmmsim.replay.watch.watched`).

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
        self.check_tier(tier_pages)
        self.check_times(scenario, params)
        # Only a strategy with a tier is passed one: the others' runners know nothing of it.
        extra = {"tier_pages": int(tier_pages)} if tier_pages else {}
        if on_events is not None:
            extra |= {"on_events": on_events}
            if self.streams:
                extra |= {"chunk_events": chunk_events}
        res = self.runner(
            scenario, validated(budgets, scenario.n_pages), params, sample_at=sample_at, keep_final=keep_final, **extra
        )
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
                raise ParamError(
                    f"strategy {self.name}: {f.name}={value:,} ns after the last "
                    f"event (t_ns={last:,}) passes 2^63 - 1 ns"
                )

    def check_tier(self, tier_pages: int) -> None:
        """Refuse a tier capacity below 0, or above 0 for a strategy without a tier."""
        check_tier_pages(tier_pages)
        if tier_pages and not self.host_tier:
            raise ParamError(
                f"strategy {self.name} has no host swap tier (--tier-pages); "
                f"strategies with one: {', '.join(names(host_tier=True))}"
            )

    def check_states(self) -> None:
        """Refuse a request for page-state samples unless the strategy keeps them."""
        if not self.samples_states:
            raise ParamError(
                f"strategy {self.name} keeps no page states to sample "
                f"(strategies that do: {', '.join(names(samples_states=True))})"
            )

    def check_series(self) -> None:
        """Refuse a request for a per-period series unless the strategy writes one."""
        if self.series is None:
            raise ParamError(
                f"strategy {self.name} writes no per-period series "
                f"(strategies that do: {', '.join(names(has_series=True))})"
            )

    def check_streams(self) -> None:
        """Refuse to stream a strategy that needs the whole trace."""
        if not self.streams:
            raise ParamError(
                f"strategy {self.name} cannot stream (it needs the whole trace); "
                f"streaming strategies: {', '.join(names(streams=True))}"
            )


#: The largest tier capacity, pages (the tier's links are int32).
MAX_TIER_PAGES = (1 << 31) - 1


def check_tier_pages(tier_pages: int) -> None:
    """Refuse a tier capacity that is not a whole number of pages in 0 .. 2^31 - 1."""
    if isinstance(tier_pages, bool) or not isinstance(tier_pages, int | np.integer):
        raise ParamError(f"tier_pages must be a whole number of pages, got {tier_pages!r}")
    if not 0 <= tier_pages <= MAX_TIER_PAGES:
        raise ParamError(f"tier_pages must be 0..{MAX_TIER_PAGES:,}, got {tier_pages:,}")


def _check_accesses(name: str, scenario, res) -> None:
    """Every budget's counters hold every access of the scenario, or the kernel failed."""
    from cmmsim.replay.states import C_ACCESSES

    want = scenario.accesses_per_guest
    got = res.counters[:, :, C_ACCESSES]
    bad = np.flatnonzero((got != want[None, :]).any(axis=1))
    if bad.size:
        b = int(bad[0])
        raise KernelError(
            f"strategy {name}: the kernel counted {int(got[b].sum()):,} accesses at "
            f"budget {int(res.budgets[b]):,} where the trace has {int(want.sum()):,} "
            "(it failed part way: out of memory?)"
        )


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


def names(
    *,
    streams: bool | None = None,
    samples_states: bool | None = None,
    has_series: bool | None = None,
    host_tier: bool | None = None,
) -> list[str]:
    """Names of the registered strategies with the capabilities asked for."""
    return [
        s.name
        for s in strategies().values()
        if (streams is None or s.streams == streams)
        and (samples_states is None or s.samples_states == samples_states)
        and (has_series is None or (s.series is not None) == has_series)
        and (host_tier is None or s.host_tier == host_tier)
    ]


def get_strategy(name: str) -> Strategy:
    """Look a strategy up by name; unknown names list the known ones."""
    known = strategies()
    if not isinstance(name, str) or name not in known:
        raise ParamError(f"unknown strategy {name!r} (known: {', '.join(known)})")
    return known[name]


def engine_config(honour: int, initial: int, order_of: Callable[[Any], str]) -> Callable[[Any], tuple[int, int, int]]:
    """``params -> (honour, order, initial)`` for a strategy that is one engine configuration."""
    from cmmsim.replay import engine

    return lambda params: (honour, engine.ORDERS[order_of(params)], initial)


def engine_runner(config: Callable[[Any], tuple[int, int, int]]) -> Callable[..., Any]:
    """A ``runner`` for strategies that are one configuration of the common kernel."""
    from cmmsim.replay import engine

    def run(
        scenario, budgets, params, sample_at=None, keep_final=False, tier_pages=0, on_events=None, chunk_events=None
    ):
        honour, order, initial = config(params)
        return engine.run(
            scenario,
            budgets,
            honour=honour,
            order=order,
            initial=initial,
            sample_at=sample_at,
            keep_final=keep_final,
            tier_pages=tier_pages,
            on_events=on_events,
            chunk_events=chunk_events,
        )

    return run
