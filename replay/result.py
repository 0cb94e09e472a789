"""The raw integers every strategy's ``run`` returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmmsim.replay.states import PAIRS


@dataclass(frozen=True)
class EngineResult:
    """Raw integers of one replay at several budgets.

    Attributes
    ----------
    budgets : ndarray[int64]
        Host budgets, frames, as asked.
    counters : ndarray[int64], shape (budgets, guests, len(COUNTERS))
        Per-guest counters (see :data:`cmmsim.replay.states.COUNTERS`).
    host_peak : ndarray[int64], shape (budgets,)
        Peak resident frames on the host.
    host_sum_resident : ndarray[int64], shape (budgets,)
        Sum over events of host resident frames.
    final_states : ndarray[uint8], shape (budgets, pages) or (0, pages)
        Final state bytes, when asked for.
    samples : ndarray[int64], shape (budgets, samples, guests, len(PAIRS))
        Pages per (guest, state pair) at each sample time.
    series : ndarray[int64], shape (budgets, periods, guests, columns), optional
        A strategy's own per-period series (its columns:
        :attr:`cmmsim.replay.strategies.Strategy.series`).
    series_t_ns : ndarray[int64], shape (periods,), optional
        End time of each period, ns.
    tier_pages : int
        Capacity of the host's fast swap tier, pages (0: none; :mod:`cmmsim.replay.kernels.tier`).
    """

    budgets: np.ndarray
    counters: np.ndarray
    host_peak: np.ndarray
    host_sum_resident: np.ndarray
    final_states: np.ndarray
    samples: np.ndarray
    series: np.ndarray | None = None
    series_t_ns: np.ndarray | None = None
    tier_pages: int = 0


def without_states(
    budgets: np.ndarray, counters: np.ndarray, host: np.ndarray, final: np.ndarray, n_guests: int, **series
) -> EngineResult:
    """The result of a kernel that samples no page states: ``host[:, 0]`` the peaks,
    ``host[:, 1]`` the frame-event sums; ``series`` and ``series_t_ns`` if it has them,
    and ``tier_pages`` if it has a host swap tier."""
    return EngineResult(
        budgets,
        counters,
        host[:, 0].copy(),
        host[:, 1].copy(),
        final,
        np.zeros((len(budgets), 0, n_guests, len(PAIRS)), np.int64),
        **series,
    )
