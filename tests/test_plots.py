"""Plots: every plot writes a PNG for its inputs, styles are fixed per strategy,
``cmmsim plot`` reads ``cmmsim mrc`` output, and empty inputs are refused in one line.

Frames are made by hand (no replay, no numba): the plots only read columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cmmsim.cli import app
from cmmsim.plot_mrc import is_miss_curve, plot_miss_curve, plot_reuse_histogram, reuse_histogram
from cmmsim.plot_style import line_styles, short_label, short_params, strategy_style
from cmmsim.plots import (
    IO_AVOIDED_FLOOR_PCT,
    plot_all,
    plot_balloon,
    plot_io_avoided,
    plot_stall,
    plot_state_distribution,
    plot_total_io,
)
from cmmsim.replay.strategies import names

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


def results_frame(
    sets=("one",), strategies=("host-lru", "cmm", "balloon", "opt"), budgets=(100, 200, 400), guests=1, worse=None
) -> pl.DataFrame:
    """Host and guest rows as a replay writes them (only the columns the plots read).

    ``worse``: a strategy whose I/O is 20 times host-lru's (an outlier);
    ``cmm`` and ``balloon`` get equal numbers (lines that coincide).
    """
    rows = []
    for ts in sets:
        for s in strategies:
            params = json.dumps({"period_ns": 50_000_000}) if s == "balloon" else "{}"
            for b in budgets:
                io = {"host-lru": 1000, "cmm": 600, "balloon": 600, "opt": 300}.get(s, 800)
                io = io * 400 // b * (20 if s == worse else 1)
                for g in [None, *range(guests)]:
                    share = io if g is None else io // guests
                    rows.append(
                        {
                            "scenario": ts,
                            "trace_set": ts,
                            "strategy": s,
                            "params": params,
                            "budget_pages": b,
                            "guest": g,
                            "guest_name": None if g is None else f"g{g}",
                            "accesses": 10_000,
                            "host_reads": share // 2,
                            "host_writes": share // 2,
                            "zero_fills": 0,
                            "discard_faults": 0,
                            "guest_reads": 0,
                            "guest_writes": 0,
                            "total_io": share,
                            "stall_ns": float(share) * 1e5,
                            "host_cpu_ns": 1.0,
                            "guest_cpu_ns": 1.0,
                            "overhead_pct": 0.1,
                            "disk_busy_ns": 1.0,
                            "cost_profile": "kvm-2025",
                        }
                    )
    return pl.DataFrame(rows, schema_overrides={"guest": pl.Int64, "guest_name": pl.String})


def states_frame(strategies=("host-lru", "cmm")) -> pl.DataFrame:
    rows = []
    for s in strategies:
        for b in (100, 200):
            for t in range(5):
                for state, pages in (("Sr", 50 + t), ("Ur", 10), ("Uz", 5000), ("Vz", 20)):
                    rows.append(
                        {
                            "scenario": "one",
                            "trace_set": "one",
                            "strategy": s,
                            "params": "{}",
                            "budget_pages": b,
                            "t_ns": t * 10**9,
                            "guest": 0,
                            "state": state,
                            "pages": pages,
                        }
                    )
    return pl.DataFrame(rows)


def series_frame(guests=1) -> pl.DataFrame:
    """A balloon series whose first-period estimate dwarfs the rest (the t=0 spike)."""
    rows = []
    for g in range(guests):
        for p in range(20):
            rows.append(
                {
                    "scenario": "one",
                    "trace_set": "one",
                    "strategy": "balloon",
                    "params": json.dumps({"period_ns": 50_000_000}),
                    "budget_pages": 200,
                    "period": p,
                    "t_ns": p * 50_000_000,
                    "guest": g,
                    "guest_name": f"g{g}",
                    "guest_pages": 1 << 16,
                    "estimate_pages": (1 << 20) if p == 0 else 3000 + 10 * p,
                    "target_pages": 3200,
                    "balloon_pages": (1 << 16) - 3200,
                    "in_use_pages": 2800,
                    "resident_pages": 2800,
                    "size_pages": 3200,
                }
            )
    return pl.DataFrame(rows)


def curve_frame(exact: bool, n: int = 12) -> pl.DataFrame:
    """``cmmsim mrc`` output: a falling miss ratio, with standard errors when sampled."""
    b = np.linspace(100, 1200, n).astype(np.int64)
    ratio = 0.05 + 0.6 * np.exp(-b / 300)
    se = np.zeros(n) if exact else ratio * 0.05
    return pl.DataFrame(
        {
            "budget_pages": b,
            "accesses": np.full(n, 50_000),
            "miss_ratio_est": ratio,
            "miss_ratio_se": se,
            "rate": np.full(n, 1.0 if exact else 0.1),
            "salts": np.full(n, 1 if exact else 8),
            "footprint_pages": np.full(n, 1100),
            "exact": np.full(n, exact),
        }
    )


# -- styles -----------------------------------------------------------------------------------------
def test_style_is_a_pure_function_of_the_strategy_name():
    for name in names():
        assert strategy_style(name) == strategy_style(name)
        assert strategy_style(f"{name}[x=1]") == strategy_style(name)
    styles = [strategy_style(n) for n in names()]
    assert len({s.colour for s in styles}) == len(styles)
    assert len({s.marker for s in styles}) == len(styles)
    # Not registered: stable, and grey (not one of the registered colours).
    assert strategy_style("not-a-strategy") == strategy_style("not-a-strategy")
    assert strategy_style("not-a-strategy").colour not in {s.colour for s in styles}


def test_colours_stable_across_plots_whatever_the_strategies_shown():
    """host-lru keeps its colour whether or not a strategy before it is in the figure."""
    few = line_styles(["host-lru", "opt"])
    many = line_styles(["balloon", "cmm", "host-lru", "opt", "static"])
    assert few["host-lru"]["color"] == many["host-lru"]["color"]
    assert few["opt"]["marker"] == many["opt"]["marker"]
    # Two parameter sets of one strategy: same colour, different line styles.
    two = line_styles(["cmm", "cmm[reclaim_order=lru]"])
    assert two["cmm"]["color"] == two["cmm[reclaim_order=lru]"]["color"]
    assert two["cmm"]["linestyle"] != two["cmm[reclaim_order=lru]"]["linestyle"]


def test_short_parameter_labels():
    params = json.dumps({"period_ns": 50_000_000})
    assert short_params("balloon", params) == "period 50 ms"
    assert short_label("balloon", params) == "balloon (period 50 ms)"
    assert short_label("cmm", "{}") == "cmm"
    long = json.dumps({f"knob_{i}": i for i in range(30)})
    assert len(short_params("cmm", long)) <= 42


# -- every plot writes a PNG -----------------------------------------------------------------------
@pytest.mark.parametrize("guests", [1, 3])
def test_every_plot_writes_a_png(tmp_path, guests):
    res = results_frame(sets=("one", "two"), guests=guests, worse="opt")
    paths = [
        plot_total_io(res, tmp_path / "io.png"),
        plot_stall(res, tmp_path / "stall.png"),
        plot_io_avoided(res, tmp_path / "avoided.png"),
        *plot_state_distribution(states_frame(), tmp_path),
        *plot_balloon(series_frame(guests), tmp_path),
    ]
    assert len(paths) == 5
    assert all(is_png(p) for p in paths), paths


def test_one_guest_balloon_figure_is_one_panel_wide(tmp_path):
    """A single guest's figure is about one panel wide (no empty canvas beside it)."""
    from PIL import Image

    (one,) = plot_balloon(series_frame(1), tmp_path / "a")
    (three,) = plot_balloon(series_frame(3), tmp_path / "b")
    w1, w3 = Image.open(one).size[0], Image.open(three).size[0]
    assert w1 < 0.5 * w3, (w1, w3)


