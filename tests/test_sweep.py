"""Sweeps: jobs, resume after SIGKILL, failing jobs, bad input, the Dask path, the demo."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cmmsim.cli import app
from cmmsim.replay.sweep import SweepSpec, TraceSet, build_jobs, read_results, read_series, run_job, run_sweep
from cmmsim.tracer.errors import ParamError

runner = CliRunner()


def threads(n):
    return ThreadPoolExecutor(max_workers=n)


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort("job_key", "budget_pages", "guest", nulls_last=True)


def test_sweep_runs_every_strategy_and_skips_done_jobs(tmp_path, small_traces):
    spec = SweepSpec(
        [TraceSet("k", (str(small_traces["kernel-compile"]),)), TraceSet("a", (str(small_traces["awm"]),))],
        strategies=[],
        budgets=["5%", "20%"],
    )
    jobs = build_jobs(spec)
    from cmmsim.replay.strategies import strategies

    assert len(jobs) == 2 * len(strategies())
    first = run_sweep(jobs, tmp_path / "o", make_executor=threads, parallel=2)
    assert len(first.done) == len(jobs) and not first.failed
    again = run_sweep(jobs, tmp_path / "o", make_executor=threads, parallel=2)
    assert not again.done and len(again.skipped) == len(jobs)
    df = read_results(tmp_path / "o")
    # One host row per job and budget, no duplicates.
    host = df.filter(pl.col("guest").is_null())
    assert host.height == len(jobs) * 2
    assert host.select("job_key", "budget_pages").is_duplicated().sum() == 0


def test_a_failing_job_is_recorded_and_the_others_complete(tmp_path, small_traces):
    bad = tmp_path / "corrupt.parquet"
    bad.write_bytes(b"PAR1 garbage PAR1")
    spec = SweepSpec(
        [TraceSet("good", (str(small_traces["phased"]),)), TraceSet("bad", (str(bad),))],
        strategies=[("cmm", {}), ("host-lru", {})],
        budgets=["10%"],
    )
    out = run_sweep(build_jobs(spec), tmp_path / "o", make_executor=threads, parallel=2)
    assert len(out.done) == 2 and len(out.failed) == 2
    assert all("not a Parquet file" in e for e in out.failed.values())
    assert len(list((tmp_path / "o" / "failed").glob("*.json"))) == 2
    assert set(read_results(tmp_path / "o")["trace_set"]) == {"good"}


def test_param_grid_expands(tmp_path, small_traces):
    spec = SweepSpec(
        [TraceSet("p", (str(small_traces["phased"]),))],
        strategies=[("cmm", {"reclaim_order": ["lru", "state-priority"]})],
        budgets=["10%"],
    )
    assert sorted(j.params["reclaim_order"] for j in build_jobs(spec)) == ["lru", "state-priority"]


def test_different_sweep_in_the_same_folder_is_refused(tmp_path, small_traces):
    spec = SweepSpec([TraceSet("p", (str(small_traces["phased"]),))], [("cmm", {})], ["10%"])
    run_sweep(build_jobs(spec), tmp_path / "o", make_executor=threads, parallel=1)
    before = sorted(p.name for p in (tmp_path / "o" / "parts").iterdir())
    other = SweepSpec(spec.trace_sets, [("cmm", {})], ["20%"])
    with pytest.raises(ParamError, match="different sweep"):
        run_sweep(build_jobs(other), tmp_path / "o", make_executor=threads, parallel=1)
    assert sorted(p.name for p in (tmp_path / "o" / "parts").iterdir()) == before


def _bad(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("cmmsim: error:") and r.stderr.count("\n") == 1
    return r.stderr


def test_sweep_bad_input(tmp_path, small_traces):
    trace = str(small_traces["phased"])
    assert "no trace set" in _bad(["sweep", "-o", str(tmp_path / "o"), "-b", "10"])
    assert "matches no file" in _bad(["sweep", str(tmp_path / "*.nothing"), "-b", "10"])
    assert "no budget given" in _bad(["sweep", trace, "-o", str(tmp_path / "o")])
    assert "unknown strategy" in _bad(["sweep", trace, "-s", "zzz", "-b", "1"])
    f = tmp_path / "s.toml"
    f.write_text(
        f'budgets = ["10%"]\n[[trace_sets]]\nname = "p"\npaths = ["{trace}"]\n'
        '[[strategies]]\nname = "cmm"\nparams = { nope = ["x"] }\n'
    )
    assert "unknown parameter 'nope'" in _bad(["sweep", "--sweep", str(f), "-o", str(tmp_path / "o")])
    f.write_text(f'budgets = []\n[[trace_sets]]\nname = "p"\npaths = ["{trace}"]\n')
    assert "no budget given" in _bad(["sweep", "--sweep", str(f), "-o", str(tmp_path / "o")])
    f.write_text("budgets = [\n")
    assert "not valid TOML" in _bad(["sweep", "--sweep", str(f)])


@pytest.mark.parametrize(
    "top, entry, message",
    [
        # Options of the command line, not of the file: silently a sweep without them.
        ("tier_pages = 1000\n", "", "unknown key 'tier_pages' (use --tier-pages)"),
        ('costs = "zvm-2006"\n', "", "unknown key 'costs' (use --costs)"),
        ("vcpus = 4\n", "", "unknown key 'vcpus' (use --vcpus)"),
        ('budget = ["5%"]\n', "", "unknown key 'budget'"),
        ("", 'param = { replacement = "two-list" }\n', "strategy host-lru: unknown key 'param'"),
    ],
)
def test_sweep_file_refuses_unknown_keys(tmp_path, small_traces, top, entry, message):
    trace = str(small_traces["phased"])
    f = tmp_path / "s.toml"
    f.write_text(
        f'budgets = ["10%"]\n{top}[[trace_sets]]\nname = "p"\npaths = ["{trace}"]\n'
        f'[[strategies]]\nname = "host-lru"\n{entry}'
    )
    assert message in _bad(["sweep", "--sweep", str(f), "-o", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
    f.write_text(f'budgets = ["10%"]\n[[trace_sets]]\nname = "p"\npaths = ["{trace}"]\npath = "x"\n')
    assert "trace set 'p': unknown key 'path'" in _bad(["sweep", "--sweep", str(f), "-o", str(tmp_path / "o")])


def test_sweep_file_cli_and_report_plot(tmp_path, small_traces):
    f = tmp_path / "s.toml"
    f.write_text(
        'budgets = ["5%", "10%", "40%"]\nstates_interval = "200ms"\n'
        f'[[trace_sets]]\nname = "kc"\npaths = ["{small_traces["kernel-compile"]}"]\n'
        '[[strategies]]\nname = "host-lru"\n'
        '[[strategies]]\nname = "cmm"\nparams = { reclaim_order = ["lru", "state-priority"] }\n'
        '[[strategies]]\nname = "balloon"\nparams = { period_ns = 100000000 }\n'
    )
    out = tmp_path / "o"
    r = runner.invoke(app, ["sweep", "--sweep", str(f), "-o", str(out), "--jobs", "1"])
    assert r.exit_code == 0, r.output
    assert "4 done" in r.output
    series = read_series(out)
    assert set(series["strategy"].unique()) == {"balloon"} and series["period"].max() >= 1
    r = runner.invoke(app, ["report", str(out)])
    assert r.exit_code == 0 and "io-avoided" in r.output
    r = runner.invoke(app, ["report", str(out), "-f", "markdown", "-r", "ranking"])
    assert r.exit_code == 0 and "| trace_set | budget_pages | budget_mib | rank |" in r.output
    r = runner.invoke(app, ["report", str(out), "-f", "csv", "-r", "total-io"])
    assert r.exit_code == 0 and r.output.startswith("trace_set,label,budget_pages")
    r = runner.invoke(app, ["report", str(out), "-f", "parquet", "-r", "faults", "-o", str(tmp_path / "f.parquet")])
    assert r.exit_code == 0 and pl.read_parquet(tmp_path / "f.parquet").height == 12
    assert "unknown report" in _bad(["report", str(out), "-r", "nope"])
    r = runner.invoke(app, ["plot", str(out), "-o", str(tmp_path / "plots")])
    assert r.exit_code == 0, r.output
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert pngs == [
        "balloon_kc_balloon.png",
        "io_avoided_vs_budget.png",
        "stall_vs_budget.png",
        "states_kc.png",
        "total_io_vs_budget.png",
    ]
    assert all((tmp_path / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


#: Enough small jobs (3 traces x 23 strategy points) that a kill lands mid-sweep.
DELAYS = ",".join(str(d) for d in range(0, 2_000_000, 100_000))
N_JOBS = 3 * (1 + 2 + 20)


def _sweep_cmd(traces, out):
    return [
        sys.executable,
        "-c",
        "from cmmsim.cli import main; main()",
        "sweep",
        *traces,
        "-o",
        str(out),
        "-b",
        "5%",
        "-b",
        "20%",
        "-b",
        "60%",
        "--jobs",
        "1",
        "-s",
        "host-lru",
        "-s",
        "cmm",
        "-s",
        "free-page-reporting",
        "-p",
        "cmm:reclaim_order=lru,state-priority",
        "-p",
        f"free-page-reporting:delay_ns={DELAYS}",
    ]


@pytest.mark.slow  # test_sweep_chaos kills and resumes by default
def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path, small_traces):
    traces = [str(small_traces[n]) for n in ("kernel-compile", "phased", "web-serving")]
    whole = tmp_path / "whole"
    subprocess.run(_sweep_cmd(traces, whole), check=True, capture_output=True)
    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        _sweep_cmd(traces, cut), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 120
    parts = cut / "parts"
    while time.time() < deadline and len(list(parts.glob("*.parquet"))) < 2:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-sweep
    proc.wait()
    n_cut = len(list(parts.glob("*.parquet")))
    assert 2 <= n_cut < N_JOBS, "the kill should land part-way through the sweep"
    done = subprocess.run(_sweep_cmd(traces, cut), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{N_JOBS - n_cut} done, {n_cut} already done" in done.stdout.replace("\n", " ")
    a, b = _sorted(read_results(whole)), _sorted(read_results(cut))
    assert a.equals(b)
    assert b.filter(pl.col("guest").is_null()).select("job_key", "budget_pages").is_duplicated().sum() == 0


def die_on_killer(job):
    """Stands for a job that segfaults its worker process."""
    if job.trace_set.name == "killer":
        os._exit(139)
    return run_job(job)


def test_local_pool_survives_a_worker_that_dies(tmp_path, small_traces):
    # A job whose worker dies costs only that job: retried once alone, then failed.
    from cmmsim.replay.executors import local_executor

    spec = SweepSpec(
        [
            TraceSet("good", (str(small_traces["phased"]),)),
            TraceSet("killer", (str(small_traces["web-serving"]),)),
            TraceSet("also-good", (str(small_traces["kernel-compile"]),)),
        ],
        [("cmm", {})],
        ["10%"],
    )
    out = run_sweep(build_jobs(spec), tmp_path / "o", make_executor=local_executor, parallel=2, job_fn=die_on_killer)
    assert len(out.done) == 2 and len(out.failed) == 1
    assert "died twice" in next(iter(out.failed.values()))
    assert set(read_results(tmp_path / "o")["trace_set"]) == {"good", "also-good"}


def test_dask_local_cluster(tmp_path, small_traces):
    distributed = pytest.importorskip("distributed", reason="Dask extra not installed")
    spec = SweepSpec([TraceSet("p", (str(small_traces["phased"]),))], [("cmm", {}), ("host-lru", {})], ["10%", "30%"])
    jobs = build_jobs(spec)
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        out = run_sweep(jobs, tmp_path / "o", parallel=2, make_executor=lambda n: client.get_executor(pure=False))
    assert len(out.done) == 2
    local = run_sweep(jobs, tmp_path / "t", make_executor=threads, parallel=2)
    assert len(local.done) == 2
    assert _sorted(read_results(tmp_path / "o")).equals(_sorted(read_results(tmp_path / "t")))


def test_every_dask_worker_warms_up_before_the_jobs(tmp_path, monkeypatch):
    # As the pool's initializer does: one warm-up task on each worker, where jobs run.
    distributed = pytest.importorskip("distributed", reason="Dask extra not installed")
    from cmmsim.replay import executors

    log = tmp_path / "warmed"  # a file: the task is a serialized copy of the function

    def record():
        with open(log, "a") as f:
            f.write(distributed.get_worker().address + "\n")

    monkeypatch.setattr(executors, "warm_up", record)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        executors.warm_dask_workers(client)
        workers = set(client.scheduler_info()["workers"])
    assert len(workers) == 2 and sorted(log.read_text().split()) == sorted(workers)


def _job_after_all_started(folder: str, n: int, job):
    """A sweep job that records its worker, waits (up to 30 s) until ``n`` jobs have
    started, then runs: jobs placed on one single-thread worker never all start."""
    import json

    from cmmsim.replay.executors import placement
    from cmmsim.replay.sweep import run_job

    Path(folder, f"{job.key}.json").write_text(json.dumps(placement()))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(list(Path(folder).glob("*.json"))) >= n:
            Path(folder, f"{job.key}.met").touch()
            break
        time.sleep(0.05)
    return run_job(job)


def test_two_dask_jobs_run_on_two_workers(tmp_path, small_traces):
    # A streamed fleet sweep's two jobs on a 2-worker cluster: one each, side by side.
    import functools
    import json

    distributed = pytest.importorskip("distributed", reason="Dask extra not installed")
    spec = SweepSpec(
        [TraceSet("p", (str(small_traces["phased"]),))], [("cmm", {}), ("host-lru", {})], ["10%"], stream=True
    )
    log = tmp_path / "placed"
    log.mkdir()
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        workers = set(client.scheduler_info()["workers"])
        out = run_sweep(
            build_jobs(spec),
            tmp_path / "o",
            parallel=2,
            make_executor=lambda n: client.get_executor(pure=False),
            job_fn=functools.partial(_job_after_all_started, str(log), 2),
        )
    assert len(out.done) == 2
    assert len(list(log.glob("*.met"))) == 2  # each saw the other start: neither waited for the other to end
    placed = [json.loads(f.read_text())["worker"] for f in log.glob("*.json")]
    assert len(placed) == 2 and set(placed) == workers


def test_a_dask_workers_malloc_thresholds_are_set_back(monkeypatch):
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_, which pins glibc's mmap threshold:
    # the warm-up sets both thresholds to glibc's dynamic ceilings; elsewhere nothing.
    import ctypes

    from cmmsim.replay import executors

    calls = []

    class Libc:
        def __init__(self, name):
            self.mallopt = lambda param, value: calls.append((param, value)) or 1

    monkeypatch.setattr(ctypes, "CDLL", Libc)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    executors._large_arrays_from_the_heap()
    assert calls == []
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    executors._large_arrays_from_the_heap()
    assert calls == [(-3, 32 << 20), (-1, 128 << 20)]


def test_demo_end_to_end(tmp_path, monkeypatch, small_traces):
    # The demo over a folder of small traces (the real one runs on sample_traces/).
    samples = tmp_path / "sample_traces"
    samples.mkdir()
    for name in ("kernel-compile", "phased"):
        (samples / f"{name}.parquet").write_bytes(Path(small_traces[name]).read_bytes())
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["demo", "-o", str(tmp_path / "d"), "--jobs", "1"])
    assert r.exit_code == 0, r.output
    summary = (tmp_path / "d" / "summary.md").read_text()
    assert "Winner (least total I/O)" in summary and "kernel-compile" in summary
    assert "- `total_io_vs_budget.png`: page reads + writes" in summary
    assert (tmp_path / "d" / "plots" / "total_io_vs_budget.png").exists()
    assert (tmp_path / "d" / "plots" / "states_phased.png").exists()
    assert (tmp_path / "d" / "plots" / "balloon_phased_balloon_cmm.png").exists()


def test_trace_set_paths_are_absolute(tmp_path, small_traces, monkeypatch):
    # Workers on a cluster run in other working folders: relative paths would miss.
    from cmmsim.replay.sweep import trace_sets_from_inputs

    monkeypatch.chdir(Path(small_traces["phased"]).parent)
    (ts,) = trace_sets_from_inputs(["phased.parquet"])
    assert Path(ts.paths[0]).is_absolute() and Path(ts.paths[0]).exists()


def test_one_file_named_twice_is_one_trace_set(tmp_path, small_traces, monkeypatch):
    # `sweep t.parquet ./t.parquet` or overlapping globs: one file, one trace set (it ran
    # twice, as t@0 and t@1, and renamed every other set of the sweep to name@i too).
    from cmmsim.replay.sweep import trace_sets_from_inputs

    phased = Path(small_traces["phased"])
    monkeypatch.chdir(phased.parent)
    other = tmp_path / "other.parquet"
    shutil.copy(phased, other)
    sets = trace_sets_from_inputs(["phased.parquet", str(phased), "*.parquet", str(other)])
    assert [s.name for s in sets][:1] == ["phased"] and "other" in [s.name for s in sets]
    assert len({s.paths for s in sets}) == len(sets)


def test_a_sweep_run_again_under_other_costs_says_its_old_parts_keep_theirs(tmp_path, small_traces):
    # --costs is not part of a job's key (pricing needs no replay), so a finished sweep
    # run again under another profile skips every job and keeps the old prices: say so.
    trace, out = str(small_traces["phased"]), str(tmp_path / "o")
    first = runner.invoke(app, ["sweep", trace, "-s", "host-lru", "-b", "10%", "-o", out, "--jobs", "1", "-q"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["sweep", trace, "-s", "host-lru", "-b", "10%", "-o", out, "--jobs", "1", "-q"])
    assert again.exit_code == 0 and "priced" not in again.stderr
    other = runner.invoke(
        app, ["sweep", trace, "-s", "host-lru", "-b", "10%", "-o", out, "--jobs", "1", "-q", "--costs", "zvm-2006"]
    )
    assert other.exit_code == 0, other.output
    assert "1 job(s) already done keep the prices of kvm-2025, not zvm-2006" in other.stderr
    assert f"cmmsim report {out} --costs zvm-2006" in other.stderr
    # An edited profile file under the same name: the same warning, with the file to give.
    mine = tmp_path / "mine.toml"
    mine.write_text("zero_fill_ns = 1\n")
    args = ["sweep", trace, "-s", "host-lru", "-b", "20%", "-o", str(tmp_path / "m"), "--jobs", "1", "-q"]
    assert runner.invoke(app, [*args, "--costs", str(mine)]).exit_code == 0
    mine.write_text("zero_fill_ns = 2\n")
    edited = runner.invoke(app, [*args, "--costs", str(mine)])
    assert edited.exit_code == 0 and "keep the prices of an earlier mine" in edited.stderr
    assert f"--costs {mine}`" in edited.stderr


def test_a_sweep_run_again_tells_old_prices_from_the_parts_footers(tmp_path, small_traces, monkeypatch):
    # Each part carries its pricing's digest in its footer: a rerun compares digests and
    # reads no part's rows for its warning where they are equal. A part written before
    # the digest existed, or whose digest differs, is read and re-priced to compare.
    import pyarrow.parquet as pq

    import cmmsim.tracer.io as tio
    from cmmsim.replay.costs import PRICING_KEY, load_profile, pricing_digest

    trace, out = str(small_traces["phased"]), tmp_path / "o"
    args = ["sweep", trace, "-s", "host-lru", "-s", "cmm", "-b", "10%", "-o", str(out), "--jobs", "1", "-q"]
    assert runner.invoke(app, args).exit_code == 0
    parts = sorted((out / "parts").glob("*.parquet"))
    assert len(parts) == 2
    for part in parts:
        columns, meta = tio.frame_metadata(part)
        assert meta[PRICING_KEY] == pricing_digest(load_profile("kvm-2025"), columns)

    reads = []
    real_read = tio.read_frame
    monkeypatch.setattr(tio, "read_frame", lambda *a, **k: reads.append(k.get("columns")) or real_read(*a, **k))
    same = runner.invoke(app, args)
    assert same.exit_code == 0 and "priced" not in same.stderr and reads == []
    other = runner.invoke(app, [*args, "--costs", "zvm-2006"])
    assert "2 job(s) already done keep the prices of kvm-2025, not zvm-2006" in other.stderr
    assert len(reads) == 2  # the parts whose digests differ are re-priced to compare

    # A part from before the digest: the same rows, no footer key.
    table = pq.read_table(parts[0])
    pq.write_table(table.replace_schema_metadata({}), parts[0])
    assert PRICING_KEY not in tio.frame_metadata(parts[0])[1]
    reads.clear()
    old_same = runner.invoke(app, args)
    assert old_same.exit_code == 0 and "priced" not in old_same.stderr and reads == [None]
    old_other = runner.invoke(app, [*args, "--costs", "zvm-2006"])
    assert "2 job(s) already done keep the prices of kvm-2025, not zvm-2006" in old_other.stderr

    # A digest that differs while the prices do not (the same pricing printed otherwise,
    # as another polars might): re-priced, found equal, no warning.
    pq.write_table(table.replace_schema_metadata({PRICING_KEY.encode(): b"printed otherwise"}), parts[0])
    reads.clear()
    printed = runner.invoke(app, args)
    assert printed.exit_code == 0 and "priced" not in printed.stderr and reads == [None]


def test_pricing_digest_changes_with_what_changes_the_prices():
    from dataclasses import replace

    from cmmsim.replay.costs import load_profile, pricing_digest

    kvm = load_profile("kvm-2025")
    cols = ["host_reads", "host_writes", "zero_fills", "discards", "hints", "duration_ns", "vcpus"]
    digest = pricing_digest(kvm, cols)
    assert digest == pricing_digest(load_profile("kvm-2025"), list(reversed(cols)) + ["stall_ns", "cost_profile"])
    assert digest != pricing_digest(load_profile("zvm-2006"), cols)
    assert digest != pricing_digest(replace(kvm, name="mine"), cols)
    # A cost a float's text would round, and a counter the rows carry (a tier's).
    nudged = replace(kvm, costs_ns={**kvm.costs_ns, "zero_fill_ns": kvm.costs_ns["zero_fill_ns"] + 1e-9})
    assert digest != pricing_digest(nudged, cols)
    assert digest != pricing_digest(kvm, [*cols, "host_reads_tier"])


def test_a_part_written_before_a_counter_is_redone_and_prices_as_before_meanwhile(tmp_path, small_traces):
    from cmmsim.replay.costs import price
    from cmmsim.tracer.io import read_frame, write_frame

    spec = SweepSpec([TraceSet("p", (str(small_traces["phased"]),))], [("balloon", {}), ("static", {})], ["10%"])
    jobs = build_jobs(spec)
    run_sweep(jobs, tmp_path / "o", make_executor=threads, parallel=1)
    whole = _sorted(read_results(tmp_path / "o"))
    kinds = ["discards_by_guest", "discards_released", "balloon_initial_pages"]
    balloon = next(j for j in jobs if j.strategy == "balloon")
    part = tmp_path / "o" / "parts" / f"{balloon.key}.parquet"
    write_frame(read_frame(part).drop(kinds), part)  # as an earlier cmmsim wrote it
    # Read meanwhile, its rows lack the kinds (null): priced as before, never null.
    mixed = price(read_results(tmp_path / "o"))
    assert mixed["host_cpu_ns"].null_count() == 0
    old = mixed.filter(pl.col("job_key") == balloon.key)
    assert old["discards_by_guest"].is_null().all()
    assert old.drop(kinds).equals(price(read_frame(part)).select(old.drop(kinds).columns))
    said = runner.invoke(app, ["report", str(tmp_path / "o"), "-r", "total-io"])
    assert said.exit_code == 0, said.output
    rows = old.height
    assert f"warning: {rows} of {whole.height} rows were written before the counter(s) discards_by_guest" in (
        said.stderr.replace("\n", " ")
    )

    # Its rows stay until the rerun replaces them: a rerun that fails loses nothing.
    def broken(job):
        raise RuntimeError("no replay today")

    failed = run_sweep(jobs, tmp_path / "o", make_executor=threads, parallel=1, job_fn=broken)
    assert failed.redone == [balloon.key] and list(failed.failed) == [balloon.key]
    assert "discards_by_guest" not in read_frame(part).columns  # the earlier rows, kept
    again = run_sweep(jobs, tmp_path / "o", make_executor=threads, parallel=1)
    assert again.redone == [balloon.key] and again.done == [balloon.key]
    assert _sorted(read_results(tmp_path / "o")).equals(whole)


def test_a_job_with_no_period_is_done_and_read_not_damaged(tmp_path):
    # A balloon job on a trace with no event has no period: its series part has no
    # rows. The sweep took that for damage and redid the job on every run, and plot
    # and read_series refused the folder ("damaged series part (no rows)").
    import numpy as np

    from cmmsim.replay.sweep import read_states
    from cmmsim.tracer.io import write_trace
    from cmmsim.tracer.schema import TraceMeta

    empty = tmp_path / "empty.parquet"
    z = np.zeros(0, np.int64)
    write_trace(empty, z, z.astype(np.uint32), z.astype(np.uint8), TraceMeta(guest_pages=8, source="test"))
    spec = SweepSpec([TraceSet("empty", (str(empty),))], [("balloon", {}), ("cmm", {})], ["4"], states_interval_ns=10)
    out = tmp_path / "o"
    first = run_sweep(build_jobs(spec), out, make_executor=threads, parallel=1)
    assert len(first.done) == 2 and not first.failed
    again = run_sweep(build_jobs(spec), out, make_executor=threads, parallel=1)
    assert len(again.skipped) == 2 and not again.redone and not again.done
    assert read_results(out)["total_io"].sum() == 0
    assert read_series(out) is None  # no period, nothing to read
    assert set(read_states(out)["strategy"]) == {"cmm"}  # cmm's sample at the start
    r = runner.invoke(app, ["plot", str(out), "-o", str(tmp_path / "plots")])
    assert r.exit_code == 0, r.output
