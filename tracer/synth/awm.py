"""``awm``: the seed paper's scalability scenario, N client and N server guests.

Each server guest serves ``file_mib`` files chosen uniformly at random from a
``backend_gib`` backend (so its page cache mostly misses once the backend is
larger than memory): per request it reads the file through the page cache and
sends it through socket buffers (anonymous pages allocated and freed). Each
client guest receives the reply into freshly allocated buffers, checks it and
frees them, and keeps a small anonymous working set of its own. Guests run
concurrently from t=0; one trace per guest plus a ``scenario.json`` manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracer.params import need
from tracer.synth import GuestTrace, Workload, rng_for
from tracer.synth._guest import GuestSim

MIB_PAGES = 256


@dataclass(frozen=True)
class Params:
    pairs: int = field(default=2, metadata={"help": "client/server guest pairs (N)"})
    guest_mib: int = field(default=256, metadata={"help": "memory of each guest, MiB (seed: 1536, 256, 96)"})
    file_mib: int = field(default=1, metadata={"help": "size of each served file, MiB"})
    backend_gib: float = field(default=10.0, metadata={"help": "backend file set size, GiB"})
    app_pages: int = field(default=2048, metadata={"help": "anon working set of each guest, pages"})
    sock_pages: int = field(default=16, metadata={"help": "socket buffer pages in flight"})
    events_per_s: float = field(default=50_000.0, metadata={"help": "busy event rate per guest, 1/s"})

    def __post_init__(self):
        need(1 <= self.pairs <= 1000, "pairs must be 1..1000")
        need(self.guest_mib >= 16, "guest_mib must be >= 16")
        need(self.file_mib >= 1, "file_mib must be >= 1")
        need(self.backend_gib > 0, "backend_gib must be > 0")
        need(1 <= self.app_pages <= self.guest_mib * MIB_PAGES // 4,
             "app_pages must be between 1 and a quarter of guest memory")
        need(1 <= self.sock_pages <= 4096, "sock_pages must be 1..4096")
        need(self.events_per_s > 0, "events_per_s must be > 0")


def _server(p: Params, seed: int, idx: int, events: int) -> GuestTrace:
    sim = GuestSim(p.guest_mib * MIB_PAGES, rng_for(seed, 1, idx), p.events_per_s)
    rng = sim.rng
    n_files = max(1, int(p.backend_gib * 1024 / p.file_mib))
    file_pages = p.file_mib * MIB_PAGES
    for i in range(p.app_pages):
        sim.alloc_anon(("app", i))
    request = 0
    while sim.n_events < events:
        for i in rng.integers(0, p.app_pages, 8).tolist():
            sim.touch_anon(("app", i), write=(i % 4 == 0))
        f = int(rng.integers(0, n_files))
        for start in range(0, file_pages, p.sock_pages):
            chunk = range(start, min(start + p.sock_pages, file_pages))
            for i in chunk:
                sim.file_read(("file", f, i))
            buf = [("sock", request, i) for i in chunk]
            for k in buf:
                sim.alloc_anon(k)
            for k in buf:
                sim.free_key(k)
        request += 1
    t, pfn, op = sim.arrays(events)
    return GuestTrace(f"server{idx}", sim.guest_pages, t, pfn, op)


def _client(p: Params, seed: int, idx: int, events: int) -> GuestTrace:
    sim = GuestSim(p.guest_mib * MIB_PAGES, rng_for(seed, 2, idx), p.events_per_s)
    rng = sim.rng
    file_pages = p.file_mib * MIB_PAGES
    for i in range(p.app_pages):
        sim.alloc_anon(("app", i))
    request = 0
    while sim.n_events < events:
        for i in rng.integers(0, p.app_pages, 16).tolist():
            sim.touch_anon(("app", i), write=(i % 3 == 0))
        for start in range(0, file_pages, p.sock_pages):
            buf = [("rx", request, i) for i in range(start, min(start + p.sock_pages, file_pages))]
            for k in buf:
                sim.alloc_anon(k)
            for k in buf:
                sim.touch_anon(k, write=False)
            for k in buf:
                sim.free_key(k)
        request += 1
        sim.think(int(rng.exponential(2e6)))
    t, pfn, op = sim.arrays(events)
    return GuestTrace(f"client{idx}", sim.guest_pages, t, pfn, op)


def generate(p: Params, seed: int, events: int) -> list[GuestTrace]:
    per_guest = max(1, events // (2 * p.pairs))
    servers = [_server(p, seed, i, per_guest) for i in range(p.pairs)]
    clients = [_client(p, seed, i, per_guest) for i in range(p.pairs)]
    return servers + clients


WORKLOAD = Workload(
    name="awm",
    params=Params,
    generate=generate,
    summary="N client + N server guests; servers serve 1 MiB files from a 10 GiB backend",
    multi_guest=True,
)
