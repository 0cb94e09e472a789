"""``phased``: an anonymous working set that grows and shrinks in phases.

The working set visits the sizes in ``phases`` (fractions of guest memory)
``cycles`` times. Growing allocates pages, shrinking frees them (SET_UNUSED);
within a phase accesses go uniformly to the current working set, with a
small stream of file reads on the side. Phase changes are abrupt, which is
what exposes working-set estimators that react slowly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracer.params import need
from tracer.synth import GuestTrace, Workload, rng_for
from tracer.synth._guest import GuestSim

MIB_PAGES = 256


@dataclass(frozen=True)
class Params:
    guest_mib: int = field(default=256, metadata={"help": "guest memory, MiB"})
    phases: str = field(default="0.2,0.6,0.3,0.8,0.1",
                        metadata={"help": "working-set sizes, fractions of memory, comma-separated"})
    cycles: int = field(default=2, metadata={"help": "times the phase list is run"})
    write_fraction: float = field(default=0.3, metadata={"help": "fraction of accesses that write"})
    file_fraction: float = field(default=0.05, metadata={"help": "fraction of accesses to files"})
    file_pages: int = field(default=4096, metadata={"help": "pages of the file read on the side"})
    events_per_s: float = field(default=50_000.0, metadata={"help": "busy event rate, 1/s"})

    def __post_init__(self):
        need(self.guest_mib >= 16, "guest_mib must be >= 16")
        try:
            sizes = self.sizes()
        except ValueError:
            sizes = []
        need(bool(sizes) and all(0 < s <= 0.9 for s in sizes),
             "phases must be comma-separated fractions in (0, 0.9]")
        need(self.cycles >= 1, "cycles must be >= 1")
        need(0 <= self.write_fraction <= 1, "write_fraction must be in [0, 1]")
        need(0 <= self.file_fraction < 1, "file_fraction must be in [0, 1)")
        need(1 <= self.file_pages <= self.guest_mib * MIB_PAGES // 10,
             "file_pages must be between 1 and a tenth of guest memory")
        need(self.events_per_s > 0, "events_per_s must be > 0")

    def sizes(self) -> list[float]:
        return [float(x) for x in self.phases.split(",") if x.strip()]


def generate(p: Params, seed: int, events: int) -> list[GuestTrace]:
    sim = GuestSim(p.guest_mib * MIB_PAGES, rng_for(seed, 0), p.events_per_s)
    rng = sim.rng
    sizes = p.sizes()
    n_phases = len(sizes) * p.cycles
    per_phase = max(1, events // n_phases)
    ws = 0
    for ph in range(n_phases):
        target = max(1, int(sizes[ph % len(sizes)] * sim.guest_pages))
        for i in range(ws, target):
            sim.alloc_anon(("ws", i))
        for i in range(target, ws):
            sim.free_key(("ws", i))
        ws = target
        end = min(events, (ph + 1) * per_phase)
        while sim.n_events < end:
            idx = rng.integers(0, ws, 1024).tolist()
            wr = (rng.random(1024) < p.write_fraction).tolist()
            fl = (rng.random(1024) < p.file_fraction).tolist()
            for j in range(1024):
                if fl[j]:
                    sim.file_read(("file", 0, idx[j] % p.file_pages))
                else:
                    sim.touch_anon(("ws", idx[j]), wr[j])
        if sim.n_events >= events:
            break
    t, pfn, op = sim.arrays(events)
    return [GuestTrace("guest0", sim.guest_pages, t, pfn, op)]


WORKLOAD = Workload(
    name="phased",
    params=Params,
    generate=generate,
    summary="anonymous working set growing and shrinking in abrupt phases",
)
