"""Reports over replay results (polars). Every ``df_*`` documents its columns.

Input is a results frame as written by ``cmmsim replay -o`` or a sweep
(:func:`cmmsim.replay.sweep.read_results`). Rows with ``guest`` null are host
totals. A strategy run with non-default parameters is labelled
``strategy[k=v,...]`` (only the parameters that differ from the defaults),
so a parameter grid gives one line per point; rows that mix host swap tier
sizes carry theirs too (``host-lru[tier=4096]``). Each report takes one row
per trace set, label, budget and guest: rows that clash (two runs under one
trace set name concatenated) are refused with a
:class:`~cmmsim.tracer.errors.ResultsError`, never counted twice.

Rankings, winners and crossovers order strategies ``by`` one of
:data:`BY`: total I/O, stall time or CPU time; the last two need priced
rows (:func:`cmmsim.replay.costs.price`).

Every budget a report shows is in pages (4 KiB frames, ``budget_pages``,
``budget_from`` ...) and beside it in MiB (``budget_mib``, ``budget_from_mib``
...: :func:`with_budget_mib`). A budget written as a percentage (``-b 50%``)
is always a share of the guests' total memory (``guest_pages``), never of
the pages a trace touches.
"""

from __future__ import annotations

import json

import polars as pl

from cmmsim.replay.strategies import strategies
from cmmsim.tracer import params as params_mod
from cmmsim.tracer.errors import ParamError, ResultsError
from cmmsim.tracer.schema import PAGE_SIZE_BYTES

__all__ = [
    "BASELINE",
    "BUDGET_COLUMNS",
    "BY",
    "KEYS",
    "TIME_COLUMNS",
    "WIDE_VALUES",
    "df_by",
    "df_crossovers",
    "df_fairness",
    "df_faults_per_kilo",
    "df_io_avoided",
    "df_io_avoided_wide",
    "df_ranking",
    "df_state_distribution",
    "df_time",
    "df_total_io",
    "df_winners",
    "markdown_table",
    "with_budget_mib",
    "tiers_vary",
    "with_labels",
]

BASELINE = "host-lru"
KEYS = ["trace_set", "label", "budget_pages"]
#: What strategies can be ordered by: ``--by`` name -> the column that holds it.
BY = {"total-io": "total_io", "stall": "stall_ns", "cpu": "cpu_ns"}
#: The time and CPU columns of :func:`df_time`.
TIME_COLUMNS = ("stall_ns", "host_cpu_ns", "guest_cpu_ns", "overhead_pct", "disk_busy_ns")
#: Columns that hold a budget in pages; :func:`with_budget_mib` adds ``<name>_mib``
#: (``budget_mib`` for ``budget_pages``) beside each.
BUDGET_COLUMNS = ("budget_pages", "budget_from", "budget_to", "budget_below", "budget_above")


def _mib_name(column: str) -> str:
    return "budget_mib" if column == "budget_pages" else f"{column}_mib"


def with_budget_mib(df: pl.DataFrame, page_size_bytes: int | None = None) -> pl.DataFrame:
    """``df`` with each budget column (:data:`BUDGET_COLUMNS`) followed by its size in MiB.

    Parameters
    ----------
    df : polars.DataFrame
        A report or results frame; columns already converted are left alone.
    page_size_bytes : int, optional
        Bytes per page. Default: the frame's ``page_size`` column when it has
        one, else the trace schema's page size
        (:data:`cmmsim.tracer.schema.PAGE_SIZE_BYTES`, 4096: every trace
        cmmsim replays has 4 KiB pages).

    Returns
    -------
    polars.DataFrame
        The same rows; ``budget_pages`` gets ``budget_mib`` (float, MiB =
        pages x page size / 2**20), ``budget_from`` gets ``budget_from_mib``
        and so on, each right after its pages column.
    """
    if page_size_bytes is not None:
        size = pl.lit(page_size_bytes)
    elif "page_size" in df.columns:
        size = pl.col("page_size")
    else:
        size = pl.lit(PAGE_SIZE_BYTES)
    todo = [c for c in BUDGET_COLUMNS if c in df.columns and _mib_name(c) not in df.columns]
    if not todo:
        return df
    out = df.with_columns((pl.col(c) * size / float(1 << 20)).alias(_mib_name(c)) for c in todo)
    order: list[str] = []
    for c in df.columns:
        order.append(c)
        if c in todo:
            order.append(_mib_name(c))
    return out.select(order)


