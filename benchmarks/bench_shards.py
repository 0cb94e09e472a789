"""SHARDS (sampled) host-lru curves against the exact one pass: time, error, memory.

``--order state-priority`` measures the estimates of ``cmm`` with state-priority
reclaim instead, against its exact replays at the same budgets (the engine, every
budget in one call): no stack pass exists for it.

In-process, on the seeded synthetic stream (and on ``--trace`` files): 20
budgets from 5 % to 100 % of the footprint; the exact one pass and the
sampled estimate at each rate (8 salts) alternate ``--repeat`` times and the
median time ratio is printed, with the estimate's largest miss-ratio error
against the exact curve, the largest error in standard errors, and how many
budgets the exact value lies within two standard errors of the estimate.

With ``--stream-events N`` (0: skip), a trace of N events is written and two
fresh processes read it: one loads it and runs the exact pass, the other
streams it through the sampler at ``--stream-rate``; their peak RSS (VmHWM)
and wall times are printed side by side.

The figures go to ``benchmarks/results/shards.json`` (``shards-traces.json``
with ``--trace``; ``shards-sp.json`` and ``shards-sp-traces.json`` under
``--order state-priority``), or ``--json PATH``.

    python benchmarks/bench_shards.py [--trace F ...] [--order lru|state-priority]
        [--stream-events 100000000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import page_stream  # noqa: E402
from benchmarks.figures import Column, Table, add_json_argument, emit  # noqa: E402
from cmmsim.replay import scenario as sc  # noqa: E402
from cmmsim.replay.shards import ORDERS, df_sampled_curve, exact_counters, sampled_curve  # noqa: E402
from cmmsim.replay.states import C  # noqa: E402

RATES = (0.1, 0.01, 0.001)

CHILD = r"""
import json, sys, time
import numpy as np
from cmmsim.replay.onepass import run_lru_all
from cmmsim.replay.scenario import load
from cmmsim.replay.shards import sampled_curve_stream
from cmmsim.replay.states import C
mode, path, tiny, rate = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
budgets = [int(x) for x in sys.argv[5].split(",")]
run_lru_all(load([tiny]), [1, 2])  # compile first: a fixed cost, not the trace's
sampled_curve_stream([tiny], [1, 2], 0.5, salts=2)
t0 = time.perf_counter()
if mode == "exact":
    scn = load([path])
    n = int((scn.op <= 1).sum())
    cnt = run_lru_all(scn, budgets).counters.sum(axis=1)
else:
    r = sampled_curve_stream([path], budgets, rate, salts=8)
    n = int(r.accesses.sum())
    cnt = r.estimate.sum(axis=1)
