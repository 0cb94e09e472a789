"""``cmm-light``: stable/unused hints only, what mainline Linux and KVM on s390 do.

The guest marks pages unused when it frees them and stable when it
allocates them; it sends no volatile or potentially-volatile hints, so page
cache is stable to the host. Victims in exact LRU order.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmmsim.replay import reference
from cmmsim.replay.states import HONOUR_STABLE_UNUSED, INITIAL_HINTING
from cmmsim.replay.strategies import Strategy, engine_config, engine_runner


@dataclass(frozen=True)
class Params:
    pass


_config = engine_config(HONOUR_STABLE_UNUSED, INITIAL_HINTING, lambda p: "lru")

STRATEGY = Strategy(
    name="cmm-light",
    params=Params,
    runner=engine_runner(_config),
    reference=reference.cmm_light,
    summary="stable/unused hints only (mainline Linux/KVM s390); LRU victims",
    engine=_config,
    samples_states=True,
    host_tier=True,
)