def _label(strategy: str, params_json: str, tier_pages: int = 0) -> str:
    params = json.loads(params_json) if params_json else {}
    strat = strategies().get(strategy)
    defaults = params_mod.as_dict(strat.params()) if strat else {}
    parts = [f"{k}={v}" for k, v in sorted(params.items()) if defaults.get(k) != v]
    if tier_pages:
        parts.append(f"tier={tier_pages}")
    return f"{strategy}[{','.join(parts)}]" if parts else strategy


def tiers_vary(results: pl.DataFrame) -> bool:
    """The rows of strategies with a host swap tier hold more than one tier size.

    Parameters
    ----------
    results : polars.DataFrame
        Results rows; without a ``tier_pages`` column (older results) no tier varies.

    Returns
    -------
    bool
        True when those rows hold more than one ``tier_pages`` (4 KiB pages).
    """
    if "tier_pages" not in results.columns:
        return False
    tiered = [name for name, s in strategies().items() if s.host_tier]
    return results.filter(pl.col("strategy").is_in(tiered))["tier_pages"].n_unique() > 1


def with_labels(results: pl.DataFrame) -> pl.DataFrame:
    """Add ``label`` (strategy plus non-default params) and ``trace_set`` if missing.

    When the rows hold one strategy at several host swap tier sizes (``tier_pages``),
    a tier's size is part of its label (``host-lru[tier=4096]``); with one size for
    every strategy that has a tier (``cmmsim demo --tier-pages N``), labels do not say it.

    Parameters
    ----------
    results : polars.DataFrame
        Results (or states) rows with ``strategy`` and ``params`` (JSON) columns.

    Returns
    -------
    polars.DataFrame
        The same rows with ``label`` (str) added, and ``trace_set`` (str, the
        ``scenario``) when they had none.
    """
    keys = ["strategy", "params", "tier_pages"] if tiers_vary(results) else ["strategy", "params"]
    pairs = results.select(keys).unique()
    labels = pairs.with_columns(
        pl.struct(keys)
        .map_elements(lambda s: _label(s["strategy"], s["params"], s.get("tier_pages") or 0), return_dtype=pl.String)
        .alias("label")
    )
    out = results.join(labels, on=keys, how="left")
    if "trace_set" not in out.columns:
        out = out.with_columns(pl.col("scenario").alias("trace_set"))
    return out


def _host(results: pl.DataFrame) -> pl.DataFrame:
    return _unique(with_labels(results)).filter(pl.col("guest").is_null())


def _unique(labelled: pl.DataFrame) -> pl.DataFrame:
    """``labelled`` (results with labels) if it holds one row per trace set, label,
    budget and guest, else a :class:`~cmmsim.tracer.errors.ResultsError` naming a clash.

    Rows concatenated from two runs of one trace set name (two ``loop.parquet`` in
    different folders, or one run twice) would otherwise be ranked side by side and
    joined pairwise against the baseline, every figure silently counted twice. Rows of
    one sweep job (one ``job_key``) read twice are one run's, kept once.
    """
    keys = [*KEYS, "guest"]
    if "job_key" in labelled.columns:
        # One sweep job read twice (two sweeps sharing it: a strategy without a tier in
        # sweeps at two --tier-pages) is one run: its rows count once.
        once = pl.col("job_key").is_null() | pl.struct(["job_key", *keys]).is_first_distinct()
        labelled = labelled.filter(once)
    twice = labelled.group_by(keys).len().filter(pl.col("len") > 1)
    if twice.is_empty():
        return labelled
    row = twice.sort(keys, nulls_last=False).row(0, named=True)
    who = "the host" if row["guest"] is None else f"guest {row['guest']}"
    raise ResultsError(
        f"the results hold {row['len']} rows for trace set {row['trace_set']!r}, {row['label']} at "
        f"{row['budget_pages']} pages ({who}): runs of one trace set name mixed (the same run twice, "
        "or same-named traces from different folders); give each its own trace_set"
    )


