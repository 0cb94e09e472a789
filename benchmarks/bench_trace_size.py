"""Bytes per event on disk for every sample trace (target: <= 3).

    python benchmarks/bench_trace_size.py [sample_traces] [--json PATH]

The figures go to ``benchmarks/results/trace-size.json`` (or ``--json PATH``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import Column, Table, add_json_argument, emit  # noqa: E402
from cmmsim.replay.scenario import expand_inputs  # noqa: E402
from cmmsim.tracer.io import read_meta  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, nargs="?", default=Path("sample_traces"))
    add_json_argument(ap)
    args = ap.parse_args()
    entries = sorted(args.root.glob("*.parquet")) + sorted(p for p in args.root.iterdir() if p.is_dir())
    table = Table(
        "",
        [
            Column("trace", "trace"),
            Column("events", "events", ","),
            Column("bytes", "bytes", ","),
            Column("bytes_per_event", "bytes/event", ".2f"),
        ],
    )
    worst = 0.0
    for entry in entries:
        files = expand_inputs([entry])
        events = sum(read_meta(f).n_events for f in files)
        size = sum(f.stat().st_size for f in files)
        worst = max(worst, size / events)
        table.add(trace=entry.name, events=events, bytes=size, bytes_per_event=size / events)
    emit("trace-size", [table], args, [f"worst: {worst:.2f} bytes/event"])


if __name__ == "__main__":
    main()
