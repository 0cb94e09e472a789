"""A file server's worker tasks, shared by ``web-serving`` and the ``awm`` servers.

Each worker serves one connection's requests in turn:

1. the request arrives (back to back, after a think gap following the last
   response, or at Poisson times: see :class:`ServerConf`), and the worker
   spends ``request_ns`` of CPU on it, touching its own anonymous pages;
2. it reads the file through the page cache and sends it: the data is
   copied into socket buffers carved from 32 KiB blocks of kernel memory
   (order-3 allocations, a new block when the current one is used up, the one
   before freed when the network has sent it), and queued on the network link (the worker
   waits while its send buffer is full);
3. it appends a line to the access log (dirty page cache).

Files are drawn in three stages: a directory (a popularity table), a size
class, a file of the class. ``web-serving`` uses SPECweb99's layout
(directories of 36 files in four size classes); the ``awm`` servers use
directories of one 1 MiB file each, so the directory table is the file
popularity law.
"""

from __future__ import annotations

from collections import namedtuple

import numba as nb
import numpy as np

from cmmsim.tracer.synth._model import anon_alloc, file_read, kmem_alloc, kmem_free, log_append, net_send
from cmmsim.tracer.synth._rng import rng_exp, rng_pick
from cmmsim.tracer.synth._system import busy, next_turn

# Worker phases: allocating its memory, a request arrived, sending a file.
W_INIT, W_REQUEST, W_SEND = range(3)
# Per-worker integers.
# F_FRAG counts the socket blocks taken so far; F_FRAG_USED is the bytes used of the last one.
F_PHASE, F_I, F_KEY, F_PAGES, F_BYTES, F_FRAG_USED, F_FRAG, F_ARRIVAL, N_F = range(9)
FRAG_ORDER = 3
FRAG_PAGES = 1 << FRAG_ORDER
FRAG_BYTES = FRAG_PAGES * 4096
#: Page operations per step.
STEP = 32

#: ``arrival_gap_ns``: mean gap between requests of one worker (0: back to back);
#: ``open_loop``: gaps run from the last arrival (Poisson arrivals) rather than
#: from the end of the last response (a client that waits, then thinks).
ServerConf = namedtuple(
    "ServerConf",
    [
        "workers",
        "worker_pages",
        "worker_key",
        "frag_key",
        "files_key",
        "dir_pages",
        "log_key",
        "log_pages",
        "log_bytes",
        "request_ns",
        "touches",
        "write_fraction",
        "arrival_gap_ns",
        "open_loop",
    ],
)
ServerState = namedtuple(
    "ServerState",
    ["task", "log", "rng", "dir_cdf", "class_cdf", "file_cdf", "file_off", "file_pages", "file_bytes", "conf"],
)


def server_keys(
    workers: int, worker_pages: int, n_dirs: int, dir_pages: int, log_pages: int, first_key: int
) -> tuple[int, int, int, int, int]:
    """(worker_key, frag_key, files_key, log_key, n_keys): the server's key ranges from ``first_key``."""
    worker_key = first_key
    frag_key = worker_key + workers * worker_pages
    files_key = frag_key + workers * 2 * FRAG_PAGES
    log_key = files_key + n_dirs * dir_pages
    return worker_key, frag_key, files_key, log_key, log_key + log_pages - first_key


@nb.njit(cache=True, nogil=True, _nrt=False)
def socket_buffers(g, w, k, nbytes, t):
    """Carve ``nbytes`` of socket buffers for worker ``k``, allocating 32 KiB blocks as needed."""
    task = w.task
    base = w.conf.frag_key + k * 2 * FRAG_PAGES
    while nbytes > 0:
        blocks = task[k, F_FRAG]
        if blocks == 0 or task[k, F_FRAG_USED] >= FRAG_BYTES:
            # Two blocks in turn: by the time a third is needed, the network has sent the first.
            slot = base + (blocks % 2) * FRAG_PAGES
            if blocks >= 2:
                t = kmem_free(g, slot, FRAG_ORDER, t)
            t = kmem_alloc(g, slot, FRAG_ORDER, t)
            task[k, F_FRAG] = blocks + 1
            task[k, F_FRAG_USED] = 0
        take = min(nbytes, FRAG_BYTES - task[k, F_FRAG_USED])
        task[k, F_FRAG_USED] += take
        nbytes -= take
    return t


