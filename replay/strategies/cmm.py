"""``cmm``: full guest page hinting (the s390/z/VM CMMA protocol).

The host honours every hint: unused, volatile and clean potentially
volatile pages are reclaimed with no I/O; an access to a discarded volatile
page is a discard fault and the guest re-reads it from its own backing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cmmsim.replay import reference
from cmmsim.replay.states import HONOUR_ALL, INITIAL_HINTING
from cmmsim.replay.strategies import Strategy, engine_config, engine_runner


@dataclass(frozen=True)
class Params:
    reclaim_order: Literal["lru", "state-priority", "two-list"] = field(
        default="lru",
        metadata={
            "help": "lru: least recently used whatever its state (z/VM); "
            "state-priority: U first, then V/clean P, then the rest, each LRU; "
            "two-list: Linux's active/inactive lists whatever the state"
        },
    )


_config = engine_config(HONOUR_ALL, INITIAL_HINTING, lambda p: p.reclaim_order)

STRATEGY = Strategy(
    name="cmm",
    params=Params,
    runner=engine_runner(_config),
    reference=reference.cmm,
    summary="full hinting: U/V/clean-P reclaimed without I/O, discard faults on access",
    engine=_config,
    samples_states=True,
    examples=({"reclaim_order": "lru"}, {"reclaim_order": "state-priority"}, {"reclaim_order": "two-list"}),
    host_tier=True,
)
