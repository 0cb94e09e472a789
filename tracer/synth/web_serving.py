"""``web-serving``: a SPECweb99-like static file server in a 1-way 1 GiB guest.

The file set follows SPECweb99's layout: ``directories`` directories of 36
files, four size classes of nine files each (class c, file k = 1..9 holds
k x 10^c x 102.4 bytes: 0.1-0.9 KiB, 1-9 KiB, 10-90 KiB, 100-900 KiB; 4.9 MiB
per directory). A request picks a directory with Zipf popularity
(``dir_alpha``), a class with SPECweb99's mix (35 %, 50 %, 14 %, 1 %) and a
file of the class with Zipf popularity (``file_alpha``); the default 300
directories (1.45 GiB) exceed the guest's memory, so the page cache keeps the
popular files and recycles the rest.

``workers`` server processes each take requests back to back
(``request_rate=0``: the server is driven to saturation, as the benchmark
does) or at Poisson times adding up to ``request_rate`` per second. Worker
behaviour (CPU per request, socket buffers, access log) is
:mod:`cmmsim.tracer.synth._server`'s; throughput follows from the CPU, the disk and
the network link.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cmmsim.tracer.params import need
from cmmsim.tracer.schema import MAX_GUEST_BYTES, MAX_GUEST_PAGES
from cmmsim.tracer.synth import Workload
from cmmsim.tracer.synth._plan import STREAM_WORKLOAD, GuestParams, GuestPlan, system_config
from cmmsim.tracer.synth._rng import rng_state, zipf_cdf
from cmmsim.tracer.synth._server import (
    ServerConf,
    new_server_state,
    server_keys,
    server_run,
    server_step_events,
)
from cmmsim.tracer.synth._system import MIB_PAGES

#: SPECweb99's request mix over the four size classes.
CLASS_MIX = (0.35, 0.50, 0.14, 0.01)
FILES_PER_CLASS = 9


def specweb_files() -> tuple[np.ndarray, np.ndarray]:
    """(pages, bytes) of one SPECweb99 directory's 36 files, class by class."""
    nbytes = np.array([int(k * 10**c * 102.4) for c in range(4) for k in range(1, FILES_PER_CLASS + 1)], np.int64)
    return (nbytes + 4095) // 4096, nbytes


@dataclass(frozen=True)
class Params(GuestParams):
    guest_mib: int = field(default=1024, metadata={"help": "guest memory, MiB"})
    duration_s: float = field(
        default=180.0, metadata={"help": "guest time simulated, s (--events stops earlier or later instead)"}
    )
    directories: int = field(
        default=300,
        metadata={
            "help": "SPECweb99 directories of 36 files, 4.9 MiB each: the file set size (against guest_mib "
            "it sets how much of the file set the page cache can hold, by construction)",
            # A directory's pages are model keys (31-bit); under 2,048 pages each.
            "max": MAX_GUEST_PAGES >> 11,
        },
    )
    dir_alpha: float = field(default=1.0, metadata={"help": "Zipf exponent of directory popularity"})
    file_alpha: float = field(default=1.0, metadata={"help": "Zipf exponent of file popularity in a class"})
    workers: int = field(default=16, metadata={"help": "server worker processes"})
    worker_mib: float = field(default=2.0, metadata={"help": "anonymous memory of each worker, MiB"})
    request_us: float = field(default=50.0, metadata={"help": "CPU time per request besides copying the file, us"})
    touches: int = field(
        default=8,
        metadata={"help": "worker pages touched per request (the trace's sampling of a worker's own accesses)"},
    )
    write_fraction: float = field(default=0.5, metadata={"help": "share of those touches that write"})
    request_rate: float = field(
        default=0.0, metadata={"help": "requests per second, Poisson arrivals (0: back to back, the server saturated)"}
    )
    log_bytes: int = field(default=150, metadata={"help": "access log bytes per request", "max": MAX_GUEST_BYTES})
    access_log_mib: float = field(default=64.0, metadata={"help": "access log size before it wraps, MiB"})

    def __post_init__(self):
        super().__post_init__()
        need(self.directories >= 1, "directories must be >= 1")
        need(self.dir_alpha > 0 and self.file_alpha > 0, "dir_alpha and file_alpha must be > 0")
        need(self.workers >= 1 and self.worker_mib > 0, "workers must be >= 1, worker_mib > 0")
        need(
            self.workers * self.worker_mib <= 0.5 * self.guest_mib,
            "workers x worker_mib must fit in half of guest memory",
        )
        need(self.request_us >= 0 and self.touches >= 0, "request_us and touches must be >= 0")
        need(0 <= self.write_fraction <= 1, "write_fraction must be in [0, 1]")
        need(self.request_rate >= 0, "request_rate must be >= 0")
        need(self.log_bytes >= 0 and self.access_log_mib > 0, "log sizes must be >= 0 and > 0")


def plans(p: Params, seed: int) -> list[GuestPlan]:
    pages, nbytes = specweb_files()
    worker_pages = max(1, int(p.worker_mib * MIB_PAGES))
    log_pages = max(1, int(p.access_log_mib * MIB_PAGES))
    worker_key, frag_key, files_key, log_key, n_keys = server_keys(
        p.workers, worker_pages, p.directories, int(pages.sum()), log_pages, system_config(p).n_keys
    )
    conf = ServerConf(
        workers=p.workers,
        worker_pages=worker_pages,
        worker_key=worker_key,
        frag_key=frag_key,
        files_key=files_key,
        dir_pages=int(pages.sum()),
        log_key=log_key,
        log_pages=log_pages,
        log_bytes=p.log_bytes,
        request_ns=int(p.request_us * 1e3),
        touches=p.touches,
        write_fraction=p.write_fraction,
        arrival_gap_ns=p.workers / p.request_rate * 1e9 if p.request_rate > 0 else 0.0,
        open_loop=True,
    )
    dir_cdf = zipf_cdf(p.directories, p.dir_alpha)
    class_cdf = np.cumsum(CLASS_MIX)
    class_cdf[-1] = 1.0
    file_cdf = zipf_cdf(FILES_PER_CLASS, p.file_alpha)

    def make_state():
        return new_server_state(conf, rng_state(seed, 0, STREAM_WORKLOAD), dir_cdf, class_cdf, file_cdf, pages, nbytes)

    return [
        GuestPlan(
            "guest0",
            p,
            (seed, 0),
            server_run,
            make_state,
            n_keys=n_keys,
            tasks=p.workers,
            step_events=server_step_events(p.touches),
        )
    ]


WORKLOAD = Workload(
    name="web-serving",
    params=Params,
    plans=plans,
    summary="SPECweb99-like file server: Zipf directories, four size classes, file set > memory",
)
