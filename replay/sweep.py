"""Batch replays: trace sets x strategies x parameter grids, all budgets per job.

A *job* is one (trace set, strategy, parameters) with all its budgets, so a
trace is loaded once per job. Jobs run on any ``concurrent.futures``
executor: a local process pool by default, or a Dask cluster through
``Client.get_executor(pure=False)``: one code path for both.

The output folder holds::

    sweep.json            what this sweep is (its jobs and their keys)
    parts/<key>.parquet   results of one finished job (written atomically)
    states/<key>.parquet  its state-distribution time series (if sampled)
    series/<key>.parquet  its strategy's per-period series (strategies that write one)
    failed/<key>.json     the error of a job that failed

A job's key hashes the content of its trace files, the strategy, its
parameters, the budgets, the sampling interval and the engine version. Run
again on the same folder, a sweep skips the jobs whose part exists (failed
jobs are tried again) and never writes a row twice; a folder holding another
sweep's results is refused.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from replay import engine
from replay.api import Replayed, replay_full
from replay.scenario import expand_inputs, load
from replay.strategies import get_strategy, strategies
from replay.times import parse_duration_ns
from tracer.errors import CmmsimError, ParamError, TraceError
from tracer.io import atomic_output, write_frame

SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class TraceSet:
    """Guest traces that share one host in every job of the sweep."""

    name: str
    paths: tuple[str, ...]
    copies: int = 1
    stagger_ns: int = 0
    #: State sampling interval for this set (overrides the sweep's).
    states_interval_ns: int | None = None


@dataclass(frozen=True)
class Job:
    """One (trace set, strategy, parameters) with all its budgets."""

    key: str
    trace_set: TraceSet
    strategy: str
    params: dict
    budgets: tuple[str, ...]
    states_interval_ns: int | None = None
    #: The cost profile the rows are priced under: not part of the key, since
    #: pricing needs no replay (``cmmsim report --costs`` re-prices).
    costs: Any = None
    #: vCPUs of guests whose trace does not say (part of the key when given).
    vcpus: int | None = None


@dataclass
class SweepSpec:
    """What to run: trace sets, strategies with parameter grids, budgets."""

    trace_sets: list[TraceSet]
    strategies: list[tuple[str, dict[str, list[Any]]]]
    budgets: list[str]
    states_interval_ns: int | None = None
    per_set_budgets: dict[str, list[str]] = field(default_factory=dict)
    costs: Any = None
    vcpus: int | None = None


# -- building the job list ------------------------------------------------------------------------
def trace_sets_from_inputs(inputs: Iterable[str]) -> list[TraceSet]:
    """Each file, scenario folder or glob match becomes one trace set."""
    sets: list[TraceSet] = []
    for raw in inputs:
        matches = sorted(glob.glob(raw)) if glob.has_magic(raw) else [raw]
        if not matches:
            raise ParamError(f"{raw}: the pattern matches no file")
        for m in matches:
            p = Path(m)
            if not p.exists():
                raise TraceError(f"{p}: no such file or folder")
            # Absolute: workers on a cluster run in other working folders.
            sets.append(TraceSet(p.name.removesuffix(".parquet"), (str(p.resolve()),)))
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        sets = [TraceSet(f"{s.name}@{i}", s.paths, s.copies, s.stagger_ns)
                for i, s in enumerate(sets)]
    return sets


def parse_grid(pairs: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """``strategy:key=v1,v2`` strings -> {strategy: {key: [v1, v2]}}."""
    out: dict[str, dict[str, list[str]]] = {}
    for pair in pairs:
        name, sep, rest = pair.partition(":")
        if not sep or "=" not in rest:
            raise ParamError(f"parameter grid {pair!r} is not of the form strategy:key=v1,v2")
        key, values = rest.split("=", 1)
        out.setdefault(name, {})[key.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    return out


def load_sweep_file(path: str | os.PathLike) -> SweepSpec:
    """Read a TOML sweep file (format in the README)."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ParamError(f"{p}: no such sweep file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParamError(f"{p}: not valid TOML ({exc})") from None
    base = p.parent
    sets = []
    for i, ts in enumerate(doc.get("trace_sets", [])):
        paths = ts.get("paths") or []
        if isinstance(paths, str):
            paths = [paths]
        resolved = []
        for raw in paths:
            pattern = str(base / raw) if not os.path.isabs(raw) else raw
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            resolved.extend(str(Path(m).resolve()) for m in matches)
        if not resolved:
            raise ParamError(f"{p}: trace set {ts.get('name', i)!r} names no trace")
        own = ts.get("states_interval")
        sets.append(TraceSet(str(ts.get("name", f"set{i}")), tuple(resolved),
                             int(ts.get("copies", 1)), parse_duration_ns(ts.get("stagger", 0)),
                             parse_duration_ns(own) if own is not None else None))
    strats = []
    for s in doc.get("strategies", []):
        if "name" not in s:
            raise ParamError(f"{p}: a [[strategies]] entry has no name")
        grid = {k: v if isinstance(v, list) else [v] for k, v in s.get("params", {}).items()}
        strats.append((str(s["name"]), grid))
    budgets = [str(b) for b in doc.get("budgets", [])]
    interval = doc.get("states_interval")
    return SweepSpec(sets, strats, budgets,
                     parse_duration_ns(interval) if interval is not None else None)


