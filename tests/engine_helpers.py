"""Helpers that run a strategy's kernel and its reference twin side by side."""

from __future__ import annotations

import numpy as np

from replay import scenario as sc
from replay import states as S
from replay.strategies import get_strategy

STATE_BITS = 0x7F  # everything but the CLOCK reference / scratch bit


def run_both(strategy: str, params: dict, scn: sc.Scenario, budget: int, sample_at=None):
    """Kernel and twin on one scenario at one budget; asserts they agree exactly.

    Returns the kernel's EngineResult (one budget).
    """
    strat = get_strategy(strategy)
    p = strat.parse_params(params)
    res = strat.run(scn, np.array([budget]), p, sample_at=sample_at, keep_final=True)
    ref = strat.reference(scn, budget, p)
    assert np.array_equal(res.counters[0], ref.counters), (
        f"{strategy} {params} budget {budget}: counters differ\n"
        f"kernel {dict(zip(S.COUNTERS, res.counters[0].sum(0).tolist(), strict=True))}\n"
        f"twin   {dict(zip(S.COUNTERS, ref.counters.sum(0).tolist(), strict=True))}")
    assert int(res.host_peak[0]) == ref.host_peak
    assert int(res.host_sum_resident[0]) == ref.host_sum_resident
    if res.final_states.shape[0]:
        np.testing.assert_array_equal(res.final_states[0] & STATE_BITS, ref.final_states)
    else:  # a strategy without page states (opt)
        assert ref.final_states.size == 0
    return res


def host_counters(res) -> dict[str, int]:
    """Counters summed over guests, first budget, without the resident statistics."""
    total = res.counters[0].sum(axis=0)
    return {k: int(v) for k, v in zip(S.COUNTERS, total, strict=True)
            if k not in ("peak_resident_pages", "sum_resident_pages")}


def final_states(res) -> list[str]:
    return [S.describe(int(b) & STATE_BITS) for b in res.final_states[0]]


def scenario_of(*guests) -> sc.Scenario:
    """A scenario from TraceArrays (one per guest)."""
    return sc.from_arrays([(f"g{i}", a) for i, a in enumerate(guests)], name="test")
