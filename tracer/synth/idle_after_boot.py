"""``idle-after-boot``: a freshly booted guest that then sits idle.

During boot the kernel and init touch ``boot_fraction`` of memory (initramfs
unpacking, init sections, early page cache, short-lived boot processes) and
free most of it again, leaving ``in_use_fraction`` in use: about 90 % of a
freshly booted 1 GiB Linux guest's pages are unused. Then a handful of
daemons wake every ``tick_s`` seconds, touch their small working sets, read
a few cached files and allocate and free small buffers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracer.params import need
from tracer.synth import GuestTrace, Workload, rng_for
from tracer.synth._guest import GuestSim

MIB_PAGES = 256


@dataclass(frozen=True)
class Params:
    guest_mib: int = field(default=1024, metadata={"help": "guest memory, MiB"})
    boot_fraction: float = field(default=0.5, metadata={"help": "memory touched during boot"})
    in_use_fraction: float = field(default=0.1, metadata={"help": "memory in use after boot"})
    daemons: int = field(default=12, metadata={"help": "idle daemons"})
    tick_s: float = field(default=1.0, metadata={"help": "daemon wake-up period, s"})
    events_per_s: float = field(default=50_000.0, metadata={"help": "busy event rate, 1/s"})

    def __post_init__(self):
        need(self.guest_mib >= 16, "guest_mib must be >= 16")
        need(0 < self.in_use_fraction < self.boot_fraction <= 0.9,
             "need 0 < in_use_fraction < boot_fraction <= 0.9")
        need(self.daemons >= 1, "daemons must be >= 1")
        need(self.tick_s > 0, "tick_s must be > 0")
        need(self.events_per_s > 0, "events_per_s must be > 0")


def generate(p: Params, seed: int, events: int) -> list[GuestTrace]:
    sim = GuestSim(p.guest_mib * MIB_PAGES, rng_for(seed, 0), p.events_per_s)
    rng = sim.rng
    n = sim.guest_pages
    keep = int(p.in_use_fraction * n)
    boot = int(p.boot_fraction * n)
    keep_anon, keep_cache = keep // 2, keep - keep // 2
    # What stays: kernel/daemon anonymous memory and the page cache of the
    # binaries and libraries they run.
    for i in range(keep_anon):
        sim.alloc_anon(("daemon", i % p.daemons, i // p.daemons))
    for i in range(keep_cache):
        sim.file_read(("lib", 0, i))
    # What boot uses and gives back: initramfs, init sections, boot scripts.
    transient = [("boot", 0, i) for i in range(boot - keep)]
    for k in transient:
        sim.alloc_anon(k)
    for k in rng.permutation(len(transient)).tolist():
        sim.free_key(transient[k])
        if sim.n_events >= events:
            break
    per_daemon = keep_anon // p.daemons
    tick_ns = int(p.tick_s * 1e9)
    tick = 0
    while sim.n_events < events:
        for d in range(p.daemons):
            for i in rng.integers(0, max(1, per_daemon), 8).tolist():
                sim.touch_anon(("daemon", d, i), write=bool(i % 2))
            for i in rng.integers(0, keep_cache, 4).tolist():
                sim.file_read(("lib", 0, i))
            buf = [("buf", tick, d, i) for i in range(int(rng.integers(1, 9)))]
            for k in buf:
                sim.alloc_anon(k)
            for k in buf:
                sim.free_key(k)
        tick += 1
        sim.think(tick_ns)
    t, pfn, op = sim.arrays(events)
    return [GuestTrace("guest0", n, t, pfn, op)]


WORKLOAD = Workload(
    name="idle-after-boot",
    params=Params,
    generate=generate,
    summary="freshly booted guest: ~90 % unused pages, small stable set, idle daemons",
)