def _hash_file(path: Path, cache: dict[Path, str]) -> str:
    if path not in cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        cache[path] = h.hexdigest()
    return cache[path]


def build_jobs(spec: SweepSpec) -> list[Job]:
    """Expand a spec into jobs, validating every strategy, parameter and budget first."""
    from replay.costs import load_profile

    profile = load_profile(spec.costs)  # a bad profile fails before any job runs
    if spec.vcpus is not None and spec.vcpus < 1:
        raise ParamError(f"vcpus must be >= 1, got {spec.vcpus}")
    if not spec.trace_sets:
        raise ParamError("the sweep has no trace set")
    strats = spec.strategies or [(name, {}) for name in strategies()]
    hashes: dict[Path, str] = {}
    jobs: list[Job] = []
    for name, grid in strats:
        strat = get_strategy(name)
        keys = sorted(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            p = strat.parse_params(dict(zip(keys, values, strict=True)))
            params = asdict(p)
            for ts in spec.trace_sets:
                files = expand_inputs(list(ts.paths))
                budgets = tuple(spec.per_set_budgets.get(ts.name, spec.budgets))
                if not budgets:
                    raise ParamError(f"trace set {ts.name}: the budget list is empty")
                interval = ts.states_interval_ns or spec.states_interval_ns
                ident = {
                    "traces": [_hash_file(f, hashes) for f in files],
                    "copies": ts.copies, "stagger_ns": ts.stagger_ns,
                    "strategy": name, "params": params, "budgets": list(budgets),
                    "states_interval_ns": interval,
                    "engine_version": engine.ENGINE_VERSION,
                }
                if spec.vcpus is not None:  # absent by default: older sweeps keep their keys
                    ident["vcpus"] = spec.vcpus
                key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]
                jobs.append(Job(key, ts, name, params, budgets, interval, profile, spec.vcpus))
    return jobs


# -- running one job (in a worker) -------------------------------------------------------------------
def run_job(job: Job) -> Replayed:
    """Replay one job; its frames carry ``trace_set`` and ``job_key``."""
    ts = job.trace_set
    scn = load(list(ts.paths), copies=ts.copies, stagger_ns=ts.stagger_ns, name=ts.name)
    # The sweep's sampling interval holds for the strategies that keep page states.
    interval = job.states_interval_ns if get_strategy(job.strategy).samples_states else None
    out = replay_full(scn, job.strategy, list(job.budgets), job.params,
                      states_interval_ns=interval, costs=job.costs, vcpus=job.vcpus)
    extra = [pl.lit(ts.name).alias("trace_set"), pl.lit(job.key).alias("job_key")]
    return Replayed(*(None if f is None else f.with_columns(extra) for f in out))


