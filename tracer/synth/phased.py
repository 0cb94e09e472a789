"""``phased``: an anonymous working set that grows and shrinks in abrupt phases.

One process cycles through the working-set sizes in ``phases`` (fractions of
guest memory: they set the memory pressure by construction), ``phase_s``
seconds each, until the run ends. Growing allocates pages, shrinking frees
them (SET_UNUSED); within a phase the process accesses its working set
uniformly, and a share of its accesses (``file_fraction``) reads a large file
sequentially, a stream of use-once page cache that fills whatever memory the
working set leaves. Abrupt phase changes expose working-set estimators that
react slowly; a phase larger than free memory makes the guest reclaim its
cache and then swap.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from cmmsim.tracer.params import need
from cmmsim.tracer.synth import Workload
from cmmsim.tracer.synth._model import anon_alloc, anon_touch, compute, file_read, page_free
from cmmsim.tracer.synth._plan import STREAM_WORKLOAD, GuestParams, GuestPlan, system_config
from cmmsim.tracer.synth._rng import rng_below, rng_state, rng_uniform
from cmmsim.tracer.synth._system import MIB_PAGES, next_turn

S_PHASE, S_WS, S_TARGET, S_PHASE_END, S_FILE_POS, N_S = range(6)
#: Page operations per step.
STEP = 32

Conf = namedtuple(
    "Conf", ["ws_key", "file_key", "file_pages", "phase_ns", "touch_ns", "write_fraction", "file_fraction", "pages"]
)
State = namedtuple("State", ["st", "sizes", "rng", "conf"])


@dataclass(frozen=True)
class Params(GuestParams):
    guest_mib: int = field(default=256, metadata={"help": "guest memory, MiB"})
    duration_s: float = field(
        default=200.0, metadata={"help": "guest time simulated, s (--events stops earlier or later instead)"}
    )
    phases: str = field(
        default="0.2,0.6,0.3,0.8,0.1",
        metadata={
            "help": "working-set sizes, fractions of guest memory, comma-separated (they set the "
            "memory pressure by construction)"
        },
    )
    phase_s: float = field(default=20.0, metadata={"help": "length of each phase, s"})
    touch_us: float = field(
        default=20.0, metadata={"help": "CPU time between two recorded accesses, us (the trace's sampling of accesses)"}
    )
    write_fraction: float = field(default=0.3, metadata={"help": "share of accesses that write"})
    file_fraction: float = field(
        default=0.05, metadata={"help": "share of accesses that read the next page of the side file"}
    )
    file_mib: float = field(default=1024.0, metadata={"help": "size of the file read on the side, MiB"})

    def __post_init__(self):
        super().__post_init__()
        try:
            sizes = self.sizes()
        except ValueError:
            sizes = []
        need(bool(sizes) and all(0 < s <= 0.9 for s in sizes), "phases must be comma-separated fractions in (0, 0.9]")
        need(self.phase_s > 0 and self.touch_us > 0, "phase_s and touch_us must be > 0")
        need(0 <= self.write_fraction <= 1, "write_fraction must be in [0, 1]")
        need(0 <= self.file_fraction < 1, "file_fraction must be in [0, 1)")
        need(self.file_mib > 0, "file_mib must be > 0")

    def sizes(self) -> list[float]:
        return [float(x) for x in self.phases.split(",") if x.strip()]


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _step(g, w, t):
    c = w.conf
    st = w.st
    if t >= st[S_PHASE_END]:
        st[S_PHASE] += 1
        st[S_TARGET] = max(1, np.int64(w.sizes[st[S_PHASE] % w.sizes.size] * c.pages))
        st[S_PHASE_END] = t + c.phase_ns
    ws = st[S_WS]
    if ws < st[S_TARGET]:
        end = min(st[S_TARGET], ws + STEP)
        for i in range(ws, end):
            t = anon_alloc(g, c.ws_key + i, t)
        st[S_WS] = end
        return t
    if ws > st[S_TARGET]:
        end = max(st[S_TARGET], ws - 2 * STEP)
        for i in range(end, ws):
            t = page_free(g, c.ws_key + i, t)
        st[S_WS] = end
        return t
    for _ in range(STEP // 2):
        t = compute(g, t, c.touch_ns)
        if rng_uniform(w.rng) < c.file_fraction:
            t = file_read(g, c.file_key + st[S_FILE_POS] % c.file_pages, False, t)
            st[S_FILE_POS] += 1
        else:
            t = anon_touch(g, c.ws_key + rng_below(w.rng, ws), rng_uniform(w.rng) < c.write_fraction, t)
    return t


@nb.njit(cache=True, nogil=True, _nrt=False)
def run(g, sy, sc, w, t_end):
    """Run the guest until ``t_end`` (True) or a full chunk (False)."""
    while True:
        k = next_turn(g, sy, sc, t_end)
        if k < 0:
            return k == -1
        sc.clock[k] = _step(g, w, sc.clock[k])


def plans(p: Params, seed: int) -> list[GuestPlan]:
    ws_key = system_config(p).n_keys
    ws_max = int(max(p.sizes()) * p.pages()) + 1
    file_key = ws_key + ws_max
    file_pages = max(1, int(p.file_mib * MIB_PAGES))
    conf = Conf(
        ws_key=ws_key,
        file_key=file_key,
        file_pages=file_pages,
        phase_ns=int(p.phase_s * 1e9),
        touch_ns=max(1, int(p.touch_us * 1e3)),
        write_fraction=p.write_fraction,
        file_fraction=p.file_fraction,
        pages=p.pages(),
    )
    sizes = np.array(p.sizes())

    def make_state():
        st = np.zeros(N_S, np.int64)
        st[S_PHASE] = -1  # the first step starts phase 0
        return State(st, sizes, rng_state(seed, 0, STREAM_WORKLOAD), conf)

    return [
        GuestPlan(
            "guest0", p, (seed, 0), run, make_state, n_keys=ws_max + file_pages, tasks=1, step_events=3 * 2 * STEP
        )
    ]


WORKLOAD = Workload(
    name="phased",
    params=Params,
    plans=plans,
    summary="anonymous working set growing and shrinking in abrupt phases, a file streamed beside",
)
