"""``cmm-light``: stable/unused hints only, what mainline Linux and KVM on s390 do.

The guest marks pages unused when it frees them and stable when it
allocates them; it sends no volatile or potentially-volatile hints, so page
cache is stable to the host. Victims in exact LRU order, or by Linux's two-list reclaim (``replacement=two-list``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cmmsim.replay import reference
from cmmsim.replay.states import HONOUR_STABLE_UNUSED, INITIAL_HINTING
from cmmsim.replay.strategies import Strategy, engine_config, engine_runner


@dataclass(frozen=True)
class Params:
    replacement: Literal["lru", "two-list"] = field(
        default="lru",
        metadata={"help": "victim choice: exact LRU or two-list (Linux's active/inactive lists, docs/model.md)"},
    )


_config = engine_config(HONOUR_STABLE_UNUSED, INITIAL_HINTING, lambda p: p.replacement)

STRATEGY = Strategy(
    name="cmm-light",
    params=Params,
    runner=engine_runner(_config),
    reference=reference.cmm_light,
    summary="stable/unused hints only (mainline Linux/KVM s390); LRU or two-list victims",
    engine=_config,
    samples_states=True,
    examples=({"replacement": "lru"}, {"replacement": "two-list"}),
    host_tier=True,
)
