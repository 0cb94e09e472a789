"""Seeded synthetic workload generators, one module per workload.

Every workload drives a model of a Linux guest (:mod:`cmmsim.tracer.synth._model`,
compiled with numba; its pure-Python twin is :mod:`cmmsim.tracer.synth._guest`)
that fills free memory with page cache and reclaims it as Linux does, so a
guest's size matters. A workload module defines a frozen params dataclass
(extending :class:`cmmsim.tracer.synth._plan.GuestParams`) and a module-level
``WORKLOAD = Workload(...)``; :func:`workloads` finds every such module in
this package, so adding a workload touches only its own module.

Guests are generated chunk by chunk straight into their trace files (memory
does not grow with the length), several guests of a scenario at once in
worker processes; each guest draws from its own random streams, so the same
seed gives the same bytes whatever the parallelism.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import importlib
import json
import multiprocessing
import os
import pkgutil
import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmmsim.tracer import params as params_mod
from cmmsim.tracer.children import die_with_parent
from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.io import TraceWriter, atomic_output
from cmmsim.tracer.schema import MANIFEST_NAME, TraceMeta
from cmmsim.tracer.synth._plan import CHUNK_EVENTS, GuestPlan, run_guest

__all__ = [
    "GuestResult",
    "SCENARIO_ROW_GROUP_EVENTS",
    "Workload",
    "default_jobs",
    "generate",
    "get_workload",
    "plan",
    "scenario_chunk_events",
    "synthesize",
    "workloads",
]


#: Seconds the parent waits for a worker's chunk report before it looks
#: whether every guest is done (:func:`_relay`).
RELAY_POLL_S = 0.2

#: Events of all the guests of a scenario in one row group each (about 13
#: bytes an event decoded, so about 200 MiB): see :func:`scenario_chunk_events`.
SCENARIO_ROW_GROUP_EVENTS = 1 << 24


@dataclass(frozen=True)
class Workload:
    """A registered workload: ``plans(params, seed) -> [GuestPlan]``, one per guest."""

    name: str
    params: type
    plans: Callable[[Any, int], list[GuestPlan]]
    summary: str
    multi_guest: bool = False


@dataclass(frozen=True)
class GuestResult:
    """One generated guest: its trace file (None when not written) and the model's final counters."""

    name: str
    path: Path | None
    facts: dict[str, int]


@functools.cache
def workloads() -> dict[str, Workload]:
    """Every workload module in this package, by name."""
    found: dict[str, Workload] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        wl = getattr(module, "WORKLOAD", None)
        if isinstance(wl, Workload):
            found[wl.name] = wl
    return dict(sorted(found.items()))


def get_workload(name: str) -> Workload:
    """Look a workload up by name; unknown names list the known ones."""
    known = workloads()
    if name not in known:
        raise ParamError(f"unknown workload {name!r} (known: {', '.join(known)})")
    return known[name]


def plan(name: str, *, seed: int = 0, params: list[str] | dict | None = None) -> tuple[Workload, Any, list[GuestPlan]]:
    """The workload, its parsed parameters and one plan per guest."""
    wl = get_workload(name)
    p = params_mod.parse(wl.params, params, what=f"workload {name}")
    return wl, p, wl.plans(p, seed)