def test_outlier_is_clipped_with_its_value_written(tmp_path, monkeypatch):
    """A strategy doing 6 times host-lru's I/O (-500 %) is drawn at the floor, value written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = results_frame(worse="opt")
    captured = {}
    real_save = plt.Figure.savefig

    def spy(fig, *a, **k):
        captured["ylim"] = fig.axes[0].get_ylim()
        captured["texts"] = [t.get_text() for t in fig.axes[0].texts]
        return real_save(fig, *a, **k)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    plot_io_avoided(res, tmp_path / "avoided.png")
    assert captured["ylim"][0] >= IO_AVOIDED_FLOOR_PCT - 10
    assert captured["texts"] == ["-500 %"] * 3, captured["texts"]


def test_plot_all_empty_host_rows_refused(tmp_path):
    from cmmsim.tracer.errors import ResultsError

    res = results_frame().filter(pl.col("guest").is_not_null())
    with pytest.raises(ResultsError, match="no host rows"):
        plot_all(res, None, tmp_path / "p")
    assert not (tmp_path / "p").exists()


# -- miss-ratio curves -------------------------------------------------------------------------------
def test_reuse_histogram_adds_up_to_the_accesses():
    curve = curve_frame(exact=True)
    h = reuse_histogram(curve)
    assert h.height == curve.height + 1
    assert h["accesses"].sum() == pytest.approx(50_000)
    # The last bin (beyond the largest budget) holds the misses there.
    assert h["accesses"][-1] == pytest.approx(curve["miss_ratio_est"][-1] * 50_000)


@pytest.mark.parametrize("exact", [True, False])
def test_miss_curve_plots_write_pngs(tmp_path, exact):
    curve = curve_frame(exact)
    assert is_miss_curve(curve)
    assert is_png(plot_miss_curve(curve, tmp_path / "c.png", "t"))
    assert is_png(plot_reuse_histogram(curve, tmp_path / "h.png", "t"))


def test_cli_plot_recognizes_mrc_output(tmp_path):
    curve = tmp_path / "curve.parquet"
    curve_frame(exact=False).write_parquet(curve)
    r = runner.invoke(app, ["plot", str(curve), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert pngs == ["miss_ratio_vs_budget.png", "reuse_distance_histogram.png"]
    assert all(is_png(tmp_path / "out" / p) for p in pngs)


def test_a_state_priority_curve_plots_without_the_lru_histogram(tmp_path):
    from cmmsim.tracer.errors import ResultsError

    curve = curve_frame(exact=False).with_columns(order=pl.lit("state-priority"))
    path = tmp_path / "curve.parquet"
    curve.write_parquet(path)
    r = runner.invoke(app, ["plot", str(path), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["miss_ratio_vs_budget.png"]
    with pytest.raises(ResultsError, match="host-lru's curve, not cmm state-priority's"):
        reuse_histogram(curve)


@pytest.mark.parametrize("extra", [[], ["--states", "x.parquet"]])
def test_cli_plot_refuses_zero_row_curve_or_extras_in_one_line(tmp_path, extra):
    curve = tmp_path / "curve.parquet"
    (curve_frame(exact=True).head(0) if not extra else curve_frame(exact=True)).write_parquet(curve)
    r = runner.invoke(app, ["plot", str(curve), "-o", str(tmp_path / "out"), *extra])
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("cmmsim: error: "), r.stderr
    assert "curve.parquet" in r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_plot_on_results_writes_every_plot(tmp_path):
    res = tmp_path / "results.parquet"
    results_frame(sets=("one",), guests=1).write_parquet(res)
    series = tmp_path / "series.parquet"
    series_frame(1).write_parquet(series)
    r = runner.invoke(app, ["plot", str(res), "--balloon", str(series), "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    pngs = sorted(p.name for p in (tmp_path / "o").glob("*.png"))
    assert pngs == [
        "balloon_one_balloon.png",
        "io_avoided_vs_budget.png",
        "stall_vs_budget.png",
        "total_io_vs_budget.png",
    ], pngs
