"""The command line: every command runs, has help, and fails cleanly on bad input."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from cmmsim.cli import app
from tests.helpers import SMALL

runner = CliRunner()


def _commands(cmd, path=()):
    yield path, cmd
    # Typer vendors its own click: recognise groups and options by duck typing.
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))


ALL = list(_commands(typer.main.get_command(app)))


def test_every_command_has_help_text():
    assert len(ALL) >= 8
    for path, cmd in ALL:
        assert (cmd.help or "").strip(), f"cmmsim {' '.join(path)} has no help text"
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output
        for param in cmd.params:
            if param.param_type_name == "option" and param.name != "help":
                assert (param.help or "").strip(), f"{path} option {param.name} has no help"


def _bad(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("cmmsim: error:") and "\n" not in err, err
    assert "Traceback" not in result.output
    return err


def test_trace_commands(tmp_path):
    out = tmp_path / "p.parquet"
    small = [arg for kv in SMALL["phased"] for arg in ("-p", kv)]
    r = runner.invoke(
        app, ["trace", "synth", "phased", "-o", str(out), "--events", "5000", "--seed", "3", "--jobs", "1", *small]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["trace", "info", str(out)])
    assert r.exit_code == 0 and "5,000" in r.output and "SET_UNUSED" in r.output
    r = runner.invoke(app, ["trace", "validate", str(out)])
    assert r.exit_code == 0 and "ok (5,000 events" in r.output
    r = runner.invoke(app, ["trace", "workloads"])
    assert r.exit_code == 0 and "kernel-compile" in r.output and "guest_mib" in r.output


def test_trace_validate_takes_a_scenario_folder(small_traces):
    # As replay and sweep do: a folder is its guests' traces.
    folder = small_traces["awm"]
    r = runner.invoke(app, ["trace", "validate", str(folder)])
    assert r.exit_code == 0, r.output
    assert r.output.count(": ok (") == len(list(folder.glob("*.parquet"))) >= 2


def test_trace_synth_shows_progress_on_stderr_and_writes_the_same_bytes(tmp_path):
    from cmmsim.progress import INTERVAL_ENV

    fast = {INTERVAL_ENV: "0"}  # a line at every chunk
    small = [arg for kv in [*SMALL["phased"], "duration_s=2"] for arg in ("-p", kv)]
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    r = runner.invoke(app, ["trace", "synth", "phased", "-o", str(a), "--seed", "3", "--jobs", "1", *small], env=fast)
    assert r.exit_code == 0, r.output
    # Bounded by duration_s: guest time simulated, all of it at the end.
    lines = [x for x in r.stderr.splitlines() if x.startswith("synth phased")]
    assert lines and "2 of 2 s simulated (100%)" in lines[-1] and lines[-1].endswith("(done)"), r.stderr
    assert "synth phased" not in r.stdout and "wrote" in r.stdout
    q = runner.invoke(
        app, ["trace", "synth", "phased", "-o", str(b), "--seed", "3", "--jobs", "1", "--quiet", *small], env=fast
    )
    assert q.exit_code == 0 and q.stderr == ""
    assert a.read_bytes() == b.read_bytes()  # progress changes no byte
    # Bounded by --events: events, here from two worker processes.
    awm = [arg for kv in SMALL["awm"] for arg in ("-p", kv)]
    r = runner.invoke(
        app, ["trace", "synth", "awm", "-o", str(tmp_path / "awm"), "--events", "6000", "--jobs", "2", *awm], env=fast
    )
    assert r.exit_code == 0, r.output
    assert "synth awm: 6,000 of 6,000 events (100%)" in r.stderr, r.stderr


def test_trace_info_takes_a_scenario_folder(small_traces):
    from cmmsim.replay.scenario import expand_inputs
    from cmmsim.tracer.io import read_meta

    folder = small_traces["awm"]
    files = expand_inputs([folder])
    r = runner.invoke(app, ["trace", "info", str(folder)])
    assert r.exit_code == 0, r.output
    # One block per guest trace, then their totals.
    assert r.output.count("events by op") == len(files) >= 2
    total = sum(read_meta(f).n_events for f in files)
    assert f"total  {len(files)} traces, {total:,} events" in r.output


def test_trace_bad_input(tmp_path):
    assert "no such file" in _bad(["trace", "info", str(tmp_path / "none.parquet")])
    (tmp_path / "junk.parquet").write_text("not parquet")
    assert "not a Parquet file" in _bad(["trace", "validate", str(tmp_path / "junk.parquet")])
    assert "unknown workload" in _bad(["trace", "synth", "nope", "-o", str(tmp_path / "x")])
    assert "unknown parameter 'zz'" in _bad(["trace", "synth", "phased", "-o", str(tmp_path / "x"), "-p", "zz=1"])


def test_replay_and_strategies(tmp_path, small_traces):
    out, states = tmp_path / "r.parquet", tmp_path / "s.parquet"
    r = runner.invoke(
        app,
        [
            "replay",
            str(small_traces["kernel-compile"]),
            "-s",
            "cmm",
            "-b",
            "10%",
            "-b",
            "1MiB",
            "-p",
            "reclaim_order=state-priority",
            "-o",
            str(out),
            "--states",
            str(states),
            "--states-interval",
            "100ms",
        ],
    )
    assert r.exit_code == 0, r.output
    df = pl.read_parquet(out)
    assert sorted(df["budget_pages"].unique().to_list()) == [256, 410]
    assert df.filter(pl.col("guest").is_null()).height == 2
    assert df["params"][0] == '{"reclaim_order": "state-priority"}'
    st = pl.read_parquet(states)
    assert set(st["state"].unique()) <= {"Sr", "Sp", "Sz", "Ur", "Uz", "Vr", "Vz", "Pr"}
    r = runner.invoke(
        app,
        [
            "replay",
            str(small_traces["awm"]),
            "-s",
            "host-lru",
            "-b",
            "50%",
            "--guests",
            "--copies",
            "2",
            "--stagger",
            "10ms",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "server0#1" in r.output
    r = runner.invoke(app, ["strategies"])
    assert r.exit_code == 0 and "reclaim_order" in r.output and "host-lru" in r.output


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-s", "nope", "-b", "10"], "unknown strategy 'nope' (known: "),
        (["-s", "cmm", "-b", "0"], "must be at least one page"),
        (["-s", "cmm", "-b", "lots"], "budget 'lots'"),
        (["-s", "cmm", "-b", "5XB"], "unknown unit"),
        (["-s", "cmm", "-b", "10", "-p", "x=1"], "unknown parameter 'x' (valid: reclaim_order)"),
        (["-s", "host-lru", "-b", "10", "-p", "replacement=fifo"], "must be one of lru, clock"),
        (["-s", "cmm", "-b", "10", "--copies", "0"], "copies must be >= 1"),
    ],
)
def test_replay_bad_input(small_traces, extra, message):
    assert message in _bad(["replay", str(small_traces["phased"]), *extra])


def test_console_script_exit_status_and_one_line(tmp_path):
    # The installed entry point, as a user runs it: exit 2, one line, no traceback.
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cmmsim.cli import main; main()",
            "replay",
            str(tmp_path / "missing.parquet"),
            "-s",
            "cmm",
            "-b",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr


def test_trace_convert_and_record_commands(tmp_path):
    from pathlib import Path

    data = Path(__file__).parent / "data"
    out = tmp_path / "c.parquet"
    r = runner.invoke(app, ["trace", "convert", str(data / "perf-default.txt"), "-o", str(out), "--guest-mib", "16"])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and "duplicate_frees" in r.output
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not a trace line\n")
    err = _bad(["trace", "convert", str(bad), "-o", str(tmp_path / "b.parquet")])
    assert "bad.txt:1: not a tracepoint line" in err
    # Lenient mode skips the bad line; with nothing else left there is nothing to convert.
    assert "no page tracepoint events" in _bad(
        ["trace", "convert", str(bad), "-o", str(tmp_path / "b.parquet"), "--lenient"]
    )
    mixed = tmp_path / "mixed.txt"
    mixed.write_text((data / "perf-default.txt").read_text() + "this is not a trace line\n")
    r = runner.invoke(app, ["trace", "convert", str(mixed), "-o", str(tmp_path / "m.parquet"), "--lenient"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "m.parquet").is_file()
    assert "give a command after --" in _bad(["trace", "record", "-o", str(tmp_path / "r.parquet")])


def test_costs_on_replay_and_report(tmp_path, small_traces):
    out = tmp_path / "r.parquet"
    r = runner.invoke(
        app,
        [
            "replay",
            str(small_traces["kernel-compile"]),
            "-s",
            "cmm",
            "-b",
            "10%",
            "--costs",
            "zvm-2006",
            "--vcpus",
            "4",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "stall_ns" in r.output and "zvm-2006" in r.output
    df = pl.read_parquet(out)
    # A synthetic trace says its guest's CPUs (kernel-compile: 2); --vcpus is for traces that do not.
    assert set(df["cost_profile"]) == {"zvm-2006"} and df.filter(pl.col("guest").is_not_null())["vcpus"][0] == 2
    mine = tmp_path / "slow.toml"
    mine.write_text('base = "zvm-2006"\nhost_read_disk_ns = 20_000_000\n')
    r = runner.invoke(
        app, ["report", str(out), "-r", "time", "-r", "ranking", "--by", "stall", "--costs", str(mine), "-f", "csv"]
    )
    assert r.exit_code == 2 and "one file per report" in r.stderr
    r = runner.invoke(app, ["report", str(out), "-r", "time", "--costs", str(mine), "-f", "csv"])
    assert r.exit_code == 0, r.output
    repriced = pl.read_csv(__import__("io").StringIO(r.output))
    assert set(repriced["cost_profile"]) == {"slow"}
    assert repriced["stall_ns"][0] > df.filter(pl.col("guest").is_null())["stall_ns"][0]
    r = runner.invoke(app, ["report", str(out), "-r", "winners", "--by", "cpu"])
    assert r.exit_code == 0 and "priced under the zvm-2006" in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--costs", "zvm"], "unknown cost profile 'zvm'"),
        (["--costs", "BAD"], "unknown cost key 'hots_ns'"),
        (["--by", "time"], "--by 'time'"),
    ],
)
def test_report_bad_costs_and_by(tmp_path, small_traces, args, message):
    out = tmp_path / "r.parquet"
    assert (
        runner.invoke(app, ["replay", str(small_traces["phased"]), "-s", "cmm", "-b", "10", "-o", str(out)]).exit_code
        == 0
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("hots_ns = 1\n")
    args = [str(bad) if a == "BAD" else a for a in args]
    assert message in _bad(["report", str(out), *args])
    if args[0] == "--costs":
        assert message in _bad(["replay", str(small_traces["phased"]), "-s", "cmm", "-b", "10", *args])
