"""Hostile input: every command x every class of bad input or failing output (issue 17).

Each case asserts what a user must see: exit status 2, one line on stderr
that names the thing at fault, no traceback, and nothing left at the final
output path. Commands run in-process (CliRunner), so the suite stays fast;
the full-disk and read-only cases mount small tmpfs folders where root may,
and are skipped (with the reason) elsewhere.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cmmsim.cli import app
from cmmsim.replay.api import replay_full
from cmmsim.replay.scenario import load
from cmmsim.replay.shards import df_sampled_curve, miss_curve
from cmmsim.replay.sweep import SweepSpec, TraceSet, build_jobs, run_sweep
from cmmsim.tracer.errors import show_path
from cmmsim.tracer.io import write_frame
from cmmsim.tracer.synth import synthesize
from tests.helpers import SMALL

runner = CliRunner()
DATA = Path(__file__).parent / "data"
#: A path that is not valid UTF-8 (a byte 0xff in its name).
NON_UTF8 = os.fsdecode(b"caf\xff")


@pytest.fixture(autouse=True)
def _no_progress_lines(monkeypatch):
    """No plain progress line within a run: a command slowed by a cold numba cache or a
    busy machine would print one before its error, and these tests count the error's
    lines (progress has tests of its own)."""
    from cmmsim.progress import INTERVAL_ENV

    monkeypatch.setenv(INTERVAL_ENV, "1e9")


def run_cli(args: list[str]):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line(result, names: str) -> str:
    """Exit 2, one stderr line starting ``cmmsim: error:`` that names ``names``, no traceback."""
    err = result.stderr
    assert result.exit_code == 2, (result.exit_code, result.output, repr(result.exception))
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert err.count("\n") == 1 and err.startswith("cmmsim: error: "), err
    assert names in err, (names, err)
    return err


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []


# -- what the cases read ------------------------------------------------------------------------------
def _retag(src: Path, dest: Path, **meta_json) -> Path:
    """``src`` rewritten with some cmmsim metadata values replaced (raw JSON text)."""
    table = pq.read_table(src)
    # A streamed trace keeps its metadata in the footer, not the Arrow schema.
    md = dict(table.schema.metadata or {}) | dict(pq.ParquetFile(src).metadata.metadata or {})
    md.pop(b"ARROW:schema", None)
    for key, raw in meta_json.items():
        md[f"cmmsim.{key}".encode()] = raw.encode()
    pq.write_table(table.replace_schema_metadata(md), dest)
    return dest


def _rows(src: Path, dest: Path, **columns) -> Path:
    """``src`` with some columns replaced (pyarrow arrays), metadata kept."""
    table = pq.read_table(src)
    for name, arr in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, arr)
    pq.write_table(table, dest)
    return dest


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Good files of every kind, and bad ones of every class."""
    d = tmp_path_factory.mktemp("hostile")
    good = d / "good.parquet"
    synthesize("phased", good, seed=3, events=3000, params=SMALL["phased"])
    scn = load([good])
    res = replay_full(scn, "cmm", ["10%", "50%"], states_interval_ns=50_000_000)
    write_frame(res.results, d / "results.parquet")
    write_frame(res.states, d / "states.parquet")
    series = replay_full(scn, "balloon", ["50%"], {"period_ns": 50_000_000}).series
    write_frame(series, d / "series.parquet")
    write_frame(df_sampled_curve(miss_curve([good], ["10%", "50%"])), d / "curve.parquet")
    spec = SweepSpec([TraceSet("good", (str(good),))], [("cmm", {}), ("host-lru", {})], ["10%"])
    run_sweep(build_jobs(spec), d / "sweep", make_executor=lambda n: ThreadPoolExecutor(n), parallel=2)

    rng = random.Random(17)
    raw = good.read_bytes()
    bad: dict[str, Path] = {}
    bad["missing"] = d / "missing.parquet"
    (d / "empty-folder").mkdir()
    bad["folder"] = d / "empty-folder"
    bad["empty"] = d / "empty.parquet"
    bad["empty"].write_bytes(b"")
    bad["random"] = d / "random.parquet"
    bad["random"].write_bytes(rng.randbytes(5000))
    bad["truncated"] = d / "truncated.parquet"
    bad["truncated"].write_bytes(raw[: len(raw) // 2])
    bad["text"] = d / "perf.txt"
    shutil.copy(DATA / "perf-default.txt", bad["text"])
    bad["csv"] = d / "table.csv"
    bad["csv"].write_text("t_ns,pfn,op\n1,2,0\n")
    scrambled = bytearray(raw)
    for i in range(len(raw) // 5, len(raw) // 2):
        scrambled[i] = rng.randrange(256)
    bad["scrambled"] = d / "scrambled.parquet"
    bad["scrambled"].write_bytes(bytes(scrambled))
    bad["foreign"] = d / "foreign.parquet"
    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(bad["foreign"])
    bad["non-utf8-missing"] = d / NON_UTF8
    return d, good, bad


#: Classes of bad input every command that reads a file meets.
COMMON = [
    "missing",
    "folder",
    "empty",
    "random",
    "truncated",
    "text",
    "csv",
    "scrambled",
    "foreign",
    "non-utf8-missing",
]


@pytest.fixture(scope="module")
def bad_traces(made):
    d, good, bad = made
    out = {k: bad[k] for k in COMMON}
    out["results-as-trace"] = d / "results.parquet"
    out["guest-pages-abc"] = _retag(good, d / "gp-abc.parquet", guest_pages='"abc"')
    out["guest-pages-0"] = _retag(good, d / "gp-0.parquet", guest_pages="0")
    out["guest-pages-huge"] = _retag(good, d / "gp-huge.parquet", guest_pages=str(1 << 40))
    out["schema-version-99"] = _retag(good, d / "v99.parquet", schema_version="99")
    out["metadata-not-json"] = _retag(good, d / "notjson.parquet", params="{oops")
    n = pq.read_metadata(good).num_rows
    out["pfn-beyond-guest"] = _rows(good, d / "pfn.parquet", pfn=pa.array(np.full(n, 1 << 30, np.uint32)))
    out["op-42"] = _rows(good, d / "op42.parquet", op=pa.array(np.full(n, 42, np.uint8)))
    out["time-goes-back"] = _rows(good, d / "back.parquet", t_ns=pa.array(np.arange(n, 0, -1, dtype=np.int64)))
    out["null-pfn"] = _rows(good, d / "nulls.parquet", pfn=pa.array([None] * n, pa.uint32()))
    out["negative-time"] = _rows(good, d / "neg.parquet", t_ns=pa.array(np.arange(-n, 0, dtype=np.int64)))
    return out


TRACE_CLASSES = [
    *COMMON,
    "results-as-trace",
    "guest-pages-abc",
    "guest-pages-0",
    "guest-pages-huge",
    "schema-version-99",
    "metadata-not-json",
    "pfn-beyond-guest",
    "op-42",
    "time-goes-back",
    "null-pfn",
    "negative-time",
]

#: Every command that reads traces; {T}: the trace, {O}: an output file, {D}: an output folder.
TRACE_COMMANDS = {
    "trace info": ["trace", "info", "{T}"],
    "trace validate": ["trace", "validate", "{T}"],
    "replay": ["replay", "{T}", "-s", "cmm", "-b", "10", "-o", "{O}"],
    "replay --states": ["replay", "{T}", "-s", "cmm", "-b", "10", "--states", "{O}"],
    "replay --stream": ["replay", "--stream", "{T}", "-s", "cmm", "-b", "10", "-o", "{O}"],
    "replay balloon": ["replay", "{T}", "-s", "balloon", "-b", "10", "--series", "{O}"],
    "mrc": ["mrc", "{T}", "-b", "10", "-o", "{O}"],
    "mrc --stream": ["mrc", "--stream", "{T}", "-b", "10", "-o", "{O}"],
    "sweep": ["sweep", "{T}", "-s", "cmm", "-b", "10", "-o", "{D}"],
}


def _fill(args, **subst):
    return [str(subst.get(a.strip("{}"), a)) if a.startswith("{") else a for a in args]


@pytest.mark.parametrize("klass", TRACE_CLASSES)
@pytest.mark.parametrize("command", list(TRACE_COMMANDS))
def test_bad_trace(command, klass, bad_traces, tmp_path):
    trace = bad_traces[klass]
    out, folder = tmp_path / "out.parquet", tmp_path / "out-folder"
    result = run_cli(_fill(TRACE_COMMANDS[command], T=trace, O=out, D=folder))
    assert_one_line(result, show_path(trace.name))
    assert not out.exists() and not folder.exists()


@pytest.mark.parametrize("command", ["trace info", "trace validate", "replay", "mrc --stream"])
def test_a_good_trace_at_a_non_utf8_path_is_read(command, made, tmp_path):
    _, good, _ = made
    trace = tmp_path / NON_UTF8
    shutil.copy(good, trace)
    out = tmp_path / f"{NON_UTF8}-out.parquet"
    result = run_cli(_fill(TRACE_COMMANDS[command], T=trace, O=out, D=tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert out.exists() == ("-o" in TRACE_COMMANDS[command])


# -- results, states and series files -------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_results(made):
    d, good, bad = made
    out = {k: bad[k] for k in COMMON}
    results = pl.read_parquet(d / "results.parquet")
    out["trace-as-results"] = good
    out["mrc-output"] = d / "curve.parquet"
    out["states-as-results"] = d / "states.parquet"
    out["older-layout"] = d / "old.parquet"
    results.drop("total_io", "accesses").write_parquet(out["older-layout"])
    out["zero-rows"] = d / "zero.parquet"
    results.head(0).write_parquet(out["zero-rows"])
    out["not-a-sweep-folder"] = d / "not-a-sweep"
    (out["not-a-sweep-folder"] / "parts").mkdir(parents=True)
    shutil.copy(d / "results.parquet", out["not-a-sweep-folder"] / "parts" / "x.parquet")
    for name, damage in (("truncated-part", "truncate"), ("flipped-part", "flip"), ("foreign-part", "foreign")):
        sweep = d / f"sweep-{name}"
        shutil.copytree(d / "sweep", sweep)
        part = sorted((sweep / "parts").glob("*.parquet"))[0]
        raw = part.read_bytes()
        if damage == "truncate":
            part.write_bytes(raw[: len(raw) // 2])
        elif damage == "flip":
            b = bytearray(raw)
            for i in range(len(b) // 4, len(b) // 2):
                b[i] ^= 0x5A
            part.write_bytes(bytes(b))
        else:
            other = sorted((sweep / "parts").glob("*.parquet"))[1]
            part.write_bytes(other.read_bytes())
        out[name] = sweep
        out[f"{name}:names"] = part
    return out


RESULT_CLASSES = [
    *COMMON,
    "trace-as-results",
    "mrc-output",
    "states-as-results",
    "older-layout",
    "zero-rows",
    "not-a-sweep-folder",
    "truncated-part",
    "flipped-part",
    "foreign-part",
]

RESULT_COMMANDS = {
    "report": ["report", "{R}"],
    "report csv": ["report", "{R}", "-f", "csv", "-r", "total-io", "-o", "{O}"],
    "report parquet": ["report", "{R}", "-f", "parquet", "-r", "total-io", "-o", "{O}"],
    "plot": ["plot", "{R}", "-o", "{D}"],
}


@pytest.mark.parametrize("klass", RESULT_CLASSES)
@pytest.mark.parametrize("command", list(RESULT_COMMANDS))
def test_bad_results(command, klass, bad_results, tmp_path):
    path = bad_results[klass]
    names = bad_results.get(f"{klass}:names", path)
    out, folder = tmp_path / "out.csv", tmp_path / "plots"
    result = run_cli(_fill(RESULT_COMMANDS[command], R=path, O=out, D=folder))
    if (command, klass) == ("plot", "mrc-output"):
        # ``cmmsim plot`` recognizes mrc output: a miss-ratio curve and a histogram.
        assert result.exit_code == 0, result.output
        assert [p.name for p in files_under(folder)] == ["miss_ratio_vs_budget.png", "reuse_distance_histogram.png"]
        return
    assert_one_line(result, show_path(names.name))
    assert not out.exists() and not files_under(folder)


SERIES_CLASSES = [*COMMON, "trace-as-results", "mrc-output", "zero-rows"]


@pytest.mark.parametrize("klass", SERIES_CLASSES)
@pytest.mark.parametrize("option", ["--states", "--balloon"])
def test_bad_states_or_series_given_to_plot(option, klass, bad_results, made, tmp_path):
    d, _, _ = made
    path = bad_results[klass]
    result = run_cli(["plot", d / "results.parquet", option, path, "-o", tmp_path / "plots"])
    assert_one_line(result, show_path(path.name))
    assert not files_under(tmp_path / "plots")


def test_stray_parquet_in_a_sweep_folder_is_not_read(made, tmp_path):
    d, _, _ = made
    sweep = tmp_path / "sweep"
    shutil.copytree(d / "sweep", sweep)
    before = run_cli(["report", sweep, "-f", "csv", "-r", "total-io"])
    stray = sweep / "parts" / "stray.parquet"
    pl.read_parquet(d / "results.parquet").with_columns(
        pl.lit("intruder").alias("trace_set"), pl.lit("x").alias("job_key")
    ).write_parquet(stray)
    after = run_cli(["report", sweep, "-f", "csv", "-r", "total-io"])
    assert before.exit_code == after.exit_code == 0
    assert after.stdout == before.stdout and "intruder" not in after.stdout
    assert "stray.parquet" in after.stderr and "not read" in after.stderr


def test_a_report_says_which_jobs_of_its_sweep_have_no_rows(made, tmp_path):
    # A job that failed (or has not run yet) has no part: the winners were computed
    # without it and nothing said so. Now a warning names it; the report still runs.
    d, _, _ = made
    sweep = tmp_path / "sweep"
    shutil.copytree(d / "sweep", sweep)
    jobs = json.loads((sweep / "sweep.json").read_text())["jobs"]
    cmm = next(j for j in jobs if j["strategy"] == "cmm")
    (sweep / "parts" / f"{cmm['key']}.parquet").unlink()
    failed = {
        "key": cmm["key"],
        "trace_set": "good",
        "strategy": "cmm",
        "params": {},
        "error": "MemoryError: boom\nsecond line",
    }
    (sweep / "failed" / f"{cmm['key']}.json").write_text(json.dumps(failed))
    result = run_cli(["report", sweep, "-f", "csv", "-r", "winners"])
    assert result.exit_code == 0 and "host-lru" in result.stdout
    warning = result.stderr.strip()
    assert "\n" not in warning and warning.startswith("cmmsim: warning: 1 of 2 jobs")
    assert "failed" in warning and "good" in warning and "cmm" in warning and "boom" in warning
    (sweep / "failed" / f"{cmm['key']}.json").unlink()  # not run yet (an interrupted sweep)
    result = run_cli(["report", sweep, "-f", "csv", "-r", "winners"])
    assert "1 of 2 jobs" in result.stderr and "not run yet" in result.stderr
    whole = run_cli(["report", d / "sweep", "-f", "csv", "-r", "winners"])
    assert whole.exit_code == 0 and "warning" not in whole.stderr


# -- outputs that cannot be written ----------------------------------------------------------------------
def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """Folders that refuse writes: read-only, and full (tmpfs where root may mount one)."""
    d = tmp_path_factory.mktemp("places")
    found: dict[str, Path | str] = {}
    ro = d / "read-only"
    if _mount_tmpfs(ro, "ro,size=1M"):
        found["read-only"] = ro
    elif os.geteuid() != 0:
        ro.mkdir(exist_ok=True)
        ro.chmod(0o555)
        found["read-only"] = ro
    else:
        found["read-only"] = "root cannot mount a read-only tmpfs here (and ignores modes)"
    full = d / "full"
    if _mount_tmpfs(full, "size=3M"):
        with open(full / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        found["full-disk"] = full
    else:
        found["full-disk"] = "needs root allowed to mount a small tmpfs"
    yield found
    for key in ("read-only", "full-disk"):
        if isinstance(found[key], Path) and os.path.ismount(found[key]):
            subprocess.run(["umount", str(found[key])], check=False)


#: Commands that write: {O} a file, {D} a folder; (command args, output is a folder).
OUTPUT_COMMANDS = {
    "trace synth": (
        ["trace", "synth", "phased", "-o", "{O}", "--events", "2000", *[a for p in SMALL["phased"] for a in ("-p", p)]],
        False,
    ),
    "trace synth awm": (
        ["trace", "synth", "awm", "-o", "{D}", "--events", "2000", *[a for p in SMALL["awm"] for a in ("-p", p)]],
        True,
    ),
    "trace convert": (["trace", "convert", str(DATA / "perf-default.txt"), "-o", "{O}", "--guest-mib", "16"], False),
    "replay -o": (["replay", "{T}", "-s", "cmm", "-b", "10", "-o", "{O}"], False),
    "replay --states": (["replay", "{T}", "-s", "cmm", "-b", "10", "--states", "{O}"], False),
    "replay --series": (["replay", "{T}", "-s", "balloon", "-b", "10", "--series", "{O}"], False),
    "mrc": (["mrc", "{T}", "-b", "10", "-o", "{O}"], False),
    "report csv": (["report", "{R}", "-f", "csv", "-r", "total-io", "-o", "{O}"], False),
    "report parquet": (["report", "{R}", "-f", "parquet", "-r", "total-io", "-o", "{O}"], False),
    "plot": (["plot", "{R}", "-o", "{D}"], True),
    "sweep": (["sweep", "{T}", "-s", "cmm", "-b", "10", "-o", "{D}"], True),
    "demo": (["demo", "-o", "{D}", "--jobs", "1"], True),
}
OUTPUT_CLASSES = ["under-a-file", "existing-other-kind", "proc", "read-only", "full-disk"]


@pytest.mark.parametrize("klass", OUTPUT_CLASSES)
@pytest.mark.parametrize("command", list(OUTPUT_COMMANDS))
def test_unwritable_output(command, klass, made, places, tmp_path):
    d, good, _ = made
    args, is_folder = OUTPUT_COMMANDS[command]
    name = "out-folder" if is_folder else "out.parquet"
    if klass == "under-a-file":
        (tmp_path / "a-file").write_text("x")
        target = tmp_path / "a-file" / name
    elif klass == "existing-other-kind":
        target = tmp_path / name
        if is_folder:
            target.write_text("keep me")
        else:
            target.mkdir()
            (target / "inside").write_text("keep me")
    elif klass == "proc":
        target = Path("/proc") / f"cmmsim-{name}"
    else:
        place = places[klass]
        if not isinstance(place, Path):
            pytest.skip(place)
        target = place / name
    parent = target.parent
    before = sorted(os.listdir(parent)) if klass != "proc" and parent.is_dir() else None
    result = run_cli(_fill(args, T=good, R=d / "results.parquet", O=target, D=target))
    # The converter's scratch file beside the output may be what the disk refuses first.
    assert_one_line(result, show_path(parent if command == "trace convert" else target))
    if klass == "existing-other-kind":
        kept = target.read_text() if is_folder else (target / "inside").read_text()
        assert kept == "keep me"
    else:
        assert not target.exists()
    if before is not None:
        assert sorted(os.listdir(target.parent)) == before  # no temporary file left


# -- numbers out of range, and requests that would be ignored -------------------------------------------
def _int_params():
    """(strategy, parameter) for every integer parameter of every registered strategy."""
    import dataclasses
    import typing

    from cmmsim.replay.strategies import strategies

    for strat in strategies().values():
        hints = typing.get_type_hints(strat.params)
        for f in dataclasses.fields(strat.params):
            if hints[f.name] is int:
                yield strat.name, f.name


INT_PARAMS = list(_int_params())


@pytest.mark.parametrize("value", [str(1 << 63), "1" + "0" * 30, "-" + str(1 << 63) + "1"])
@pytest.mark.parametrize("strategy, name", INT_PARAMS)
def test_every_int_parameter_refuses_numbers_past_int64(strategy, name, value, made, tmp_path):
    _, good, _ = made
    result = run_cli(
        ["replay", good, "-s", strategy, "-b", "10", "-p", f"{name}={value}", "-o", tmp_path / "r.parquet"]
    )
    assert_one_line(result, name)
    assert not (tmp_path / "r.parquet").exists()


NUMBER_CASES = {
    "budget past int64": (["replay", "{T}", "-s", "cmm", "-b", "9" * 23], "budget"),
    "percent past int64": (["replay", "{T}", "-s", "cmm", "-b", "9" * 20 + "%"], "budget"),
    "budget past float": (["replay", "{T}", "-s", "cmm", "-b", "9" * 400 + "MiB"], "budget"),
    "copies past guests": (["replay", "{T}", "-s", "cmm", "-b", "10", "--copies", "9" * 20], "too many guests"),
    "stagger past 2^63": (
        ["replay", "{T}", "-s", "cmm", "-b", "10", "--copies", "2", "--stagger", str((1 << 63) - 1)],
        "--stagger",
    ),
    "stagger past int64": (["replay", "{T}", "-s", "cmm", "-b", "10", "--stagger", "9" * 20], "duration"),
    "stream stagger past 2^63": (
        ["replay", "--stream", "{T}", "-s", "cmm", "-b", "10", "--copies", "3", "--stagger", str(1 << 62)],
        "--stagger",
    ),
    "states interval 0": (
        ["replay", "{T}", "-s", "cmm", "-b", "10", "--states", "{O}", "--states-interval", "0"],
        "--states-interval",
    ),
    "states interval past int64": (
        ["replay", "{T}", "-s", "cmm", "-b", "10", "--states", "{O}", "--states-interval", "9" * 20],
        "duration",
    ),
    "too many samples": (
        ["replay", "{T}", "-s", "cmm", "-b", "10", "--states", "{O}", "--states-interval", "1ns"],
        "samples",
    ),
    "batch rows 0": (["replay", "--stream", "{T}", "-s", "cmm", "-b", "10", "--batch-rows", "0"], "--batch-rows"),
    "batch rows huge": (
        ["replay", "--stream", "{T}", "-s", "cmm", "-b", "10", "--batch-rows", "9" * 20],
        "--batch-rows",
    ),
    "balloon samples": (
        ["replay", "{T}", "-s", "balloon", "-b", "10", "-p", "sample_pages=4294967296"],
        "sample_pages",
    ),
    "balloon period past the end of time": (
        [
            "replay",
            "{T}",
            "-s",
            "balloon",
            "-b",
            "10",
            "-p",
            "rate_pages_per_s=1",
            "-p",
            f"period_ns={(1 << 62) * 2 - 10}",
        ],
        "period_ns",
    ),
    "fpr delay past the end of time": (
        ["replay", "{T}", "-s", "free-page-reporting", "-b", "10", "-p", f"delay_ns={(1 << 63) - 1}"],
        "delay_ns",
    ),
    "float param infinite": (["replay", "{T}", "-s", "balloon", "-b", "10", "-p", "slack=1e400"], "slack"),
    "mrc salts": (["mrc", "{T}", "-b", "10", "--sample-rate", "0.5", "--salts", "9" * 20], "salts"),
    "mrc rate": (["mrc", "{T}", "-b", "10", "--sample-rate", "1e400"], "sample rate"),
    "mrc budget": (["mrc", "{T}", "-b", "9" * 23], "budget"),
    "mrc copies": (["mrc", "{T}", "-b", "10", "--copies", "9" * 20], "too many guests"),
    "synth seed -1": (["trace", "synth", "phased", "-o", "{O}", "--seed", "-1"], "--seed"),
    "synth seed past int64": (["trace", "synth", "phased", "-o", "{O}", "--seed", str(1 << 64)], "--seed"),
    "synth events 0": (["trace", "synth", "phased", "-o", "{O}", "--events", "0"], "--events"),
    "synth guest memory": (["trace", "synth", "phased", "-o", "{O}", "-p", "guest_mib=99999999999"], "guest_mib"),
    "synth pages past a guest": (
        ["trace", "synth", "phased", "-o", "{O}", "-p", f"file_pages={1 << 40}"],
        "file_pages",
    ),
    "convert guest memory": (
        ["trace", "convert", str(DATA / "perf-default.txt"), "-o", "{O}", "--guest-mib", "99999999999999"],
        "--guest-mib",
    ),
    "sweep budget": (["sweep", "{T}", "-b", "9" * 23, "-o", "{D}"], "budget"),
    "sweep budget abc": (["sweep", "{T}", "-b", "abc", "-o", "{D}"], "budget 'abc'"),
    "sweep empty grid": (["sweep", "{T}", "-p", "cmm:reclaim_order=,", "-b", "10", "-o", "{D}"], "gives no value"),
    "sweep grid number": (
        ["sweep", "{T}", "-p", f"balloon:sample_pages=1,{1 << 40}", "-b", "10", "-o", "{D}"],
        "sample_pages",
    ),
    "sweep interval 0": (
        ["sweep", "{T}", "-s", "cmm", "-b", "10", "--states-interval", "0", "-o", "{D}"],
        "--states-interval",
    ),
    "sweep jobs 0": (["sweep", "{T}", "-s", "cmm", "-b", "10", "--jobs", "0", "-o", "{D}"], "--jobs"),
    "sweep copies": (["sweep", "--sweep", "{TOML}", "-o", "{D}"], "copies"),
    "sweep jobs huge": (["sweep", "{T}", "-s", "cmm", "-b", "10", "--jobs", "9" * 20, "-o", "{D}"], "--jobs"),
    "demo jobs 0": (["demo", "--jobs", "0", "-o", "{D}"], "--jobs"),
}


IGNORED_CASES = {
    "interval without --states": (
        ["replay", "{T}", "-s", "cmm", "-b", "10", "--states-interval", "1s"],
        "needs --states",
    ),
    "series from a strategy without one": (
        ["replay", "{T}", "-s", "cmm", "-b", "10", "--series", "{O}"],
        "writes no per-period series",
    ),
    "--balloon from a strategy without series": (
        ["replay", "{T}", "-s", "cmm", "-b", "10", "--balloon", "{O}"],
        "writes no per-period",
    ),
    "states from a strategy without them": (
        ["replay", "{T}", "-s", "opt", "-b", "10", "--states", "{O}"],
        "keeps no page states",
    ),
    "stream a series": (
        ["replay", "--stream", "{T}", "-s", "cmm", "-b", "10", "--series", "{O}"],
        "writes no per-period series",
    ),
    "one file for two outputs": (
        ["replay", "{T}", "-s", "cmm", "-b", "10", "-o", "{O}", "--states", "{O}"],
        "the same file",
    ),
    "text given to replay": (
        ["replay", str(DATA / "perf-default.txt"), "-s", "cmm", "-b", "10"],
        "cmmsim trace convert",
    ),
    "parquet report without -o": (["report", "{R}", "-f", "parquet"], "needs -o"),
    "two trace sets, one name": (["sweep", "--sweep", "{TOML}", "-o", "{D}"], "named 'g'"),
    "-s with a sweep file": (["sweep", "--sweep", "{TOML}", "-s", "cmm", "-o", "{D}"], "[[strategies]]"),
    "-p with a sweep file": (
        ["sweep", "--sweep", "{TOML}", "-p", "cmm:reclaim_order=lru", "-o", "{D}"],
        "[[strategies]]",
    ),
}


#: Sweep files the cases above read ({T}: the good trace).
SWEEP_FILES = {
    "sweep copies": 'budgets = ["10"]\n[[trace_sets]]\nname = "g"\npaths = ["{T}"]\ncopies = "two"\n',
    "two trace sets, one name": 'budgets = ["10"]\n' + '[[trace_sets]]\nname = "g"\npaths = ["{T}"]\n' * 2,
    "-s with a sweep file": 'budgets = ["10"]\n[[trace_sets]]\nname = "g"\npaths = ["{T}"]\n',
    "-p with a sweep file": 'budgets = ["10"]\n[[trace_sets]]\nname = "g"\npaths = ["{T}"]\n',
}


@pytest.mark.parametrize("case", [*NUMBER_CASES, *IGNORED_CASES])
def test_refused_with_one_line(case, made, tmp_path):
    """A number out of range, or a request that would be ignored: refused before any work."""
    d, good, _ = made
    args, names = NUMBER_CASES.get(case) or IGNORED_CASES[case]
    toml = tmp_path / "s.toml"
    toml.write_text(SWEEP_FILES.get(case, "").replace("{T}", str(good)))
    out, folder = tmp_path / "out.parquet", tmp_path / "out-folder"
    result = run_cli(_fill(args, T=good, R=d / "results.parquet", O=out, D=folder, TOML=toml))
    assert_one_line(result, names)
    assert not out.exists() and not folder.exists()


# -- the converter's own cases (issue 17) -------------------------------------------------------------
def _converter_inputs(d: Path) -> dict[str, Path]:
    text = (DATA / "perf-default.txt").read_text()
    first = text.splitlines()[0]
    cases = {}
    (d / "corrupt.xz").write_bytes(random.Random(1).randbytes(100))
    cases["corrupt .xz"] = d / "corrupt.xz"
    (d / "plain.gz").write_text(text)
    cases["plain text named .gz"] = d / "plain.gz"
    import gzip
    import lzma

    (d / "cut.gz").write_bytes(gzip.compress(text.encode())[:2000])
    cases["truncated .gz"] = d / "cut.gz"
    (d / "cut.xz").write_bytes(lzma.compress(text.encode())[:2000])
    cases["truncated .xz"] = d / "cut.xz"
    (d / "empty.txt").write_text("")
    cases["empty text"] = d / "empty.txt"
    stamp = first.split()[3]
    (d / "late.txt").write_text(first.replace(stamp, "99999999999999.376161:") + "\n")
    cases["time past int64"] = d / "late.txt"
    (d / "folder.txt").mkdir()
    cases["a folder"] = d / "folder.txt"
    (d / "random.gz").write_bytes(random.Random(2).randbytes(3000))
    cases["random bytes named .gz"] = d / "random.gz"
    (d / "cut.bz2").write_bytes(__import__("bz2").compress(text.encode())[:500])
    cases["truncated .bz2"] = d / "cut.bz2"
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "corrupt .xz",
        "plain text named .gz",
        "truncated .gz",
        "truncated .xz",
        "empty text",
        "time past int64",
        "a folder",
        "random bytes named .gz",
        "truncated .bz2",
    ],
)
def test_converter_refuses_its_bad_inputs(case, tmp_path):
    path = _converter_inputs(tmp_path)[case]
    out = tmp_path / "c.parquet"
    result = run_cli(["trace", "convert", path, "-o", out])
    assert_one_line(result, show_path(path.name))
    assert not out.exists()


@pytest.mark.parametrize("mib", ["0", "-1", "99999999999999"])
def test_converter_guest_mib_out_of_range_is_refused(mib, tmp_path):
    out = tmp_path / "c.parquet"
    assert_one_line(
        run_cli(["trace", "convert", DATA / "perf-default.txt", "-o", out, "--guest-mib", mib]), "--guest-mib"
    )
    assert not out.exists()


def test_converter_refuses_a_huge_pfn_without_allocating(tmp_path):
    line = (DATA / "perf-default.txt").read_text().splitlines()[0]
    pfn = line.split("pfn=")[1].split()[0]
    src = tmp_path / "huge.txt"
    src.write_text(line.replace(pfn, "0x10000000000") + "\n")
    # In a child with 2 GiB of address space: the converter must refuse the
    # line, not try to allocate by it.
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
        "from cmmsim.cli import main; sys.argv = ['cmmsim'] + sys.argv[1:]; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "trace", "convert", str(src), "-o", str(tmp_path / "c.parquet")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "huge.txt:1" in proc.stderr, proc.stderr


@pytest.mark.parametrize("engine", ["fast", "python"])
def test_lenient_converter_counts_a_huge_pfn_or_time_as_skipped(engine, tmp_path):
    from cmmsim.tracer.linux import convert

    lines = (DATA / "perf-default.txt").read_text().splitlines()
    pfn = lines[0].split("pfn=")[1].split()[0]
    stamp = lines[0].split()[3]
    src = tmp_path / "huge.txt"
    src.write_text(
        "\n".join(
            [lines[0].replace(pfn, "0x10000000000"), lines[0].replace(stamp, "99999999999999.376161:"), *lines[1:]]
        )
        + "\n"
    )
    meta = convert(src, tmp_path / "c.parquet", lenient=True, engine=engine)
    name = lines[0].split(":")[-2].strip()  # the event of the first line
    assert meta.converter["skipped"] == {f"fields of {name} do not parse": 2}


def test_sweep_manifest_is_not_json_names_it(made, tmp_path):
    d, good, _ = made
    sweep = tmp_path / "sweep"
    shutil.copytree(d / "sweep", sweep)
    (sweep / "sweep.json").write_text("{")
    result = run_cli(["sweep", good, "-s", "cmm", "-s", "host-lru", "-b", "10%", "-o", sweep])
    assert_one_line(result, "sweep.json")
    assert_one_line(run_cli(["report", sweep]), "sweep.json")
    assert json.loads((d / "sweep" / "sweep.json").read_text())["key_format"] == 2


#: Commands whose output may name their own input ({I}: a copy of the input, given as both).
SELF_OVERWRITE = {
    "report parquet": (["report", "{I}", "-f", "parquet", "-r", "total-io", "-o", "{I}"], "results"),
    "report csv": (["report", "{I}", "-f", "csv", "-r", "total-io", "-o", "{I}"], "results"),
    "replay -o": (["replay", "{I}", "-s", "cmm", "-b", "10", "-o", "{I}"], "trace"),
    "replay --states": (["replay", "{I}", "-s", "cmm", "-b", "10", "--states", "{I}"], "trace"),
    "mrc": (["mrc", "{I}", "-b", "10", "-o", "{I}"], "trace"),
    "trace compare": (["trace", "compare", "{G}", "{I}", "-o", "{I}"], "trace"),
}


@pytest.mark.parametrize("command", list(SELF_OVERWRITE))
def test_an_output_never_replaces_its_own_input(command, made, tmp_path):
    # `cmmsim report r.parquet -f parquet -o r.parquet` replaced the results with
    # the report (and `replay t.parquet -o t.parquet` the trace with results).
    d, good, _ = made
    args, kind = SELF_OVERWRITE[command]
    source = d / "results.parquet" if kind == "results" else good
    mine = tmp_path / "sub" / ".." / "in.parquet"  # another spelling of the same file
    (tmp_path / "sub").mkdir()
    shutil.copy(source, mine)
    before = mine.read_bytes()
    result = run_cli(_fill(args, I=mine, G=good))
    assert_one_line(result, "is an input")
    assert mine.read_bytes() == before


def test_a_report_folder_never_replaces_the_results_it_reads(made, tmp_path):
    # One file per report goes to FOLDER/REPORT.parquet: results named total-io.parquet
    # in that folder would be replaced by the total-io report.
    d, _, _ = made
    mine = tmp_path / "total-io.parquet"
    shutil.copy(d / "results.parquet", mine)
    before = mine.read_bytes()
    result = run_cli(["report", mine, "-f", "parquet", "-r", "winners", "-r", "total-io", "-o", tmp_path])
    assert_one_line(result, "is an input")
    assert mine.read_bytes() == before and not (tmp_path / "winners.parquet").exists()


@pytest.mark.parametrize("option", ["-o", "--states"])
def test_an_output_never_replaces_a_trace_of_an_input_folder(option, made, tmp_path):
    # `replay scn/ -o scn/g0.parquet` named the folder only, and the trace was replaced.
    _, good, _ = made
    (tmp_path / "scn").mkdir()
    mine = tmp_path / "scn" / "g0.parquet"
    shutil.copy(good, mine)
    before = mine.read_bytes()
    assert_one_line(run_cli(["replay", tmp_path / "scn", "-s", "cmm", "-b", "10", option, mine]), "is an input")
    assert mine.read_bytes() == before
