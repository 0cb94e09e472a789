"""Seeded synthetic workload generators, one module per workload.

Every workload drives a model of a Linux guest (:mod:`tracer.synth._model`,
compiled with numba; its pure-Python twin is :mod:`tracer.synth._guest`)
that fills free memory with page cache and reclaims it as Linux does, so a
guest's size matters. A workload module defines a frozen params dataclass
(extending :class:`tracer.synth._plan.GuestParams`) and a module-level
``WORKLOAD = Workload(...)``; :func:`workloads` finds every such module in
this package, so adding a workload touches only its own module.

Guests are generated chunk by chunk straight into their trace files (memory
does not grow with the length), several guests of a scenario at once on
threads; each guest draws from its own random streams, so the same seed gives
the same bytes whatever the parallelism.
"""

from __future__ import annotations

import functools
import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracer import params as params_mod
from tracer.errors import ParamError
from tracer.io import TraceWriter, atomic_output
from tracer.schema import MANIFEST_NAME, TraceMeta
from tracer.synth._plan import CHUNK_EVENTS, GuestPlan, run_guest, run_parallel


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


def plan(name: str, *, seed: int = 0, params: list[str] | dict | None = None
         ) -> tuple[Workload, Any, list[GuestPlan]]:
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


def generate(name: str, out: str | Path | None, *, seed: int = 0, events: int | None = None,
             params: list[str] | dict | None = None, jobs: int | None = None,
             twin: bool = False, chunk_events: int = CHUNK_EVENTS) -> list[GuestResult]:
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
        Guests generated at once (threads); default: one per CPU. The output
        does not depend on it.
    twin : bool
        Run the pure-Python twin of the model instead (slow; for tests).
    chunk_events : int
        Events generated per chunk (and written per row group); memory use
        grows with it, not with the trace's length.
    """
    if events is not None and events <= 0:
        raise ParamError(f"events must be positive, got {events}")
    wl, p, plans = plan(name, seed=seed, params=params)
    per_guest = _split(events, len(plans))
    pdict = params_mod.as_dict(p) | {"events": events}
    folder = None
    if out is not None and wl.multi_guest:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)

    def job(gp: GuestPlan, n: int | None) -> Callable[[], GuestResult]:
        def go() -> GuestResult:
            if out is None:
                return GuestResult(gp.name, None, run_guest(gp, lambda *_: None, events=n, twin=twin,
                                                            chunk_events=chunk_events))
            path = folder / f"{gp.name}.parquet" if folder else Path(out)
            with TraceWriter(path, gp.guest_pages) as w:
                facts = run_guest(gp, w.write, events=n, twin=twin, chunk_events=chunk_events)
                w.finish(TraceMeta(guest_pages=gp.guest_pages, source=f"synthetic:{name}",
                                   params=pdict | {"guest": gp.name} | gp.meta, seed=seed))
            return GuestResult(gp.name, path, facts)
        return go

    results = run_parallel([job(gp, n) for gp, n in zip(plans, per_guest, strict=True)], jobs)
    if folder is not None:
        manifest = {"workload": name, "seed": seed, "params": pdict,
                    "guests": [{"name": r.name, "trace": r.path.name} for r in results]}
        with atomic_output(folder / MANIFEST_NAME) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return results


def synthesize(name: str, out: str | Path, *, seed: int = 0, events: int | None = None,
               params: list[str] | dict | None = None, jobs: int | None = None) -> list[Path]:
    """Generate a workload and write it; returns the trace files written (see :func:`generate`)."""
    return [r.path for r in generate(name, out, seed=seed, events=events, params=params, jobs=jobs)]
