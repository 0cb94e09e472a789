"""Guest parameters shared by every workload, guest plans, and the chunked runner.

A workload turns its parameters into one :class:`GuestPlan` per guest: the
guest model's settings, the system task's, the workload's ``njit`` run
function and a maker of its fresh state. :func:`run_guest` runs a plan chunk
by chunk (the model writes into a preallocated buffer; each full chunk goes
to a sink, e.g. a :class:`cmmsim.tracer.io.TraceWriter`), so a trace's length is
not bounded by memory. With ``twin=True`` the same plan runs on the
pure-Python twin (:mod:`cmmsim.tracer.synth._twin`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cmmsim.tracer.params import need
from cmmsim.tracer.schema import MAX_GUEST_BYTES, MAX_GUEST_PAGES, Op
from cmmsim.tracer.synth import _model, _state
from cmmsim.tracer.synth._guest import GuestSim
from cmmsim.tracer.synth._rng import rng_state
from cmmsim.tracer.synth._system import (
    MIB_PAGES,
    NOT_STARTED,
    GateConf,
    SysConf,
    new_sched,
    new_system,
    sys_conf,
    system_step_events,
)
from cmmsim.tracer.synth._twin import python_twin

#: Events per chunk handed to the sink (one Parquet row group).
CHUNK_EVENTS = 1 << 20
#: ``t_end`` when a run is bounded by its event count alone.
UNBOUNDED_NS = NOT_STARTED - 1
FIRST_HINT = int(Op.SET_STABLE)  # the SET_* codes follow the two accesses
#: Random streams of one guest (the scenario seed is the first word).
STREAM_WORKLOAD, STREAM_SYSTEM, STREAM_GATE, STREAM_LAYOUT = 0, 1, 2, 3
#: The most guest CPUs (Linux's largest ``NR_CPUS``); the model keeps a clock per CPU.
MAX_CPUS = 8192
#: The most one page may cost, ns (copy, zero fill, disk or network time): a
#: guest's clock adds such costs per event, and 1 s each keeps any realistic
#: run's clock far from the int64 end.
MAX_PAGE_NS = 10**9
#: The slowest disk and network, so that one page moves within ``MAX_PAGE_NS``.
MIN_DISK_MIB_S = 1e9 / MAX_PAGE_NS / MIB_PAGES
MIN_NET_MBIT_S = 4096 * 8 * 1000 / MAX_PAGE_NS
#: The most pages one step of a task may touch (the event buffer holds a whole step).
MAX_STEP_TOUCHES = 1 << 20


@dataclass(frozen=True)
class GuestParams:
    """The guest and its system: memory, CPUs, devices, costs, boot and daemons.

    Every workload's parameters extend these. Sizes are absolute (MiB), so the
    share of a guest in use follows from its size; costs are physical (ns per
    page, MiB/s) so event rates follow from the work and the CPU count.
    """

    guest_mib: int = field(default=1024, metadata={"help": "guest memory, MiB"})
    cpus: int = field(
        default=1,
        metadata={"help": "guest CPUs (tasks run in parallel up to this many)", "max": MAX_CPUS},
    )
    duration_s: float = field(
        default=60.0, metadata={"help": "guest time simulated, s (--events stops earlier or later instead)"}
    )
    kernel_mib: float = field(
        default=16.0,
        metadata={
            "help": "kernel image and boot reservations, MiB (the struct page array, 1/64 of memory, "
            "comes on top): stable from boot, never freed"
        },
    )
    boot_transient_mib: float = field(
        default=16.0, metadata={"help": "memory used during boot and freed when it ends (initramfs), MiB"}
    )
    boot_cache_mib: float = field(
        default=48.0,
        metadata={
            "help": "binaries, libraries and files the boot reads into the page cache, MiB (absolute: with "
            "kernel_mib and daemon_mib it sets the share of an idle guest in use by construction)"
        },
    )
    daemons: int = field(default=12, metadata={"help": "system daemons (each wakes every tick)"})
    daemon_mib: float = field(
        default=24.0,
        metadata={
            "help": "anonymous memory of all system daemons, MiB (absolute: the share of memory in use "
            "after boot follows from guest_mib)"
        },
    )
    tick_s: float = field(default=1.0, metadata={"help": "period of the daemons' wake-ups, s"})
    daemon_touches: int = field(
        default=8, metadata={"help": "own pages each daemon touches per tick", "max": MAX_STEP_TOUCHES}
    )
    daemon_reads: int = field(
        default=4, metadata={"help": "cached library pages each daemon reads per tick", "max": MAX_STEP_TOUCHES}
    )
    log_bytes_per_tick: int = field(
        default=512, metadata={"help": "system log growth per tick, bytes", "max": MAX_GUEST_BYTES}
    )
    log_mib: float = field(default=16.0, metadata={"help": "system log size before it wraps, MiB"})
    copy_ns: int = field(
        default=1000,
        metadata={
            "help": "CPU time to copy one page between the page cache and a process, ns",
            "max": MAX_PAGE_NS,
        },
    )
    zero_ns: int = field(
        default=1500,
        metadata={
            "help": "CPU time of a page fault that zero-fills a fresh anonymous page, ns",
            "max": MAX_PAGE_NS,
        },
    )
    disk_mib_s: float = field(
        default=200.0,
        metadata={
            "help": "disk bandwidth for cache misses, writeback and swap, MiB/s",
            "min": MIN_DISK_MIB_S,
        },
    )
    net_mbit_s: float = field(default=1000.0, metadata={"help": "network link speed, Mbit/s", "min": MIN_NET_MBIT_S})
    sndbuf_kib: int = field(default=256, metadata={"help": "socket send buffer a task may run ahead by, KiB"})
    dirty_expire_s: float = field(
        default=30.0, metadata={"help": "age at which the flusher writes a dirty page back, s (dirty_expire_centisecs)"}
    )
    dirty_writeback_s: float = field(
        default=5.0, metadata={"help": "period of the flusher, s (dirty_writeback_centisecs)"}
    )
    dirty_background_ratio: float = field(
        default=0.10, metadata={"help": "dirty share of memory above which the flusher writes back at once"}
    )

    def __post_init__(self):
        need(
            8 <= self.guest_mib <= MAX_GUEST_PAGES // MIB_PAGES,
            f"guest_mib must be 8..{MAX_GUEST_PAGES // MIB_PAGES:,} (a trace's pfns are 31-bit)",
        )
        need(self.cpus >= 1, "cpus must be >= 1")
        need(self.duration_s > 0, "duration_s must be > 0")
        need(
            min(self.kernel_mib, self.boot_transient_mib, self.boot_cache_mib, self.daemon_mib) >= 0,
            "kernel_mib, boot_transient_mib, boot_cache_mib and daemon_mib must be >= 0",
        )
        need(
            self.daemons >= 1 and self.daemon_pages() >= self.daemons,
            "need daemons >= 1 and at least one page of daemon_mib per daemon",
        )
        need(self.boot_cache_pages() >= 1, "boot_cache_mib must be at least one page")
        need(
            self.reserved_pages() + self.daemon_pages() + _pages(self.boot_transient_mib) <= 0.9 * self.pages(),
            "kernel, daemon and boot-time memory must fit in 90 % of guest_mib",
        )
        need(
            self.tick_s > 0 and self.daemon_touches >= 0 and self.daemon_reads >= 0,
            "tick_s must be > 0, daemon_touches and daemon_reads >= 0",
        )
        need(self.log_bytes_per_tick >= 0 and self.log_mib > 0, "log sizes must be >= 0 and > 0")
        need(min(self.copy_ns, self.zero_ns) >= 0, "copy_ns and zero_ns must be >= 0")
        need(self.disk_mib_s > 0 and self.net_mbit_s > 0, "disk_mib_s and net_mbit_s must be > 0")
        need(self.sndbuf_kib >= 4, "sndbuf_kib must be >= 4")
        need(
            self.dirty_expire_s >= 0 and self.dirty_writeback_s > 0,
            "dirty_expire_s must be >= 0 and dirty_writeback_s > 0",
        )
        need(0 < self.dirty_background_ratio <= 1, "dirty_background_ratio must be in (0, 1]")

    def pages(self) -> int:
        return self.guest_mib * MIB_PAGES

    def reserved_pages(self) -> int:
        return _pages(self.kernel_mib) + self.pages() // 64

    def daemon_pages(self) -> int:
        return _pages(self.daemon_mib)

    def boot_cache_pages(self) -> int:
        return _pages(self.boot_cache_mib)


def _pages(mib: float) -> int:
    return int(round(mib * MIB_PAGES))


def _ns_per_page(mib_s: float) -> int:
    return max(1, int(round(1e9 / (mib_s * MIB_PAGES))))


def guest_config(p: GuestParams) -> _state.Config:
    """The guest model's integer settings."""
    pages = p.pages()
    low, high = _state.watermarks(pages)
    pcp_batch, pcp_high = _state.pcp_sizes(pages, p.cpus, low)
    disk_ns = _ns_per_page(p.disk_mib_s)
    net_ns = max(1, int(round(4096 * 8 * 1000 / p.net_mbit_s)))
    return _state.Config(
        pages=pages,
        reserved=p.reserved_pages(),
        wmark_low=low,
        wmark_high=high,
        copy_ns=p.copy_ns,
        zero_ns=p.zero_ns,
        disk_read_ns=disk_ns,
        disk_write_ns=disk_ns,
        net_ns=net_ns,
        sndbuf_ns=p.sndbuf_kib // 4 * net_ns,
        expire_ns=int(p.dirty_expire_s * 1e9),
        wb_interval_ns=int(p.dirty_writeback_s * 1e9),
        bg_dirty_pages=max(1, int(p.dirty_background_ratio * pages)),
        wb_batch=_state.WB_BATCH,
        pcp_batch=pcp_batch,
        pcp_high=pcp_high,
    )


