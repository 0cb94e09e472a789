"""Plots of replay results (matplotlib, PNG, sized for a paper column pair).

Every figure has a title, axis labels with units and a legend. Strategies
keep one colour, marker and line style across every figure
(:mod:`cmmsim.plot_style`); legends show short parameter labels. What each
figure shows: ``docs/plots.md``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl

from cmmsim.plot_style import (
    PAIR_COLOURS,
    PAIR_ORDER,
    all_or_nothing,
    label_order,
    line_styles,
    mib,
    name_slug,
    short_label,
    short_params,
    slug,
    strategy_style,
)
from cmmsim.reports import (
    df_io_avoided,
    df_state_distribution,
    df_time,
    df_total_io,
    tiers_vary,
    with_labels,
)
from cmmsim.tracer.errors import ResultsError
from cmmsim.tracer.io import atomic_output

#: The I/O-avoided axis stops here (percent) when a line goes below twice it
#: (three times host-lru's I/O): such a point would squash every other line,
#: so the line's points below the floor are drawn on the edge with their value
#: written beside them.
IO_AVOIDED_FLOOR_PCT = -100.0
#: States left out of the stacked state plots: zero pages the host holds no
#: frame or copy for take no memory and would fill most of the area: unused
#: ones (Uz), and stable ones (Sz), which is how host-lru, with no notion of
#: unused, sees untouched memory (docs/model.md). Discarded volatile pages
#: (Vz) stay: what a hinting guest gave up is the point of those plots.
STATES_LEFT_OUT = ("Uz", "Sz")

# Kept for callers of the old names.
_mib, _slug = mib, slug


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    finally:
        _plt().close(fig)
    return path


def _panels(n: int, width_in: float = 5.2, height_in: float = 3.8):
    """A figure with ``n`` panels, at most three a row; one panel gets a figure its size."""
    plt = _plt()
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width_in * cols, height_in * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _short_labels(frame: pl.DataFrame) -> dict[str, str]:
    """Report label -> short legend label (strategy, then its non-default parameters,
    then its host swap tier when the rows mix tier sizes, as their labels do)."""
    cols = ["label", "strategy", "params"] + (["tier_pages"] if tiers_vary(frame) else [])
    names = {}
    for row in with_labels(frame).select(cols).unique().iter_rows(named=True):
        tier = row.get("tier_pages") or 0
        names[row["label"]] = short_label(row["strategy"], row["params"]) + (f" tier {tier:,} p" if tier else "")
    return names


def _legend_below(fig, axes, names: dict[str, str] | None = None) -> float:
    """One legend for the figure, under the panels, in the panels' label order;
    returns the figure fraction it takes at the bottom."""
    handles: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    order = label_order(handles) if names is not None else list(handles)
    shown = [(names or {}).get(lab, lab) for lab in order]
    fig.legend(
        [handles[lab] for lab in order],
        shown,
        loc="lower center",
        ncol=min(4, len(shown)),
        bbox_to_anchor=(0.5, 0.0),
        frameon=False,
    )
    # Room under the panels for the legend's rows (inches -> figure fraction).
    legend_rows = math.ceil(len(shown) / min(4, max(1, len(shown))))
    return 0.26 * legend_rows / fig.get_figheight() + 0.02


def _clip_below(ax, x, y, floor: float, colour: str) -> None:
    """Points under ``floor`` drawn on it as a down-pointing marker, value written beside."""
    low = y < floor
    if not low.any():
        return
    ax.plot(
        x[low],
        np.full(low.sum(), floor),
        linestyle="none",
        marker="v",
        color=colour,
        markersize=7,
        clip_on=False,
        zorder=5,
    )
    for xi, yi in zip(x[low], y[low], strict=True):
        ax.annotate(
            f"{yi:,.0f} %",
            (xi, floor),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize="x-small",
            color=colour,
            zorder=6,
        )


#: A figure gets a log axis when its largest value is this many times the
#: median of the lines' largest values (one line would squash the rest).
DWARF_RATIO = 8.0


def _dwarfed(df: pl.DataFrame, value: str) -> bool:
    """Whether one line's values dwarf the others' (see :data:`DWARF_RATIO`)."""
    peaks = df.group_by("trace_set", "label").agg(pl.col(value).max())[value].drop_nulls()
    if peaks.len() < 2:
        return False
    median = float(peaks.median())
    return median > 0 and float(peaks.max()) > DWARF_RATIO * median


def _lines_by_set(
    df: pl.DataFrame, value: str, ylabel: str, title: str, path: Path, names: dict[str, str], floor: float | None = None
) -> Path:
    """One panel per trace set, one line per label; ``floor``: clip below it (noted)."""
    sets = sorted(df["trace_set"].unique().to_list())
    fig, axes = _panels(len(sets))
    styles = line_styles(df["label"].unique().to_list())
    # Lines drawn first are wider: a line hidden under an equal one shows as its border.
    for i, label in enumerate(styles):
        styles[label]["linewidth"] = 2.8 - 1.6 * i / max(1, len(styles) - 1)
    clipped = False
    log = floor is None and _dwarfed(df, value)
    for ax, ts in zip(axes, sets, strict=True):
        part = df.filter(pl.col("trace_set") == ts)
        for label in label_order(part["label"].unique().to_list()):
            line = part.filter(pl.col("label") == label).sort("budget_pages")
            x = mib(line["budget_pages"].to_numpy())
            y = line[value].to_numpy().astype(float)
            kw = styles[label]
            if floor is not None and (y < 2 * floor).any():
                clipped = True
                ax.plot(x, np.maximum(y, floor), label=label, **kw)
                _clip_below(ax, x, y, floor, kw["color"])
            else:
                ax.plot(x, y, label=label, **kw)
        if floor is not None and clipped:
            ax.set_ylim(bottom=floor - 5)
        if log:
            positive = df.filter(pl.col(value) > 0)[value]
            ax.set_yscale("symlog", linthresh=float(positive.min()) if len(positive) else 1.0)
        ax.set_title(ts)
        ax.set_xlabel("host memory budget (MiB)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    if clipped:
        title += f"\n(points below {floor:,.0f} % drawn on the axis edge, value written beside)"
    elif log:
        title += "\n(log scale: one line's values are many times the others')"
    bottom = _legend_below(fig, axes, names)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, bottom, 1, 0.97 if not clipped else 0.94))
    return _save(fig, path)


def plot_total_io(results: pl.DataFrame, path: Path) -> Path:
    """Total I/O vs host budget: one panel per trace set, one line per strategy."""
    return _lines_by_set(
        df_total_io(results),
        "total_io",
        "total I/O (page reads + writes)",
        "Paging I/O by host memory budget",
        path,
        _short_labels(results),
    )


def plot_stall(results: pl.DataFrame, path: Path) -> Path | None:
    """Stall time (seconds the guests wait) vs host budget, beside the I/O plot;
    None for rows without prices."""
    if "stall_ns" not in results.columns:
        return None
    df = df_time(results).with_columns((pl.col("stall_ns") * 1e-9).alias("stall_s"))
    profile = df["cost_profile"][0] if not df.is_empty() else "?"
    return _lines_by_set(
        df,
        "stall_s",
        "guest stall time (s)",
        f"Time the guests wait by host memory budget ({profile} costs)",
        path,
        _short_labels(results),
    )


def plot_io_avoided(results: pl.DataFrame, path: Path) -> Path | None:
    """I/O avoided against host-lru (percent) vs budget; points below
    :data:`IO_AVOIDED_FLOOR_PCT` are clipped to it with their value written."""
    df = df_io_avoided(results).filter(pl.col("label") != "host-lru")
    df = df.filter(pl.col("io_avoided_pct").is_not_null())
    if df.is_empty():
        return None
    return _lines_by_set(
        df,
        "io_avoided_pct",
        "I/O avoided vs host-lru (%)",
        "I/O avoided against host paging alone (higher is better)",
        path,
        _short_labels(results),
        floor=IO_AVOIDED_FLOOR_PCT,
    )


def plot_state_distribution(states: pl.DataFrame, out_dir: Path) -> list[Path]:
    """Stacked area of pages per (guest state, host state) over time.

    One figure per trace set and budget nearest the middle of the budgets
    sampled, one panel per strategy (the seed's "state distribution" charts).
    :data:`STATES_LEFT_OUT` (unused pages with no host frame) are not
    stacked, so the states that take memory fill the panel; the figure says
    how much was left out.
    """
    dist = df_state_distribution(states)
    names = _short_labels(states)
    paths = []
    for ts in sorted(dist["trace_set"].unique().to_list()):
        part = dist.filter(pl.col("trace_set") == ts)
        budgets = sorted(part["budget_pages"].unique().to_list())
        budget = budgets[len(budgets) // 2]
        part = part.filter(pl.col("budget_pages") == budget)
        labels = label_order(part["label"].unique().to_list())
        fig, axes = _panels(len(labels))
        left_out = {}
        for ax, label in zip(axes, labels, strict=True):
            wide = (
                part.filter(pl.col("label") == label)
                .pivot(on="state", index="t_ns", values="pages", aggregate_function="sum")
                .sort("t_ns")
                .fill_null(0)
            )
            t0 = wide["t_ns"][0]
            t = (wide["t_ns"].to_numpy() - t0) / 1e9
            cols = [c for c in PAIR_ORDER if c in wide.columns and c not in STATES_LEFT_OUT]
            for c in STATES_LEFT_OUT:
                if c in wide.columns:
                    left_out[c] = max(left_out.get(c, 0.0), float(mib(wide[c].to_numpy()).mean()))
            ax.stackplot(
                t, *[mib(wide[c].to_numpy()) for c in cols], labels=cols, colors=[PAIR_COLOURS[c] for c in cols]
            )
            ax.set_title(names.get(label, label), color=strategy_style(label).colour)
            ax.set_xlabel("time (s)")
            ax.set_ylabel("guest memory (MiB)")
            ax.margins(x=0)
            ax.set_ylim(bottom=0)
        handles: dict[str, object] = {}
        for ax in axes:
            for h, n in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(n, h)
        order = [c for c in PAIR_ORDER if c in handles]
        # States present but empty in every panel get no legend entry.
        shown = set(part.filter(pl.col("pages") > 0)["state"].unique().to_list())
        order = [c for c in order if c in shown] or order
        fig.legend(
            [handles[c] for c in order],
            order,
            loc="lower center",
            ncol=8,
            bbox_to_anchor=(0.5, 0.0),
            frameon=False,
            title="guest state (S/U/V/P) x host state (r/p/z)",
        )
        note = (
            (
                "zero pages with no host frame not drawn (mean MiB, largest panel): "
                + ", ".join(f"{c} {v:,.0f}" for c, v in left_out.items())
            )
            if left_out
            else ""
        )
        fig.suptitle(
            f"{ts}: page states over time at a {mib(budget):,.0f} MiB host budget" + (f"\n{note}" if note else ""),
            fontsize="medium",
        )
        fig.tight_layout(rect=(0, 0.55 / fig.get_figheight() + 0.02, 1, 0.95))
        paths.append(_save(fig, out_dir / f"states_{name_slug(ts)}.png"))
    return paths


#: Balloon series lines: column, legend, style; the target is drawn last and on top.
BALLOON_LINES = (
    ("size_pages", "actual size (memory - balloon)", {"color": "#4d4d4d", "linewidth": 2.6, "alpha": 0.55}),
    ("in_use_pages", "in use", {"color": "#009E73", "linewidth": 1.2, "linestyle": "-."}),
    ("estimate_pages", "estimate", {"color": "#0072B2", "linewidth": 1.0, "linestyle": ":"}),
    ("target_pages", "target", {"color": "#D55E00", "linewidth": 1.3, "linestyle": (0, (5, 2))}),
)


def _balloon_ylim(one: pl.DataFrame) -> tuple[float, float | None, list[str]]:
    """Top of the y axis (MiB) and the columns whose first period lies above it.

    The first period's estimate comes before any sample (it can be the whole
    guest or more): it would flatten the rest, so the axis ends at the
    highest value after the first period, unless that leaves nothing.
    """
    cols = [c for c, _, _ in BALLOON_LINES if c in one.columns]
    rest = one.slice(1) if one.height > 1 else one
    top_rest = max(float(mib(rest[c].max() or 0)) for c in cols)
    top_all = max(float(mib(one[c].max() or 0)) for c in cols)
    top = max(top_rest, float(mib(one["guest_pages"][0])) * 0.05) * 1.2
    over = [c for c in cols if float(mib(one[c][0] or 0)) > top]
    return 0.0, (top if top_all > top else None), over


def plot_balloon(series: pl.DataFrame, out_dir: Path) -> list[Path]:
    """Balloon target vs estimate vs actual size over time, per guest.

    One figure per trace set, strategy and parameters, at the budget nearest
    the middle of those replayed; one panel per guest: the estimate, the
    target (drawn over the others), the guest's actual size (memory -
    balloon, a wide pale line) and its in-use pages. A first-period estimate
    above the rest is left off the axis and noted in the panel.
    """
    paths = []
    keys = series.select("trace_set", "strategy", "params").unique().sort(["trace_set", "strategy", "params"])
    seen: dict[tuple[str, str], int] = {}
    for ts, strat, params in keys.iter_rows():
        n = seen[(ts, strat)] = seen.get((ts, strat), -1) + 1
        part = series.filter((pl.col("trace_set") == ts) & (pl.col("strategy") == strat) & (pl.col("params") == params))
        budgets = sorted(part["budget_pages"].unique().to_list())
        budget = budgets[len(budgets) // 2]
        part = part.filter(pl.col("budget_pages") == budget).sort("t_ns")
        guests = part.select("guest", "guest_name").unique().sort("guest").rows()
        fig, axes = _panels(len(guests), 4.6, 3.2)
        t0 = part["t_ns"].min()
        for ax, (g, gname) in zip(axes, guests, strict=True):
            one = part.filter(pl.col("guest") == g)
            t = (one["t_ns"].to_numpy() - t0) / 1e9
            for col, label, style in BALLOON_LINES:
                if col in one.columns:
                    ax.step(t, mib(one[col].to_numpy()), where="pre", label=label, **style)
            lo, hi, over = _balloon_ylim(one)
            if hi is not None:
                ax.set_ylim(lo, hi)
                first = ", ".join(f"{c.removesuffix('_pages')} {mib(one[c][0]):,.0f} MiB" for c in over)
                if first:
                    ax.text(
                        0.01,
                        0.98,
                        f"off scale at t = {t[0]:g} s: {first}",
                        transform=ax.transAxes,
                        va="top",
                        fontsize="x-small",
                    )
            else:
                ax.set_ylim(bottom=0)
            ax.set_title(f"{gname} ({mib(one['guest_pages'][0]):,.0f} MiB)", fontsize="medium")
            ax.set_xlabel("time (s)")
            ax.set_ylabel("MiB")
            ax.margins(x=0)
            ax.grid(alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        # One panel: a two-column legend, no wider than the panel.
        ncol = 2 if len(guests) == 1 else 4
        fig.legend(
            handles, labels, loc="lower center", ncol=ncol, bbox_to_anchor=(0.5, 0.0), frameon=False, fontsize="small"
        )
        p = short_params(strat, params)
        fig.suptitle(
            f"{ts}, {strat}"
            + ("" if p == "defaults" else f" ({p})")
            + f": balloon at a {mib(budget):,.0f} MiB host budget",
            fontsize="medium",
        )
        fig.tight_layout(rect=(0, (0.45 if ncol == 2 else 0.3) / fig.get_figheight() + 0.01, 1, 0.97))
        suffix = f"_{n}" if n else ""  # further parameter sets of the same strategy
        paths.append(_save(fig, out_dir / f"balloon_{name_slug(ts)}_{slug(strat)}{suffix}.png"))
    return paths


#: What each figure shows, by file name prefix (docs/plots.md says more).
DESCRIPTIONS = {
    "total_io_vs_budget": "page reads + writes by host budget, a line per strategy",
    "stall_vs_budget": "seconds the guests wait on memory management, by host budget",
    "io_avoided_vs_budget": "percent of host-lru's I/O each strategy avoids (higher is better)",
    "states_": "pages per guest x host state over time, a panel per strategy",
    "balloon_": "balloon estimate, target and the guest's size over time, a panel per guest",
    "miss_ratio_vs_budget": "host-lru's miss ratio by host budget (cmmsim mrc output)",
    "reuse_distance_histogram": "accesses by LRU stack distance (cmmsim mrc output)",
}


def describe(path: str | Path) -> str:
    """One line on what the figure at ``path`` shows ("" for a name not made here)."""
    name = Path(path).name
    return next((text for prefix, text in DESCRIPTIONS.items() if name.startswith(prefix)), "")


def plot_all(
    results: pl.DataFrame, states: pl.DataFrame | None, out_dir: str | Path, balloon: pl.DataFrame | None = None
) -> list[Path]:
    """Every plot the data allows, into ``out_dir``; returns the files written.

    All or nothing: when a plot cannot be written (a full disk), the ones
    written before it are removed, and ``out_dir`` too if this call made it.
    """
    if results.filter(pl.col("guest").is_null()).is_empty():
        raise ResultsError("the results hold no host rows (guest null) to plot")
    out = Path(out_dir)
    with all_or_nothing(out) as paths:
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
    return paths