def warm_up() -> None:
    """Worker initializer: load (or compile) every strategy's kernels once."""
    import numpy as np

    from replay.scenario import from_arrays
    from tracer.io import TraceArrays
    from tracer.schema import TraceMeta

    arr = TraceArrays(np.arange(4, dtype=np.int64), np.array([0, 1, 0, 1], np.uint32),
                      np.array([2, 1, 3, 0], np.uint8), TraceMeta(guest_pages=2, source="warm-up"))
    scn = from_arrays([("warm", arr)], name="warm")
    import numba

    # One job per worker process: the kernels' own threads would only fight
    # the other workers for the cores.
    numba.set_num_threads(1)
    for strat in strategies().values():
        strat.run(scn, np.array([1]), strat.parse_params({}))


# -- the driver ----------------------------------------------------------------------------------
@dataclass
class SweepOutcome:
    """What a sweep did: jobs run, skipped (already done) and failed."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def prepare_output(out: Path, jobs: list[Job]) -> list[Job]:
    """Claim the output folder for this sweep; return the jobs still to run."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / SWEEP_FILE
    keys = sorted(j.key for j in jobs)
    sweep_id = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text())
        except ValueError:
            raise ParamError(f"{manifest}: damaged sweep manifest; use another output folder") from None
        if old.get("sweep_id") != sweep_id:
            raise ParamError(f"{out} holds the results of a different sweep; "
                             "use another output folder (nothing was overwritten)")
    else:
        stray = list((out / "parts").glob("*.parquet")) if (out / "parts").exists() else []
        if stray:
            raise ParamError(f"{out} holds result parts but no {SWEEP_FILE}; "
                             "use another output folder (nothing was overwritten)")
        doc = {"sweep_id": sweep_id, "engine_version": engine.ENGINE_VERSION,
               "jobs": [{"key": j.key, "trace_set": j.trace_set.name, "paths": j.trace_set.paths,
                         "strategy": j.strategy, "params": j.params, "budgets": j.budgets}
                        for j in jobs]}
        with atomic_output(manifest) as tmp:
            tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    for sub in ("parts", "states", "series", "failed"):
        (out / sub).mkdir(exist_ok=True)
    return [j for j in jobs if not (out / "parts" / f"{j.key}.parquet").exists()]


def _record(out: Path, job: Job, result: Replayed) -> None:
    results, states, series = result
    if states is not None:
        write_frame(states, out / "states" / f"{job.key}.parquet")
    if series is not None:
        write_frame(series, out / "series" / f"{job.key}.parquet")
    # The part is written last: its presence is what marks the job done.
    write_frame(results, out / "parts" / f"{job.key}.parquet")
    (out / "failed" / f"{job.key}.json").unlink(missing_ok=True)


def _record_failure(out: Path, job: Job, error: str) -> None:
    doc = {"key": job.key, "trace_set": job.trace_set.name, "strategy": job.strategy,
           "params": job.params, "error": error}
    with atomic_output(out / "failed" / f"{job.key}.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CmmsimError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def run_sweep(jobs: list[Job], out: str | os.PathLike, *,
              make_executor: Callable[[int], Executor], parallel: int,
              on_event: Callable[[str, Job, str | None], None] | None = None,
              job_fn: Callable[[Job], Any] = run_job) -> SweepOutcome:
    """Run jobs on executors from ``make_executor(max_workers)``, writing parts as they finish.

    Parameters
    ----------
    jobs : list of Job
        From :func:`build_jobs`.
    out : path-like
        Output folder (see the module docstring).
    make_executor : callable
        Returns a fresh ``concurrent.futures.Executor``; called again with
        ``max_workers=1`` to retry, one at a time, the jobs that were running
        when a local worker died.
    parallel : int
        Jobs in flight at once.
    on_event : callable, optional
        ``on_event(kind, job, error)`` with kind ``done``, ``failed`` or
        ``skipped``; for progress display.
    job_fn : callable
        What a worker runs for one job (picklable; :func:`run_job`).
    """
    out = Path(out)
    todo = prepare_output(out, jobs)
    todo_keys = {j.key for j in todo}
    outcome = SweepOutcome(skipped=[j.key for j in jobs if j.key not in todo_keys])
    notify = on_event or (lambda kind, job, err: None)
    for j in jobs:
        if j.key not in todo_keys:
            notify("skipped", j, None)

    def finish(job: Job, fut: Future) -> None:
        exc = fut.exception()
        if exc is None:
            _record(out, job, fut.result())
            outcome.done.append(job.key)
            notify("done", job, None)
        else:
            _record_failure(out, job, _describe(exc))
            outcome.failed[job.key] = _describe(exc)
            notify("failed", job, _describe(exc))

    suspects = _drain(todo, make_executor(parallel), parallel, finish, job_fn)
    # Jobs in flight when a worker died: each again, alone, so a job that
    # kills its worker costs only itself; dying twice means failed.
    for job in suspects:
        again = _drain([job], make_executor(1), 1, finish, job_fn)
        for j in again:
            msg = "worker process died twice (segfault or out of memory?)"
            _record_failure(out, j, msg)
            outcome.failed[j.key] = msg
            notify("failed", j, msg)
    return outcome