def _split(events: int | None, n: int) -> list[int | None]:
    if events is None:
        return [None] * n
    if events < n:
        raise ParamError(f"events must be at least the number of guests ({n}), got {events}")
    return [events // n + (1 if i < events % n else 0) for i in range(n)]


@dataclass(frozen=True)
class _GuestJob:
    """One guest to generate: what a worker process needs to rebuild its plan and run it."""

    workload: str
    seed: int
    params: tuple  # the parsed parameters, sorted (name, value) pairs
    index: int
    path: Path | None
    events: int | None
    meta: dict
    chunk_events: int
    #: Where a worker process sends ``(events, guest_ns)`` per chunk (a manager's
    #: queue; None: no progress asked for).
    progress: Any = None


@functools.lru_cache(maxsize=4)
def _plans(workload: str, seed: int, params: tuple) -> list[GuestPlan]:
    # Each worker plans a scenario once, then runs the guests it is handed.
    return plan(workload, seed=seed, params=dict(params))[2]


def _run_job(job: _GuestJob, twin: bool = False, on_chunk: Callable[[int, int], None] | None = None) -> GuestResult:
    gp = _plans(job.workload, job.seed, job.params)[job.index]
    if on_chunk is None and job.progress is not None:
        on_chunk = _put_to(job.progress)
    if job.path is None:
        sink, finish = _reporting(gp, lambda *_: None, on_chunk)
        facts = run_guest(gp, sink, events=job.events, twin=twin, chunk_events=job.chunk_events)
        finish()
        return GuestResult(gp.name, None, facts)
    with TraceWriter(job.path, gp.guest_pages) as w:
        sink, finish = _reporting(gp, w.write, on_chunk)
        facts = run_guest(gp, sink, events=job.events, twin=twin, chunk_events=job.chunk_events)
        w.finish(
            TraceMeta(
                guest_pages=gp.guest_pages,
                source=f"synthetic:{job.workload}",
                params=job.meta | {"guest": gp.name} | gp.meta,
                seed=job.seed,
                vcpus=gp.params.cpus,  # what the replay's CPU share divides by
            )
        )
    finish()
    return GuestResult(gp.name, job.path, facts)


def _put_to(q: Any) -> Callable[[int, int], None]:
    """``on_chunk`` of a worker process: each report goes to the parent through ``q``."""
    return lambda events, guest_ns: q.put((events, guest_ns))


def _reporting(
    gp: GuestPlan, sink: Callable, on_chunk: Callable[[int, int], None] | None
) -> tuple[Callable, Callable[[], None]]:
    """``sink`` that also reports each chunk to ``on_chunk``, and the call that ends the guest's reports.

    A chunk reports its events and the guest time it advanced, ns: from boot
    start to its last event, capped at the plan's ``duration_s``. A guest's
    last report tops its time up to ``duration_s`` (its tasks may go idle
    before the end, leaving no events there), so the reports of a run bounded
    by its duration add up to ``duration_s`` per guest. Reporting only reads
    the chunk: what is written does not change.
    """
    if on_chunk is None:
        return sink, lambda: None
    end_ns = gp.boot_t + gp.duration_ns  # as run_guest ends the run
    at_ns = gp.boot_t

    def reported(t, pfn, op):
        nonlocal at_ns
        sink(t, pfn, op)
        now_ns = min(int(t[-1]), end_ns)
        on_chunk(len(t), max(0, now_ns - at_ns))
        at_ns = max(at_ns, now_ns)

    def finish():
        on_chunk(0, max(0, end_ns - at_ns))

    return reported, finish


def _relay(q: Any, futures: list[concurrent.futures.Future], on_chunk: Callable[[int, int], None]) -> None:
    """Pass the workers' chunk reports from ``q`` to ``on_chunk`` until every guest is done.

    A worker's ``put`` returns once the manager holds the report, so when
    every future is done every report is in ``q``: what is left is drained.
    """
    while True:
        try:
            on_chunk(*q.get(timeout=RELAY_POLL_S))
        except queue.Empty:
            if all(f.done() for f in futures):
                break
    while True:
        try:
            on_chunk(*q.get_nowait())
        except queue.Empty:
            return


def scenario_chunk_events(n_guests: int) -> int:
    """Events per chunk (and row group) of each guest of an ``n_guests``-guest scenario.

    A streamed replay holds about one decoded row group of every guest at
    once (:func:`cmmsim.replay.stream.merged_batches`), so a scenario's row
    groups shrink with its guest count: all its guests' together stay near
    :data:`SCENARIO_ROW_GROUP_EVENTS` events (a power of two per guest,
    between 64 Ki and :data:`cmmsim.tracer.synth._plan.CHUNK_EVENTS`).
    """
    share = SCENARIO_ROW_GROUP_EVENTS // max(1, n_guests)
    return max(1 << 16, min(CHUNK_EVENTS, 1 << (share.bit_length() - 1) if share else 0))


def default_jobs() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def generate(
    name: str,
    out: str | Path | None,
    *,
    seed: int = 0,
    events: int | None = None,
    params: list[str] | dict | None = None,
    jobs: int | None = None,
    twin: bool = False,
    chunk_events: int | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> list[GuestResult]:
    """Generate a workload, writing it (or not, with ``out=None``); one result per guest.

    Parameters
    ----------
    name : str
        Workload name (see :func:`workloads`).
    out : path-like or None
        A ``.parquet`` file for single-guest workloads; a scenario folder (with
        a ``scenario.json`` manifest) for multi-guest ones. None: run the model
        and keep only its counters (no trace written).
    seed : int
        Seed of every random choice; the same seed gives byte-identical files.
    events : int, optional
        Stop after this many events (split evenly among guests) instead of at
        the workload's ``duration_s``.
    params : list of ``k=v`` str or dict
        Workload parameters.
    jobs : int, optional
        Guests generated at once, each worker a process (Parquet writing holds
        the GIL, so threads would not run in parallel); default: one per CPU.
        The output does not depend on it.
    twin : bool
        Run the pure-Python twin of the model instead (slow; for tests; in this
        process).
    chunk_events : int, optional
        Events generated per chunk (and written per row group); memory use
        grows with it, not with the trace's length. Default:
        :data:`cmmsim.tracer.synth._plan.CHUNK_EVENTS` for one guest, less
        per guest for a scenario (:func:`scenario_chunk_events`).
    on_chunk : callable, optional
        Progress: called in this process as each guest writes a chunk, with
        the chunk's events and the guest time it advanced, ns (capped so that
        a run bounded by its duration reports exactly ``duration_s`` per
        guest in all; a guest's last call may hold 0 events). From worker
        processes the calls come through a queue, in the order they arrive.
        Reporting does not change the output.
    """
    if events is not None and events <= 0:
        raise ParamError(f"events must be positive, got {events}")
    wl = get_workload(name)
    p = params_mod.parse(wl.params, params, what=f"workload {name}")
    key = tuple(sorted(params_mod.as_dict(p).items()))
    plans = _plans(name, seed, key)
    per_guest = _split(events, len(plans))
    if chunk_events is None:
        chunk_events = scenario_chunk_events(len(plans)) if wl.multi_guest else CHUNK_EVENTS
    pdict = params_mod.as_dict(p) | {"events": events}
    folder = None
    if out is not None and wl.multi_guest:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
    todo = [
        _GuestJob(
            name,
            seed,
            key,
            i,
            None if out is None else folder / f"{gp.name}.parquet" if folder else Path(out),
            n,
            pdict,
            chunk_events,
        )
        for i, (gp, n) in enumerate(zip(plans, per_guest, strict=True))
    ]
    workers = min(len(todo), jobs or default_jobs())
    if twin or workers <= 1:
        results = [_run_job(job, twin, on_chunk) for job in todo]
    else:
        ctx = multiprocessing.get_context("spawn")
        with contextlib.ExitStack() as stack:
            q = None
            if on_chunk is not None:
                # A manager's queue: its proxy goes to the workers inside each job.
                q = stack.enter_context(ctx.Manager()).Queue()
            pool = stack.enter_context(
                concurrent.futures.ProcessPoolExecutor(
                    workers, mp_context=ctx, initializer=die_with_parent, initargs=(os.getpid(),)
                )
            )
            futures = [pool.submit(_run_job, dataclasses.replace(job, progress=q)) for job in todo]
            if q is not None:
                _relay(q, futures, on_chunk)
            results = [f.result() for f in futures]
    if folder is not None:
        manifest = {
            "workload": name,
            "seed": seed,
            "params": pdict,
            "guests": [{"name": r.name, "trace": r.path.name} for r in results],
        }
        with atomic_output(folder / MANIFEST_NAME) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return results


def synthesize(
    name: str,
    out: str | Path,
    *,
    seed: int = 0,
    events: int | None = None,
    params: list[str] | dict | None = None,
    jobs: int | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Generate a workload and write it; returns the trace files written (see :func:`generate`)."""
    results = generate(name, out, seed=seed, events=events, params=params, jobs=jobs, on_chunk=on_chunk)
    return [r.path for r in results]
