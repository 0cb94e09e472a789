"""Summaries of trace files (polars).

Functions named ``df_*`` return polars DataFrames and document their columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from cmmsim.tracer.io import read_meta, scan_trace, validate_trace
from cmmsim.tracer.schema import Op

__all__ = ["df_final_guest_states", "trace_summary"]

_STATE_OF_HINT = {
    Op.SET_STABLE: "S",
    Op.SET_STABLE_IF_RESIDENT: "S",
    Op.SET_UNUSED: "U",
    Op.SET_VOLATILE: "V",
    Op.SET_POT_VOLATILE: "P",
}


def df_final_guest_states(path: str | Path) -> pl.DataFrame:
    """Guest state of every page at the end of a trace, counted.

    The state of a page is the one its last hint set (set stable if resident
    counts as stable; an access to an unused page, a protocol repair, makes
    it stable). Pages the trace never names are unused: a hinting guest marks
    its free memory unused at boot.

    Returns
    -------
    polars.DataFrame
        ``state`` (str: S, U, V, P), ``pages`` (int), ``fraction`` (float,
        of guest pages), one row per state, all four present.
    """
    meta = read_meta(path)
    mapping = pl.DataFrame(
        {"op": [int(o) for o in _STATE_OF_HINT], "state": list(_STATE_OF_HINT.values())},
        schema={"op": pl.UInt8, "state": pl.String},
    )
    last = (
        scan_trace(path)
        .with_row_index("row")
        .group_by("pfn")
        .agg(
            pl.col("op").filter(pl.col("op") >= Op.SET_STABLE).last().alias("last_hint"),
            pl.col("row").filter(pl.col("op") >= Op.SET_STABLE).last().alias("hint_row"),
            pl.col("row").filter(pl.col("op") < Op.SET_STABLE).last().alias("access_row"),
        )
        .collect()
        .join(mapping, left_on="last_hint", right_on="op", how="left")
        .with_columns(
            pl.when((pl.col("state") == "U") & (pl.col("access_row") > pl.col("hint_row")) | pl.col("state").is_null())
            .then(pl.lit("S"))
            .otherwise(pl.col("state"))
            .alias("state")
        )
    )
    counts = last.group_by("state").agg(pl.len().alias("pages"))
    named = int(counts["pages"].sum()) if counts.height else 0
    out = (
        pl.DataFrame({"state": ["S", "U", "V", "P"]})
        .join(counts, on="state", how="left")
        .with_columns(pl.col("pages").fill_null(0).cast(pl.Int64))
        .with_columns(
            pl.when(pl.col("state") == "U")
            .then(pl.col("pages") + (meta.guest_pages - named))
            .otherwise(pl.col("pages"))
            .alias("pages")
        )
        .with_columns((pl.col("pages") / meta.guest_pages).alias("fraction"))
    )
    return out


def trace_summary(path: str | Path) -> dict[str, Any]:
    """Headline figures of one trace: events, duration, rate, pages, final states.

    The trace is validated first, as :func:`cmmsim.tracer.io.validate_trace` does: no
    figure is given for a trace that breaks the schema.
    """
    meta = validate_trace(path)
    stats = (
        scan_trace(path)
        .select(
            pl.len().alias("events"),
            pl.col("t_ns").min().alias("t_min"),
            pl.col("t_ns").max().alias("t_max"),
            pl.col("pfn").n_unique().alias("distinct_pages"),
        )
        .collect()
        .row(0, named=True)
    )
    events = int(stats["events"])
    duration_s = ((stats["t_max"] or 0) - (stats["t_min"] or 0)) / 1e9
    states = df_final_guest_states(path)
    return {
        "source": meta.source,
        "seed": meta.seed,
        "events": events,
        "duration_s": duration_s,
        # No rate for a trace of no duration (one event, or all at one instant): 0
        # would say "nothing happens" of 1,500 events.
        "events_per_s": events / duration_s if duration_s > 0 else None,
        "guest_pages": meta.guest_pages,
        "distinct_pages": int(stats["distinct_pages"] or 0),
        "event_counts": meta.event_counts,
        "final_state_fractions": dict(zip(states["state"], states["fraction"], strict=True)),
        "converter": meta.converter,
        # "none" for a trace imported from another tool (cmmsim.tracer.exchange).
        "hints": (meta.params or {}).get("hints"),
        "sampling": (meta.params or {}).get("sampling"),
    }