@nb.njit(cache=True, nogil=True, _nrt=False)
def _next_arrival(w, k, t):
    """When worker ``k``'s next request arrives, its last one done at ``t``."""
    c = w.conf
    if c.arrival_gap_ns <= 0:
        return t
    if not c.open_loop:
        return t + np.int64(rng_exp(w.rng, c.arrival_gap_ns))
    w.task[k, F_ARRIVAL] += np.int64(rng_exp(w.rng, c.arrival_gap_ns))
    return max(t, w.task[k, F_ARRIVAL])


@nb.njit(cache=True, nogil=True, _nrt=False)
def _request(g, w, k, t):
    """A request has arrived at worker ``k``: pick the file, spend the CPU, touch the worker's pages."""
    c = w.conf
    task = w.task
    d = rng_pick(w.rng, w.dir_cdf)
    cls = rng_pick(w.rng, w.class_cdf)
    f = cls * (w.file_pages.size // w.class_cdf.size) + rng_pick(w.rng, w.file_cdf)
    task[k, F_KEY] = c.files_key + d * c.dir_pages + w.file_off[f]
    task[k, F_PAGES] = w.file_pages[f]
    task[k, F_BYTES] = w.file_bytes[f]
    task[k, F_I] = 0
    return busy(
        g, w.rng, t, c.request_ns, c.touches, c.worker_key + k * c.worker_pages, c.worker_pages, c.write_fraction
    )


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def server_step(g, w, k, t):
    """One step of worker ``k``; returns its next clock.

    A step serves a request that has arrived, up to ``STEP // 2`` pages of it;
    a larger file takes more steps. The step that finishes a request returns
    the time the next one arrives, so every task's events stay in time order.
    """
    c = w.conf
    task = w.task
    phase = task[k, F_PHASE]
    i = task[k, F_I]
    if phase == W_INIT:
        end = min(c.worker_pages, i + STEP)
        for j in range(i, end):
            t = anon_alloc(g, c.worker_key + k * c.worker_pages + j, t)
        task[k, F_I] = end
        if end >= c.worker_pages:
            task[k, F_PHASE] = W_REQUEST
            task[k, F_ARRIVAL] = t
            return _next_arrival(w, k, t)
        return t
    if phase == W_REQUEST:
        t = _request(g, w, k, t)
        i = 0
    n = task[k, F_PAGES]
    end = min(n, i + STEP // 2)
    for j in range(i, end):
        t = file_read(g, task[k, F_KEY] + j, False, t)
    sent = min(task[k, F_BYTES], end * 4096) - min(task[k, F_BYTES], i * 4096)
    t = socket_buffers(g, w, k, sent, t)
    t = net_send(g, t, end - i)
    task[k, F_I] = end
    if end < n:
        task[k, F_PHASE] = W_SEND
        return t
    # The access log: one line per request; then wait for the next one.
    offset_bytes, t = log_append(g, c.log_key, w.log[0], c.log_bytes, c.log_pages, t)
    w.log[0] = offset_bytes
    task[k, F_PHASE] = W_REQUEST
    return _next_arrival(w, k, t)


@nb.njit(cache=True, nogil=True, _nrt=False)
def server_run(g, sy, sc, w, t_end):
    """Run a server guest until ``t_end`` (True) or a full chunk (False)."""
    while True:
        k = next_turn(g, sy, sc, t_end)
        if k < 0:
            return k == -1
        sc.clock[k] = server_step(g, w, k - 1, sc.clock[k])


def server_step_events(touches: int) -> int:
    """Events one worker step may emit: reads, socket blocks, the worker's accesses, the log."""
    return 3 * STEP + 4 * 3 * FRAG_PAGES + 3 * touches + 16


def new_server_state(
    conf: ServerConf,
    rng: np.ndarray,
    dir_cdf: np.ndarray,
    class_cdf: np.ndarray,
    file_cdf: np.ndarray,
    file_pages: np.ndarray,
    file_bytes: np.ndarray,
) -> ServerState:
    """Fresh worker state; ``file_pages``/``file_bytes`` list one directory's files class by class."""
    file_off = np.concatenate(([0], np.cumsum(file_pages)[:-1])).astype(np.int64)
    return ServerState(
        task=np.zeros((conf.workers, N_F), np.int64),
        log=np.zeros(1, np.int64),
        rng=rng,
        dir_cdf=dir_cdf,
        class_cdf=class_cdf,
        file_cdf=file_cdf,
        file_off=file_off,
        file_pages=np.asarray(file_pages, np.int64),
        file_bytes=np.asarray(file_bytes, np.int64),
        conf=conf,
    )
