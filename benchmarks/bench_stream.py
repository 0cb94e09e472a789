"""Streamed replay of a trace larger than memory: peak memory and speed vs in-memory replay.

Writes a seeded synthetic trace of ``--events`` events (default 200 M) batch
by batch, then replays it with ``replay_stream`` in a fresh process and
reads that process's peak RSS (``resource.getrusage``). In the same run, as
baselines: a process that only imports and compiles the kernels (the fixed
cost), and an in-memory replay of a ``--prefix``-event prefix (default
20 M) with both paths, so the speed ratio streamed/in-memory is measured
side by side. The figures go to ``benchmarks/results/stream.json`` (or
``--json PATH``).

    python benchmarks/bench_stream.py [--events N] [--pages N] [--keep DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import page_stream  # noqa: E402
from benchmarks.figures import Column, Table, add_json_argument, emit  # noqa: E402
from cmmsim.tracer.io import TraceWriter  # noqa: E402
from cmmsim.tracer.schema import TraceMeta  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import numpy as np
from cmmsim.replay.api import replay_full
from cmmsim.replay.scenario import load
from cmmsim.replay.stream import replay_stream
mode, path, budget, strategy = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
# Compile on a tiny scenario first: compile time and memory are the fixed cost.
tiny = sys.argv[5]
replay_stream([tiny], strategy, [1], batch_rows=4)
replay_full(load([tiny]), strategy, [1])
t0 = time.perf_counter()
if mode == "stream":
    df = replay_stream([path], strategy, [budget]).results
elif mode == "memory":
    df = replay_full(load([path]), strategy, [budget]).results
else:
    df = None
secs = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
# ru_maxrss also counts the parent's RSS at fork (Linux keeps it across exec);
# VmHWM is this process's own peak.
hwm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
rss = min(rss, hwm)
events = 0 if df is None else int(df.filter(df["guest"].is_null())["events"][0])
print(json.dumps({"secs": secs, "rss": rss, "events": events,
                  "total_io": None if df is None else int(df["total_io"][0])}))
"""


def write_trace_stream(path: Path, events: int, pages: int, chunk: int) -> None:
    t_end = 0
    with TraceWriter(path, pages) as w:
        for k, start in enumerate(range(0, events, chunk)):
            a = page_stream(min(chunk, events - start), pages, seed=k)
            w.write(a.t_ns + t_end, a.pfn, a.op)
            t_end += int(a.t_ns[-1])
        w.finish(TraceMeta(guest_pages=pages, source="synthetic:bench_stream", seed=0))


def child(mode: str, path: Path, budget: int, strategy: str, tiny: Path) -> dict:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), str(budget), strategy, str(tiny)],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--generate":
        write_trace_stream(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), 10_000_000)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000_000)
    ap.add_argument("--prefix", type=int, default=20_000_000)
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--budget-fraction", type=float, default=0.1)
    ap.add_argument("--strategy", default="cmm")
    ap.add_argument("--keep", type=Path, help="write the traces here (default: a temp folder)")
    add_json_argument(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        big, small, tiny = folder / "big.parquet", folder / "prefix.parquet", folder / "tiny.parquet"
        # The tiny trace warms up (compiles, or loads from numba's cache) every
        # kernel a child uses; long enough for the two-thread replay
        # (2 * engine.PIPELINE_STEP_MIN events), which a shorter one skips: its
        # compile time then landed in the first timed child's figure.
        # Generated in a child: the generator's arrays would otherwise count in
        # every later child's getrusage peak.
        for path, n, pages in ((big, args.events, args.pages), (small, args.prefix, args.pages), (tiny, 1 << 18, 64)):
            if not path.exists():
                subprocess.run([sys.executable, __file__, "--generate", str(path), str(n), str(pages)], check=True)
        budget = max(1, int(args.pages * args.budget_fraction))
        base = child("none", tiny, 1, args.strategy, tiny)
        mem = child("memory", small, budget, args.strategy, tiny)
        pre = child("stream", small, budget, args.strategy, tiny)
        big_run = child("stream", big, budget, args.strategy, tiny)
        assert pre["total_io"] == mem["total_io"], "streamed and in-memory replays differ"
        mib = 1 << 20
        table = Table(
            f"{args.strategy}, {args.pages:,} pages, budget {budget:,} frames; "
            f"trace {big.stat().st_size / mib:,.0f} MiB on disk",
            [
                Column("run", "run"),
                Column("events", "events", ","),
                Column("m_events_per_s", "M events/s", ".1f"),
                Column("peak_rss_mib", "peak RSS MiB", ",.0f"),
            ],
        )
        for label, r in (
            ("imports + compiled kernels only", base),
            (f"in memory, {args.prefix:,}-event prefix", mem),
            ("streamed, same prefix", pre),
            (f"streamed, {args.events:,} events", big_run),
        ):
            rate = r["events"] / r["secs"] / 1e6 if r["events"] else float("nan")
            table.add(run=label, events=r["events"], m_events_per_s=rate, peak_rss_mib=r["rss"] / mib)
    speed = (pre["events"] / pre["secs"]) / (mem["events"] / mem["secs"])
    emit(
        "stream",
        [table],
        args,
        [
            f"streamed / in-memory speed on the prefix: {speed:.2f}x",
            f"peak RSS of the {args.events:,}-event streamed replay: {big_run['rss'] / mib:,.0f} MiB "
            f"(target < 1024), {np.round(big_run['rss'] / mem['rss'], 2)}x the in-memory "
            f"replay of a {args.events // args.prefix}x smaller trace",
        ],
    )


if __name__ == "__main__":
    main()
