"""What every guest runs besides its workload: the boot, the daemons, and the task scheduler.

The **system task** boots the guest and then keeps its daemons going:

1. the kernel's frames (image and early reservations, plus the ``struct page``
   array: 1/64 of memory) are marked stable once and never freed;
2. boot-time memory (an unpacked initramfs, init's helpers) is allocated;
3. the binaries, libraries and files the boot reads enter the page cache;
4. the daemons allocate their anonymous memory;
5. the boot-time memory is freed: the guest is up, and the workload starts.

Then every ``tick`` each daemon wakes up, touches a few of its pages, reads a
few cached library pages, allocates and frees a small buffer, and the system
log grows (dirty page cache, written back by the flusher). All sizes are
absolute (MiB), so the fraction of a guest in use after boot follows from its
size: a small guest is mostly full, a large one mostly unused.

The **scheduler** runs the tasks of one guest in time order: each task has a
clock, and the task with the earliest clock does its next step (a few page
operations), which returns its new clock. A step never waits for time to pass
before it uses the CPU (that would reserve the CPU in the future and hold up
every other task): a think time or the gap to the next request ends the step
and becomes the task's clock. Task 0 is the system task; the
workload's tasks start when the boot is done. Workload tasks may be gated by
an on/off demand schedule (fleets): outside "on" periods they wait.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba as nb
import numpy as np

from cmmsim.tracer.synth._model import (
    anon_alloc,
    anon_touch,
    compute,
    file_read,
    kernel_reserve,
    log_append,
    more,
    page_free,
)
from cmmsim.tracer.synth._rng import rng_below, rng_exp, rng_uniform

MIB_PAGES = 256
#: A clock no task reaches: tasks not started yet, or finished.
NEVER = np.iinfo(np.int64).max
NOT_STARTED = NEVER - 1

# System task phases.
P_KERNEL, P_TRANSIENT, P_BOOT_CACHE, P_DAEMONS, P_BOOT_FREE, P_IDLE = range(6)
# Scalars of the system task.
Y_PHASE, Y_I, Y_DAEMON, Y_TICK_T, Y_LOG_BYTES, Y_BOOTED_T, N_Y = range(7)
#: Page operations per system step during boot.
BOOT_STEP = 64
#: Pages of the ring the daemons' short-lived buffers use.
BUF_RING = 8

SysConf = namedtuple(
    "SysConf",
    [
        "reserved",
        "boot_t",
        "transient_pages",
        "cache_pages",
        "daemon_pages",
        "daemons",
        "tick_ns",
        "touches",
        "reads",
        "log_bytes",
        "log_pages",
        "key_cache",
        "key_daemon",
        "key_transient",
        "key_buf",
        "key_log",
        "n_keys",
    ],
)
System = namedtuple("System", ["st", "rng", "conf"])

# Demand gate: the current "on" period [start, end).
G_START, G_END, N_G = range(3)
GateConf = namedtuple("GateConf", ["on_ns", "off_ns", "day_ns", "amplitude"])
Sched = namedtuple("Sched", ["clock", "gate", "rng", "conf"])


def sys_conf(
    reserved: int,
    boot_t: int,
    transient_pages: int,
    cache_pages: int,
    daemon_pages: int,
    daemons: int,
    tick_ns: int,
    touches: int,
    reads: int,
    log_bytes: int,
    log_pages: int,
) -> SysConf:
    """The system task's settings, its key ranges laid out from key 0."""
    k_cache = 0
    k_daemon = k_cache + cache_pages
    k_transient = k_daemon + daemon_pages
    k_buf = k_transient + transient_pages
    k_log = k_buf + BUF_RING
    return SysConf(
        reserved,
        boot_t,
        transient_pages,
        cache_pages,
        daemon_pages,
        daemons,
        tick_ns,
        touches,
        reads,
        log_bytes,
        log_pages,
        k_cache,
        k_daemon,
        k_transient,
        k_buf,
        k_log,
        k_log + log_pages,
    )


def new_system(conf: SysConf, rng: np.ndarray) -> System:
    st = np.zeros(N_Y, np.int64)
    st[Y_BOOTED_T] = NEVER
    return System(st, rng, conf)


def new_sched(tasks: int, boot_t: int, gate: GateConf, rng: np.ndarray) -> Sched:
    """Clocks for the system task (starting at ``boot_t``) and ``tasks`` workload tasks."""
    clock = np.full(1 + tasks, NOT_STARTED, np.int64)
    clock[0] = boot_t
    return Sched(clock, np.zeros(N_G, np.int64), rng, gate)


def system_step_events(c: SysConf) -> int:
    """Events one daemon step of the system task may emit at most (reclaim and writeback aside):
    its touches and reads (an access may swap in or fill), its buffers and the log."""
    return 3 * (c.touches + c.reads) + 4 * BUF_RING + 16


