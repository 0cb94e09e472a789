"""Progress on stderr (cmmsim.progress): plain lines off a terminal, nothing in the data, --quiet."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cmmsim.cli import app
from cmmsim.progress import INTERVAL_ENV, Reporter
from cmmsim.tracer.io import write_trace
from cmmsim.tracer.schema import TraceMeta

DATA = Path(__file__).parent / "data"
FAST = {INTERVAL_ENV: "0"}


def test_plain_lines_every_interval_and_a_last_line(monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)  # no compile notice, whatever the cache holds
    out = io.StringIO()
    r = Reporter(stream=out, interval_s=0, terminal=False)
    with r.task("replay", total=400) as task:
        for _ in range(4):
            task.advance(100)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("replay: 100 of 400 events (25%)")
    assert lines[-2].startswith("replay: 400 of 400 events (100%)")
    assert lines[-1].endswith("(done)") and len(lines) == 5


def test_a_share_is_rounded_down_so_100_percent_means_all_done(monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    out = io.StringIO()
    with Reporter(stream=out, interval_s=0, terminal=False).task("mrc", total=4_000_000) as task:
        task.advance(3_997_696)
        task.advance(2_304)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("mrc: 3,997,696 of 4,000,000 events (99%)")
    assert lines[1].startswith("mrc: 4,000,000 of 4,000,000 events (100%)")


def test_work_within_one_interval_says_nothing_and_quiet_prints_nothing(monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    out = io.StringIO()
    with Reporter(stream=out, interval_s=3600, terminal=False).task("convert", unit="bytes") as task:
        task.advance(3 << 20)
    # A short command's standard error stays its own: one line when it fails.
    assert out.getvalue() == ""
    quiet = io.StringIO()
    r = Reporter(stream=quiet, quiet=True, interval_s=0)
    with r.task("sweep", total=2, unit="jobs") as task:
        task.advance(2, failed=1)
        task.print("failed x")
    r.compile_notice()
    r.line("x")
    assert quiet.getvalue() == ""


def test_compile_notice_once_at_the_first_task_when_the_cache_was_empty(tmp_path, monkeypatch):
    out = io.StringIO()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    r = Reporter(stream=out, terminal=False, interval_s=3600)
    assert out.getvalue() == ""  # not before a task: an argument error stays one line
    for name in ("a", "b"):
        with r.task(name, total=1) as task:
            task.advance(1)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("compiling the numba kernels once") and str(tmp_path) in lines[0]
    assert len(lines) == 1  # once, and the two short tasks print no line of their own
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "k.nbi").write_bytes(b"")
    warm = io.StringIO()
    with Reporter(stream=warm, terminal=False).task("c") as task:
        task.advance(1)
    assert "compiling" not in warm.getvalue()


def test_bar_on_a_terminal_goes_to_the_given_stream(monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    out = io.StringIO()
    with Reporter(stream=out, interval_s=0, terminal=True).task("sweep", total=3, unit="jobs") as task:
        task.advance(3, done=3)
    assert "sweep" in out.getvalue() and "3/3" in out.getvalue()


def _trace(path: Path) -> Path:
    rng = np.random.default_rng(2)
    n = 3000
    write_trace(
        path,
        np.arange(n, dtype=np.int64) * 1000,
        rng.integers(0, 200, n).astype(np.uint32),
        rng.integers(0, 2, n).astype(np.uint8),
        TraceMeta(guest_pages=200, source="test"),
    )
    return path


def test_mrc_progress_on_stderr_never_in_stdout_or_the_output(tmp_path):
    trace = _trace(tmp_path / "t.parquet")
    runner = CliRunner()
    r = runner.invoke(app, ["mrc", str(trace), "-b", "10", "-b", "100", "--stream"], env=FAST)
    assert r.exit_code == 0, r.output
    assert "mrc: 3,000 of 3,000 events (100%)" in r.stderr
    assert "mrc:" not in r.stdout
    q = runner.invoke(app, ["mrc", str(trace), "-b", "10", "--stream", "--quiet"], env=FAST)
    assert q.exit_code == 0 and "mrc:" not in q.output


def test_convert_in_a_subprocess_prints_plain_byte_lines_on_stderr(tmp_path):
    src = DATA / "perf-default.txt"
    out = tmp_path / "c.parquet"
    proc = subprocess.run(
        [sys.executable, "-c", "from cmmsim.cli import main; main()", "trace", "convert", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        env=os.environ | FAST,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    size = src.stat().st_size
    assert f"{size / 1024:,.1f} KiB of {size / 1024:,.1f} KiB (100%)" in proc.stderr, proc.stderr
    assert "convert:" not in proc.stdout and "wrote" in proc.stdout
    assert out.exists()
