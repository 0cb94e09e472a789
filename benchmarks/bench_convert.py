"""Conversion speed: lines/s of `cmmsim trace convert` next to `wc -l` on the same file.

    python benchmarks/bench_convert.py PERF_SCRIPT_TEXT [--copies N] [--no-twin] [--json PATH]

With ``--copies N`` the file is concatenated N times first (a large input made
of real captures; the converter counts the time going back at each seam as
``reordered``). Peak memory of the conversion comes from getrusage. The
figures go to ``benchmarks/results/convert.json`` (or ``--json PATH``).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import Column, Table, add_json_argument, emit  # noqa: E402
from tracer.linux import convert  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("text", type=Path)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--no-twin", action="store_true",
                    help="skip the (slow) line-by-line reference run")
    add_json_argument(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = args.text
        if args.copies > 1:
            src = Path(tmp) / "big.txt"
            with open(src, "wb") as out:
                for _ in range(args.copies):
                    out.write(args.text.read_bytes())
        t0 = time.perf_counter()
        lines = int(subprocess.run(["wc", "-l", str(src)], capture_output=True, text=True,
                                   check=True).stdout.split()[0])
        wc_s = time.perf_counter() - t0
        # Warm up (numba compiles the mapper once per machine, then caches it).
        warm = Path(tmp) / "warm.txt"
        with open(src) as f, open(warm, "w") as w:
            w.writelines(line for _, line in zip(range(2000), f, strict=False))
        convert(warm, Path(tmp) / "warm.parquet", lenient=True)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        meta = convert(src, Path(tmp) / "out.parquet", lenient=True)
        conv_s = time.perf_counter() - t0
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ref_s = None
        if not args.no_twin:
            t0 = time.perf_counter()
            convert(src, Path(tmp) / "ref.parquet", lenient=True, engine="python")
            ref_s = time.perf_counter() - t0
        size = src.stat().st_size
    table = Table(f"{lines:,} lines, {size / 2**20:,.0f} MiB, {meta.n_events:,} events out",
                  [Column("run", "run"), Column("m_lines_per_s", "M lines/s", ".2f"),
                   Column("x_wc", "x wc -l", ".3f")])
    table.add(run="wc -l", m_lines_per_s=lines / wc_s / 1e6, x_wc=1.0)
    table.add(run="cmmsim convert", m_lines_per_s=lines / conv_s / 1e6, x_wc=wc_s / conv_s)
    out_lines = []
    if ref_s is not None:
        table.add(run="python twin", m_lines_per_s=lines / ref_s / 1e6, x_wc=wc_s / ref_s)
        out_lines.append(f"fast path {ref_s / conv_s:.1f} x the line-by-line reference")
    out_lines.append(f"peak RSS: {peak_mib:,.0f} MiB (before conversion {before / 1024:,.0f} MiB)")
    emit("convert", [table], args, out_lines)


if __name__ == "__main__":
    main()