@nb.njit(cache=True, nogil=True, _nrt=False)
def system_step(g, sy, t):
    """One step of the system task at time ``t``; returns its next clock."""
    c = sy.conf
    st = sy.st
    phase = st[Y_PHASE]
    i = st[Y_I]
    if phase == P_IDLE:
        return _daemon_step(g, sy, t)
    if phase == P_KERNEL:
        total = c.reserved
        n = min(BOOT_STEP * 4, total - i)
        t = kernel_reserve(g, i, n, t)
    else:
        if phase == P_BOOT_CACHE:
            key0, total = c.key_cache, c.cache_pages
        elif phase == P_DAEMONS:
            key0, total = c.key_daemon, c.daemon_pages
        else:
            key0, total = c.key_transient, c.transient_pages
        n = min(BOOT_STEP, total - i)
        for j in range(i, i + n):
            if phase == P_BOOT_CACHE:
                t = file_read(g, key0 + j, False, t)
            elif phase == P_BOOT_FREE:
                t = page_free(g, key0 + j, t)
            else:
                t = anon_alloc(g, key0 + j, t)
    st[Y_I] = i + n
    if i + n >= total:
        st[Y_I] = 0
        st[Y_PHASE] = phase + 1
        if phase + 1 == P_IDLE:
            st[Y_BOOTED_T] = t
            st[Y_TICK_T] = t
    return t


@nb.njit(cache=True, nogil=True, _nrt=False)
def _daemon_step(g, sy, t):
    c = sy.conf
    st = sy.st
    d = st[Y_DAEMON]
    lo = c.daemon_pages * d // c.daemons
    hi = c.daemon_pages * (d + 1) // c.daemons
    for j in range(c.touches):
        t = anon_touch(g, c.key_daemon + lo + rng_below(sy.rng, hi - lo), j % 2 == 1, t)
    for _ in range(c.reads):
        t = file_read(g, c.key_cache + rng_below(sy.rng, c.cache_pages), False, t)
    n_buf = 1 + rng_below(sy.rng, BUF_RING)
    for j in range(n_buf):
        t = anon_alloc(g, c.key_buf + j, t)
    for j in range(n_buf):
        t = page_free(g, c.key_buf + j, t)
    if d + 1 < c.daemons:
        st[Y_DAEMON] = d + 1
        return t
    # The last daemon of this tick: the log grows, and everyone sleeps until the next tick.
    st[Y_DAEMON] = 0
    offset_bytes, t = log_append(g, c.key_log, st[Y_LOG_BYTES], c.log_bytes, c.log_pages, t)
    st[Y_LOG_BYTES] = offset_bytes
    st[Y_TICK_T] = max(t, st[Y_TICK_T] + c.tick_ns)
    return st[Y_TICK_T]


@nb.njit(cache=True, nogil=True, _nrt=False)
def busy(g, rng, t, cpu_ns, touches, key0, pages, write_fraction):
    """``cpu_ns`` of CPU work spread around ``touches`` accesses to random pages ``key0..key0+pages-1``."""
    if touches == 0:
        return compute(g, t, cpu_ns)
    for _ in range(touches):
        t = compute(g, t, cpu_ns // touches)
        t = anon_touch(g, key0 + rng_below(rng, pages), rng_uniform(rng) < write_fraction, t)
    return t


@nb.njit(cache=True, nogil=True, _nrt=False)
def _gate_open(sc, t):
    """The earliest time >= ``t`` inside an "on" period of the demand schedule."""
    c = sc.conf
    if c.on_ns <= 0:
        return t
    gate = sc.gate
    while t >= gate[G_END]:
        # Night at t = 0 and every day_ns after: long off periods, short on periods.
        night = math.cos(2.0 * math.pi * gate[G_END] / c.day_ns) if c.day_ns > 0 else 0.0
        off = rng_exp(sc.rng, c.off_ns * (1.0 + c.amplitude * night))
        on = rng_exp(sc.rng, c.on_ns * (1.0 - c.amplitude * night))
        gate[G_START] = gate[G_END] + np.int64(off)
        gate[G_END] = gate[G_START] + max(np.int64(1), np.int64(on))
    return max(t, gate[G_START])


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def next_turn(g, sy, sc, t_end):
    """Run system steps and demand waits until a workload task is due; return its index.

    Returns -1 when every task's clock has reached ``t_end`` and -2 when the
    chunk is full. Workload task ``k`` (1-based) has clock ``sc.clock[k]``.
    Each workload calls this from its own five-line ``run`` loop around its
    step function: numba caches no function that takes another function as
    an argument or closes over one, and a recompile per process would cost
    more than the loop.
    """
    clock = sc.clock
    while more(g):
        k = 0
        for i in range(1, clock.size):
            if clock[i] < clock[k]:
                k = i
        t = clock[k]
        if t >= t_end:
            return -1
        if k == 0:
            clock[0] = system_step(g, sy, t)
            if sy.st[Y_BOOTED_T] <= clock[0]:
                for i in range(1, clock.size):
                    if clock[i] == NOT_STARTED:
                        clock[i] = sy.st[Y_BOOTED_T]
            continue
        opened = _gate_open(sc, t)
        if opened > t:
            clock[k] = opened
            continue
        return k
    return -2
