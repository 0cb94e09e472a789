"""``idle-after-boot``: a guest that boots and then only runs its daemons.

The system task alone (:mod:`cmmsim.tracer.synth._system`): the kernel's frames,
boot-time memory allocated and freed, the boot's page cache, the daemons'
anonymous memory, then daemon wake-ups every tick and a slowly growing log.
Nothing fills the memory, so the share of the guest in use is what the boot
left: absolute sizes (``kernel_mib``, ``daemon_mib``, ``boot_cache_mib``) over
``guest_mib``. Those sizes set it by construction; no parameter is a fraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from cmmsim.tracer.synth import Workload
from cmmsim.tracer.synth._plan import GuestParams, GuestPlan
from cmmsim.tracer.synth._system import next_turn


@dataclass(frozen=True)
class Params(GuestParams):
    guest_mib: int = field(default=1024, metadata={"help": "guest memory, MiB"})
    duration_s: float = field(
        default=120.0, metadata={"help": "guest time simulated, s (--events stops earlier or later instead)"}
    )


@nb.njit(cache=True, nogil=True, _nrt=False)
def run(g, sy, sc, w, t_end):
    """Only the system task runs: go on until ``t_end`` or a full chunk."""
    return next_turn(g, sy, sc, t_end) == -1


def _no_state() -> np.ndarray:
    return np.zeros(1, np.int64)


def plans(p: Params, seed: int) -> list[GuestPlan]:
    return [GuestPlan("guest0", p, (seed, 0), run, _no_state, n_keys=0, tasks=0, step_events=0)]


WORKLOAD = Workload(
    name="idle-after-boot",
    params=Params,
    plans=plans,
    summary="a guest that boots, then only its daemons wake up: in-use share set by absolute sizes",
)
