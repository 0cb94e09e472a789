"""Plots of replay results (matplotlib, PNG, sized for a paper column pair).

Every figure has a title, axis labels with units and a legend.
"""

from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path

import polars as pl

from cmmsim.reports import df_io_avoided, df_state_distribution, df_time, df_total_io
from cmmsim.tracer.errors import ResultsError
from cmmsim.tracer.io import atomic_output
from cmmsim.tracer.schema import PAGE_SIZE_BYTES

PAIR_ORDER = ["Sr", "Sp", "Sz", "Ur", "Uz", "Vr", "Vz", "Pr"]
PAIR_COLOURS = {"Sr": "#1f4e79", "Sp": "#5b9bd5", "Sz": "#bdd7ee", "Ur": "#7f6000",
                "Uz": "#ffd966", "Vr": "#375623", "Vz": "#a9d18e", "Pr": "#c00000"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mib(pages) -> float:
    return pages * PAGE_SIZE_BYTES / (1 << 20)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _save(fig, path: Path) -> Path:
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    finally:
        _plt().close(fig)
    return path


def _panels(n: int):
    plt = _plt()
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _lines_by_set(df: pl.DataFrame, value: str, ylabel: str, title: str, path: Path) -> Path:
    sets = sorted(df["trace_set"].unique().to_list())
    fig, axes = _panels(len(sets))
    for ax, ts in zip(axes, sets, strict=True):
        part = df.filter(pl.col("trace_set") == ts)
        for label in sorted(part["label"].unique().to_list()):
            line = part.filter(pl.col("label") == label).sort("budget_pages")
            ax.plot(_mib(line["budget_pages"].to_numpy()), line[value].to_numpy(),
                    marker="o", markersize=3, label=label)
        ax.set_title(ts)
        ax.set_xlabel("host memory budget (MiB)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)),
               bbox_to_anchor=(0.5, -0.02), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return _save(fig, path)


def plot_total_io(results: pl.DataFrame, path: Path) -> Path:
    """Total I/O vs host budget: one panel per trace set, one line per strategy."""
    return _lines_by_set(df_total_io(results), "total_io", "total I/O (page reads + writes)",
                         "Paging I/O by host memory budget", path)


def plot_stall(results: pl.DataFrame, path: Path) -> Path | None:
    """Stall time (seconds the guests wait) vs host budget, beside the I/O plot;
    None for rows without prices."""
    if "stall_ns" not in results.columns:
        return None
    df = df_time(results).with_columns((pl.col("stall_ns") * 1e-9).alias("stall_s"))
    profile = df["cost_profile"][0] if not df.is_empty() else "?"
    return _lines_by_set(df, "stall_s", "guest stall time (s)",
                         f"Time the guests wait by host memory budget ({profile} costs)", path)


def plot_io_avoided(results: pl.DataFrame, path: Path) -> Path | None:
    """I/O avoided against host-lru (percent) vs budget."""
    df = df_io_avoided(results).filter(pl.col("label") != "host-lru")
    df = df.filter(pl.col("io_avoided_pct").is_not_null())
    if df.is_empty():
        return None
    return _lines_by_set(df, "io_avoided_pct", "I/O avoided vs host-lru (%)",
                         "I/O avoided against host paging alone (higher is better)", path)


def plot_state_distribution(states: pl.DataFrame, out_dir: Path) -> list[Path]:
    """Stacked area of pages per (guest state, host state) over time.

    One figure per trace set and budget nearest the middle of the budgets
    sampled, one panel per strategy (the seed's "state distribution" charts).
    """
    dist = df_state_distribution(states)
    paths = []
    for ts in sorted(dist["trace_set"].unique().to_list()):
        part = dist.filter(pl.col("trace_set") == ts)
        budgets = sorted(part["budget_pages"].unique().to_list())
        budget = budgets[len(budgets) // 2]
        part = part.filter(pl.col("budget_pages") == budget)
        labels = sorted(part["label"].unique().to_list())
        fig, axes = _panels(len(labels))
        for ax, label in zip(axes, labels, strict=True):
            wide = (part.filter(pl.col("label") == label)
                    .pivot(on="state", index="t_ns", values="pages", aggregate_function="sum")
                    .sort("t_ns").fill_null(0))
            t0 = wide["t_ns"][0]
            t = (wide["t_ns"].to_numpy() - t0) / 1e9
            cols = [c for c in PAIR_ORDER if c in wide.columns]
            ax.stackplot(t, *[_mib(wide[c].to_numpy()) for c in cols], labels=cols,
                         colors=[PAIR_COLOURS[c] for c in cols])
            ax.set_title(label)
            ax.set_xlabel("time (s)")
            ax.set_ylabel("guest memory (MiB)")
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=8, bbox_to_anchor=(0.5, -0.02),
                   frameon=False, title="guest state (S/U/V/P) x host state (r/p/z)")
        fig.suptitle(f"{ts}: page states over time at a {_mib(budget):,.0f} MiB host budget")
        fig.tight_layout(rect=(0, 0.08, 1, 0.96))
        paths.append(_save(fig, out_dir / f"states_{_slug(ts)}.png"))
    return paths


def plot_balloon(series: pl.DataFrame, out_dir: Path) -> list[Path]:
    """Balloon target vs estimate vs actual size over time, per guest.

    One figure per trace set, strategy and parameters, at the budget nearest
    the middle of those replayed; one panel per guest: the estimate, the
    target, the guest's actual size (memory - balloon) and its in-use pages.
    """
    paths = []
    keys = series.select("trace_set", "strategy", "params").unique().sort(["trace_set", "strategy", "params"])
    seen: dict[tuple[str, str], int] = {}
    for ts, strat, params in keys.iter_rows():
        n = seen[(ts, strat)] = seen.get((ts, strat), -1) + 1
        part = series.filter((pl.col("trace_set") == ts) & (pl.col("strategy") == strat)
                             & (pl.col("params") == params))
        budgets = sorted(part["budget_pages"].unique().to_list())
        budget = budgets[len(budgets) // 2]
        part = part.filter(pl.col("budget_pages") == budget).sort("t_ns")
        guests = part.select("guest", "guest_name").unique().sort("guest").rows()
        fig, axes = _panels(len(guests))
        t0 = part["t_ns"].min()
        for ax, (g, gname) in zip(axes, guests, strict=True):
            one = part.filter(pl.col("guest") == g)
            t = (one["t_ns"].to_numpy() - t0) / 1e9
            for col, label, style in (("estimate_pages", "estimate", ":"),
                                      ("target_pages", "target", "--"),
                                      ("size_pages", "actual size (memory - balloon)", "-"),
                                      ("in_use_pages", "in use", "-.")):
                ax.step(t, _mib(one[col].to_numpy()), where="pre", linestyle=style, label=label)
            ax.set_title(f"{gname} ({_mib(one['guest_pages'][0]):,.0f} MiB)")
            ax.set_xlabel("time (s)")
            ax.set_ylabel("MiB")
        axes[0].legend(loc="best", fontsize="small")
        fig.suptitle(f"{ts}, {strat}: balloon target vs estimate vs actual, "
                     f"{_mib(budget):,.0f} MiB host budget\n{params}", fontsize="medium")
        fig.tight_layout()
        suffix = f"_{n}" if n else ""  # further parameter sets of the same strategy
        paths.append(_save(fig, out_dir / f"balloon_{_slug(ts)}_{_slug(strat)}{suffix}.png"))
    return paths


def plot_all(results: pl.DataFrame, states: pl.DataFrame | None, out_dir: str | Path,
             balloon: pl.DataFrame | None = None) -> list[Path]:
    """Every plot the data allows, into ``out_dir``; returns the files written.

    All or nothing: when a plot cannot be written (a full disk), the ones
    written before it are removed, and ``out_dir`` too if this call made it.
    """
    if results.filter(pl.col("guest").is_null()).is_empty():
        raise ResultsError("the results hold no host rows (guest null) to plot")
    out = Path(out_dir)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    try:
        paths.append(plot_total_io(results, out / "total_io_vs_budget.png"))
        stall = plot_stall(results, out / "stall_vs_budget.png")
        if stall:
            paths.append(stall)
        avoided = plot_io_avoided(results, out / "io_avoided_vs_budget.png")
        if avoided:
            paths.append(avoided)
        if states is not None and not states.is_empty():
            paths.extend(plot_state_distribution(states, out))
        if balloon is not None and not balloon.is_empty():
            paths.extend(plot_balloon(balloon, out))
    except BaseException:
        for p in paths:
            p.unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    return paths
