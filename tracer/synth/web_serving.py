"""``web-serving``: a SpecWeb-like static file server.

The file set is larger than guest memory (``file_set_ratio`` times it) and
requests pick files with Zipf popularity, so the page cache holds the hot
files and keeps refilling the rest. File sizes follow SpecWeb99's four
classes (35 % under 1 KiB, 50 % 1-9 KiB, 14 % 10-90 KiB, 1 % 100-900 KiB).
Each worker process has a small anonymous working set it touches per
request; each request allocates and frees socket buffers and appends to the
access log (written back every 5 s once older than ``dirty_expire_s``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracer.params import need
from tracer.synth import GuestTrace, Workload, rng_for
from tracer.synth._guest import GuestSim, ZipfChooser

MIB_PAGES = 256
# SpecWeb99 file classes: probability, smallest and largest size in bytes.
_CLASSES = ((0.35, 100, 900), (0.50, 1_000, 9_000), (0.14, 10_000, 90_000), (0.01, 100_000, 900_000))


@dataclass(frozen=True)
class Params:
    guest_mib: int = field(default=1024, metadata={"help": "guest memory, MiB"})
    file_set_ratio: float = field(default=1.5, metadata={"help": "file set size / guest memory"})
    zipf_alpha: float = field(default=1.0, metadata={"help": "Zipf exponent of file popularity"})
    workers: int = field(default=16, metadata={"help": "server worker processes"})
    worker_anon_pages: int = field(default=64, metadata={"help": "anon pages per worker"})
    log_every: int = field(default=40, metadata={"help": "requests per access-log page"})
    dirty_expire_s: float = field(default=30.0, metadata={"help": "age before writeback, s"})
    events_per_s: float = field(default=60_000.0, metadata={"help": "busy event rate, 1/s"})

    def __post_init__(self):
        need(self.guest_mib >= 16, "guest_mib must be >= 16")
        need(self.file_set_ratio > 0, "file_set_ratio must be > 0")
        need(self.zipf_alpha > 0, "zipf_alpha must be > 0")
        need(self.workers >= 1, "workers must be >= 1")
        need(self.worker_anon_pages >= 1, "worker_anon_pages must be >= 1")
        need(self.workers * self.worker_anon_pages <= self.guest_mib * MIB_PAGES // 4,
             "workers * worker_anon_pages must fit in a quarter of guest memory")
        need(self.log_every >= 1, "log_every must be >= 1")
        need(self.dirty_expire_s >= 0, "dirty_expire_s must be >= 0")
        need(self.events_per_s > 0, "events_per_s must be > 0")


def file_sizes(rng: np.random.Generator, total_pages: int) -> np.ndarray:
    """Sizes in pages of a SpecWeb99-like file set adding up to ``total_pages``."""
    probs = np.array([c[0] for c in _CLASSES])
    sizes: list[np.ndarray] = []
    have = 0
    while have < total_pages:
        cls = rng.choice(len(_CLASSES), size=4096, p=probs)
        lo = np.array([c[1] for c in _CLASSES])[cls]
        hi = np.array([c[2] for c in _CLASSES])[cls]
        nbytes = rng.integers(lo, hi + 1)
        pages = (nbytes + 4095) // 4096
        sizes.append(pages)
        have += int(pages.sum())
    out = np.concatenate(sizes)
    return out[: int(np.searchsorted(np.cumsum(out), total_pages)) + 1]


def generate(p: Params, seed: int, events: int) -> list[GuestTrace]:
    rng = rng_for(seed, 0)
    sim = GuestSim(p.guest_mib * MIB_PAGES, rng, p.events_per_s)
    sizes = file_sizes(rng, int(p.file_set_ratio * sim.guest_pages)).tolist()
    # Popularity rank is independent of size: shuffle which file is rank 0.
    order = rng.permutation(len(sizes)).tolist()
    pick = ZipfChooser(rng, len(sizes), p.zipf_alpha)
    for w in range(p.workers):
        for i in range(p.worker_anon_pages):
            sim.alloc_anon(("worker", w, i))
    expire_ns = int(p.dirty_expire_s * 1e9)
    next_wb = sim.now_ns + 5_000_000_000
    log_page = 0
    request = 0
    while sim.n_events < events:
        w = request % p.workers
        for i in rng.integers(0, p.worker_anon_pages, 4).tolist():
            sim.touch_anon(("worker", w, i), write=(i % 2 == 0))
        buf = [("sock", request, i) for i in range(2)]
        for k in buf:
            sim.alloc_anon(k)
        f = order[pick()]
        for i in range(sizes[f]):
            sim.file_read(("file", f, i))
        for k in buf:
            sim.free_key(k)
        if request % p.log_every == 0:
            sim.file_write(("log", 0, log_page))
            log_page += 1
        request += 1
        if sim.now_ns >= next_wb:
            sim.writeback(expire_ns)
            next_wb = sim.now_ns + 5_000_000_000
    t, pfn, op = sim.arrays(events)
    return [GuestTrace("guest0", sim.guest_pages, t, pfn, op)]


WORKLOAD = Workload(
    name="web-serving",
    params=Params,
    generate=generate,
    summary="SpecWeb-like file serving: Zipf file popularity, file set larger than memory",
)
