"""Cold start: CPU seconds a command costs with an empty numba cache, and with the cache it filled.

Runs one command (``--what``) in a subprocess twice with ``NUMBA_CACHE_DIR``
pointing at a fresh temporary folder: first with the folder empty (every
kernel the run needs is compiled), then again with the cache the first run
filled (every kernel is loaded). The warm run is the baseline measured in the
same run: cold / warm says how much of a first run is compiling. CPU seconds
are the user + system time of the subprocess and all its descendants (the
sweep's worker processes included), from ``resource.getrusage(RUSAGE_CHILDREN)``.

Commands (``--what``):

* ``demo``: ``cmmsim demo -q`` (the default; every strategy over every sample trace);
* ``sweep``: ``cmmsim sweep`` of one sample trace (``--trace``) at one budget,
  every strategy, one job: the first result of each strategy;
* ``warm-up``: the sweep workers' initializer alone (every strategy on a
  four-event trace, in one process), the lightest check.

The per-kernel breakdown: a ``sitecustomize`` module put on the subprocesses'
``PYTHONPATH`` listens to numba's ``numba:compile`` events (``numba.core.event``)
in every process of the cold run and logs each compile: the dispatcher, its
argument types and the CPU seconds of the compiling thread, less the time of
the compiles nested in it (a kernel compiles the kernels it calls). A cache
load is no compile and fires no event. The table lists each dispatcher with
its signatures, processes and CPU seconds, the costliest first.

    python benchmarks/bench_compile.py [--what demo|sweep|warm-up] [--trace PATH] [--top N] [--json PATH]

The demo's record is ``benchmarks/results/compile.json`` (docs/performance.md quotes
it); a lighter command writes ``compile-<what>.json``: give it ``--json`` elsewhere
for a quick check, since every record there needs its marker in the document.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import Column, Table, add_json_argument, emit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_traces"

#: The listener every subprocess installs at start (as ``sitecustomize``) when
#: ``CMMSIM_BENCH_COMPILE_LOG`` names a folder: one JSON line per compile, in a
#: file per process, written as it happens (a worker may be ended without exit hooks).
HOOK = """
import os
_log_dir = os.environ.get("CMMSIM_BENCH_COMPILE_LOG")
if _log_dir:
    import json, time
    from numba.core import event

    class _CompileLog(event.Listener):
        def __init__(self):
            self.stack = []  # [start thread CPU s, nested CPU s] per compile in progress
            self.path = os.path.join(_log_dir, f"{os.getpid()}.jsonl")

        def on_start(self, ev):
            self.stack.append([time.thread_time(), 0.0])

        def on_end(self, ev):
            t0, nested = self.stack.pop()
            total = time.thread_time() - t0
            if self.stack:
                self.stack[-1][1] += total
            disp = ev.data["dispatcher"]
            fn = disp.py_func
            # Closures made per constant (one kernel per order): name the constants.
            consts = [
                f"{n}={c.cell_contents}"
                for n, c in zip(fn.__code__.co_freevars, fn.__closure__ or ())
                if isinstance(c.cell_contents, (int, str))
            ]
            rec = {
                "kernel": f"{fn.__module__}.{fn.__qualname__}" + (f"[{','.join(consts)}]" if consts else ""),
                "args": str(ev.data["args"]),
                "self_s": total - nested,
                "total_s": total,
                "depth": len(self.stack),
            }
            with open(self.path, "a") as f:
                f.write(json.dumps(rec) + "\\n")

    event.register("numba:compile", _CompileLog())
