"""The front door for library users: make traces, replay them, read and report results.

Every function here is a thin wrapper over the modules that do the work
(:mod:`cmmsim.replay.api`, :mod:`cmmsim.replay.shards`, :mod:`cmmsim.replay.sweep`,
:mod:`cmmsim.tracer.synth`, :mod:`cmmsim.tracer.linux`, :mod:`cmmsim.reports`) and
returns plain values: polars frames, paths. ``import cmmsim`` stays cheap:
these functions are also attributes of ``cmmsim``, loaded on first use
(``cmmsim.miss_curve`` is ``cmmsim.api.miss_curve``), all but :func:`replay`:
``cmmsim.replay`` is the engine's package, so call ``cmmsim.api.replay``.

Units throughout: budgets are host memory in 4 KiB pages (an int), or a
string in pages (``"4096"``), bytes with a unit (``"256MiB"``) or a
percentage of the guests' total memory (``"50%"``); times are ns (an int) or
a duration string (``"500ms"``); I/O counts are pages read or written.

>>> from cmmsim import api
>>> df = api.replay("sample_traces/awm-256m", "cmm", ["32MiB", "64MiB"])  # doctest: +SKIP
>>> api.report(df, "io-avoided-wide")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the heavy modules load when a function is called
    import polars as pl

    from cmmsim.replay.scenario import Scenario

__all__ = [
    "REPORTS",
    "convert",
    "load",
    "miss_curve",
    "read_results",
    "replay",
    "report",
    "strategies",
    "sweep",
    "synthesize",
    "workloads",
]


def __dir__() -> list[str]:
    # The public names only: dir() and tab completion do not offer np, pl or helpers.
    return sorted(__all__)


#: Report names of :func:`report` (those of ``cmmsim report -r``) -> function of
#: :mod:`cmmsim.reports` that makes it.
REPORTS = {
    "winners": "df_winners",
    "total-io": "df_total_io",
    "io-avoided": "df_io_avoided",
    "io-avoided-wide": "df_io_avoided_wide",
    "faults": "df_faults_per_kilo",
    "ranking": "df_ranking",
    "crossovers": "df_crossovers",
    "fairness": "df_fairness",
    "time": "df_time",
}
_ORDERED = ("winners", "ranking", "crossovers")

Paths = str | os.PathLike | Sequence[str | os.PathLike]


def _paths(paths: Paths) -> list[str | os.PathLike]:
    """One path or several, as a list."""
    if isinstance(paths, str | os.PathLike):
        return [paths]
    return list(paths)


def _params_arg(params):
    """Parameters as given: a mapping stays one; one "k=v" string is one
    parameter (never its characters); otherwise a list of "k=v" strings."""
    return dict(params) if isinstance(params, Mapping) else [params] if isinstance(params, str) else list(params or [])


def _budget_list(budgets) -> list:
    """One budget or several, as a list: a string is one budget (never its
    characters), and so is a number, numpy's included; what is neither a budget
    nor a sequence of them is a ParamError naming it."""
    import numbers

    if isinstance(budgets, str | bytes | numbers.Number) or budgets is None:
        return [budgets]
    try:
        return list(budgets)
    except TypeError:
        from cmmsim.tracer.errors import ParamError

        raise ParamError(f"budget {budgets!r}: expected a budget or a sequence of them") from None


def _ns(duration: int | str) -> int:
    """A duration in ns from an int (ns) or a string such as ``500ms``."""
    from cmmsim.replay.times import parse_duration_ns

    return int(duration) if isinstance(duration, int) else parse_duration_ns(str(duration))


def load(paths: Paths, *, copies: int = 1, stagger: int | str = 0) -> Scenario:
    """Load guest traces into one scenario: the guests share one host.

    Parameters
    ----------
    paths : path or sequence of paths
        Trace files (``.parquet``), scenario folders or globs; several guests
        are merged by time, each with its own pfn space.
    copies : int
        Replicate the guests this many times (many similar guests).
    stagger : int or str
        Time shift between copies: ns, or a duration such as ``"500ms"``. At 0
        each copy repeats its original at the same instants, so their demands
        peak together by construction.

    Returns
    -------
    cmmsim.replay.scenario.Scenario
        The merged events, what :func:`replay` and :func:`miss_curve` also
        take in place of paths (load once, replay many times).
    """
    from cmmsim.replay.scenario import load as load_scenario

    return load_scenario(_paths(paths), copies=copies, stagger_ns=_ns(stagger))


def replay(
    paths: Paths | Scenario,
    strategy: str,
    budgets: Sequence[str | int] | str | int,
    params: Mapping[str, object] | Sequence[str] | None = None,
    *,
    copies: int = 1,
    stagger: int | str = 0,
    stream: bool = False,
    costs: str | os.PathLike | None = None,
    vcpus: int | None = None,
    tier_pages: int = 0,
) -> pl.DataFrame:
    """Replay guest traces under one strategy at one or more host budgets.

    Parameters
    ----------
    paths : path, sequence of paths, or Scenario
        Trace files or scenario folders sharing one host, or a scenario from
        :func:`load`.
    strategy : str
        A registered strategy (:func:`strategies`), e.g. ``"host-lru"``, ``"cmm"``.
    budgets : str, int, or a sequence of them
        Host memory budgets: pages (int or ``"4096"``), bytes with a unit
        (``"256MiB"``) or a percentage of the guests' total memory (``"50%"``).
    params : dict or sequence of ``"k=v"``, optional
        Strategy parameters (``{"reclaim_order": "state-priority"}``); the
        rest take their defaults.
    copies : int
        Replicate the guests this many times (not with a Scenario).
    stagger : int or str
        Time shift between copies, ns or a duration string (0: the copies
        coincide, see :func:`load`).
    stream : bool
        Read the traces in bounded memory (``host-lru``, ``cmm``, ``cmm-light``;
        paths only).
    costs : str or path, optional
        Cost profile pricing the time and CPU columns (``"kvm-2025"``,
        ``"zvm-2006"`` or a .toml file; docs/costs.md).
    vcpus : int, optional
        Virtual CPUs of each guest whose trace does not say (default 1): the
        divisor of ``overhead_pct`` by construction, and of nothing else.
    tier_pages : int
        A fast host swap tier of that many pages before the disk (z/VM
        expanded storage, zswap), for a strategy that pages on the host (not
        ``static``, ``opt``, ``opt-schedule``; docs/model.md); 0: none.

    Returns
    -------
    polars.DataFrame
        One row per budget for the host (``guest`` null) and one per budget
        and guest: ``budget_pages`` (4 KiB pages), I/O counters (pages:
        ``host_reads``, ``host_writes``, ``guest_reads``, ``guest_writes``,
        ``total_io``), faults (events), ``stall_ns`` and CPU columns (ns).
        Every column: :mod:`cmmsim.replay.frames` and docs/model.md.

    Raises
    ------
    cmmsim.tracer.errors.ParamError
        A budget, strategy or parameter that is not one (its message names
        it), an empty path, or no trace.
    cmmsim.tracer.errors.TraceError
        A trace that is missing or malformed (its message names the file, and
        the row at fault).
    """
    from cmmsim.replay import api as replay_api
    from cmmsim.replay.scenario import Scenario

    budget_list = _budget_list(budgets)
    p = _params_arg(params)
    if stream:
        if isinstance(paths, Scenario):
            from cmmsim.tracer.errors import ParamError

            raise ParamError("stream=True reads files: give paths, not a loaded Scenario")
        from cmmsim.replay.stream import replay_stream

        return replay_stream(
            _paths(paths),
            strategy,
            budget_list,
            p,
            copies=copies,
            stagger_ns=_ns(stagger),
            costs=costs,
            vcpus=vcpus,
            tier_pages=tier_pages,
        ).results
    if isinstance(paths, Scenario) and (copies != 1 or _ns(stagger) != 0):
        from cmmsim.tracer.errors import ParamError

        raise ParamError("copies and stagger apply to paths: pass them to load() instead")
    scn = paths if isinstance(paths, Scenario) else load(paths, copies=copies, stagger=stagger)
    return replay_api.replay(scn, strategy, budget_list, p, costs=costs, vcpus=vcpus, tier_pages=tier_pages)


def miss_curve(
    paths: Paths | Scenario,
    budgets: Sequence[str | int] | str | int,
    *,
    points: int = 0,
    rate: float = 1.0,
    salts: int = 8,
    seed: int = 0,
    stream: bool = False,
    copies: int = 1,
    stagger: int | str = 0,
    order: str = "lru",
) -> pl.DataFrame:
    """A miss curve over many budgets: ``host-lru``'s (exact LRU, in one pass) or
    ``cmm``'s with ``state-priority`` reclaim (a replay per budget, or per sample).

    Parameters
    ----------
    paths : path, sequence of paths, or Scenario
        Trace files or scenario folders sharing one host, or a scenario from :func:`load`.
    budgets : str, int, or a sequence of them
        Host budgets as in :func:`replay`.
    points : int
        That many budgets evenly spaced from the smallest to the largest
        given, both included, in place of those given (budgets between them
        are dropped; below 2: only those given).
    rate : float
        Fraction of pages sampled, 0 < rate <= 1: 1 is exact; below 1 a
        SHARDS estimate with its standard error.
    salts : int
        Independent samples below rate 1 (their spread is the standard error).
    seed : int
        First hash salt.
    stream : bool
        Read the files as a stream (memory: the samples; paths only).
    copies : int
        Replicate the guests this many times (not with a Scenario).
    stagger : int or str
        Time shift between copies, ns or a duration string (0: the copies
        coincide, see :func:`load`).
    order : str
        ``lru`` (``host-lru``) or ``state-priority`` (``cmm`` with that reclaim
        order; its samples keep the guests' hints).

    Returns
    -------
    polars.DataFrame
        One row per budget, sorted: ``budget_pages`` (4 KiB pages),
        ``budget_mib`` (MiB), ``accesses``, then ``<counter>_est`` and
        ``<counter>_se`` (pages; standard error 0 when exact) for
        ``host_reads``, ``host_writes``, ``zero_fills``, ``discards``,
        ``miss_ratio_est`` and ``miss_ratio_se`` (host reads plus zero fills
        per access), ``rate``, ``salts``, ``page_fraction``,
        ``min_sampled_pages``, ``footprint_pages``, ``exact``, ``order`` (the
        replay estimated) (:func:`cmmsim.replay.shards.df_sampled_curve`).
        Below rate 1, a sample that kept none of the pages of a guest that
        accesses some gives that guest no estimate: the estimates are NaN
        (``cmmsim mrc`` refuses to write them); raise ``rate``.

    Raises
    ------
    cmmsim.tracer.errors.ParamError
        A budget, rate, salt count or order that is not one, an empty path, or
        no trace.
    cmmsim.tracer.errors.TraceError
        A trace that is missing or malformed.
    """
    from cmmsim.replay import shards
    from cmmsim.replay.budgets import parse_budgets
    from cmmsim.replay.scenario import Scenario
    from cmmsim.reports import with_budget_mib

    budget_list = _budget_list(budgets)
    if isinstance(paths, Scenario) and (stream or copies != 1 or _ns(stagger) != 0):
        # Refused, as replay refuses them: a loaded scenario is replayed as it is.
        from cmmsim.tracer.errors import ParamError

        raise ParamError("stream, copies and stagger apply to paths: pass copies and stagger to load() instead")
    if isinstance(paths, Scenario):
        b = shards.spread_budgets(parse_budgets(budget_list, paths.n_pages), points)
        r = shards.sampled_curve(paths, b, rate, order=order, salts=salts, seed=seed)
    else:
        r = shards.miss_curve(
            _paths(paths),
            budget_list,
            points=points,
            rate=rate,
            salts=salts,
            seed=seed,
            stream=stream,
            copies=copies,
            stagger_ns=_ns(stagger),
            order=order,
        )
    return with_budget_mib(shards.df_sampled_curve(r))


def convert(
    text: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    fmt: str = "auto",
    guest_mib: int | None = None,
    lenient: bool = False,
) -> Path:
    """Convert Linux tracepoint text (perf script, trace-cmd report, ftrace) to a trace.

    Parameters
    ----------
    text : path or None
        The text: plain, .gz, .xz, .bz2 or .zst; ``"-"`` or None reads stdin.
    out : path
        The trace to write (``.parquet``, atomically); its pfn map goes beside it.
    fmt : str
        ``"auto"``, ``"perf"``, ``"trace-cmd"`` or ``"ftrace"``.
    guest_mib : int, optional
        Guest memory, MiB (default: as many pages as the distinct frames the
        text names). It sets, by construction, what a ``%`` budget is a share of
        and how much of the guest the trace never names.
    lenient : bool
        Skip and count malformed lines instead of stopping at the first.

    Returns
    -------
    pathlib.Path
        ``out``; :func:`cmmsim.tracer.io.read_meta` gives what the
        conversion read, skipped and repaired.
    """
    from cmmsim.tracer.linux import convert as convert_text

    convert_text(text, out, fmt=fmt, lenient=lenient, guest_pages=guest_mib * 256 if guest_mib else None)
    return Path(out)


def synthesize(
    workload: str,
    out: str | os.PathLike,
    *,
    seed: int = 0,
    events: int | None = None,
    params: Mapping[str, object] | Sequence[str] | None = None,
    jobs: int | None = None,
) -> list[Path]:
    """Generate a seeded synthetic workload trace (the same seed gives the same bytes).

    Parameters
    ----------
    workload : str
        A workload name (:func:`workloads`), e.g. ``"kernel-compile"``.
    out : path
        A ``.parquet`` file; a folder for multi-guest workloads (``awm``, ``fleet``).
    seed : int
        Seed of every random choice.
    events : int, optional
        Stop after this many events (split among guests) instead of at the
        workload's ``duration_s``.
    params : dict or sequence of ``"k=v"``, optional
        Workload parameters (``{"guest_mib": 64}``).
    jobs : int, optional
        Guests generated at once (processes; default one per CPU); the
        output does not depend on it.

    Returns
    -------
    list of pathlib.Path
        The trace files written, one per guest.
    """
    from cmmsim.tracer.synth import synthesize as synth

    p = _params_arg(params)
    return synth(workload, out, seed=seed, events=events, params=p, jobs=jobs)


def sweep(
    inputs: Paths,
    out: str | os.PathLike,
    budgets: Sequence[str | int] | str | int,
    *,
    strategies: Sequence[str] | None = None,
    grid: Mapping[str, Mapping[str, Sequence[object]]] | None = None,
    jobs: int | None = None,
    costs: str | os.PathLike | None = None,
    vcpus: int | None = None,
    stream: bool = False,
    tier_pages: int = 0,
) -> pl.DataFrame:
    """Replay trace sets x strategies x parameter grids x budgets into a resumable folder.

    Parameters
    ----------
    inputs : path, sequence of paths
        Trace files, scenario folders or globs: each one trace set.
    out : path
        Output folder; running the same sweep again skips finished jobs
        (``cmmsim sweep``'s layout: parts/, failed/, sweep.json).
    budgets : str, int, or a sequence of them
        Host budgets as in :func:`replay` (a percentage is of each trace
        set's guest memory).
    strategies : str or sequence of str, optional
        Strategy names; those in ``grid`` run too (default: every registered
        one, or only those in ``grid`` when it is given).
    grid : dict, optional
        Strategy -> parameter -> values (a list, or one value), one job per
        combination, e.g. ``{"cmm": {"reclaim_order": ["lru", "state-priority"]}}``.
    jobs : int, optional
        Jobs at once in worker processes (default: the number of cores); 1
        runs them one after another in this process. The workers are spawned
        processes that import the calling script first, so a script calls
        this under ``if __name__ == "__main__":``.
    costs : str or path, optional
        Cost profile pricing the time and CPU columns.
    vcpus : int, optional
        Virtual CPUs of each guest whose trace does not say (default 1): the
        divisor of ``overhead_pct`` by construction, and of nothing else.
    stream : bool
        Every job streams its traces in bounded memory (for scenarios larger
        than a worker's memory; the strategies that stream only); the same
        integers as loading them.
    tier_pages : int
        A fast host swap tier of that many pages for every strategy that pages
        on the host (as in :func:`replay`); the others run without one.

    Returns
    -------
    polars.DataFrame
        Every finished job's results (:func:`read_results` of ``out``).

    Raises
    ------
    cmmsim.tracer.errors.CmmsimError
        A bad input, strategy, parameter or budget (before any job runs), or
        jobs that failed (the others' results are kept in ``out``).
    """
    from cmmsim.replay import sweep as sw
    from cmmsim.replay.executors import local_executor
    from cmmsim.replay.grids import strategy_grids
    from cmmsim.tracer.errors import ParamError, ResultsError

    def one_or_many(values) -> list:
        # A string is one value, never its characters ("lru" is not l, r, u).
        return [values] if isinstance(values, str) else list(values)

    g = {
        name: {k: [str(v) for v in one_or_many(values)] for k, values in params.items()}
        for name, params in (grid or {}).items()
    }
    spec = sw.SweepSpec(
        trace_sets=sw.trace_sets_from_inputs([str(p) for p in _paths(inputs)]),
        strategies=strategy_grids(one_or_many(strategies or []), g),
        budgets=[str(b) for b in _budget_list(budgets)],
        costs=costs,
        vcpus=vcpus,
        stream=stream,
        tier_pages=tier_pages,
    )
    if not spec.budgets:
        raise ParamError("no budget given")
    job_list = sw.build_jobs(spec, check_traces=True)
    parallel = jobs if jobs is not None else (os.cpu_count() or 1)
    if parallel < 1:
        raise ParamError(f"jobs must be at least 1, got {jobs}")
    make = _in_process if parallel == 1 else local_executor
    outcome = sw.run_sweep(job_list, out, make_executor=make, parallel=parallel)
    if outcome.failed:
        key, error = next(iter(outcome.failed.items()))
        raise ResultsError(
            f"{len(outcome.failed)} of {len(job_list)} sweep jobs failed "
            f"(first: {key}: {error}); see {Path(out) / 'failed'}{_unguarded_hint(make, outcome.failed)}"
        )
    return sw.read_results(out)


def _unguarded_hint(make, failed: Mapping[str, str]) -> str:
    """Why the pool's workers may all have died, when the caller is a script.

    A spawned worker first imports the script that started the pool; a script
    that calls :func:`sweep` outside the main guard starts the sweep again in
    the worker, whose pool cannot start while it is still being imported, so
    the worker dies before any job and looks like a crash.
    """
    from cmmsim.replay.executors import local_executor

    main = sys.modules.get("__main__")
    if make is not local_executor or not getattr(main, "__file__", None):
        return ""  # in this process, or from a REPL or notebook: nothing is imported again
    if not all("died twice" in error for error in failed.values()):
        return ""
    return f'; the workers import {main.__file__} first: is the call to api.sweep under `if __name__ == "__main__":`?'


def _in_process(_max_workers: int):
    """An executor that runs each job in this process, one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=1)


def read_results(path: str | os.PathLike) -> pl.DataFrame:
    """Results written by ``cmmsim replay -o`` (a file) or a sweep (its folder).

    Parameters
    ----------
    path : path
        A results ``.parquet`` or a sweep folder.

    Returns
    -------
    polars.DataFrame
        The rows, as :func:`replay` returns them.
    """
    from cmmsim.replay.sweep import read_results as read

    return read(path)


def report(
    results: pl.DataFrame | str | os.PathLike, name: str = "io-avoided-wide", *, by: str = "total-io"
) -> pl.DataFrame:
    """One report over results, as ``cmmsim report -r NAME`` computes it.

    Parameters
    ----------
    results : polars.DataFrame or path
        Rows from :func:`replay` or :func:`sweep` (several concatenated, each
        run under its own trace set name: a ``trace_set`` column tells
        same-named traces apart), or a results file or sweep folder.
    name : str
        A key of :data:`REPORTS`: ``winners``, ``total-io``, ``io-avoided``,
        ``io-avoided-wide`` (one row per trace set and budget, a column per
        strategy, % of host-lru's I/O avoided), ``faults``, ``ranking``,
        ``crossovers``, ``fairness`` or ``time``.
    by : str
        What ``winners``, ``ranking`` and ``crossovers`` order by:
        ``total-io`` (page I/Os), ``stall`` (ns) or ``cpu`` (ns); the other
        reports do not use it.

    Returns
    -------
    polars.DataFrame
        The report; every budget in pages (``budget_pages`` ...) and MiB
        (``budget_mib`` ...). Columns: the ``df_*`` functions of :mod:`cmmsim.reports`.

    Raises
    ------
    cmmsim.tracer.errors.ResultsError
        Two rows for one trace set, strategy label, budget and guest (runs
        mixed under one name); rows that are not results (a column missing,
        a NaN where cmmsim writes null).
    """
    from cmmsim import reports
    from cmmsim.replay.costs import priced
    from cmmsim.tracer.errors import ParamError

    if name not in REPORTS:
        raise ParamError(f"unknown report {name!r} (known: {', '.join(REPORTS)})")
    if by not in reports.BY:  # a typo is refused even where by is not used
        raise ParamError(f"by {by!r}: use {', '.join(reports.BY)}")
    df = results if not isinstance(results, str | os.PathLike) else read_results(results)
    if df is results:
        _check_frame(df)
    fn = getattr(reports, REPORTS[name])
    df, _ = priced(df)  # as the rows were priced, else the default profile
    return fn(df, by) if name in _ORDERED else fn(df)


def _check_frame(df: pl.DataFrame) -> None:
    """Refuse rows given as a frame that are not results, as :func:`read_results` refuses a file."""
    from cmmsim.replay.frames import nan_column
    from cmmsim.tracer.errors import ResultsError

    # What every report groups by (a frame built by hand may hold no more; a
    # results file must hold all of cmmsim.replay.sweep.RESULT_COLUMNS).
    missing = [c for c in ("strategy", "budget_pages", "guest") if c not in df.columns]
    if missing:
        raise ResultsError(f"the results frame: not cmmsim results: no column {', '.join(missing)}")
    nan = nan_column(df)
    if nan:
        raise ResultsError(f"the results frame: column {nan} holds NaN (cmmsim writes null)")


def strategies() -> dict[str, str]:
    """The registered strategies, for :func:`replay` and :func:`sweep`.

    Returns
    -------
    dict of str to str
        Strategy name -> its one-line summary (parameters and defaults:
        ``cmmsim strategies``).
    """
    from cmmsim.replay.strategies import strategies as registry

    return {name: s.summary for name, s in registry().items()}


def workloads() -> dict[str, str]:
    """The synthetic workloads, for :func:`synthesize`.

    Returns
    -------
    dict of str to str
        Workload name -> its one-line summary (parameters and defaults:
        ``cmmsim trace workloads``).
    """
    from cmmsim.tracer.synth import workloads as registry

    return {name: w.summary for name, w in registry().items()}
