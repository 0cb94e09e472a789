"""Conversion speed: lines/s of `cmmsim trace convert` next to `wc -l` on the same file.

    python benchmarks/bench_convert.py PERF_SCRIPT_TEXT [--copies N] [--no-twin]

With ``--copies N`` the file is concatenated N times first (a large input made
of real captures; the converter counts the time going back at each seam as
``reordered``). Peak memory of the conversion comes from getrusage.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from tracer.linux import convert


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("text", type=Path)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--no-twin", action="store_true",
                    help="skip the (slow) line-by-line reference run")
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
    print(f"{lines:,} lines, {size / 2**20:,.0f} MiB, {meta.n_events:,} events out")
    print(f"wc -l:          {lines / wc_s / 1e6:8.2f} M lines/s")
    print(f"cmmsim convert: {lines / conv_s / 1e6:8.2f} M lines/s  "
          f"({wc_s / conv_s:.3f} x wc -l)")
    if ref_s is not None:
        print(f"python twin:    {lines / ref_s / 1e6:8.2f} M lines/s  "
              f"(fast path {ref_s / conv_s:.1f} x the line-by-line reference)")
    print(f"peak RSS: {peak_mib:,.0f} MiB (before conversion {before / 1024:,.0f} MiB)")


if __name__ == "__main__":
    main()
