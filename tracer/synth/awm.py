"""``awm``: the seed paper's scalability scenario, N server and N client guests.

Every client keeps a connection to every server (N^2 connections) and sends
each request to a server drawn at random; a server sends back a
``file_mib`` file drawn from a ``backend_gib`` backend by a Zipf popularity
law (``popularity_alpha``; Breslau et al., INFOCOM 1999, measured exponents of
0.64-0.83 for web requests). Each guest is generated on its own, with its own
seed: a client waits for the response (received at its link speed into
32 KiB socket blocks, copied into its receive buffer), thinks for an
exponential ``think_ms`` and sends the next request; a server gives each of its
N connections a worker (:mod:`cmmsim.tracer.synth._server`), whose next request
arrives an exponential gap after its last response: on average N - 1 other
requests of that client (response and think time each) and one think time.

All guests have ``guest_mib`` of memory (the paper: 1536, 256 and 96 MiB); a
server's page cache keeps the popular files, so its size decides its hit
ratio. One trace per guest plus a ``scenario.json`` manifest.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from cmmsim.tracer.params import need
from cmmsim.tracer.schema import MAX_GUEST_BYTES
from cmmsim.tracer.synth import Workload
from cmmsim.tracer.synth._model import anon_alloc, anon_touch, compute, net_recv
from cmmsim.tracer.synth._plan import (
    MAX_STEP_TOUCHES,
    STREAM_WORKLOAD,
    GuestParams,
    GuestPlan,
    guest_config,
    system_config,
)
from cmmsim.tracer.synth._rng import rng_exp, rng_state, zipf_cdf
from cmmsim.tracer.synth._server import (
    F_FRAG,
    F_FRAG_USED,
    FRAG_PAGES,
    ServerConf,
    new_server_state,
    server_keys,
    server_run,
    server_step_events,
    socket_buffers,
)
from cmmsim.tracer.synth._system import MIB_PAGES, busy, next_turn

# Client phases and per-task integers (the socket-block fields are the server's).
C_INIT, C_REQUEST, C_RECEIVE = range(3)
F_PHASE, F_I = 0, 1
assert F_FRAG_USED > F_I and F_FRAG > F_I
N_CF = max(F_FRAG_USED, F_FRAG) + 1
#: Pages received per step.
RECV_STEP = 16
#: The largest backend, GiB: its pages are keys of the model, 31-bit as a guest's pages.
MAX_BACKEND_GIB = 1 << 12

ClientConf = namedtuple(
    "ClientConf",
    [
        "app_pages",
        "app_key",
        "buf_key",
        "buf_pages",
        "frag_key",
        "file_pages",
        "think_ns",
        "request_ns",
        "touches",
        "write_fraction",
    ],
)
ClientState = namedtuple("ClientState", ["task", "rng", "conf"])


@dataclass(frozen=True)
class Params(GuestParams):
    guest_mib: int = field(default=256, metadata={"help": "memory of every guest, MiB (the paper: 1536, 256, 96)"})
    duration_s: float = field(
        default=300.0, metadata={"help": "guest time simulated, s (--events stops earlier or later instead)"}
    )
    pairs: int = field(default=4, metadata={"help": "N: server guests and client guests (N^2 connections)"})
    file_mib: int = field(default=1, metadata={"help": "size of each served file, MiB (the paper: 1 MB)"})
    backend_gib: float = field(
        default=10.0,
        metadata={
            "help": "size of the servers' file set, GiB (the paper: 10 GB; against guest_mib it sets how much "
            "of it a server's page cache can hold, by construction)",
            "max": MAX_BACKEND_GIB,
        },
    )
    popularity_alpha: float = field(
        default=0.8, metadata={"help": "Zipf exponent of file popularity (sets how much of the backend is hot)"}
    )
    think_ms: float = field(
        default=50.0, metadata={"help": "mean think time of a client between a response and its next request, ms"}
    )
    app_mib: float = field(default=16.0, metadata={"help": "anonymous memory of the server or client application, MiB"})
    request_us: float = field(default=200.0, metadata={"help": "server and client CPU per request, us"})
    touches: int = field(
        default=16,
        metadata={
            "help": "application pages touched per request (the trace's sampling of the application's own accesses)",
            "max": MAX_STEP_TOUCHES,
        },
    )
    write_fraction: float = field(default=0.5, metadata={"help": "share of those touches that write"})
    recv_buffer_kib: int = field(default=64, metadata={"help": "a client's receive buffer, KiB"})
    log_bytes: int = field(
        default=150,
        metadata={"help": "server access log bytes per request", "max": MAX_GUEST_BYTES},
    )

    def __post_init__(self):
        super().__post_init__()
        need(1 <= self.pairs <= 1000, "pairs must be 1..1000")
        need(self.file_mib >= 1 and self.backend_gib > 0, "file_mib must be >= 1, backend_gib > 0")
        need(self.popularity_alpha > 0, "popularity_alpha must be > 0")
        need(
            self.think_ms >= 0 and self.request_us >= 0 and self.touches >= 0,
            "think_ms, request_us and touches must be >= 0",
        )
        need(self.app_mib * MIB_PAGES >= self.pairs, "app_mib must give each connection a page")
        need(self.app_mib <= 0.5 * self.guest_mib, "app_mib must fit in half of guest memory")
        need(0 <= self.write_fraction <= 1, "write_fraction must be in [0, 1]")
        need(self.recv_buffer_kib >= 4, "recv_buffer_kib must be >= 4")
        need(self.log_bytes >= 0, "log_bytes must be >= 0")


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def client_step(g, w, k, t):
    """One step of a client task; returns its next clock."""
    c = w.conf
    task = w.task
    phase = task[k, F_PHASE]
    i = task[k, F_I]
    if phase == C_INIT:
        # The application's memory, then its receive buffer (the keys that follow).
        end = min(c.app_pages + c.buf_pages, i + 2 * RECV_STEP)
        for j in range(i, end):
            t = anon_alloc(g, c.app_key + j, t)
        task[k, F_I] = end
        if end >= c.app_pages + c.buf_pages:
            task[k, F_PHASE] = C_REQUEST
            task[k, F_I] = 0
        return t
    if phase == C_REQUEST:
        t = busy(g, w.rng, t, c.request_ns, c.touches, c.app_key, c.app_pages, c.write_fraction)
        task[k, F_PHASE] = C_RECEIVE
        return t
    end = min(c.file_pages, i + RECV_STEP)
    t = net_recv(g, t, end - i)
    t = socket_buffers(g, w, k, (end - i) * 4096, t)
    for j in range(i, end):
        t = anon_touch(g, c.buf_key + j % c.buf_pages, True, t)
    t = compute(g, t, (end - i) * g.cfg.copy_ns)
    task[k, F_I] = end
    if end < c.file_pages:
        return t
    # The response is in: think, and send the next request then (a clock, not
    # time spent inside this step, so other tasks' work in between comes first).
    task[k, F_PHASE] = C_REQUEST
    task[k, F_I] = 0
    return t + np.int64(rng_exp(w.rng, c.think_ns))


@nb.njit(cache=True, nogil=True, _nrt=False)
def client_run(g, sy, sc, w, t_end):
    """Run a client guest until ``t_end`` (True) or a full chunk (False)."""
    while True:
        k = next_turn(g, sy, sc, t_end)
        if k < 0:
            return k == -1
        sc.clock[k] = client_step(g, w, k - 1, sc.clock[k])


def _client_plan(p: Params, seed: int, idx: int) -> GuestPlan:
    first = system_config(p).n_keys
    app_pages = int(p.app_mib * MIB_PAGES)
    buf_pages = max(1, p.recv_buffer_kib // 4)
    app_key = first
    buf_key = app_key + app_pages
    frag_key = buf_key + buf_pages
    conf = ClientConf(
        app_pages=app_pages,
        app_key=app_key,
        buf_key=buf_key,
        buf_pages=buf_pages,
        frag_key=frag_key,
        file_pages=p.file_mib * MIB_PAGES,
        think_ns=p.think_ms * 1e6,
        request_ns=int(p.request_us * 1e3),
        touches=p.touches,
        write_fraction=p.write_fraction,
    )
    stream = (seed, 2, idx)

    def make_state():
        return ClientState(np.zeros((1, N_CF), np.int64), rng_state(*stream, STREAM_WORKLOAD), conf)

    return GuestPlan(
        f"client{idx}",
        p,
        stream,
        client_run,
        make_state,
        n_keys=frag_key + 2 * FRAG_PAGES - first,
        tasks=1,
        step_events=3 * RECV_STEP + 4 * 3 * FRAG_PAGES + 3 * p.touches + 64,
    )


def server_plan(p: Params, seed: int, idx: int) -> GuestPlan:
    file_pages = p.file_mib * MIB_PAGES
    n_files = max(1, int(p.backend_gib * 1024 / p.file_mib))
    worker_pages = max(1, int(p.app_mib * MIB_PAGES) // p.pairs)
    log_pages = 16 * MIB_PAGES
    worker_key, frag_key, files_key, log_key, n_keys = server_keys(
        p.pairs, worker_pages, n_files, file_pages, log_pages, system_config(p).n_keys
    )
    transfer_ns = file_pages * guest_config(p).net_ns
    gap_ns = p.pairs * (transfer_ns + p.think_ms * 1e6) - transfer_ns
    conf = ServerConf(
        workers=p.pairs,
        worker_pages=worker_pages,
        worker_key=worker_key,
        frag_key=frag_key,
        files_key=files_key,
        dir_pages=file_pages,
        log_key=log_key,
        log_pages=log_pages,
        log_bytes=p.log_bytes,
        request_ns=int(p.request_us * 1e3),
        touches=p.touches,
        write_fraction=p.write_fraction,
        arrival_gap_ns=float(max(gap_ns, 1.0)),
        open_loop=False,
    )
    popularity = zipf_cdf(n_files, p.popularity_alpha)
    one = np.ones(1)
    stream = (seed, 1, idx)

    def make_state():
        return new_server_state(
            conf,
            rng_state(*stream, STREAM_WORKLOAD),
            popularity,
            one,
            one,
            np.array([file_pages]),
            np.array([file_pages * 4096]),
        )

    return GuestPlan(
        f"server{idx}",
        p,
        stream,
        server_run,
        make_state,
        n_keys=n_keys,
        tasks=p.pairs,
        step_events=server_step_events(p.touches),
    )


def plans(p: Params, seed: int) -> list[GuestPlan]:
    return [server_plan(p, seed, i) for i in range(p.pairs)] + [_client_plan(p, seed, i) for i in range(p.pairs)]


WORKLOAD = Workload(
    name="awm",
    params=Params,
    plans=plans,
    summary="N servers and N clients (N^2 connections): 1 MiB files from a 10 GiB backend, Zipf",
    multi_guest=True,
)