def system_config(p: GuestParams, boot_t: int = 0) -> SysConf:
    """The system task's settings; its keys come first (``0..n_keys-1``)."""
    return sys_conf(
        reserved=p.reserved_pages(),
        boot_t=boot_t,
        transient_pages=_pages(p.boot_transient_mib),
        cache_pages=p.boot_cache_pages(),
        daemon_pages=p.daemon_pages(),
        daemons=p.daemons,
        tick_ns=int(p.tick_s * 1e9),
        touches=p.daemon_touches,
        reads=p.daemon_reads,
        log_bytes=p.log_bytes_per_tick,
        log_pages=max(1, _pages(p.log_mib)),
    )


NO_GATE = GateConf(0, 0, 0, 0.0)


@dataclass
class GuestPlan:
    """Everything needed to generate one guest.

    ``run(g, system, sched, state, t_end)`` is the workload's ``njit`` driver
    (returns True once every task is past ``t_end``); ``make_state()`` builds
    its fresh state; ``step_events`` bounds the events of one workload step
    (reclaim and writeback aside).
    """

    name: str
    params: GuestParams
    seed: tuple[int, ...]
    run: Callable
    make_state: Callable[[], Any]
    n_keys: int
    tasks: int
    step_events: int
    boot_t: int = 0
    gate: GateConf = NO_GATE
    meta: dict = field(default_factory=dict)

    @property
    def guest_pages(self) -> int:
        return self.params.pages()

    @property
    def duration_ns(self) -> int:
        """Length of a run bounded by ``duration_s``, ns: it ends at ``boot_t`` + this."""
        return int(self.params.duration_s * 1e9)


