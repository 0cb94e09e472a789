"""``balloon+cmm``: balloons for the long term, full hinting for the short term (the seed's answer).

Balloon targets as in ``balloon`` (same estimators and parameters, but a
default ``slack`` of 10 %: the host keeps room the hints manage), and a
host that honours every hint as in ``cmm`` (exact LRU, Linux's two-list
reclaim with ``replacement=two-list``, or ``cmm``'s state-priority order with
``replacement=state-priority``; U/V/clean-P frames reclaimed without I/O,
discard faults on access). The guest's own reclaim
tells the host too: a frame it frees is set unused, a frame it takes back
is set stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cmmsim.replay.states import HONOUR_ALL, INITIAL_HINTING
from cmmsim.replay.strategies import Strategy, balloon
from cmmsim.replay.strategies.balloon.params import SLACK_HELP
from cmmsim.replay.strategies.balloon.twin import reference_balloon


@dataclass(frozen=True)
class Params(balloon.Params):
    slack: float = field(default=0.10, metadata={"help": SLACK_HELP})
    replacement: Literal["lru", "two-list", "state-priority"] = field(
        default="lru",
        metadata={
            "help": "victim choice: exact LRU, two-list (Linux's active/inactive lists) or "
            "state-priority (cmm's: U, then V/clean P, then the rest; docs/model.md)"
        },
    )


def run(scenario, budgets, params, sample_at=None, keep_final=False, tier_pages=0, on_events=None):
    return balloon.run_balloon(
        scenario, budgets, params, HONOUR_ALL, INITIAL_HINTING, keep_final, tier_pages, on_events
    )


def reference(scenario, budget: int, params, tier_pages: int = 0):
    return reference_balloon(scenario, budget, params, honour_all=True, tier_pages=tier_pages)


STRATEGY = Strategy(
    name="balloon+cmm",
    params=Params,
    runner=run,
    reference=reference,
    summary="balloon targets with 10% slack, plus a host honouring every hint (cmm)",
    series=balloon.BALLOON_SERIES,
    examples=(
        {"estimator": "oracle", "period_ns": 5, "rate_pages_per_s": 10**9},
        {"estimator": "sampling", "slack": 0.0},
        {"estimator": "fault-rate", "period_ns": 5, "rate_pages_per_s": 10**9},
        {"estimator": "sampling", "period_ns": 5, "rate_pages_per_s": 10**9, "replacement": "two-list"},
        {
            "estimator": "oracle",
            "period_ns": 4,
            "rate_pages_per_s": 10**9,
            "slack": 0.0,
            "replacement": "state-priority",
        },
    ),
    host_tier=True,
)
