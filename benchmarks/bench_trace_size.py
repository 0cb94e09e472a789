"""Bytes per event on disk for every sample trace (target: <= 3).

    python benchmarks/bench_trace_size.py [sample_traces]
"""

from __future__ import annotations

import sys
from pathlib import Path

from replay.scenario import expand_inputs
from tracer.io import read_meta


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "sample_traces")
    entries = sorted(root.glob("*.parquet")) + sorted(p for p in root.iterdir() if p.is_dir())
    print(f"{'trace':<28}{'events':>12}{'bytes':>12}{'bytes/event':>13}")
    worst = 0.0
    for entry in entries:
        files = expand_inputs([entry])
        events = sum(read_meta(f).n_events for f in files)
        size = sum(f.stat().st_size for f in files)
        worst = max(worst, size / events)
        print(f"{entry.name:<28}{events:>12,}{size:>12,}{size / events:>13.2f}")
    print(f"worst: {worst:.2f} bytes/event")


if __name__ == "__main__":
    main()