def run_guest(
    plan: GuestPlan,
    sink: Callable[[np.ndarray, np.ndarray, np.ndarray], None],
    *,
    events: int | None = None,
    twin: bool = False,
    chunk_events: int = CHUNK_EVENTS,
) -> dict[str, int]:
    """Generate one guest chunk by chunk into ``sink``; returns the model's final counters.

    The counters (:data:`cmmsim.tracer.synth._state.FACTS`) come with ``guest_pages``,
    ``events`` and ``hints`` (written; hints are the SET_* events) and
    ``last_t_ns`` (the last event's time).

    The run ends once every task's clock has passed the plan's ``duration_s``
    after boot start (a step that starts before it may end a little after:
    the trace is then exactly the model's history), or after exactly
    ``events`` events when that is given (the duration is then ignored).
    """
    p = plan.params
    cfg = guest_config(p)
    sysconf = system_config(p, plan.boot_t)
    # The largest step is the workload's or the system task's (its daemons' tick).
    step_events = max(plan.step_events, system_step_events(sysconf))
    capacity = chunk_events + _state.headroom_events(cfg, step_events)
    n_keys = sysconf.n_keys + plan.n_keys
    if twin:
        g = GuestSim(cfg, p.cpus, n_keys, capacity)
        run, set_limit, drain, facts = python_twin(plan.run), g.set_limit, g.drain, g.facts
    else:
        g = _model.new_guest(cfg, p.cpus, n_keys, capacity)
        run = plan.run

        def set_limit(n):
            _state.set_limit(g, n)

        def drain():
            return _state.drain(g)

        def facts():
            return _state.facts(g)

    system = new_system(sysconf, rng_state(*plan.seed, STREAM_SYSTEM))
    sched = new_sched(plan.tasks, plan.boot_t, plan.gate, rng_state(*plan.seed, STREAM_GATE))
    state = plan.make_state()
    t_end = UNBOUNDED_NS if events is not None else plan.boot_t + plan.duration_ns
    left = events
    written = hints = 0
    last_t = plan.boot_t
    while True:
        set_limit(chunk_events if left is None else min(chunk_events, left))
        done = run(g, system, sched, state, t_end)
        t, pfn, op = drain()
        if left is not None:
            t, pfn, op = t[:left], pfn[:left], op[:left]
            left -= len(t)
        if len(t):
            sink(t, pfn, op)
            written += len(t)
            hints += int(np.count_nonzero(op >= FIRST_HINT))
            last_t = int(t[-1])
        if done or left == 0:
            return facts() | {"events": written, "hints": hints, "last_t_ns": last_t}


def state_fractions(facts: dict[str, int]) -> dict[str, float]:
    """Guest states (S, U, V, P) as fractions of guest memory, from :func:`run_guest`'s counters."""
    n = facts["guest_pages"]
    p = facts["mapped_clean_pages"] + facts["mapped_dirty_pages"]
    v = facts["inactive_pages"] + facts["active_pages"] - facts["mapped_clean_pages"]
    u = facts["free_pages"]
    return {"S": (n - u - v - p) / n, "U": u / n, "V": v / n, "P": p / n}
