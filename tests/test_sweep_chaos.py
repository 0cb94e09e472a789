"""Sweep chaos: SIGKILL the sweep's own process at random (seeded) moments, damage a part,
resume; the results equal an uninterrupted sweep's and no worker outlives its parent.

Only the driver is killed (not its process group, as in ``test_sweep``): its
spawn workers and multiprocessing's resource tracker must end by themselves.
One kill runs by default; ``-m slow`` runs several in a row.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest

from cmmsim.replay.sweep import (
    SweepSpec,
    build_jobs,
    parse_grid,
    read_results,
    run_sweep,
    trace_sets_from_inputs,
)

DELAYS = ",".join(str(d) for d in range(0, 500_000, 100_000))
STRATEGIES = ("host-lru", "cmm", "free-page-reporting")
#: 8 small jobs per trace: enough that a kill lands mid-sweep.
GRID = ("cmm:reclaim_order=lru,state-priority", f"free-page-reporting:delay_ns={DELAYS}")
BUDGETS = ("5%", "20%", "60%")


def _sweep_cmd(traces: list[str], out: Path) -> list[str]:
    args = [
        sys.executable,
        "-c",
        "from cmmsim.cli import main; main()",
        "sweep",
        *traces,
        "-o",
        str(out),
        "--jobs",
        "2",
    ]
    for b in BUDGETS:
        args += ["-b", b]
    for s in STRATEGIES:
        args += ["-s", s]
    for g in GRID:
        args += ["-p", g]
    return args


def _uninterrupted(traces: list[str], out: Path) -> pl.DataFrame:
    """The same sweep run whole, in this process (threads): the reference."""
    grid = parse_grid(GRID)
    spec = SweepSpec(trace_sets_from_inputs(traces), [(n, grid.get(n, {})) for n in STRATEGIES], list(BUDGETS))
    run_sweep(build_jobs(spec), out, make_executor=lambda n: ThreadPoolExecutor(n), parallel=2)
    return read_results(out)


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort("job_key", "budget_pages", "guest", nulls_last=True)


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(p)
    return alive


def _kill_mid_sweep(traces: list[str], out: Path, rng: random.Random) -> int:
    """Start the sweep, SIGKILL its driver once some parts are written; return the parts then."""
    before = len(list((out / "parts").glob("*.parquet"))) if (out / "parts").exists() else 0
    wait_for = before + rng.randint(1, 3)
    proc = subprocess.Popen(_sweep_cmd(traces, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        workers.update(_children(proc.pid))
        if len(list((out / "parts").glob("*.parquet"))) >= wait_for:
            break
        time.sleep(0.01)
    # A random moment more: between writes, inside one, or while workers start.
    time.sleep(rng.uniform(0, 0.3))
    workers.update(_children(proc.pid))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert workers, "the sweep started no worker process"
    deadline = time.time() + 10
    while _alive(sorted(workers)) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(sorted(workers)), "a worker (or the resource tracker) outlived the sweep"
    return len(list((out / "parts").glob("*.parquet")))


def _damage_a_part(out: Path, rng: random.Random) -> None:
    parts = sorted((out / "parts").glob("*.parquet"))
    part = rng.choice(parts)
    raw = part.read_bytes()
    part.write_bytes(raw[: rng.randint(0, len(raw) - 1)])


def _chaos(tmp_path: Path, small_traces, kills: int, seed: int, names: tuple[str, ...]) -> None:
    rng = random.Random(seed)
    traces = [str(small_traces[n]) for n in names]
    whole = _sorted(_uninterrupted(traces, tmp_path / "whole"))
    n_jobs = whole["job_key"].n_unique()
    out = tmp_path / "cut"
    for _ in range(kills):
        n_parts = _kill_mid_sweep(traces, out, rng)
        if n_parts >= n_jobs:
            break
    assert 0 < n_parts, "no part was written before the kill"
    _damage_a_part(out, rng)
    done = subprocess.run(_sweep_cmd(traces, out), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "damaged or outdated, redone" in done.stdout.replace("\n", " ")
    assert _sorted(read_results(out)).equals(whole)
    assert not [p for sub in ("parts", "states", "series", "failed") for p in (out / sub).glob(".*")], (
        "a temporary file was left"
    )


def test_sigkill_of_the_driver_ends_its_workers_and_resume_repairs(tmp_path, small_traces):
    _chaos(tmp_path, small_traces, kills=1, seed=5, names=("phased",))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_many_sigkills_then_a_damaged_part_then_resume(tmp_path, small_traces, seed):
    _chaos(tmp_path, small_traces, kills=4, seed=seed, names=("phased", "kernel-compile"))
