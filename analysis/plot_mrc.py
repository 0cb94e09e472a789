"""Plots of ``cmmsim mrc`` output: the miss-ratio curve and the reuse-distance histogram.

``cmmsim mrc -o curve.parquet`` writes :func:`cmmsim.replay.shards.df_sampled_curve`'s
table: host-lru's (or, ``--order state-priority``, cmm state-priority's) counters at
each budget, exact or estimated from page samples (SHARDS) with a standard error.
``cmmsim plot`` recognizes such a file by its columns (:func:`is_miss_curve`).

The histogram needs no second pass: under LRU an access misses at budget B
exactly when its stack distance (pages used since it last touched the page,
counting each page once) exceeds B, so the misses lost between two budgets
of the curve are the accesses whose distance lies between them. No such
reading exists for state-priority (no stack), so its curve gets no histogram.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from cmmsim.plot_style import all_or_nothing, mib, strategy_style
from cmmsim.tracer.errors import ResultsError

#: Columns that make a frame ``cmmsim mrc`` output.
MRC_COLUMNS = (
    "budget_pages",
    "accesses",
    "miss_ratio_est",
    "miss_ratio_se",
    "exact",
    "footprint_pages",
    "rate",
    "salts",
)


def is_miss_curve(frame: pl.DataFrame) -> bool:
    """Whether ``frame`` has the columns of ``cmmsim mrc`` output."""
    return set(MRC_COLUMNS) <= set(frame.columns)


def _plt():
    from cmmsim.plots import _plt as plt

    return plt()


def _is_lru(curve: pl.DataFrame) -> bool:
    """Whether the curve is host-lru's (files from before the ``order`` column are)."""
    return "order" not in curve.columns or curve["order"][0] == "lru"


def _replay(curve: pl.DataFrame) -> str:
    from cmmsim.replay.shards import REPLAY_NAMES

    return REPLAY_NAMES["lru" if _is_lru(curve) else curve["order"][0]]


def _how(curve: pl.DataFrame) -> str:
    row = curve.row(0, named=True)
    if row["exact"]:
        return "exact (one LRU stack pass)" if _is_lru(curve) else "exact (a replay per budget)"
    return f"SHARDS estimate: {row['salts']} samples of {row['rate']:g} of the pages; band: ±1 standard error"


def reuse_histogram(curve: pl.DataFrame) -> pl.DataFrame:
    """Accesses by LRU stack distance, binned at the curve's budgets.

    Columns: ``lo_pages``, ``hi_pages`` (the bin: distances above lo, up to hi;
    the last bin has ``hi_pages`` null: beyond the largest budget, first
    touches included), ``accesses`` (float: estimated for a sampled curve,
    clipped at 0 where sampling noise makes the curve rise) and ``share``
    (of all accesses, 0..1). Only host-lru's curve reads so: another is refused.
    """
    if not _is_lru(curve):
        raise ResultsError(f"a reuse-distance histogram reads host-lru's curve, not {_replay(curve)}'s")
    c = curve.sort("budget_pages")
    b = c["budget_pages"].to_numpy().astype(np.int64)
    total = float(c["accesses"][0])
    misses = c["miss_ratio_est"].to_numpy() * total
    hits_below = total - misses[0]
    between = np.maximum(misses[:-1] - misses[1:], 0.0)
    counts = np.concatenate([[hits_below], between, [misses[-1]]])
    lo = np.concatenate([[0], b])
    hi = [*b.tolist(), None]
    return pl.DataFrame(
        {
            "lo_pages": lo,
            "hi_pages": pl.Series(hi, dtype=pl.Int64),
            "accesses": counts,
            "share": counts / max(total, 1.0),
        }
    )


def _save(fig, path: Path) -> Path:
    from cmmsim.plots import _save as save

    return save(fig, path)