"""


def command(what: str, tmp: Path, trace: Path, run: int) -> list[str]:
    """The argv of ``what``, writing into ``tmp`` (a fresh output folder per run)."""
    out = tmp / f"out{run}"
    if what == "demo":
        return ["cmmsim", "demo", "-q", "-o", str(out)]
    if what == "sweep":
        return ["cmmsim", "sweep", str(trace), "-b", "50%", "--jobs", "1", "-q", "-o", str(out)]
    if what == "warm-up":
        return [sys.executable, "-c", "from cmmsim.replay.sweep import warm_up; warm_up()"]
    raise SystemExit(f"bench_compile: unknown --what {what!r}")


def timed_run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(user + system CPU seconds of the subprocess and its descendants, wall seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"bench_compile: {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def read_log(folder: Path) -> list[dict]:
    """Every compile logged by every process, each with its process id."""
    out = []
    for f in sorted(folder.glob("*.jsonl")):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            rec["pid"] = f.stem
            out.append(rec)
    return out


def breakdown(compiles: list[dict], top: int) -> Table:
    """Per dispatcher: signatures compiled, processes compiling it, CPU seconds (own, less nested)."""
    by = defaultdict(lambda: {"sigs": set(), "pids": set(), "n": 0, "self_s": 0.0})
    for c in compiles:
        b = by[c["kernel"]]
        b["sigs"].add(c["args"])
        b["pids"].add(c["pid"])
        b["n"] += 1
        b["self_s"] += c["self_s"]
    total = sum(b["self_s"] for b in by.values()) or 1.0
    table = Table(
        f"compiles of the cold run, costliest first (top {top} of {len(by)} dispatchers)",
        [
            Column("kernel", "dispatcher"),
            Column("sigs", "signatures", ","),
            Column("procs", "processes", ","),
            Column("compiles", "compiles", ","),
            Column("cpu", "CPU s (own)", ".1f"),
            Column("share", "share", ".1f", " %"),
        ],
    )
    rows = sorted(by.items(), key=lambda kv: -kv[1]["self_s"])
    for name, b in rows[:top]:
        table.add(
            kernel=name.removeprefix("cmmsim.").replace(".<locals>", ""),
            sigs=len(b["sigs"]),
            procs=len(b["pids"]),
            compiles=b["n"],
            cpu=b["self_s"],
            share=100 * b["self_s"] / total,
        )
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", choices=("demo", "sweep", "warm-up"), default="demo", help="the command measured")
    ap.add_argument("--trace", type=Path, default=SAMPLES / "idle-after-boot.parquet", help="the trace of --what sweep")
    ap.add_argument("--top", type=int, default=25, help="dispatchers listed in the breakdown")
    add_json_argument(ap)
    args = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-compile-") as tmp:
        tmp = Path(tmp)
        (tmp / "hook").mkdir()
        (tmp / "hook" / "sitecustomize.py").write_text(HOOK)
        (tmp / "log").mkdir()
        env = dict(os.environ)
        env["NUMBA_CACHE_DIR"] = str(tmp / "numba")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp / "hook"), env.get("PYTHONPATH")) if p)
        env["CMMSIM_BENCH_COMPILE_LOG"] = str(tmp / "log")
        cold_cpu, cold_wall = timed_run(command(args.what, tmp, args.trace, 1), env)
        compiles = read_log(tmp / "log")
        env.pop("CMMSIM_BENCH_COMPILE_LOG")
        warm_cpu, warm_wall = timed_run(command(args.what, tmp, args.trace, 2), env)
    load_after = os.getloadavg()
    compile_cpu = sum(c["self_s"] for c in compiles)
    trace = args.trace.relative_to(ROOT) if args.trace.is_relative_to(ROOT) else args.trace
    shown = " ".join(command(args.what, Path("OUT"), trace, 1))
    runs = Table(
        f"`{shown}` (OUT a fresh folder), empty NUMBA_CACHE_DIR, then the cache it filled",
        [
            Column("run", "run"),
            Column("cpu", "CPU s (user + system)", ".1f"),
            Column("wall", "wall s", ".1f"),
            Column("ratio", "CPU / warm", ".2f", "x"),
        ],
    )
    runs.add(run="cold (empty cache)", cpu=cold_cpu, wall=cold_wall, ratio=cold_cpu / warm_cpu)
    runs.add(run="warm (cache filled)", cpu=warm_cpu, wall=warm_wall, ratio=1.0)
    lines = [
        f"cold / warm: {cold_cpu / warm_cpu:.2f}x CPU; compiling ({len(compiles):,} compiles in "
        f"{len({c['pid'] for c in compiles})} processes): {compile_cpu:.1f} CPU s by numba's compile events",
        f"load average (1, 5, 15 min) before {', '.join(f'{x:.1f}' for x in load_before)}, "
        f"after {', '.join(f'{x:.1f}' for x in load_after)}",
    ]
    name = "compile" if args.what == "demo" else f"compile-{args.what}"
    emit(name, [runs, breakdown(compiles, args.top)], args, lines)


if __name__ == "__main__":
    main()