def _drain(jobs: list[Job], executor: Executor, parallel: int,
           finish: Callable[[Job, Future], None], job_fn: Callable[[Job], Any]) -> list[Job]:
    """Run jobs with at most ``parallel`` in flight; return those lost to a broken pool."""
    pending = list(reversed(jobs))
    running: dict[Future, Job] = {}
    lost: list[Job] = []
    try:
        while pending or running:
            while pending and len(running) < parallel:
                job = pending.pop()
                try:
                    running[executor.submit(job_fn, job)] = job
                except BrokenProcessPool:
                    lost.append(job)
                    lost.extend(reversed(pending))
                    pending.clear()
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                job = running.pop(fut)
                if isinstance(fut.exception(), BrokenProcessPool):
                    lost.append(job)
                else:
                    finish(job, fut)
            if lost and pending:
                # The pool is broken: nothing more can be submitted to it.
                lost.extend(reversed(pending))
                pending.clear()
    finally:
        for fut in running:
            fut.cancel()
        # Dask's ClientExecutor knows no cancel_futures argument.
        executor.shutdown(wait=True)
    return lost


def local_executor(max_workers: int) -> Executor:
    """A process pool whose workers load the kernels once, at start."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # spawn: numba's threading layer and forked children do not mix well.
    return ProcessPoolExecutor(max_workers=max_workers, mp_context=mp.get_context("spawn"),
                               initializer=warm_up)


def dask_executor_factory(address: str) -> Callable[[int], Executor]:
    """Executors on an existing Dask cluster (``tcp://host:8786``)."""
    try:
        from distributed import Client
    except ImportError:
        raise ParamError("--cluster needs Dask: pip install 'cmmsim[dask]'") from None
    try:
        client = Client(address, timeout="10s")
    except OSError as exc:
        raise ParamError(f"cannot reach the Dask scheduler at {address} ({exc})") from None

    def make(_max_workers: int) -> Executor:
        return client.get_executor(pure=False)

    return make


def read_results(out: str | os.PathLike) -> pl.DataFrame:
    """Every finished job's results under a sweep folder (or one results file)."""
    p = Path(out)
    if p.is_file():
        return pl.read_parquet(p)
    parts = sorted((p / "parts").glob("*.parquet")) if (p / "parts").exists() else []
    if not parts:
        raise ParamError(f"{p}: no results (expected a results .parquet or a sweep folder)")
    return pl.concat([pl.read_parquet(f) for f in parts], how="diagonal_relaxed")


def _read_series(out: str | os.PathLike, sub: str) -> pl.DataFrame | None:
    p = Path(out) / sub
    parts = sorted(p.glob("*.parquet")) if p.exists() else []
    if not parts:
        return None
    return pl.concat([pl.read_parquet(f) for f in parts], how="diagonal_relaxed")


def read_states(out: str | os.PathLike) -> pl.DataFrame | None:
    """Every finished job's state time series under a sweep folder, or None."""
    return _read_series(out, "states")


def read_series(out: str | os.PathLike) -> pl.DataFrame | None:
    """Every finished job's per-period series under a sweep folder, or None."""
    return _read_series(out, "series")


#: The old name of :func:`read_series` (its only series were the balloons').
read_balloon = read_series
