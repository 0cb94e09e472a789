"""No silent wrong answer, nothing lost (issue 17): the library behind the hostile suite.

Bounds on every strategy parameter, trace-set identity in sweep keys, resume
that checks every part, times that never wrap, writes that leave nothing
behind, scratch files unique per process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import typing
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pytest

from cmmsim.replay import sweep as sweep_mod
from cmmsim.replay.scenario import from_arrays
from cmmsim.replay.states import C_ACCESSES
from cmmsim.replay.strategies import get_strategy, strategies
from cmmsim.replay.sweep import SweepSpec, TraceSet, build_jobs, read_results, run_sweep
from cmmsim.replay.times import T_MAX_NS, sample_times_between
from cmmsim.tracer import params as params_mod
from cmmsim.tracer.errors import KernelError, OutputError, ParamError, ResultsError
from cmmsim.tracer.io import (
    ColumnSpill,
    TraceWriter,
    atomic_output,
    check_output,
    stale_temporaries,
    write_frame,
)
from cmmsim.tracer.schema import MAX_GUEST_PAGES, TraceMeta
from tests.helpers import make_arrays, scenario_of


def threads(n):
    return ThreadPoolExecutor(max_workers=n)


def _sorted(df):
    return df.sort("job_key", "budget_pages", "guest", nulls_last=True)


# -- strategy parameters ---------------------------------------------------------------------------------
def _int_fields():
    for strat in strategies().values():
        hints = typing.get_type_hints(strat.params)
        for f in dataclasses.fields(strat.params):
            if hints[f.name] is int:
                yield strat.name, f


@pytest.mark.parametrize("strategy, f", list(_int_fields()), ids=lambda x: getattr(x, "name", x))
def test_every_int_parameter_at_its_largest_gives_whole_results_or_a_refusal(strategy, f):
    # A tiny two-guest trace; the parameter at the largest value its bounds allow.
    scn = scenario_of(
        make_arrays([0, 1, 3, 0, 4, 1] * 5, [0, 1, 2, 3, 1, 0] * 5, guest_pages=8),
        make_arrays([1, 0, 2, 0] * 5, [3, 2, 1, 0] * 5, guest_pages=4),
    )
    strat = get_strategy(strategy)
    _, hi = params_mod.bounds(f, int)
    for value in sorted({hi, hi // 2, 1 << 40, 1 << 31}):
        if value > hi:
            continue
        try:
            p = strat.parse_params({f.name: value})
            res = strat.run(scn, np.array([2, 6]), p)
        except ParamError:
            continue  # refused, with a message: fine
        want = np.bincount(scn.guest[scn.op <= 1], minlength=scn.n_guests)
        assert (res.counters[:, :, C_ACCESSES] == want).all(), (strategy, f.name, value)


@pytest.mark.parametrize("strategy, f", list(_int_fields()), ids=lambda x: getattr(x, "name", x))
def test_every_int_parameter_refuses_past_its_bound(strategy, f):
    strat = get_strategy(strategy)
    _, hi = params_mod.bounds(f, int)
    with pytest.raises(ParamError, match=f.name):
        strat.parse_params([f"{f.name}={hi + 1}"])


def test_unit_bounds_follow_the_name():
    @dataclasses.dataclass(frozen=True)
    class P:
        file_pages: int = 1
        guest_mib: int = 1
        delay_ns: int = 1
        capped: int = dataclasses.field(default=1, metadata={"max": 10})
        ratio: float = 0.5

    fields = {f.name: f for f in dataclasses.fields(P)}
    assert params_mod.bounds(fields["delay_ns"], int) == (params_mod.INT64_MIN, params_mod.INT64_MAX)
    assert params_mod.bounds(fields["capped"], int)[1] == 10
    assert params_mod.parse(P, ["file_pages=" + str(MAX_GUEST_PAGES)], what="t").file_pages
    for bad, name in (
        (f"file_pages={MAX_GUEST_PAGES + 1}", "file_pages"),
        (f"guest_mib={(MAX_GUEST_PAGES >> 8) + 1}", "guest_mib"),
        (f"delay_ns={1 << 63}", "delay_ns"),
        ("capped=11", "capped"),
        ("ratio=nan", "ratio"),
        ("ratio=inf", "ratio"),
        ("delay_ns=1e400", "delay_ns"),
    ):
        with pytest.raises(ParamError, match=name):
            params_mod.parse(P, [bad], what="t")
    with pytest.raises(ParamError, match="capped"):
        params_mod.parse(P, {"capped": 11}, what="t")


def test_a_kernel_that_counts_short_raises_instead_of_returning_zeros(monkeypatch):
    strat = get_strategy("cmm")
    scn = scenario_of(make_arrays([0, 1, 0], [0, 1, 0]))
    real = strat.runner

    def zeros(*args, **kwargs):
        res = real(*args, **kwargs)
        res.counters[:] = 0
        return res

    monkeypatch.setattr(type(strat), "runner", property(lambda self: zeros), raising=False)
    with pytest.raises(KernelError, match="counted 0 accesses"):
        strat.run(scn, np.array([1]), strat.parse_params({}))


# -- times ------------------------------------------------------------------------------------------------
def test_copies_near_the_end_of_time_are_refused_not_wrapped():
    late = make_arrays([0, 1], [0, 1], t_ns=[T_MAX_NS - 100, T_MAX_NS - 10])
    from_arrays([("g", late)], copies=2, stagger_ns=10)  # exactly at the end: fine
    with pytest.raises(ParamError, match="passes 2\\^63"):
        from_arrays([("g", late)], copies=2, stagger_ns=11)
    with pytest.raises(ParamError, match="passes 2\\^63"):
        from_arrays([("g", late)], copies=3, stagger_ns=1 << 62)


def test_sample_times_near_the_end_of_time_do_not_wrap():
    at = sample_times_between((T_MAX_NS - 25, T_MAX_NS - 2), 10)
    assert at.tolist() == [T_MAX_NS - 25, T_MAX_NS - 15, T_MAX_NS - 5, T_MAX_NS]
    assert (np.diff(at) > 0).all()


def test_states_of_a_trace_ending_near_2_63(tmp_path):
    from cmmsim.replay.api import replay_full

    arr = make_arrays([0, 1, 0, 1], [0, 1, 2, 3], t_ns=[T_MAX_NS - 3_000] + [T_MAX_NS - 1] * 3)
    scn = from_arrays([("g", arr)])
    res = replay_full(scn, "cmm", [2], states_interval_ns=1_000)
    per_sample = res.states.group_by("t_ns").agg(pl.col("pages").sum())
    assert sorted(per_sample["t_ns"]) == [T_MAX_NS - 3_000, T_MAX_NS - 2_000, T_MAX_NS - 1_000, T_MAX_NS]
    assert (per_sample["pages"] == 4).all()
    assert res.states["t_ns"].min() == T_MAX_NS - 3_000


# -- sweeps ----------------------------------------------------------------------------------------------
@pytest.fixture
def twins(tmp_path, small_traces):
    """Two files of identical content under different names."""
    a = tmp_path / "good.parquet"
    shutil.copy(small_traces["phased"], a)
    b = tmp_path / "same.parquet"
    shutil.copy(small_traces["phased"], b)
    return a, b


def test_identical_trace_sets_are_two_sets_of_jobs(tmp_path, twins):
    spec = SweepSpec(sweep_mod.trace_sets_from_inputs([str(p) for p in twins]), [("cmm", {})], ["10%"])
    jobs = build_jobs(spec)
    assert len({j.key for j in jobs}) == 2
    out = run_sweep(jobs, tmp_path / "o", make_executor=threads, parallel=2)
    assert len(out.done) == 2
    df = read_results(tmp_path / "o")
    assert sorted(df["trace_set"].unique()) == ["good", "same"]


def test_a_folder_of_an_older_key_format_is_refused(tmp_path, twins):
    spec = SweepSpec([TraceSet("g", (str(twins[0]),))], [("cmm", {})], ["10%"])
    jobs = build_jobs(spec)
    run_sweep(jobs, tmp_path / "o", make_executor=threads, parallel=1)
    manifest = tmp_path / "o" / "sweep.json"
    doc = json.loads(manifest.read_text())
    del doc["key_format"]
    manifest.write_text(json.dumps(doc))
    with pytest.raises(ParamError, match="earlier cmmsim .*key format 1"):
        run_sweep(jobs, tmp_path / "o", make_executor=threads, parallel=1)
    assert read_results(tmp_path / "o").height  # its results still read


def _damage(path, how):
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "flipped":
        b = bytearray(raw)
        for i in range(len(b) // 4, len(b) // 2):
            b[i] ^= 0xA5
        path.write_bytes(bytes(b))
    elif how == "zero-rows":
        write_frame(pl.read_parquet(path).head(0), path)
    elif how == "other-job":
        other = sorted(p for p in path.parent.glob("*.parquet") if p != path)[0]
        shutil.copy(other, path)
    elif how == "missing":
        path.unlink()


#: Every damage to every kind of file but a missing part: a job without its part was
#: never done, which every resume covers (so that case is left out, not skipped).
DAMAGES = [
    (sub, how)
    for sub in ("parts", "states", "series")
    for how in ("truncated", "empty", "flipped", "zero-rows", "other-job", "missing")
    if (sub, how) != ("parts", "missing")
]


@pytest.mark.parametrize(("sub", "how"), DAMAGES)
def test_resume_redoes_a_damaged_job(tmp_path, small_traces, sub, how):
    spec = SweepSpec(
        [TraceSet("p", (str(small_traces["phased"]),))],
        [
            ("cmm", {}),
            ("host-lru", {}),
            ("balloon", {"period_ns": [100_000_000]}),
            ("balloon+cmm", {"period_ns": [100_000_000]}),
        ],
        ["10%", "40%"],
        states_interval_ns=100_000_000,
    )
    jobs = build_jobs(spec)
    run_sweep(jobs, tmp_path / "o", make_executor=threads, parallel=2)
    whole = _sorted(read_results(tmp_path / "o"))
    victim = sorted((tmp_path / "o" / sub).glob("*.parquet"))[0]
    key = victim.name.removesuffix(".parquet")
    _damage(victim, how)
    if sub == "parts":  # a damaged part (none missing: see DAMAGES)
        with pytest.raises(ResultsError, match=victim.name):
            read_results(tmp_path / "o")
    again = run_sweep(jobs, tmp_path / "o", make_executor=threads, parallel=2)
    assert again.redone == [key] and again.done == [key]
    assert _sorted(read_results(tmp_path / "o")).equals(whole)


def test_stale_temporary_files_go_live_ones_stay(tmp_path, small_traces):
    spec = SweepSpec([TraceSet("p", (str(small_traces["phased"]),))], [("cmm", {})], ["10%"])
    jobs = build_jobs(spec)
    out = tmp_path / "o"
    run_sweep(jobs, out, make_executor=threads, parallel=1)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = out / "parts" / f".x.parquet.{dead}.abcdefgh.tmp"
    stale.write_bytes(b"")
    live = out / "parts" / f".y.parquet.{os.getppid()}.abcdefgh.tmp"
    live.write_bytes(b"")
    assert stale_temporaries(out / "parts") == [stale]
    run_sweep(jobs, out, make_executor=threads, parallel=1)
    assert not stale.exists() and live.exists()


def test_ctrl_c_during_a_sweep_leaves_no_temporary_file(tmp_path, small_traces, monkeypatch):
    spec = SweepSpec([TraceSet("p", (str(small_traces["phased"]),))], [("cmm", {}), ("host-lru", {})], ["10%"])
    jobs = build_jobs(spec)
    real = sweep_mod.write_frame

    def interrupted(df, path, *metadata):
        # Ctrl-C after the temporary file is made, before its write is guarded.
        (path.parent / f".{path.name}.{os.getpid()}.zzzzzzzz.tmp").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_mod, "write_frame", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(jobs, tmp_path / "o", make_executor=threads, parallel=1)
    monkeypatch.setattr(sweep_mod, "write_frame", real)
    assert not [p for p in (tmp_path / "o").rglob(".*") if p.is_file()]


def test_ctrl_c_in_a_command_is_one_line_and_status_130(capsys):
    import typer

    from cmmsim.cli_common import cli_errors

    @cli_errors
    def command():
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as stop:
        command()
    assert stop.value.exit_code == 130
    assert capsys.readouterr().err == "cmmsim: interrupted\n"


# -- writes ------------------------------------------------------------------------------------------------
def test_atomic_output_leaves_nothing_on_ctrl_c(tmp_path):
    target = tmp_path / "new" / "deeper" / "r.parquet"
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert not (tmp_path / "new").exists()


def test_a_write_the_disk_refuses_becomes_one_error_naming_the_target(tmp_path):
    target = tmp_path / "r.parquet"
    with pytest.raises(OutputError, match="cannot write .*r.parquet: No space left"), atomic_output(target):
        raise OSError(28, "No space left on device", "somewhere")
    assert os.listdir(tmp_path) == []


def test_trace_writer_failing_at_its_footer_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "t.parquet"
    w = TraceWriter(target, 4)
    with pytest.raises(OutputError, match="No space left"):
        with w:
            w.write(np.arange(3, dtype=np.int64), np.zeros(3, np.uint32), np.zeros(3, np.uint8))
            w.finish(TraceMeta(guest_pages=4, source="test"))

            def full():
                raise OSError(28, "No space left on device")

            monkeypatch.setattr(w._writer, "close", full)
    assert os.listdir(tmp_path) == []


def test_check_output_refuses_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    for path, folder, why in (
        (tmp_path / "file" / "x.parquet", False, "is not a folder"),
        (tmp_path / "folder", False, "is a folder"),
        (tmp_path / "file", True, "not a folder"),
        ("/proc/cmmsim-probe/x", False, "cannot write"),
    ):
        with pytest.raises(OutputError, match=why):
            check_output(path, folder=folder)
    assert check_output(tmp_path / "new" / "deep" / "x.parquet")
    assert sorted(os.listdir(tmp_path)) == ["file", "folder"]


def test_spill_files_are_unique_per_use(tmp_path):
    base = tmp_path / ".out.parquet.body"
    with ColumnSpill(base) as a, ColumnSpill(base) as b:
        assert a.path != b.path and str(os.getpid()) in a.path.name
        a.write(np.arange(2, dtype=np.int64), np.zeros(2, np.uint32), np.zeros(2, np.uint8))
        b.write(np.arange(3, dtype=np.int64), np.ones(3, np.uint32), np.ones(3, np.uint8))
        assert [len(t) for t, _, _ in a.batches()] == [2]
        assert [int(p[0]) for _, p, _ in b.batches()] == [1]
    assert os.listdir(tmp_path) == []
