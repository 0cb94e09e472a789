"""``host-lru``: host paging alone, the baseline.

The host knows nothing of the guest (the guest sends no hints): every page
is stable to it, every reclaimed changed page is written, every re-access
to a paged-out page is read back, even when the guest had freed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cmmsim.replay import engine, planner, reference
from cmmsim.replay.budgets import validated
from cmmsim.replay.states import HONOUR_NONE, INITIAL_NO_HINTS
from cmmsim.replay.strategies import Strategy, engine_config


@dataclass(frozen=True)
class Params:
    replacement: Literal["lru", "clock", "two-list"] = field(
        default="lru",
        metadata={
            "help": "victim choice: exact LRU, CLOCK (second chance) or two-list "
            "(Linux's active/inactive lists, docs/model.md)"
        },
    )


_config = engine_config(HONOUR_NONE, INITIAL_NO_HINTS, lambda p: p.replacement)


def run(scenario, budgets, params, sample_at=None, keep_final=False, tier_pages=0, on_events=None, chunk_events=None):
    """Exact LRU in one stack pass, or each budget on the engine (any replacement), as
    :mod:`cmmsim.replay.planner` chooses (not in one pass with a tier: the stack pass
    counts no tier). Both report progress
    (``on_events``): the replay per budget chunk by chunk (:func:`cmmsim.replay.engine.run`),
    the stack pass as it goes (:func:`cmmsim.replay.watch.watched`)."""
    b = validated(budgets, scenario.n_pages)
    path = planner.choose(
        exact_lru=params.replacement == "lru",
        n_budgets=len(b),
        n_events=scenario.n_events,
        one_pass=(params.replacement == "lru" and sample_at is None and not keep_final and not tier_pages),
        in_memory=True,
    )
    if path == planner.ONE_PASS:
        from cmmsim.replay.onepass import run_lru_all

        return run_lru_all(scenario, b, on_events=on_events)
    honour, order, initial = _config(params)
    return engine.run(
        scenario,
        b,
        honour=honour,
        order=order,
        initial=initial,
        sample_at=sample_at,
        keep_final=keep_final,
        path=path,
        tier_pages=tier_pages,
        on_events=on_events,
        chunk_events=chunk_events,
    )


STRATEGY = Strategy(
    name="host-lru",
    params=Params,
    runner=run,
    reference=reference.host_lru,
    summary="host paging only (LRU, CLOCK or Linux two-list); the guest sends no hints",
    engine=_config,
    samples_states=True,
    examples=({"replacement": "lru"}, {"replacement": "clock"}, {"replacement": "two-list"}),
    host_tier=True,
)
