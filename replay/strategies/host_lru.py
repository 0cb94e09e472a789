"""``host-lru``: host paging alone, the baseline.

The host knows nothing of the guest (the guest sends no hints): every page
is stable to it, every reclaimed changed page is written, every re-access
to a paged-out page is read back, even when the guest had freed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numba
import numpy as np

from replay import reference
from replay.states import HONOUR_NONE, INITIAL_NO_HINTS
from replay.strategies import Strategy, engine_config, engine_runner


@dataclass(frozen=True)
class Params:
    replacement: Literal["lru", "clock"] = field(
        default="lru", metadata={"help": "victim choice: exact LRU or CLOCK (second chance)"})


_config = engine_config(HONOUR_NONE, INITIAL_NO_HINTS, lambda p: p.replacement)
_per_budget = engine_runner(_config)


def run(scenario, budgets, params, sample_at=None, keep_final=False):
    """Exact LRU: every budget in one stack pass, unless states are asked for.

    The stack pass costs 1.7-8 single-budget replays (benchmarks/bench_onepass.py,
    20 budgets); up to as many budgets as numba has threads the per-budget
    replays are used (with two budgets, measured against the pass: 0.45-0.72x
    its time on real traces, 2.9x on the miss-heavy synthetic stream).
    """
    n_budgets = len(np.unique(np.asarray(budgets)))
    if (params.replacement == "lru" and sample_at is None and not keep_final
            and n_budgets > numba.get_num_threads()):
        from replay.onepass import run_lru_all

        return run_lru_all(scenario, budgets)
    return _per_budget(scenario, budgets, params, sample_at=sample_at, keep_final=keep_final)


STRATEGY = Strategy(
    name="host-lru",
    params=Params,
    run=run,
    reference=reference.host_lru,
    summary="host paging only (LRU or CLOCK); the guest sends no hints",
    engine=_config,
)