secs = time.perf_counter() - t0
reads, zero = (C["host_reads"], C["zero_fills"]) if mode == "exact" else (0, 2)
miss = ((cnt[:, reads] + cnt[:, zero]) / n).tolist()
hwm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"secs": secs, "rss": hwm, "miss": miss}))
"""


def curve(scn, budgets, order: str) -> np.ndarray:
    cnt = exact_counters(scn, budgets, order).sum(axis=1)
    return (cnt[:, C["host_reads"]] + cnt[:, C["zero_fills"]]) / int((scn.op <= 1).sum())


ERROR_COLUMNS = [
    Column("trace", "trace"),
    Column("events", "events", ","),
    Column("rate", "rate", "g"),
    Column("x_exact", "x exact", ".2f", "x"),
    Column("max_err", "max err", ".4f"),
    Column("max_z", "max z", ".1f"),
    Column("within_2se", "<=2se"),
    Column("min_pages", "smallest sample", ","),
]


def in_process(label: str, scn, repeat: int, table: Table, order: str = "lru") -> None:
    """Add one row per rate to ``table``: time against the exact replay, and the errors."""
    fp = int(np.unique(scn.page[scn.op <= 1]).size)
    budgets = np.unique(np.linspace(max(1, fp // 20), fp, 20).astype(np.int64))
    exact = curve(scn, budgets, order)
    for rate in RATES:
        sampled_curve(scn, budgets, rate, order=order)  # warm up (compile)
        ratios = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            exact_counters(scn, budgets, order)
            t1 = time.perf_counter()
            df = df_sampled_curve(sampled_curve(scn, budgets, rate, order=order))
            ratios.append((time.perf_counter() - t1) / (t1 - t0))
        # Below 1e-9 an error is float rounding (the curve's flat end is often exact).
        err = np.abs(df["miss_ratio_est"].to_numpy() - exact)
        err = np.where(err < 1e-9, 0.0, err)
        se = df["miss_ratio_se"].to_numpy()
        se = np.where(se < 1e-12, 0.0, se)  # salts that all agree, up to rounding
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, err / se, np.where(err > 0, np.inf, 0.0))
        within = int((err <= 2 * se).sum())
        table.add(
            trace=label,
            events=scn.n_events,
            rate=rate,
            x_exact=statistics.median(ratios),
            max_err=float(err.max()),
            max_z=float(z.max()),
            within_2se=f"{within}/{len(budgets)}",
            min_pages=int(df["min_sampled_pages"].min()),
        )


def child(mode: str, path: Path, tiny: Path, rate: float, budgets) -> dict:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), str(tiny), str(rate), ",".join(str(int(b)) for b in budgets)],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def streamed(events: int, pages: int, rate: float) -> tuple[Table, str]:
    """Exact pass and streamed sample in fresh processes: a table and a summary line."""
    with tempfile.TemporaryDirectory() as tmp:
        big, tiny = Path(tmp) / "big.parquet", Path(tmp) / "tiny.parquet"
        gen = Path(__file__).resolve().parent / "bench_stream.py"
        for path, n, p in ((big, events, pages), (tiny, 1000, 64)):
            subprocess.run([sys.executable, str(gen), "--generate", str(path), str(n), str(p)], check=True)
        budgets = np.linspace(pages // 20, pages, 20).astype(np.int64)
        ex = child("exact", big, tiny, 1.0, budgets)
        sh = child("sampled", big, tiny, rate, budgets)
        mib = 1 << 20
        err = np.abs(np.array(sh["miss"]) - np.array(ex["miss"]))
        table = Table(
            f"{events:,} events over {pages:,} pages ({big.stat().st_size / mib:,.0f} MiB on "
            f"disk), 20 budgets; fresh processes, after compiling",
            [Column("run", "run"), Column("seconds", "seconds", ".1f"), Column("peak_rss_mib", "peak RSS MiB", ",.0f")],
        )
        table.add(run="load + exact one pass", seconds=ex["secs"], peak_rss_mib=ex["rss"] / mib)
        table.add(run=f"streamed sample, rate {rate:g}, 8 salts", seconds=sh["secs"], peak_rss_mib=sh["rss"] / mib)
        line = (
            f"sampled / exact: time {sh['secs'] / ex['secs']:.2f}x, memory "
            f"{sh['rss'] / ex['rss']:.2f}x; largest miss-ratio error {err.max():.4f}"
        )
    return table, line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--trace", nargs="*", default=[])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--stream-events", type=int, default=0)
    ap.add_argument("--stream-rate", type=float, default=0.01)
    ap.add_argument("--order", choices=ORDERS, default="lru", help="the replay estimated")
    add_json_argument(ap)
    args = ap.parse_args()
    if args.stream_events and args.order != "lru":
        ap.error("--stream-events measures host-lru's streamed sample only")
    title = "" if args.order == "lru" else "cmm state-priority: SHARDS estimates against its exact replays"
    errors = Table(title, ERROR_COLUMNS)
    if not args.trace:
        stream = sc.from_arrays([("s", page_stream(args.events, args.pages))])
        in_process("synthetic", stream, args.repeat, errors, args.order)
    for path in args.trace:
        in_process(path, sc.load([path]), args.repeat, errors, args.order)
    tables, lines = [errors], []
    if args.stream_events:
        table, line = streamed(args.stream_events, args.pages, args.stream_rate)
        tables.append(table)
        lines.append(line)
    name = "shards-traces" if args.trace else "shards"
    emit(name if args.order == "lru" else name.replace("shards", "shards-sp"), tables, args, lines)


if __name__ == "__main__":
    main()
