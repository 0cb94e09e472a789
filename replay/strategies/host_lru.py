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
    """Exact LRU in one stack pass, unless states are asked for or one budget has two threads.

    The stack pass of 20 budgets costs 0.80-1.07 single-budget replays on the
    sample traces, 1.9-2.5 on the miss-heavy synthetic stream
    (benchmarks/bench_onepass.py, session 8). Measured in session 5: with two
    budgets it took 0.38-0.74x the time of the two replays on every sample trace
    and 0.62x on the synthetic stream; one budget against the two-thread replay
    was a toss-up (0.3-1.6x), so it keeps its replay; with numba on one thread
    (sweep workers) the pass took 0.58-1.12x the one-thread replay on the sample
    traces (budgets of 5, 50 and 100 % of the footprint; slower only at 5 % on
    three of them) and 0.4-0.7x on the synthetic stream.
    """
    n_budgets = len(np.unique(np.asarray(budgets)))
    if (params.replacement == "lru" and sample_at is None and not keep_final
            and (n_budgets >= 2 or numba.get_num_threads() == 1)):
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