def df_total_io(results: pl.DataFrame) -> pl.DataFrame:
    """Total I/O by trace set x strategy x budget (host rows).

    Parameters
    ----------
    results : polars.DataFrame
        Results rows (``cmmsim replay -o``, a sweep's folder read by
        :func:`cmmsim.api.read_results`); the host rows are used.

    Returns
    -------
    polars.DataFrame
        Columns: trace_set (str), label (str), budget_pages (int, 4 KiB
        pages), budget_mib (float, MiB), host_reads, host_writes,
        guest_reads, guest_writes, total_io (int, page I/Os), accesses (int,
        READ and WRITE events).
    """
    return with_budget_mib(
        _host(results)
        .select(*KEYS, "host_reads", "host_writes", "guest_reads", "guest_writes", "total_io", "accesses")
        .sort(KEYS)
    )


def df_io_avoided(results: pl.DataFrame, baseline: str = BASELINE) -> pl.DataFrame:
    """I/O avoided against the baseline (``host-lru``) at the same trace set and budget.

    Parameters
    ----------
    results : polars.DataFrame
        Results rows (``cmmsim replay -o``, a sweep's folder read by
        :func:`cmmsim.api.read_results`); the host rows are used.
    baseline : str
        The label the others are measured against.

    Returns
    -------
    polars.DataFrame
        Columns: trace_set, label, budget_pages (int, 4 KiB pages),
        budget_mib (float, MiB), total_io (int, page I/Os), baseline_io (int,
        the baseline's total_io), io_avoided (int, baseline_io - total_io;
        negative when the strategy does more I/O), io_avoided_pct (float,
        percent of baseline_io; null when the baseline did no I/O). A row
        whose baseline was not run at its trace set and budget is kept, with
        those three null.
    """
    tot = df_total_io(results)
    base = tot.filter(pl.col("label") == baseline).select(
        "trace_set", "budget_pages", pl.col("total_io").alias("baseline_io")
    )
    return with_budget_mib(
        tot.join(base, on=["trace_set", "budget_pages"], how="left")
        .select(
            *KEYS,
            "total_io",
            "baseline_io",
            (pl.col("baseline_io") - pl.col("total_io")).alias("io_avoided"),
            pl.when(pl.col("baseline_io") > 0)
            .then(100.0 * (pl.col("baseline_io") - pl.col("total_io")) / pl.col("baseline_io"))
            .otherwise(None)
            .alias("io_avoided_pct"),
        )
        .sort(KEYS)
    )


#: What :func:`df_io_avoided_wide` can put in its strategy columns.
WIDE_VALUES = ("io_avoided_pct", "io_avoided", "total_io")


def df_io_avoided_wide(results: pl.DataFrame, baseline: str = BASELINE, value: str = "io_avoided_pct") -> pl.DataFrame:
    """:func:`df_io_avoided` pivoted: one row per trace set and budget, a column per strategy.

    Parameters
    ----------
    results : polars.DataFrame
        Results rows (host rows are used).
    baseline : str
        The label the others are measured against (``host-lru``); it gets no
        column of its own: its I/O is ``baseline_io``.
    value : str
        What each strategy column holds (:data:`WIDE_VALUES`):
        ``io_avoided_pct`` (float, percent of baseline_io; negative when the
        strategy does more I/O; null when the baseline did none),
        ``io_avoided`` (int, page I/Os) or ``total_io`` (int, page I/Os).

    Returns
    -------
    polars.DataFrame
        Columns: trace_set (str), budget_pages (int, 4 KiB pages), budget_mib
        (float, MiB), baseline_io (int, the baseline's total I/O, page I/Os;
        null where the baseline was not run), then one column per label
        other than the baseline holding ``value``: online strategies in
        alphabetical order, then the offline ones (``opt``, the floor, and
        ``opt-schedule``). One row per trace set and budget any strategy ran
        at, sorted; a strategy not run at a row's budget has null there, and
        so has every ``io_avoided*`` value of a row without a baseline.
    """
    if value not in WIDE_VALUES:
        raise ParamError(f"value {value!r}: use {', '.join(WIDE_VALUES)}")
    long = df_io_avoided(results, baseline)
    offline = {name for name, s in strategies().items() if s.offline}
    strategy_of = dict(with_labels(results).select("label", "strategy").unique().iter_rows())
    labels = sorted(
        (lb for lb in long["label"].unique() if lb != baseline), key=lambda lb: (strategy_of.get(lb) in offline, lb)
    )
    # baseline_io is no pivot index: it is null where the baseline did not run, and a
    # null key would join nothing.
    index = ["trace_set", "budget_pages"]
    base = long.select(*index, "baseline_io").unique()
    if not labels:
        return with_budget_mib(base.sort(index))
    wide = long.filter(pl.col("label") != baseline).pivot(on="label", index=index, values=value)
    return with_budget_mib(base.join(wide, on=index, how="left").select(*index, "baseline_io", *labels).sort(index))


