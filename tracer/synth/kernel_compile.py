"""``kernel-compile``: a parallel kernel build (``make -j cpus``) in a small guest.

One compiler process per CPU; each compiles one unit after another:

1. fork and exec: a kernel stack (an order-2 block of kernel memory) and page
   tables, then the
   compiler binary's pages it runs are faulted in (page-cache lookups: the
   binary stays cached, every unit reads the same pages);
2. read the source file, then ``headers_per_unit`` header inclusions drawn
   from a Zipf popularity law (hot headers are read by nearly every unit),
   while the heap grows (anonymous pages, 2 MiB huge pages with ``thp``);
3. compile: CPU time, with heap accesses recorded every ``touch_us`` (most to
   the most recently allocated part of the heap), the heap growing to its
   final size;
4. write the object file (dirty page cache, written back by the flusher);
   the dependency file gcc writes (``.d``) is read back by ``fixdep``, which
   writes the unit's ``.cmd`` file and deletes the ``.d`` one (dirty pages
   freed before writeback);
5. exit: the heap, stack and page tables are freed.

When every unit is built the last process links: it reads every object file
and writes the image through a writable mapping (potentially volatile pages),
then ``make clean`` deletes the objects, ``.cmd`` files and image and the
build starts over (sources and headers stay cached as long as memory allows).
Event and hint rates follow from the CPU times, sizes and the number of CPUs.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from cmmsim.tracer.params import need
from cmmsim.tracer.schema import MAX_GUEST_PAGES
from cmmsim.tracer.synth import Workload
from cmmsim.tracer.synth._model import (
    anon_alloc,
    anon_alloc_block,
    anon_touch,
    compute,
    file_read,
    file_write,
    kmem_alloc,
    kmem_free,
    page_free,
)
from cmmsim.tracer.synth._plan import (
    MAX_STEP_TOUCHES,
    STREAM_LAYOUT,
    STREAM_WORKLOAD,
    GuestParams,
    GuestPlan,
    system_config,
)
from cmmsim.tracer.synth._rng import rng_below, rng_erlang, rng_pick, rng_state, rng_uniform, zipf_cdf
from cmmsim.tracer.synth._system import MIB_PAGES, NEVER, next_turn

# Task phases.
(T_START, T_EXEC, T_SOURCE, T_PARSE, T_COMPILE, T_WRITE, T_DEPS, T_EXIT, T_IDLE, T_LINK_READ, T_LINK_WRITE, T_CLEAN) = (
    range(12)
)
# Per-task integers.
F_PHASE, F_I, F_UNIT, F_HEAP, F_HEAP_TOTAL, F_CPU_NS, F_INCLUDED, N_F = range(8)
# Build-wide integers.
B_NEXT_UNIT, B_RUNNING, B_BUILDS, N_B = range(4)
#: Page operations per step.
STEP = 32
STACK_PAGES, STACK_ORDER, PT_PAGES = 4, 2, 8
#: Largest dependency file, pages.
MAX_CMD_PAGES = 64
#: The most source or header files (each takes at least a page of the model's 31-bit keys).
MAX_FILES = MAX_GUEST_PAGES
THP_ORDER = 9
#: Share of a unit's CPU time spent parsing (the rest compiles).
PARSE_SHARE = 0.3

Conf = namedtuple(
    "Conf",
    [
        "sources",
        "headers_per_unit",
        "bin_key",
        "exec_pages",
        "vm_key",
        "vm_pages",
        "dep_key",
        "slot_key",
        "slot_pages",
        "heap_mean",
        "heap_max",
        "cpu_mean_ns",
        "fork_ns",
        "touch_ns",
        "hot_fraction",
        "hot_share",
        "write_fraction",
        "thp",
    ],
)
State = namedtuple(
    "State",
    [
        "task",
        "build",
        "rng",
        "src_off",
        "src_len",
        "hdr_off",
        "hdr_len",
        "hdr_cdf",
        "obj_off",
        "obj_len",
        "cmd_off",
        "cmd_len",
        "conf",
    ],
)


@dataclass(frozen=True)
class Params(GuestParams):
    guest_mib: int = field(default=256, metadata={"help": "guest memory, MiB"})
    cpus: int = field(default=2, metadata={"help": "guest CPUs = compiler processes at once (make -j)"})
    duration_s: float = field(
        default=300.0, metadata={"help": "guest time simulated, s (--events stops earlier or later instead)"}
    )
    sources: int = field(default=3000, metadata={"help": "compilation units in one build", "max": MAX_FILES})
    source_kib: float = field(default=24.0, metadata={"help": "mean source file size, KiB"})
    headers: int = field(default=6000, metadata={"help": "header files in the tree", "max": MAX_FILES})
    header_kib: float = field(default=8.0, metadata={"help": "mean header file size, KiB"})
    headers_per_unit: int = field(default=300, metadata={"help": "header inclusions per unit", "max": MAX_STEP_TOUCHES})
    header_alpha: float = field(
        default=1.0, metadata={"help": "Zipf exponent of header popularity (sets how often units share headers)"}
    )
    compiler_mib: float = field(default=24.0, metadata={"help": "compiler binary size, MiB"})
    exec_mib: float = field(default=6.0, metadata={"help": "part of the compiler binary a unit runs, MiB"})
    heap_mib: float = field(
        default=24.0,
        metadata={"help": "mean anonymous memory of one compiler process, MiB (Erlang, shape 4, at most 4x)"},
    )
    unit_cpu_ms: float = field(
        default=400.0, metadata={"help": "mean CPU time of one unit, ms (Erlang, shape 4, at most 4x the mean)"}
    )
    touch_us: float = field(
        default=20.0,
        metadata={"help": "CPU time between two recorded heap accesses, us (the trace's sampling of accesses)"},
    )
    hot_fraction: float = field(
        default=0.1, metadata={"help": "most recently allocated share of the heap that gets hot_share of its accesses"}
    )
    hot_share: float = field(default=0.8, metadata={"help": "share of heap accesses to the hot part"})
    write_fraction: float = field(default=0.4, metadata={"help": "share of heap accesses that write"})
    object_ratio: float = field(default=3.0, metadata={"help": "object file size / source file size"})
    cmd_kib: float = field(
        default=16.0, metadata={"help": "mean size of a unit's dependency files (.d, then .cmd), KiB"}
    )
    fork_us: float = field(default=1000.0, metadata={"help": "CPU time of fork and exec, us"})
    thp: bool = field(
        default=False, metadata={"help": "heap in 2 MiB transparent huge pages (order-9 allocations), as THP 'always'"}
    )

    def __post_init__(self):
        super().__post_init__()
        need(self.sources >= 1 and self.headers >= 1, "sources and headers must be >= 1")
        need(self.headers_per_unit >= 1, "headers_per_unit must be >= 1")
        need(
            min(self.source_kib, self.header_kib, self.compiler_mib, self.heap_mib) > 0,
            "file, binary and heap sizes must be > 0",
        )
        need(0 < self.exec_mib <= self.compiler_mib, "exec_mib must be in (0, compiler_mib]")
        need(self.header_alpha > 0, "header_alpha must be > 0")
        need(
            4 * self.heap_mib * self.cpus <= 0.75 * self.guest_mib,
            "cpus x 4 x heap_mib (the largest heaps) must fit in 75 % of guest memory",
        )
        need(
            self.unit_cpu_ms > 0 and self.touch_us > 0 and self.fork_us >= 0,
            "unit_cpu_ms and touch_us must be > 0, fork_us >= 0",
        )
        need(
            0 < self.hot_fraction <= 1 and 0 <= self.hot_share <= 1 and 0 <= self.write_fraction <= 1,
            "hot_fraction must be in (0, 1], hot_share and write_fraction in [0, 1]",
        )
        need(self.object_ratio > 0 and self.cmd_kib > 0, "object_ratio and cmd_kib must be > 0")


@nb.njit(cache=True, nogil=True, _nrt=False)
def _heap_touches(g, w, base, k, cpu_ns, t):
    """``cpu_ns`` of CPU work with a recorded heap access every ``touch_ns`` of it."""
    c = w.conf
    heap = w.task[k, F_HEAP]
    n = cpu_ns // c.touch_ns
    for _ in range(n):
        t = compute(g, t, c.touch_ns)
        if heap == 0:
            continue
        if rng_uniform(w.rng) < c.hot_share:
            idx = heap - 1 - rng_below(w.rng, max(1, np.int64(heap * c.hot_fraction)))
        else:
            idx = rng_below(w.rng, heap)
        t = anon_touch(g, base + idx, rng_uniform(w.rng) < c.write_fraction, t)
    return compute(g, t, cpu_ns - n * c.touch_ns)


@nb.njit(cache=True, nogil=True, _nrt=False)
def _heap_grow(g, w, base, k, target, t):
    """Grow the heap towards ``target`` pages: a 2 MiB block or up to STEP pages."""
    heap = w.task[k, F_HEAP]
    if w.conf.thp and heap % (1 << THP_ORDER) == 0 and target - heap >= (1 << THP_ORDER):
        t = anon_alloc_block(g, base + heap, THP_ORDER, t)
        w.task[k, F_HEAP] = heap + (1 << THP_ORDER)
        return t
    n = min(STEP, target - heap)
    for i in range(heap, heap + n):
        t = anon_alloc(g, base + i, t)
    w.task[k, F_HEAP] = heap + max(0, n)
    return t


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _step(g, w, k, t, clock):
    """One step of compiler task ``k``; returns its next clock."""
    c = w.conf
    task = w.task
    phase = task[k, F_PHASE]
    i = task[k, F_I]
    u = task[k, F_UNIT]
    slot = c.slot_key + k * c.slot_pages
    heap_base = slot + STACK_PAGES + PT_PAGES
    if phase == T_START:
        if w.build[B_NEXT_UNIT] >= c.sources:
            if w.build[B_RUNNING] > 0:
                task[k, F_PHASE] = T_IDLE
                return NEVER
            task[k, F_PHASE] = T_LINK_READ
            task[k, F_I] = 0
            task[k, F_UNIT] = 0
            return t
        u = w.build[B_NEXT_UNIT]
        w.build[B_NEXT_UNIT] = u + 1
        w.build[B_RUNNING] += 1
        task[k, F_UNIT] = u
        heap = np.int64(rng_erlang(w.rng, 4, c.heap_mean))
        task[k, F_HEAP_TOTAL] = min(max(1, heap), c.heap_max)
        task[k, F_HEAP] = 0
        task[k, F_CPU_NS] = np.int64(min(rng_erlang(w.rng, 4, c.cpu_mean_ns), 4.0 * c.cpu_mean_ns))
        task[k, F_INCLUDED] = 0
        t = kmem_alloc(g, slot, STACK_ORDER, t)
        for j in range(PT_PAGES):
            t = kmem_alloc(g, slot + STACK_PAGES + j, 0, t)
        t = compute(g, t, c.fork_ns)
        task[k, F_PHASE] = T_EXEC
        task[k, F_I] = 0
        return t
    if phase == T_EXEC or phase == T_SOURCE or phase == T_WRITE:
        if phase == T_EXEC:
            key, n = c.bin_key, c.exec_pages
        elif phase == T_SOURCE:
            key, n = w.src_off[u], w.src_len[u]
        else:
            key, n = w.obj_off[u], w.obj_len[u]
        end = min(n, i + STEP)
        for j in range(i, end):
            if phase == T_WRITE:
                t = file_write(g, key + j, False, t)
            else:
                t = file_read(g, key + j, False, t)
        task[k, F_I] = end
        if end >= n:
            task[k, F_PHASE] = phase + 1
            task[k, F_I] = 0
        return t
    if phase == T_DEPS:
        # .d written, read back, .cmd written, .d deleted: four passes of cmd_len pages.
        n = w.cmd_len[u]
        end = min(4 * n, i + STEP)
        dep = c.dep_key + k * MAX_CMD_PAGES
        for j in range(i, end):
            part, x = j // n, j % n
            if part == 0:
                t = file_write(g, dep + x, False, t)
            elif part == 1:
                t = file_read(g, dep + x, False, t)
            elif part == 2:
                t = file_write(g, w.cmd_off[u] + x, False, t)
            else:
                t = page_free(g, dep + x, t)
        task[k, F_I] = end
        if end >= 4 * n:
            task[k, F_PHASE] = T_EXIT
            task[k, F_I] = 0
        return t
    if phase == T_PARSE:
        h = rng_pick(w.rng, w.hdr_cdf)
        for j in range(w.hdr_len[h]):
            t = file_read(g, w.hdr_off[h] + j, False, t)
        inc = task[k, F_INCLUDED] + 1
        task[k, F_INCLUDED] = inc
        # Half the heap is allocated while parsing, in step with the inclusions.
        t = _heap_grow(g, w, heap_base, k, task[k, F_HEAP_TOTAL] * inc // (2 * c.headers_per_unit), t)
        t = _heap_touches(g, w, heap_base, k, np.int64(task[k, F_CPU_NS] * PARSE_SHARE) // c.headers_per_unit, t)
        if inc >= c.headers_per_unit:
            task[k, F_PHASE] = T_COMPILE
            task[k, F_I] = 0
        return t
    if phase == T_COMPILE:
        total = np.int64(task[k, F_CPU_NS] * (1.0 - PARSE_SHARE))
        done = min(total, i + (STEP // 2) * c.touch_ns)
        heap_total = task[k, F_HEAP_TOTAL]
        t = _heap_grow(g, w, heap_base, k, heap_total // 2 + heap_total * done // (2 * max(1, total)), t)
        t = _heap_touches(g, w, heap_base, k, done - i, t)
        task[k, F_I] = done
        if done >= total:
            task[k, F_PHASE] = T_WRITE
            task[k, F_I] = 0
        return t
    if phase == T_EXIT:
        heap = task[k, F_HEAP]
        end = min(heap, i + 2 * STEP)
        for j in range(i, end):
            t = page_free(g, heap_base + j, t)
        task[k, F_I] = end
        if end >= heap:
            t = kmem_free(g, slot, STACK_ORDER, t)
            for j in range(PT_PAGES):
                t = kmem_free(g, slot + STACK_PAGES + j, 0, t)
            w.build[B_RUNNING] -= 1
            task[k, F_PHASE] = T_START
            task[k, F_I] = 0
        return t
    return _link_step(g, w, k, t, clock)


@nb.njit(cache=True, nogil=True, _nrt=False)
def _link_step(g, w, k, t, clock):
    """The link (read every object, write the image mapped), then ``make clean`` and a new build."""
    c = w.conf
    task = w.task
    phase = task[k, F_PHASE]
    i = task[k, F_I]
    u = task[k, F_UNIT]
    if phase == T_LINK_READ:
        end = min(w.obj_len[u], i + STEP)
        for j in range(i, end):
            t = file_read(g, w.obj_off[u] + j, False, t)
        task[k, F_I] = end
        if end >= w.obj_len[u]:
            task[k, F_I] = 0
            task[k, F_UNIT] = u + 1
            if u + 1 >= c.sources:
                task[k, F_PHASE] = T_LINK_WRITE
        return t
    if phase == T_LINK_WRITE:
        end = min(c.vm_pages, i + STEP)
        for j in range(i, end):
            t = file_write(g, c.vm_key + j, True, t)
        task[k, F_I] = end
        if end >= c.vm_pages:
            task[k, F_PHASE] = T_CLEAN
            task[k, F_I] = 0
            task[k, F_UNIT] = 0
        return t
    # make clean: delete the objects and .cmd files, then the image; then every
    # process starts the next build.
    if u < 2 * c.sources:
        key = w.obj_off[u] if u < c.sources else w.cmd_off[u - c.sources]
        n = w.obj_len[u] if u < c.sources else w.cmd_len[u - c.sources]
        end = min(n, i + 2 * STEP)
        for j in range(i, end):
            t = page_free(g, key + j, t)
        task[k, F_I] = end
        if end >= n:
            task[k, F_I] = 0
            task[k, F_UNIT] = u + 1
        return t
    end = min(c.vm_pages, i + 2 * STEP)
    for j in range(i, end):
        t = page_free(g, c.vm_key + j, t)
    task[k, F_I] = end
    if end >= c.vm_pages:
        w.build[B_NEXT_UNIT] = 0
        w.build[B_BUILDS] += 1
        for j in range(task.shape[0]):
            task[j, F_PHASE] = T_START
            task[j, F_I] = 0
            if j != k:
                clock[1 + j] = t
    return t


@nb.njit(cache=True, nogil=True, _nrt=False)
def run(g, sy, sc, w, t_end):
    """Run the guest until ``t_end`` (True) or a full chunk (False)."""
    while True:
        k = next_turn(g, sy, sc, t_end)
        if k < 0:
            return k == -1
        sc.clock[k] = _step(g, w, k - 1, sc.clock[k], sc.clock)


def _sizes(rng: np.random.Generator, n: int, mean_pages: float, cap: int) -> np.ndarray:
    """File sizes in pages: 1 + Erlang(2) around the mean, at most ``cap``."""
    return np.minimum(1 + rng.gamma(2.0, max(mean_pages - 1, 0.01) / 2, n).astype(np.int64), cap)


def plans(p: Params, seed: int) -> list[GuestPlan]:
    layout = np.random.default_rng(np.random.SeedSequence([seed, 0, STREAM_LAYOUT]))
    src_len = _sizes(layout, p.sources, p.source_kib / 4, 256)
    hdr_len = _sizes(layout, p.headers, p.header_kib / 4, 32)
    obj_len = np.maximum(1, np.round(src_len * p.object_ratio)).astype(np.int64)
    cmd_len = _sizes(layout, p.sources, p.cmd_kib / 4, MAX_CMD_PAGES)
    key = system_config(p).n_keys

    def lay(lengths: np.ndarray) -> np.ndarray:
        nonlocal key
        off = key + np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        key += int(lengths.sum())
        return off

    src_off, hdr_off, obj_off, cmd_off = lay(src_len), lay(hdr_len), lay(obj_len), lay(cmd_len)
    bin_key, vm_key = key, key + int(p.compiler_mib * MIB_PAGES)
    vm_pages = max(1, int(obj_len.sum()) // 4)
    heap_mean = p.heap_mib * MIB_PAGES
    heap_max = int(4 * heap_mean)
    dep_key = vm_key + vm_pages
    slot_key = dep_key + p.cpus * MAX_CMD_PAGES
    slot_pages = STACK_PAGES + PT_PAGES + heap_max
    conf = Conf(
        sources=p.sources,
        headers_per_unit=p.headers_per_unit,
        bin_key=bin_key,
        exec_pages=max(1, int(p.exec_mib * MIB_PAGES)),
        vm_key=vm_key,
        vm_pages=vm_pages,
        dep_key=dep_key,
        slot_key=slot_key,
        slot_pages=slot_pages,
        heap_mean=float(heap_mean),
        heap_max=heap_max,
        cpu_mean_ns=p.unit_cpu_ms * 1e6,
        fork_ns=int(p.fork_us * 1e3),
        touch_ns=max(1, int(p.touch_us * 1e3)),
        hot_fraction=p.hot_fraction,
        hot_share=p.hot_share,
        write_fraction=p.write_fraction,
        thp=p.thp,
    )
    n_keys = slot_key + p.cpus * slot_pages - system_config(p).n_keys
    cdf = zipf_cdf(p.headers, p.header_alpha)

    def make_state() -> State:
        return State(
            task=np.zeros((p.cpus, N_F), np.int64),
            build=np.zeros(N_B, np.int64),
            rng=rng_state(seed, 0, STREAM_WORKLOAD),
            src_off=src_off,
            src_len=src_len,
            hdr_off=hdr_off,
            hdr_len=hdr_len,
            hdr_cdf=cdf,
            obj_off=obj_off,
            obj_len=obj_len,
            cmd_off=cmd_off,
            cmd_len=cmd_len,
            conf=conf,
        )

    # The largest step: a header read, a heap block, a parse step's accesses (each may swap in).
    parse_touches = int(4 * conf.cpu_mean_ns * PARSE_SHARE / p.headers_per_unit / conf.touch_ns) + 1
    step_events = 3 * 2 * STEP + 2 * (1 << THP_ORDER) + 3 * (parse_touches + STEP) + 64
    return [GuestPlan("guest0", p, (seed, 0), run, make_state, n_keys=n_keys, tasks=p.cpus, step_events=step_events)]


WORKLOAD = Workload(
    name="kernel-compile",
    params=Params,
    plans=plans,
    summary="make -j cpus of a kernel: compiler heaps, hot headers, objects, link, clean, again",
)