def plot_miss_curve(curve: pl.DataFrame, path: Path, name: str = "") -> Path:
    """The curve's miss ratio (host-lru's or cmm state-priority's) vs host budget
    (MiB), with a ±1 standard-error band for a sampled curve and the footprint marked."""
    plt = _plt()
    c = curve.sort("budget_pages")
    x = mib(c["budget_pages"].to_numpy())
    y = c["miss_ratio_est"].to_numpy()
    se = np.nan_to_num(c["miss_ratio_se"].to_numpy())
    replay = _replay(c)
    style = strategy_style("host-lru" if _is_lru(c) else "cmm").kwargs()
    fig, ax = plt.subplots(figsize=(6.0, 3.9))
    if not c["exact"][0]:
        ax.fill_between(
            x,
            np.clip(y - se, 0, 1),
            np.clip(y + se, 0, 1),
            color=style["color"],
            alpha=0.22,
            linewidth=0,
            # The band can be thinner than the line: say how wide it gets.
            label=f"±1 standard error (at most {float(se.max()):.2g})",
        )
    if len(x) > 40:  # a dense curve: markers would merge into a thick line
        style |= {"marker": None}
    ax.plot(x, y, label=f"{replay} miss ratio", **(style | {"linestyle": "-"}))
    foot = mib(int(c["footprint_pages"][0]))
    ax.axvline(foot, color="#7f7f7f", linestyle=":", linewidth=1)
    ax.annotate(
        f"footprint {foot:,.0f} MiB",
        (foot, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(-3, -3),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize="x-small",
        color="#595959",
    )
    ax.set_ylim(0, min(1.0, max(float(np.nanmax(y + se)), 1e-6) * 1.08))
    ax.set_xlim(left=0)
    ax.set_xlabel("host memory budget (MiB)")
    ax.set_ylabel("miss ratio (host reads + zero fills per access)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.92), fontsize="small", frameon=False)
    accesses = int(c["accesses"][0])
    ax.set_title(
        f"{name + ': ' if name else ''}{replay} miss-ratio curve, {accesses:,} accesses\n{_how(c)}", fontsize="medium"
    )
    fig.tight_layout()
    return _save(fig, path)


def plot_reuse_histogram(curve: pl.DataFrame, path: Path, name: str = "") -> Path:
    """Accesses by LRU stack distance (MiB), binned at host-lru's curve's budgets.

    Bars are densities (percent of all accesses per MiB of distance), so bins
    of unequal width compare fairly; the first bin (up to the smallest
    budget) is drawn lighter. The accesses past the largest budget (first
    touches included) have no width to spread over: their share is written.
    """
    plt = _plt()
    h = reuse_histogram(curve)
    lo = mib(h["lo_pages"].to_numpy().astype(float))[:-1]
    hi = mib(h["hi_pages"].drop_nulls().to_numpy().astype(float))
    share = h["share"].to_numpy() * 100.0
    widths = hi - lo
    density = share[:-1] / np.maximum(widths, 1e-12)
    colour = strategy_style("host-lru").colour
    fig, ax = plt.subplots(figsize=(6.0, 3.9))
    ax.bar(
        lo[:1],
        density[:1],
        width=widths[:1],
        align="edge",
        color=colour,
        alpha=0.3,
        edgecolor="white",
        linewidth=0.5,
        label="up to the smallest budget",
    )
    ax.bar(
        lo[1:],
        density[1:],
        width=widths[1:],
        align="edge",
        color=colour,
        alpha=0.8,
        edgecolor="white",
        linewidth=0.5,
        label="between two budgets of the curve",
    )
    ax.set_xlim(0, hi[-1])
    ax.set_xlabel("LRU stack distance (MiB of pages touched since the last access)")
    ax.set_ylabel("accesses (% per MiB of distance)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    ax.text(
        0.98,
        0.78,
        f"beyond {hi[-1]:,.1f} MiB (first touches too):\n{share[-1]:.1f} % of accesses",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize="small",
    )
    sampled = "" if curve["exact"][0] else ", estimated from samples"
    ax.set_title(
        f"{name + ': ' if name else ''}reuse distances under host-lru{sampled}\n"
        f"bins: the curve's {curve.height} budgets (more with mrc --points)",
        fontsize="medium",
    )
    fig.tight_layout()
    return _save(fig, path)


def plot_mrc(curve: pl.DataFrame, out_dir: str | Path, name: str = "") -> list[Path]:
    """The miss-ratio curve and (host-lru's only) the reuse-distance histogram of
    ``cmmsim mrc`` output into ``out_dir`` (all or nothing, as :func:`cmmsim.plots.plot_all`)."""
    if curve.is_empty():
        raise ResultsError(f"{name or 'the miss curve'}: holds no miss-curve rows")
    if curve["miss_ratio_est"].is_nan().any():
        # NaN: a sample kept none of a guest's pages (cmmsim mrc refuses to write
        # one; the library keeps it); its plot would be empty axes.
        raise ResultsError(
            f"{name or 'the miss curve'}: holds no estimate (NaN): a sample kept none of a "
            "guest's pages; sample at a higher rate"
        )
    out = Path(out_dir)
    with all_or_nothing(out) as paths:
        paths.append(plot_miss_curve(curve, out / "miss_ratio_vs_budget.png", name))
        if _is_lru(curve):
            paths.append(plot_reuse_histogram(curve, out / "reuse_distance_histogram.png", name))
    return paths
