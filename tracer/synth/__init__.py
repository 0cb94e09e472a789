"""Seeded synthetic workload generators, one module per workload.

A workload module defines a frozen params dataclass and a module-level
``WORKLOAD = Workload(...)``; :func:`workloads` finds every such module in
this package, so adding a workload touches only its own module.
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

import numpy as np

from tracer import params as params_mod
from tracer.errors import ParamError
from tracer.io import atomic_output, write_trace
from tracer.schema import MANIFEST_NAME, TraceMeta


@dataclass(frozen=True)
class GuestTrace:
    """One generated guest: its name, memory and event columns."""

    name: str
    guest_pages: int
    t_ns: np.ndarray
    pfn: np.ndarray
    op: np.ndarray


@dataclass(frozen=True)
class Workload:
    """A registered workload: ``generate(params, seed, events) -> [GuestTrace]``."""

    name: str
    params: type
    generate: Callable[[Any, int, int], list[GuestTrace]]
    summary: str
    multi_guest: bool = False


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


def synthesize(
    name: str,
    out: str | Path,
    *,
    seed: int = 0,
    events: int = 500_000,
    params: list[str] | dict | None = None,
) -> list[Path]:
    """Generate a workload and write it.

    Parameters
    ----------
    name : str
        Workload name (see :func:`workloads`).
    out : path-like
        A ``.parquet`` file for single-guest workloads; a scenario folder
        (with a ``scenario.json`` manifest) for multi-guest ones.
    seed : int
        Seed of every random choice; the same seed gives byte-identical files.
    events : int
        Target number of events (per scenario; split among guests).
    params : list of ``k=v`` str or dict
        Workload parameters.

    Returns
    -------
    list of Path
        The trace files written.
    """
    wl = get_workload(name)
    if events <= 0:
        raise ParamError(f"events must be positive, got {events}")
    p = params_mod.parse(wl.params, params, what=f"workload {name}")
    guests = wl.generate(p, seed, events)
    pdict = params_mod.as_dict(p) | {"events": events}
    out = Path(out)

    def meta(g: GuestTrace) -> TraceMeta:
        return TraceMeta(guest_pages=g.guest_pages, source=f"synthetic:{name}", params=pdict
                         | {"guest": g.name}, seed=seed)

    if not wl.multi_guest:
        (g,) = guests
        write_trace(out, g.t_ns, g.pfn, g.op, meta(g))
        return [out]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for g in guests:
        path = out / f"{g.name}.parquet"
        write_trace(path, g.t_ns, g.pfn, g.op, meta(g))
        paths.append(path)
    manifest = {"workload": name, "seed": seed, "params": pdict,
                "guests": [{"name": g.name, "trace": f"{g.name}.parquet"} for g in guests]}
    with atomic_output(out / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return paths


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """An independent, reproducible generator for one stream of one seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))
