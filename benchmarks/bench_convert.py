"""Conversion speed on every line shape: lines/s of `cmmsim trace convert` next to `wc -l`.

    sudo bash benchmarks/make_captures.sh /tmp/cmmsim-captures     # the captures (root, perf)
    python benchmarks/bench_convert.py /tmp/cmmsim-captures [--rounds 3] [--twin] [--json PATH]
    python benchmarks/bench_convert.py CAPTURE.txt [--copies N]      # one capture of your own

For each capture in the folder (the shapes of :data:`SHAPES`) it times ``wc -l``
and the conversion in alternating rounds and gives the medians, their ratio,
the conversion's lines per CPU-second of all its threads (steadier than wall
time on a shared machine), and the share of lines the byte scanner claimed
(the rest went through the polars path: a shape it leaves is a named gap). ``--twin`` also times the
line-by-line reference on the default shape. With ``--copies N`` a single
file is concatenated N times first (a large input made of real captures;
the converter counts the time going back at each seam as ``reordered``).
Peak memory comes from getrusage. The figures go to
``benchmarks/results/convert.json`` (or ``--json PATH``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import Column, Table, add_json_argument, emit  # noqa: E402
from cmmsim.tracer.linux import convert  # noqa: E402
from cmmsim.tracer.linux.scan import LEFT, line_bounds, scan_lines  # noqa: E402
from cmmsim.tracer.linux.textio import line_blocks  # noqa: E402

#: The captures benchmarks/make_captures.sh makes: file -> what its lines are.
SHAPES = {
    "perf-default.txt": "perf script, default (comm tid [cpu] time)",
    "perf-fields-cpu.txt": "perf script -F comm,tid,cpu,time,event,trace",
    "perf-compact-faults.txt": "perf -F comm,pid,time,event,trace, spaces collapsed, 1/4 user page faults",
    "perf-map-pages.txt": "perf default, fault-around ranges dominate (exec loop)",
    "perf-get-pages.txt": "perf default, read() ranges dominate (whole-file reads)",
    "perf-ignored.txt": "perf default, ignored events dominate (faults, LRU, sched)",
    "ftrace.txt": "raw ftrace trace_pipe",
    "trace-cmd.txt": "trace-cmd report",
}


def _wc_s(path: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["wc", "-l", str(path)], capture_output=True, check=True)
    return time.perf_counter() - t0


def _convert_s(path: Path, out: Path, engine: str = "fast") -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of all the process's threads, metadata) of one conversion."""
    t0, c0 = time.perf_counter(), time.process_time()
    meta = convert(path, out, lenient=True, engine=engine)
    return time.perf_counter() - t0, time.process_time() - c0, meta


def _claimed(path: Path) -> tuple[int, float]:
    """(lines, share of them the byte scanner claims)."""
    lines = claimed = 0
    with open(path, "rb") as raw:
        for block in line_blocks(raw):
            buf = np.frombuffer(block, np.uint8)
            code, _, _ = scan_lines(buf, *line_bounds(buf))
            lines += len(code)
            claimed += int((code != LEFT).sum())
    return lines, claimed / max(lines, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("captures", type=Path, help="folder of make_captures.sh, or one capture")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--copies", type=int, default=1, help="concatenate a single capture N times")
    ap.add_argument(
        "--twin", action="store_true", help="also time the (slow) line-by-line reference on the default shape"
    )
    add_json_argument(ap)
    args = ap.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        if args.captures.is_dir():
            runs = [(args.captures / name, what) for name, what in SHAPES.items() if (args.captures / name).exists()]
            if not runs:
                sys.exit(f"{args.captures}: none of {', '.join(SHAPES)} (make_captures.sh)")
        else:
            src = args.captures
            if args.copies > 1:
                src = Path(tmp) / "big.txt"
                with open(src, "wb") as out:
                    for _ in range(args.copies):
                        out.write(args.captures.read_bytes())
            runs = [(src, f"{args.captures.name}" + (f" x {args.copies}" if args.copies > 1 else ""))]
        # Warm up on the start of every capture: numba compiles (or loads from
        # its cache) each kernel on first use, and each shape uses its own.
        warm = Path(tmp) / "warm.txt"
        for path, _ in runs:
            with open(path, "rb") as f, open(warm, "wb") as w:
                w.writelines(line for _, line in zip(range(2000), f, strict=False))
            convert(warm, Path(tmp) / "warm.parquet", lenient=True)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        table = Table(
            f"median of {args.rounds} rounds, wc -l and the conversion alternating",
            [
                Column("shape", "capture"),
                Column("m_lines", "M lines", ".2f"),
                Column("mib", "MiB", ",.0f"),
                Column("claimed", "scanner claims", ".1%"),
                Column("m_lines_per_s", "M lines/s", ".2f"),
                Column("m_lines_per_cpu_s", "M lines/CPU-s", ".2f"),
                Column("wc_m_lines_per_s", "wc -l M lines/s", ".1f"),
                Column("x_wc", "x wc -l", ".3f"),
                Column("events_out", "events out", ","),
            ],
        )
        slowest = None
        for path, what in runs:
            lines, claimed = _claimed(path)
            wc, conv, cpu = [], [], []
            for _ in range(args.rounds):
                wc.append(_wc_s(path))
                dt, dc, meta = _convert_s(path, Path(tmp) / "out.parquet")
                conv.append(dt)
                cpu.append(dc)
            wc_s, conv_s = statistics.median(wc), statistics.median(conv)
            speed = lines / conv_s / 1e6
            table.add(
                shape=what,
                m_lines=lines / 1e6,
                mib=path.stat().st_size / 2**20,
                claimed=claimed,
                m_lines_per_s=speed,
                m_lines_per_cpu_s=lines / statistics.median(cpu) / 1e6,
                wc_m_lines_per_s=lines / wc_s / 1e6,
                x_wc=wc_s / conv_s,
                events_out=meta.n_events,
            )
            if slowest is None or speed < slowest[0]:
                slowest = (speed, what)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out_lines = [f"slowest shape: {slowest[1]} at {slowest[0]:.2f} M lines/s (target 1)"]
        if args.twin:
            path = runs[0][0]
            lines = table.rows[0]["m_lines"] * 1e6
            ref_s, _, _ = _convert_s(path, Path(tmp) / "ref.parquet", engine="python")
            fast_s = lines / table.rows[0]["m_lines_per_s"] / 1e6
            out_lines.append(
                f"line-by-line reference on {runs[0][1]}: {lines / ref_s / 1e6:.2f} M "
                f"lines/s (the fast path {ref_s / fast_s:.1f} x faster)"
            )
        out_lines.append(f"peak RSS: {peak_mib:,.0f} MiB (before the conversions {before / 1024:,.0f} MiB)")
        out_lines.append("load average at start: " + ", ".join(f"{x:.2f}" for x in load))
    emit("convert", [table], args, out_lines)


if __name__ == "__main__":
    main()
