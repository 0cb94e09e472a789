"""Synthetic trace generation: events/s per workload, the model alone and written to Parquet.

Every workload makes ``--events`` events (default 20 M; split among the guests
of a scenario) with its default parameters (the fleet: 20 guests, see
``PARAMS``), seed 1, after a small warm-up run that loads (or compiles) its
kernels:

* **model**: the numba guest model generating chunk by chunk, chunks dropped
  (``tracer.synth.generate(name, None, ...)``), one thread;
* **written**: the same events into Parquet through ``TraceWriter``
  (``synthesize``), one thread: what ``cmmsim trace synth --jobs 1`` does;
* **written, N jobs** (scenarios only): guests generated on ``--jobs`` threads.

Rates are events per CPU-second of this process (all its threads) and, for
the parallel run, per wall second. The baseline, measured in the same run:
the same number of seeded random events (``benchmarks._common.page_stream``,
1 M-event chunks over 262,144 pages) written through ``TraceWriter``, so
"written / baseline" says how close generation comes to the cost of writing
alone. Best of ``--repeat`` rounds. The figures go to
``benchmarks/results/synth.json`` (or ``--json PATH``).

    python benchmarks/bench_synth.py [--events N] [--repeat K] [--jobs J] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import page_stream  # noqa: E402
from benchmarks.figures import Column, Table, add_json_argument, emit  # noqa: E402
from tracer.io import TraceWriter  # noqa: E402
from tracer.schema import TraceMeta  # noqa: E402
from tracer.synth import generate, synthesize, workloads  # noqa: E402

CHUNK = 1 << 20
BASELINE_PAGES = 262_144
#: Parameters other than the defaults: a 200-guest fleet would spend --events on
#: 200 boots; 20 guests give each a million events at the default --events.
PARAMS = {"fleet": ["guests=20"]}


def timed(fn) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def best(fn, repeat: int) -> tuple[float, float]:
    runs = [timed(fn) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def write_random(path: Path, events: int) -> None:
    t_end = 0
    with TraceWriter(path, BASELINE_PAGES) as w:
        for k, start in enumerate(range(0, events, CHUNK)):
            a = page_stream(min(CHUNK, events - start), BASELINE_PAGES, seed=k)
            w.write(a.t_ns + t_end, a.pfn, a.op)
            t_end += int(a.t_ns[-1])
        w.finish(TraceMeta(guest_pages=BASELINE_PAGES, source="synthetic:bench_synth", seed=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000_000, help="events per workload")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept")
    ap.add_argument("--jobs", type=int, default=2, help="threads for the parallel scenario runs")
    add_json_argument(ap)
    args = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # The baseline: random events, the data generated outside the timed part.
        base_cpu, _ = best(lambda: write_random(tmp / "random.parquet", args.events), args.repeat)
        base_rate = args.events / base_cpu
        table = Table(f"{args.events:,} events per workload, default parameters (fleet: 20 guests), seed 1; "
                      f"baseline {base_rate / 1e6:.1f} M events/s per core",
                      [Column("workload", "workload"), Column("guests", "guests", ","),
                       Column("model", "model M/s per core", ".1f"),
                       Column("written", "written M/s per core", ".1f"),
                       Column("ratio", "written / baseline", ".2f", "x"),
                       Column("parallel", f"written, {args.jobs} jobs, M/s wall", ".1f"),
                       Column("bytes", "bytes/event", ".2f")])
        for name, wl in workloads().items():
            out = tmp / (name if wl.multi_guest else f"{name}.parquet")
            p = PARAMS.get(name, [])
            generate(name, None, seed=1, events=min(args.events, 200_000), params=p, jobs=1)  # warm-up
            model_cpu, _ = best(lambda n=name, p=p: generate(n, None, seed=1, events=args.events, params=p,
                                                             jobs=1), args.repeat)
            written_cpu, _ = best(lambda n=name, o=out, p=p: synthesize(n, o, seed=1, events=args.events,
                                                                        params=p, jobs=1), args.repeat)
            paths = sorted(out.glob("*.parquet")) if wl.multi_guest else [out]
            parallel = float("nan")
            if wl.multi_guest:
                _, wall = best(lambda n=name, o=out, p=p: synthesize(n, o, seed=1, events=args.events,
                                                                     params=p, jobs=args.jobs), args.repeat)
                parallel = args.events / wall / 1e6
            written = args.events / written_cpu
            table.add(workload=name, guests=len(paths), model=args.events / model_cpu / 1e6,
                      written=written / 1e6, ratio=written / base_rate, parallel=parallel,
                      bytes=sum(p.stat().st_size for p in paths) / args.events)
    load_after = os.getloadavg()
    emit("synth", [table], args, [
        f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after",
        f"slowest written rate {min(r['written'] for r in table.rows):.1f} M events/s per core "
        f"(target >= 10)"])


if __name__ == "__main__":
    main()