def df_faults_per_kilo(results: pl.DataFrame) -> pl.DataFrame:
    """Faults per 1,000 accesses by kind (host rows).

    Parameters
    ----------
    results : polars.DataFrame
        Results rows (``cmmsim replay -o``, a sweep's folder read by
        :func:`cmmsim.api.read_results`); the host rows are used.

    Returns
    -------
    polars.DataFrame
        Columns: trace_set, label, budget_pages (int, 4 KiB pages),
        budget_mib (float, MiB), accesses (int), host_faults_per_k (float:
        host reads of preserved pages per 1,000 accesses), zero_fills_per_k
        (float), discard_faults_per_k (float); the three null when there
        were no accesses.
    """
    per_k = 1000.0 / pl.when(pl.col("accesses") > 0).then(pl.col("accesses")).otherwise(None)
    return with_budget_mib(
        _host(results)
        .select(
            *KEYS,
            "accesses",
            (pl.col("host_reads") * per_k).alias("host_faults_per_k"),
            (pl.col("zero_fills") * per_k).alias("zero_fills_per_k"),
            (pl.col("discard_faults") * per_k).alias("discard_faults_per_k"),
        )
        .sort(KEYS)
    )


def df_time(results: pl.DataFrame) -> pl.DataFrame:
    """Time and CPU by trace set x strategy x budget (host rows, priced).

    Parameters
    ----------
    results : polars.DataFrame
        Results rows (``cmmsim replay -o``, a sweep's folder read by
        :func:`cmmsim.api.read_results`); the host rows are used. They must be priced
        (:func:`cmmsim.replay.costs.price`), else a
        :class:`~cmmsim.tracer.errors.ParamError`.

    Returns
    -------
    polars.DataFrame
        Columns: trace_set, label, budget_pages (int, 4 KiB pages),
        budget_mib (float, MiB), total_io (int, page I/Os), stall_ns (float,
        ns: the guests' waiting), host_cpu_ns, guest_cpu_ns (float, ns),
        overhead_pct (float: CPU on memory management, percent of the
        guests' vCPU time), disk_busy_ns (float, ns), cost_profile (str).
        Meanings: :mod:`cmmsim.replay.costs`.
    """
    _need_prices(results)
    return with_budget_mib(_host(results).select(*KEYS, "total_io", *TIME_COLUMNS, "cost_profile").sort(KEYS))


def _need_prices(results: pl.DataFrame) -> None:
    if "stall_ns" not in results.columns:
        raise ParamError(
            "the results carry no time or CPU columns: price them first "
            "(cmmsim.replay.costs.price, or cmmsim report --costs)"
        )


def df_by(results: pl.DataFrame, by: str = "total-io") -> pl.DataFrame:
    """The quantity strategies are ordered ``by`` (a key of :data:`BY`), host rows.

    Parameters
    ----------
    results : polars.DataFrame
        Results rows (``cmmsim replay -o``, a sweep's folder read by
        :func:`cmmsim.api.read_results`); the host rows are used. ``stall`` and ``cpu`` need priced rows.
    by : str
        A key of :data:`BY`: ``total-io`` (page I/Os), ``stall`` (ns) or
        ``cpu`` (ns).

    Returns
    -------
    polars.DataFrame
        Columns: trace_set, label, budget_pages (int, 4 KiB pages),
        budget_mib (float, MiB), and the quantity's column: total_io (int,
        page I/Os), stall_ns (float, ns) or cpu_ns (float, ns: host_cpu_ns +
        guest_cpu_ns).
    """
    if by not in BY:
        raise ParamError(f"--by {by!r}: use {', '.join(BY)}")
    if by == "total-io":
        return with_budget_mib(df_total_io(results).select(*KEYS, "total_io"))
    _need_prices(results)
    value = pl.col("stall_ns") if by == "stall" else pl.col("host_cpu_ns") + pl.col("guest_cpu_ns")
    return with_budget_mib(_host(results).select(*KEYS, value.alias(BY[by])).sort(KEYS))


