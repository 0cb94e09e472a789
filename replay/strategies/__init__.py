"""Reclaim strategies, one module each, found by :func:`strategies`.

A strategy module defines a frozen params dataclass and a module-level
``STRATEGY = Strategy(...)``. Nothing else in the code base names
strategies: adding one touches only its own module.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracer import params as params_mod
from tracer.errors import ParamError


@dataclass(frozen=True)
class Strategy:
    """A registered strategy.

    Attributes
    ----------
    name : str
        Command-line name.
    params : type
        Frozen dataclass of parameters, every field with a default.
    run : callable
        ``run(scenario, budgets, params, sample_at, keep_final) -> EngineResult``:
        the numba path, all budgets in one call.
    reference : callable
        ``reference(scenario, budget, params) -> ReferenceResult``: the slow
        twin the tests hold ``run`` to.
    summary : str
        One line for listings.
    offline : bool
        Needs the future (a floor to compare with, not a contender).
    engine : callable, optional
        ``engine(params) -> (honour, order, initial)`` when the strategy is
        one configuration of the common engine kernel: it can then stream
        (:mod:`replay.stream`).
    """

    name: str
    params: type
    run: Callable[..., Any]
    reference: Callable[..., Any]
    summary: str
    offline: bool = False
    engine: Callable[[Any], tuple[int, int, int]] | None = None

    def parse_params(self, pairs: list[str] | dict | None) -> Any:
        return params_mod.parse(self.params, pairs, what=f"strategy {self.name}")


@functools.cache
def strategies() -> dict[str, Strategy]:
    """Every strategy module in this package, by name."""
    found: dict[str, Strategy] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        strat = getattr(module, "STRATEGY", None)
        if isinstance(strat, Strategy):
            found[strat.name] = strat
    return dict(sorted(found.items()))


def get_strategy(name: str) -> Strategy:
    """Look a strategy up by name; unknown names list the known ones."""
    known = strategies()
    if name not in known:
        raise ParamError(f"unknown strategy {name!r} (known: {', '.join(known)})")
    return known[name]


def engine_config(honour: int, initial: int,
                  order_of: Callable[[Any], str]) -> Callable[[Any], tuple[int, int, int]]:
    """``params -> (honour, order, initial)`` for a strategy that is one engine configuration."""
    from replay import engine

    return lambda params: (honour, engine.ORDERS[order_of(params)], initial)


def engine_runner(config: Callable[[Any], tuple[int, int, int]]) -> Callable[..., Any]:
    """A ``run`` for strategies that are one configuration of the common kernel."""
    from replay import engine

    def run(scenario, budgets: np.ndarray, params, sample_at=None, keep_final=False):
        honour, order, initial = config(params)
        return engine.run(scenario, budgets, honour=honour, order=order, initial=initial,
                          sample_at=sample_at, keep_final=keep_final)

    return run
