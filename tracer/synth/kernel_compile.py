"""``kernel-compile``: a parallel kernel build in a small guest.

Many short-lived compiler processes: each reads its source file and a set of
headers (a few hot headers are re-read by nearly every unit: Zipf
popularity), allocates, touches and frees its anonymous memory, and writes an
object file (dirty page cache, written back after ``dirty_expire_s``). A final
link reads every object file and writes the image through a writable mapping
(potentially volatile pages). ``cpus`` units run interleaved.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from tracer.params import need
from tracer.synth import GuestTrace, Workload, rng_for
from tracer.synth._guest import GuestSim, ZipfChooser

MIB_PAGES = 256


@dataclass(frozen=True)
class Params:
    guest_mib: int = field(default=256, metadata={"help": "guest memory, MiB"})
    cpus: int = field(default=2, metadata={"help": "compiler processes running at once"})
    sources: int = field(default=3000, metadata={"help": "source files in the tree"})
    headers: int = field(default=800, metadata={"help": "header files in the tree"})
    headers_per_unit: int = field(default=40, metadata={"help": "headers each unit includes"})
    header_alpha: float = field(default=1.1, metadata={"help": "Zipf exponent of header use"})
    anon_pages: int = field(default=1500, metadata={"help": "mean anonymous pages per unit"})
    touches_per_page: float = field(default=2.0, metadata={"help": "accesses per anon page"})
    dirty_expire_s: float = field(default=30.0, metadata={"help": "age before writeback, s"})
    events_per_s: float = field(default=80_000.0, metadata={"help": "busy event rate, 1/s"})

    def __post_init__(self):
        need(self.guest_mib >= 16, "guest_mib must be >= 16")
        need(self.cpus >= 1, "cpus must be >= 1")
        need(self.sources >= 1 and self.headers >= 1, "sources and headers must be >= 1")
        need(1 <= self.headers_per_unit <= self.headers, "headers_per_unit must be 1..headers")
        need(self.header_alpha > 0, "header_alpha must be > 0")
        need(1 <= self.anon_pages <= self.guest_mib * MIB_PAGES // 4,
             "anon_pages must be between 1 and a quarter of guest memory")
        need(self.touches_per_page > 0, "touches_per_page must be > 0")
        need(self.dirty_expire_s >= 0, "dirty_expire_s must be >= 0")
        need(self.events_per_s > 0, "events_per_s must be > 0")


def _unit(sim: GuestSim, p: Params, unit: int, src_pages: list[int], pick_header,
          hdr_pages: list[int]) -> Iterator[None]:
    rng = sim.rng
    src = unit % p.sources
    for i in range(src_pages[src]):
        sim.file_read(("src", src, i))
    yield
    for _ in range(p.headers_per_unit):
        h = pick_header()
        for i in range(hdr_pages[h]):
            sim.file_read(("hdr", h, i))
    yield
    n_anon = max(1, int(rng.gamma(4.0, p.anon_pages / 4)))
    n_anon = min(n_anon, sim.guest_pages // 4)
    keys = [("anon", unit, i) for i in range(n_anon)]
    for k in keys:
        sim.alloc_anon(k)
    yield
    n_touch = int(n_anon * p.touches_per_page)
    # Compilers touch their heap with strong locality: most accesses go to a
    # recently allocated tenth of it.
    hot = max(1, n_anon // 10)
    picks = rng.integers(0, hot, n_touch)
    spread = rng.random(n_touch) < 0.2
    far = rng.integers(0, n_anon, n_touch)
    writes = rng.random(n_touch) < 0.4
    for j in range(n_touch):
        idx = int(far[j]) if spread[j] else n_anon - 1 - int(picks[j])
        sim.touch_anon(keys[idx], bool(writes[j]))
        if j % 512 == 511:
            yield
    for i in range(max(1, src_pages[src] * 3 // 2)):
        sim.file_write(("obj", unit, i))
    for k in keys:
        sim.free_key(k)
    yield


def generate(p: Params, seed: int, events: int) -> list[GuestTrace]:
    rng = rng_for(seed, 0)
    sim = GuestSim(p.guest_mib * MIB_PAGES, rng, p.events_per_s)
    src_pages = (1 + rng.geometric(1 / 3, p.sources)).tolist()
    hdr_pages = (rng.geometric(1 / 2, p.headers)).tolist()
    pick_header = ZipfChooser(rng, p.headers, p.header_alpha)
    expire_ns = int(p.dirty_expire_s * 1e9)
    obj_pages: dict[int, int] = {}
    state = {"unit": 0, "next_wb": 5_000_000_000}

    def compile_until(limit: int) -> None:
        running: list[Iterator[None]] = []
        while sim.n_events < limit:
            while len(running) < p.cpus:
                u = state["unit"]
                obj_pages[u] = max(1, src_pages[u % p.sources] * 3 // 2)
                running.append(_unit(sim, p, u, src_pages, pick_header, hdr_pages))
                state["unit"] = u + 1
            for gen in list(running):
                if next(gen, StopIteration) is StopIteration:
                    running.remove(gen)
            if sim.now_ns >= state["next_wb"]:
                sim.writeback(expire_ns)
                state["next_wb"] = sim.now_ns + 5_000_000_000
        for gen in running:
            for _ in gen:
                pass

    # Leave room for the units still running and the link (~3 events per
    # object page read, ~4 per image page written).
    reserve = 5 * p.sources * 2 + 3 * p.cpus * p.anon_pages * (2 + p.touches_per_page)
    compile_until(max(0, events - int(reserve)))
    # Link: read every object file, write the image through a writable mapping.
    for u, n in obj_pages.items():
        for i in range(n):
            if sim.n_events >= events:
                break
            sim.file_read(("obj", u, i))
    for i in range(max(1, sum(obj_pages.values()) // 4)):
        if sim.n_events >= events:
            break
        sim.file_write(("vmlinux", 0, i), mapped_writable=True)
    sim.writeback(0)
    # A short target leaves events after the link: the build goes on (make -j).
    compile_until(events)
    t, pfn, op = sim.arrays(events)
    return [GuestTrace("guest0", sim.guest_pages, t, pfn, op)]


WORKLOAD = Workload(
    name="kernel-compile",
    params=Params,
    generate=generate,
    summary="parallel kernel build: compiler anon churn, hot headers, objects, final link",
)