def df_ranking(results: pl.DataFrame, by: str = "total-io") -> pl.DataFrame:
    """Strategies ranked per trace set and budget ``by`` total I/O, stall or CPU
    (:data:`BY`; 1 = least, ties share).

    Parameters
    ----------
    results : polars.DataFrame
        Results rows (``cmmsim replay -o``, a sweep's folder read by
        :func:`cmmsim.api.read_results`); the host rows are used.
    by : str
        A key of :data:`BY`: ``total-io`` (page I/Os), ``stall`` (ns) or
        ``cpu`` (ns).

    Returns
    -------
    polars.DataFrame
        Columns: trace_set, budget_pages (int, 4 KiB pages), budget_mib
        (float, MiB), rank (int), label, and the quantity (total_io, stall_ns
        or cpu_ns: :func:`df_by`).
    """
    col = BY.get(by, by)
    return with_budget_mib(
        df_by(results, by)
        .with_columns(pl.col(col).rank("min").over("trace_set", "budget_pages").cast(pl.Int64).alias("rank"))
        .select("trace_set", "budget_pages", "rank", "label", col)
        .sort("trace_set", "budget_pages", "rank", "label")
    )


def df_crossovers(results: pl.DataFrame, by: str = "total-io") -> pl.DataFrame:
    """Budgets between which one strategy overtakes another (the order ``by``
    total I/O, stall or CPU flips: :data:`BY`).

    For every trace set and pair of labels (a < b alphabetically), each pair of
    consecutive budgets where the sign of ``value(a) - value(b)`` changes from
    one strict sign to the other (ties are skipped over).

    Parameters
    ----------
    results : polars.DataFrame
        Results rows (``cmmsim replay -o``, a sweep's folder read by
        :func:`cmmsim.api.read_results`); the host rows are used.
    by : str
        A key of :data:`BY`: ``total-io`` (page I/Os), ``stall`` (ns) or
        ``cpu`` (ns).

    Returns
    -------
    polars.DataFrame
        Columns: trace_set, label_a, label_b, budget_below (int, 4 KiB pages),
        budget_below_mib (float, MiB), budget_above (int, 4 KiB pages),
        budget_above_mib (float, MiB), better_below (str: the label with less
        at budget_below), better_above (str).
    """
    col = BY.get(by, by)
    tot = df_by(results, by).select("trace_set", "label", "budget_pages", col)
    pairs = (
        tot.join(tot, on=["trace_set", "budget_pages"], suffix="_b")
        .filter(pl.col("label") < pl.col("label_b"))
        .with_columns((pl.col(col) - pl.col(f"{col}_b")).sign().alias("sign"))
        .filter(pl.col("sign") != 0)
        .sort("trace_set", "label", "label_b", "budget_pages")
    )
    grp = ["trace_set", "label", "label_b"]
    flips = pairs.with_columns(
        pl.col("sign").shift(1).over(grp).alias("prev_sign"),
        pl.col("budget_pages").shift(1).over(grp).alias("budget_below"),
    ).filter(pl.col("prev_sign").is_not_null() & (pl.col("prev_sign") != pl.col("sign")))
    return with_budget_mib(
        flips.select(
            "trace_set",
            pl.col("label").alias("label_a"),
            pl.col("label_b"),
            pl.col("budget_below").cast(pl.Int64),
            pl.col("budget_pages").alias("budget_above"),
            pl.when(pl.col("prev_sign") < 0).then(pl.col("label")).otherwise(pl.col("label_b")).alias("better_below"),
            pl.when(pl.col("sign") < 0).then(pl.col("label")).otherwise(pl.col("label_b")).alias("better_above"),
        ).sort("trace_set", "label_a", "label_b", "budget_below")
    )


