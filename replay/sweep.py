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

A job's key hashes the trace set's name and the content of its trace files,
the strategy, its parameters, the budgets, the sampling interval and the
engine version (two trace sets of identical content are two sets of jobs).
Run again on the same folder, a sweep checks every part it finds (its
Parquet pages, its rows, its job key; the job's states and series files too)
and skips the jobs whose files are intact; a damaged part is removed and its job
run again, one written before a counter was (:func:`cmmsim.replay.frames.outdated`)
replaced by a rerun; failed jobs are tried again; no row is written twice. A
folder holding another sweep's results, or made with another key format, is
refused. Only the parts of the jobs ``sweep.json`` lists are results: a stray
file in ``parts/`` is never read as one.

Local workers end when the sweep's process ends, however it ends
(:func:`cmmsim.replay.executors.warm_up`); temporary files of a killed sweep are removed when it is
run again.
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

from cmmsim.replay import engine
from cmmsim.replay.api import Replayed, replay_full
from cmmsim.replay.costs import PRICING_KEY, CostProfile, load_profile, pricing_digest
from cmmsim.replay.frames import check_vcpus, nan_column, outdated
from cmmsim.replay.grids import parse_grid
from cmmsim.replay.scenario import expand_inputs, load, trace_name
from cmmsim.replay.strategies import check_tier_pages, get_strategy, strategies
from cmmsim.replay.stream import replay_stream
from cmmsim.replay.times import check_shift, parse_duration_ns
from cmmsim.tracer.errors import CmmsimError, ParamError, ResultsError, TraceError, os_reason, show_path
from cmmsim.tracer.io import (
    TMP_SUFFIX,
    atomic_output,
    check_trace,
    read_frame,
    read_meta,
    stale_temporaries,
    time_span,
    write_frame,
)
from cmmsim.tracer.schema import MAX_GUEST_PAGES

__all__ = [
    "Job",
    "KEY_FORMAT",
    "RESULT_COLUMNS",
    "SERIES_COLUMNS",
    "STATES_COLUMNS",
    "SUBFOLDERS",
    "SWEEP_FILE",
    "SweepOutcome",
    "SweepSpec",
    "TraceSet",
    "build_jobs",
    "check_part",
    "load_sweep_file",
    "parse_grid",
    "prepare_output",
    "read_balloon",
    "read_results",
    "read_series",
    "read_states",
    "run_job",
    "run_sweep",
    "sweep_parts",
    "trace_sets_from_inputs",
]

SWEEP_FILE = "sweep.json"
#: How job keys are made (in ``sweep.json``): 2 since keys name the trace set.
KEY_FORMAT = 2
#: The sub-folders a sweep writes.
SUBFOLDERS = ("parts", "states", "series", "failed")


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
    #: The host's fast swap tier, pages (part of the key when not 0).
    tier_pages: int = 0
    #: Replay streamed, in bounded memory (not part of the key: the same integers).
    stream: bool = False


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
    #: A fast host swap tier for the strategies that have one (the others run without).
    tier_pages: int = 0
    #: Every job streams its traces (scenarios larger than a worker's memory);
    #: only the strategies that stream are accepted.
    stream: bool = False


# -- building the job list ------------------------------------------------------------------------
def trace_sets_from_inputs(inputs: Iterable[str]) -> list[TraceSet]:
    """Each file, scenario folder or glob match becomes one trace set (one file named twice, one set)."""
    found: dict[str, TraceSet] = {}
    for raw in inputs:
        matches = sorted(glob.glob(raw)) if glob.has_magic(raw) else [raw]
        if not matches:
            raise ParamError(f"{raw}: the pattern matches no file")
        for m in matches:
            p = Path(m)
            if not p.exists():
                raise TraceError(f"{p}: no such file or folder")
            a = str(p.resolve())  # absolute: workers on a cluster run in other working folders
            found.setdefault(a, TraceSet(trace_name(p), (a,)))
    sets = list(found.values())
    if len({s.name for s in sets}) != len(sets):
        sets = [TraceSet(f"{s.name}@{i}", s.paths, s.copies, s.stagger_ns) for i, s in enumerate(sets)]
    return sets


#: The keys of a sweep file, of its [[trace_sets]] and of its [[strategies]].
_FILE_KEYS = ("budgets", "states_interval", "stream", "trace_sets", "strategies")
_SET_KEYS = ("name", "paths", "copies", "stagger", "states_interval")
_STRATEGY_KEYS = ("name", "params")
#: Command-line options a sweep file does not take (named in the refusal).
_OPTION_KEYS = ("costs", "vcpus", "tier_pages", "jobs", "cluster")


def load_sweep_file(path: str | os.PathLike) -> SweepSpec:
    """Read a TOML sweep file (format in the README); every value is type-checked."""
    p = Path(path)
    shown = show_path(p)
    try:
        doc = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ParamError(f"{shown}: no such sweep file") from None
    except IsADirectoryError:
        raise ParamError(f"{shown}: is a folder, not a sweep file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamError(f"{shown}: cannot read the sweep file ({os_reason(exc)})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParamError(f"{shown}: not valid TOML ({exc})") from None

    def typed(value, kind, what: str):
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise ParamError(f"{shown}: {what} = {value!r:.60}: expected {kind.__name__}")
        return value

    def known(table: dict, keys: tuple[str, ...], where: str) -> None:
        # A misspelt or misplaced key would otherwise be a sweep without it, silently.
        for key in table:
            if key not in keys:
                flag = f" (use --{key.replace('_', '-')})" if key in _OPTION_KEYS else ""
                raise ParamError(f"{shown}: {where}unknown key {key!r}{flag}; the keys: {', '.join(keys)}")

    known(doc, _FILE_KEYS, "")
    base = p.parent
    sets = []
    for i, ts in enumerate(typed(doc.get("trace_sets", []), list, "trace_sets")):
        typed(ts, dict, f"trace set {i}")
        known(ts, _SET_KEYS, f"trace set {ts.get('name', i)!r}: ")
        paths = ts.get("paths") or []
        if isinstance(paths, str):
            paths = [paths]
        resolved = []
        for raw in typed(paths, list, f"trace set {i}: paths"):
            typed(raw, str, f"trace set {i}: a path")
            pattern = str(base / raw) if not os.path.isabs(raw) else raw
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            if not matches:  # else the set would run short of a guest, silently
                raise ParamError(f"{shown}: trace set {ts.get('name', i)!r}: {raw}: the pattern matches no file")
            resolved.extend(str(Path(m).resolve()) for m in matches)
        if not resolved:
            raise ParamError(f"{shown}: trace set {ts.get('name', i)!r} names no trace")
        own = ts.get("states_interval")
        sets.append(
            TraceSet(
                str(ts.get("name", f"set{i}")),
                tuple(resolved),
                typed(ts.get("copies", 1), int, f"trace set {i}: copies"),
                parse_duration_ns(ts.get("stagger", 0), what=f"{shown}: trace set {i}: stagger"),
                None
                if own is None
                else parse_duration_ns(own, what=f"{shown}: trace set {i}: states_interval", positive=True),
            )
        )
    strats = []
    for s in typed(doc.get("strategies", []), list, "strategies"):
        typed(s, dict, "a [[strategies]] entry")
        if "name" not in s:
            raise ParamError(f"{shown}: a [[strategies]] entry has no name")
        known(s, _STRATEGY_KEYS, f"strategy {s['name']}: ")
        params = typed(s.get("params", {}), dict, f"strategy {s['name']}: params")
        grid = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
        empty = [k for k, v in grid.items() if not v]
        if empty:
            raise ParamError(f"{shown}: strategy {s['name']}: parameter {empty[0]} lists no value")
        strats.append((str(s["name"]), grid))
    budgets = [str(b) for b in typed(doc.get("budgets", []), list, "budgets")]
    interval = doc.get("states_interval")
    return SweepSpec(
        sets,
        strats,
        budgets,
        None if interval is None else parse_duration_ns(interval, what=f"{shown}: states_interval", positive=True),
        stream=typed(doc.get("stream", False), bool, "stream"),
    )


def _hash_file(path: Path, cache: dict[Path, str]) -> str:
    if path not in cache:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as exc:
            raise TraceError(f"{show_path(path)}: cannot read ({os_reason(exc)})") from None
        cache[path] = h.hexdigest()
    return cache[path]


def build_jobs(spec: SweepSpec, *, check_traces: bool = False) -> list[Job]:
    """Expand a spec into jobs, validating every trace set, strategy, parameter and budget first.

    Each trace set's budgets are parsed against its guest memory and its
    copies' time shifts checked, so a bad request is refused before a sweep
    folder is made. A trace whose footer cannot be read fails its own jobs
    when they run, unless ``check_traces``: then every trace is validated
    here, row by row (:func:`cmmsim.tracer.io.check_trace`), and a bad one refused.
    The cost profile is loaded here too, so a bad one fails before any job.
    """
    profile = load_profile(spec.costs)
    if spec.vcpus is not None:
        check_vcpus(spec.vcpus)
    check_tier_pages(spec.tier_pages)
    if not spec.trace_sets:
        raise ParamError("the sweep has no trace set")
    names = [ts.name for ts in spec.trace_sets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ParamError(f"two trace sets are named {twice[0]!r}; names must differ")
    strats = spec.strategies or [(name, {}) for name in strategies()]
    hashes: dict[Path, str] = {}
    checked: dict[str, tuple[list[Path], tuple[str, ...]]] = {}
    for ts in spec.trace_sets:
        checked[ts.name] = _check_trace_set(ts, spec)
    if check_traces:
        for f in sorted({f for files, _ in checked.values() for f in files}):
            check_trace(f)
    jobs: list[Job] = []
    for name, grid in strats:
        strat = get_strategy(name)
        if spec.stream:
            strat.check_streams()
        tier = spec.tier_pages if strat.host_tier else 0
        keys = sorted(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            p = strat.parse_params(dict(zip(keys, values, strict=True)))
            params = asdict(p)
            for ts in spec.trace_sets:
                files, budgets = checked[ts.name]
                interval = ts.states_interval_ns or spec.states_interval_ns
                ident = {
                    "trace_set": ts.name,
                    "traces": [_hash_file(f, hashes) for f in files],
                    "copies": ts.copies,
                    "stagger_ns": ts.stagger_ns,
                    "strategy": name,
                    "params": params,
                    "budgets": list(budgets),
                    "states_interval_ns": interval,
                    "engine_version": engine.ENGINE_VERSION,
                }
                if spec.vcpus is not None:  # absent by default: older sweeps keep their keys
                    ident["vcpus"] = spec.vcpus
                if tier:  # likewise
                    ident["tier_pages"] = tier
                key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]
                jobs.append(Job(key, ts, name, params, budgets, interval, profile, spec.vcpus, tier, spec.stream))
    if not jobs:
        raise ParamError("the sweep has no job (a parameter grid with no value?)")
    return list({job.key: job for job in jobs}.values())  # a strategy or value named twice runs once


def _check_trace_set(ts: TraceSet, spec: SweepSpec) -> tuple[list[Path], tuple[str, ...]]:
    """A trace set's files and budgets, once each is known to be usable."""
    from cmmsim.replay.budgets import parse_budget

    if ts.copies < 1:
        raise ParamError(f"trace set {ts.name}: copies must be >= 1, got {ts.copies}")
    files = expand_inputs(list(ts.paths))
    try:
        total_pages = ts.copies * sum(read_meta(f).guest_pages for f in files)
        if ts.copies > 1:
            for f in files:
                span = time_span(f)
                if span is not None:
                    check_shift(span[1], (ts.copies - 1) * ts.stagger_ns, show_path(f))
    except TraceError:
        # A damaged trace fails its own jobs (with this error), not the sweep;
        # its budgets are checked for their form only.
        total_pages = ts.copies * MAX_GUEST_PAGES
    budgets = tuple(spec.per_set_budgets.get(ts.name, spec.budgets))
    if not budgets:
        raise ParamError(f"trace set {ts.name}: the budget list is empty")
    for b in budgets:
        try:
            parse_budget(b, total_pages)
        except ParamError as exc:
            raise ParamError(f"trace set {ts.name}: {exc}") from None
    return files, budgets


# -- running one job (in a worker) -------------------------------------------------------------------
def run_job(job: Job) -> Replayed:
    """Replay one job; its frames carry ``trace_set`` and ``job_key``."""
    ts = job.trace_set
    # The sweep's sampling interval holds for the strategies that keep page states.
    interval = job.states_interval_ns if get_strategy(job.strategy).samples_states else None
    common = dict(states_interval_ns=interval, costs=job.costs, vcpus=job.vcpus, tier_pages=job.tier_pages)
    if job.stream:
        out = replay_stream(
            list(ts.paths),
            job.strategy,
            list(job.budgets),
            job.params,
            copies=ts.copies,
            stagger_ns=ts.stagger_ns,
            name=ts.name,
            **common,
        )
    else:
        scn = load(list(ts.paths), copies=ts.copies, stagger_ns=ts.stagger_ns, name=ts.name)
        out = replay_full(scn, job.strategy, list(job.budgets), job.params, **common)
    extra = [pl.lit(ts.name).alias("trace_set"), pl.lit(job.key).alias("job_key")]
    return Replayed(*(None if f is None else f.with_columns(extra) for f in out))


# -- the driver ----------------------------------------------------------------------------------
@dataclass
class SweepOutcome:
    """What a sweep did: jobs run, skipped (already done), failed, and damaged parts redone."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    #: Jobs whose files were found damaged (or partly missing) and were run again.
    redone: list[str] = field(default_factory=list)


def _job_files(out: Path, job: Job) -> dict[str, Path]:
    """The files a finished job has: its part, and its states and series if it writes them."""
    strat = get_strategy(job.strategy)
    files = {"parts": out / "parts" / f"{job.key}.parquet"}
    if job.states_interval_ns and strat.samples_states:
        files["states"] = out / "states" / f"{job.key}.parquet"
    if strat.series is not None:
        files["series"] = out / "series" / f"{job.key}.parquet"
    return files


def check_part(path: Path, key: str, what: str = "results", *, empty_ok: bool = False) -> pl.DataFrame:
    """Read a sweep's result (or states, series) part, checking it is whole and is job ``key``'s.

    Raises
    ------
    cmmsim.tracer.errors.ResultsError
        Not Parquet, a damaged page, no rows (unless ``empty_ok``: the series
        of a trace with no event has none), or rows of another job; the
        message names ``path``.
    """
    df = read_frame(path, what)
    if df.is_empty() and not empty_ok:
        raise ResultsError(f"{show_path(path)}: damaged {what} part (no rows)")
    if "job_key" not in df.columns or (df["job_key"] != key).any():
        raise ResultsError(f"{show_path(path)}: not the {what} of job {key} (a stray file?)")
    return df


def _intact(out: Path, job: Job) -> bool | str | None:
    """Whether a job's files are whole: True, False (some damaged or missing), ``"outdated"``
    (whole, but its part predates a counter) or None (never run)."""
    files, events = _job_files(out, job), None
    if not files["parts"].exists():
        return None
    for sub, path in files.items():  # parts first: a trace with no event samples nothing
        try:
            df = check_part(path, job.key, sub, empty_ok=events == 0)
        except ResultsError:  # a missing file too
            return False
        if sub == "parts" and outdated(df.columns):
            return "outdated"  # written before a counter was: its rows would price otherwise
        events = int(df["events"].sum()) if sub == "parts" else events
    return True


def _claim(out: Path, jobs: list[Job]) -> None:
    """Write this sweep's manifest into ``out``, or check the one there is this sweep's."""
    manifest = out / SWEEP_FILE
    keys = sorted(j.key for j in jobs)
    sweep_id = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text())
            if not isinstance(old, dict) or "sweep_id" not in old:  # not a manifest: not an earlier one
                raise ValueError("no sweep_id" if isinstance(old, dict) else "not an object")
        except (ValueError, OSError) as exc:
            raise ParamError(
                f"{show_path(manifest)}: damaged sweep manifest ({os_reason(exc)}); use another output folder"
            ) from None
        if old.get("key_format", 1) != KEY_FORMAT:
            raise ParamError(
                f"{show_path(out)} was made by an earlier cmmsim (job key format "
                f"{old.get('key_format', 1)}, this one makes {KEY_FORMAT}: keys now name the "
                "trace set); it cannot be resumed: use another output folder "
                "(`cmmsim report` still reads this one)"
            )
        if old.get("sweep_id") != sweep_id:
            raise ParamError(
                f"{show_path(out)} holds the results of a different sweep; "
                "use another output folder (nothing was overwritten)"
            )
        return
    stray = list((out / "parts").glob("*.parquet")) if (out / "parts").is_dir() else []
    if stray:
        raise ParamError(
            f"{show_path(out)} holds result parts but no {SWEEP_FILE}; "
            "use another output folder (nothing was overwritten)"
        )
    doc = {
        "sweep_id": sweep_id,
        "key_format": KEY_FORMAT,
        "engine_version": engine.ENGINE_VERSION,
        "jobs": [
            {
                "key": j.key,
                "trace_set": j.trace_set.name,
                "paths": j.trace_set.paths,
                "strategy": j.strategy,
                "params": j.params,
                "budgets": j.budgets,
            }
            for j in jobs
        ],
    }
    with atomic_output(manifest) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def prepare_output(out: Path, jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """Claim the output folder for this sweep.

    Returns
    -------
    (todo, damaged) : list of Job, list of Job
        The jobs still to run, and among them those whose files were found
        damaged or partly missing (their files are removed here) or outdated
        (kept until the rerun replaces them).
    """
    out.mkdir(parents=True, exist_ok=True)
    _claim(out, jobs)
    for sub in SUBFOLDERS:
        (out / sub).mkdir(exist_ok=True)
        for tmp in stale_temporaries(out / sub):
            tmp.unlink(missing_ok=True)
    todo, damaged = [], []
    for job in jobs:
        state = _intact(out, job)
        if state is True:
            continue
        if state is not None:
            damaged.append(job)
        if state is False:
            for path in _job_files(out, job).values():
                path.unlink(missing_ok=True)
        # An outdated job's files stay until its rerun replaces each (atomically).
        todo.append(job)
    return todo, damaged


def _record(out: Path, job: Job, result: Replayed) -> None:
    results, states, series = result
    if states is not None:
        write_frame(states, out / "states" / f"{job.key}.parquet")
    if series is not None:
        write_frame(series, out / "series" / f"{job.key}.parquet")
    # The part is written last: its presence is what marks the job done.
    meta = {PRICING_KEY: pricing_digest(job.costs, results.columns)} if isinstance(job.costs, CostProfile) else None
    write_frame(results, out / "parts" / f"{job.key}.parquet", meta)
    (out / "failed" / f"{job.key}.json").unlink(missing_ok=True)


def _record_failure(out: Path, job: Job, error: str) -> None:
    doc = {
        "key": job.key,
        "trace_set": job.trace_set.name,
        "strategy": job.strategy,
        "params": job.params,
        "error": error,
    }
    with atomic_output(out / "failed" / f"{job.key}.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CmmsimError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def run_sweep(
    jobs: list[Job],
    out: str | os.PathLike,
    *,
    make_executor: Callable[[int], Executor],
    parallel: int,
    on_event: Callable[[str, Job, str | None], None] | None = None,
    job_fn: Callable[[Job], Any] = run_job,
) -> SweepOutcome:
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
    todo, damaged = prepare_output(out, jobs)
    todo_keys = {j.key for j in todo}
    outcome = SweepOutcome(skipped=[j.key for j in jobs if j.key not in todo_keys], redone=[j.key for j in damaged])
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

    try:
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
    finally:
        # A write cut short by Ctrl-C between making its temporary file and
        # guarding it leaves the file: this process's are removed here.
        for sub in SUBFOLDERS:
            for tmp in (out / sub).glob(f".*.{os.getpid()}.*{TMP_SUFFIX}"):
                tmp.unlink(missing_ok=True)
    return outcome


def _drain(
    jobs: list[Job],
    executor: Executor,
    parallel: int,
    finish: Callable[[Job, Future], None],
    job_fn: Callable[[Job], Any],
) -> list[Job]:
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


def sweep_parts(out: str | os.PathLike, sub: str = "parts") -> tuple[list[Path], list[Path]]:
    """A sweep folder's files in ``sub`` (parts, states, series): its jobs', and strays.

    Only the jobs ``sweep.json`` lists have results; any other ``.parquet``
    in the folder (copied in, left from another sweep) is a stray and never
    read as a result.
    """
    p = Path(out)
    manifest = p / SWEEP_FILE
    try:
        doc = json.loads(manifest.read_text())
        keys = {j["key"] for j in doc["jobs"]}
    except FileNotFoundError:
        raise ResultsError(f"{show_path(p)}: not a sweep folder (no {SWEEP_FILE}) and not a results file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResultsError(f"{show_path(manifest)}: damaged sweep manifest ({os_reason(exc)})") from None
    found = sorted((p / sub).glob("*.parquet")) if (p / sub).is_dir() else []
    ours = [f for f in found if f.name.removesuffix(".parquet") in keys]
    strays = [f for f in found if f.name.removesuffix(".parquet") not in keys]
    return ours, strays


#: Columns a results frame must have for reports and plots (:mod:`cmmsim.replay.frames`).
RESULT_COLUMNS = (
    "scenario",
    "strategy",
    "params",
    "budget_pages",
    "guest",
    "guest_name",
    "accesses",
    "host_reads",
    "host_writes",
    "zero_fills",
    "discard_faults",
    "guest_reads",
    "guest_writes",
    "total_io",
)
#: Columns a states frame must have (:func:`cmmsim.replay.frames.states_frame`).
STATES_COLUMNS = ("scenario", "strategy", "params", "budget_pages", "t_ns", "guest", "state", "pages")
#: Columns a per-period series frame must have (:func:`cmmsim.replay.frames.series_frame`).
SERIES_COLUMNS = (
    "scenario",
    "strategy",
    "params",
    "budget_pages",
    "period",
    "t_ns",
    "guest",
    "guest_name",
    "guest_pages",
)


def _checked(df: pl.DataFrame, path: Path, what: str, columns: tuple[str, ...]) -> pl.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        hint = " (it is a trace: replay it first)" if {"t_ns", "pfn", "op"} <= set(df.columns) else ""
        raise ResultsError(
            f"{show_path(path)}: not a cmmsim {what} file: no column "
            f"{', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}{hint}"
        )
    if df.is_empty():
        raise ResultsError(f"{show_path(path)}: holds no {what} rows")
    nan = nan_column(df) if what == "results" else None
    if nan:
        raise ResultsError(f"{show_path(path)}: column {nan} holds NaN (not written by cmmsim)")
    return df


def _read_sub(
    out: str | os.PathLike, sub: str, what: str, columns: tuple[str, ...], required: bool
) -> pl.DataFrame | None:
    """Every job's frame of a sweep folder's ``sub``, or one file's frame."""
    p = Path(out)
    if p.is_file() or not p.exists():
        return _checked(read_frame(p, what), p, what, columns)
    frames = []
    for f in sweep_parts(p, sub)[0]:
        try:
            df = check_part(f, f.name.removesuffix(".parquet"), what, empty_ok=sub != "parts")
            if not df.is_empty():  # the series of a trace with no event: nothing to read
                frames.append(_checked(df, f, what, columns))
        except ResultsError as exc:
            raise ResultsError(f"{exc}; run the sweep again to redo it") from None
    if not frames and required:
        raise ResultsError(f"{show_path(p)}: no finished job has {what} yet")
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


def read_results(out: str | os.PathLike) -> pl.DataFrame:
    """Every finished job's results under a sweep folder (or one results file).

    Raises
    ------
    cmmsim.tracer.errors.ResultsError
        Not a results file or sweep folder, a damaged or foreign part, or no
        rows; the message names the file.
    """
    return _read_sub(out, "parts", "results", RESULT_COLUMNS, required=True)


def read_states(out: str | os.PathLike) -> pl.DataFrame | None:
    """Every finished job's state time series under a sweep folder (or one file), or None."""
    return _read_sub(out, "states", "states", STATES_COLUMNS, required=False)


def read_series(out: str | os.PathLike) -> pl.DataFrame | None:
    """Every finished job's per-period series under a sweep folder (or one file), or None."""
    return _read_sub(out, "series", "series", SERIES_COLUMNS, required=False)


#: The old name of :func:`read_series` (its only series were the balloons').
read_balloon = read_series