def df_fairness(results: pl.DataFrame) -> pl.DataFrame:
    """Per-guest fairness in multi-guest scenarios: spread of per-guest total I/O.

    Parameters
    ----------
    results : polars.DataFrame
        Results rows (``cmmsim replay -o``, a sweep's folder read by
        :func:`cmmsim.api.read_results`); the per-guest rows are used.

    Returns
    -------
    polars.DataFrame
        One row per trace set, label and budget with more than one guest.
        Columns: trace_set, label, budget_pages (int, 4 KiB pages),
        budget_mib (float, MiB), guests (int), max_guest_io (int, page I/Os),
        min_guest_io (int, page I/Os), max_min_ratio (float; null when the
        least loaded guest did no I/O).
    """
    guests = _unique(with_labels(results)).filter(pl.col("guest").is_not_null())
    return with_budget_mib(
        guests.group_by(KEYS)
        .agg(
            pl.len().alias("guests"),
            pl.col("total_io").max().alias("max_guest_io"),
            pl.col("total_io").min().alias("min_guest_io"),
        )
        .filter(pl.col("guests") > 1)
        .with_columns(
            pl.when(pl.col("min_guest_io") > 0)
            .then(pl.col("max_guest_io") / pl.col("min_guest_io"))
            .otherwise(None)
            .alias("max_min_ratio")
        )
        .sort(KEYS)
    )


def df_state_distribution(states: pl.DataFrame) -> pl.DataFrame:
    """State distribution over time, summed over guests.

    Parameters
    ----------
    states : polars.DataFrame
        A states frame (``cmmsim replay --states`` or a sweep's states/).

    Returns
    -------
    polars.DataFrame
        Columns: trace_set, label, budget_pages (int, 4 KiB pages),
        budget_mib (float, MiB), t_ns (int, ns of trace time), state (str:
        Sr Sp Sz Ur Uz Vr Vz Pr), pages (int, 4 KiB pages).
    """
    labelled = with_labels(states)
    return with_budget_mib(
        labelled.group_by(*KEYS, "t_ns", "state").agg(pl.col("pages").sum()).sort(*KEYS, "t_ns", "state")
    )


def df_winners(results: pl.DataFrame, by: str = "total-io") -> pl.DataFrame:
    """The online strategy with least total I/O (or stall, or CPU: ``by``, a key of
    :data:`BY`) per trace set, as budget ranges.

    Offline strategies (``opt``, the floor; ``opt-schedule``) do not compete. Consecutive
    budgets with the same winner are merged. Ties go to the label first in
    alphabetical order; ``tied`` counts labels sharing it.

    Parameters
    ----------
    results : polars.DataFrame
        Results rows (``cmmsim replay -o``, a sweep's folder read by
        :func:`cmmsim.api.read_results`); the host rows are used.
    by : str
        A key of :data:`BY`: ``total-io`` (page I/Os), ``stall`` (ns) or
        ``cpu`` (ns).

    Returns
    -------
    polars.DataFrame
        Columns: trace_set, winner (str), budget_from (int, 4 KiB pages),
        budget_from_mib (float, MiB), budget_to (int, 4 KiB pages),
        budget_to_mib (float, MiB), tied (int, most labels sharing first
        place in the range).
    """
    offline = [name for name, s in strategies().items() if s.offline]
    rank = df_ranking(results.filter(~pl.col("strategy").is_in(offline)), by).filter(pl.col("rank") == 1)
    best = (
        rank.group_by("trace_set", "budget_pages")
        .agg(pl.col("label").sort().first().alias("winner"), pl.len().alias("tied"))
        .sort("trace_set", "budget_pages")
    )
    run_id = (pl.col("winner") != pl.col("winner").shift(1)).fill_null(True).cum_sum()
    return with_budget_mib(
        best.with_columns(run_id.over("trace_set").alias("run"))
        .group_by("trace_set", "run")
        .agg(
            pl.col("winner").first(),
            pl.col("budget_pages").min().alias("budget_from"),
            pl.col("budget_pages").max().alias("budget_to"),
            pl.col("tied").max(),
        )
        .sort("trace_set", "budget_from")
        .drop("run")
    )


def markdown_table(df: pl.DataFrame) -> str:
    """A frame as a GitHub markdown table (what ``cmmsim report --format markdown`` prints).

    Parameters
    ----------
    df : polars.DataFrame
        Any frame; its column names become the header.

    Returns
    -------
    str
        The table, one line per row, no trailing newline. Integers get
        thousands separators, floats one decimal (two significant digits
        below 1), nulls an empty cell.
    """
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    for row in df.iter_rows():
        lines.append("| " + " | ".join(_markdown_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _markdown_cell(v) -> str:
    if isinstance(v, float):
        # A small budget in MiB (10 pages: 0.04) must not print as 0.0.
        return f"{v:,.1f}" if v == 0 or abs(v) >= 0.95 or v != v else f"{v:.2g}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else str(v)
