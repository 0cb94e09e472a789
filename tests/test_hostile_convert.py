"""Hostile input, second round: converter input shapes, synthetic parameters, streamed replay, MRCs.

A user who checks numbers runs the tool on input nobody tried: each case
here is one that once gave a traceback, a wrong count or a difference
between two paths that must agree.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import SAMPLE_DIR
from tests.test_hostile import assert_one_line, run_cli

DATA = Path(__file__).parent / "data"


# -- trace synth: every number a model turns into time or memory is bounded ------------------------
#: (workload, parameter): once a numba typing error (traceback), a bare
#: "number too large" naming nothing, a model error or an allocation by it.
SYNTH_CASES = [
    ("phased", "touch_us=1e300"),
    ("phased", "sndbuf_kib=9223372036854775807"),
    ("phased", "disk_mib_s=1e-300"),
    ("phased", "net_mbit_s=1e-300"),
    ("phased", "tick_s=1e300"),
    ("phased", "phase_s=1e300"),
    ("phased", "dirty_expire_s=1e300"),
    ("phased", "dirty_writeback_s=1e300"),
    ("phased", "boot_cache_mib=1e300"),
    ("phased", "log_mib=1e300"),
    ("phased", "file_mib=1e300"),
    ("phased", "duration_s=9e9"),
    ("phased", "cpus=1099511627776"),
    ("phased", "copy_ns=9223372036854775807"),
    ("phased", "zero_ns=9223372036854775807"),
    ("phased", "log_bytes_per_tick=9223372036854775807"),
    ("phased", "daemon_touches=1099511627776"),
    ("awm", "touches=1099511627776"),
    ("awm", "backend_gib=1e300"),
    ("awm", "backend_gib=65536"),
    ("kernel-compile", "sources=9223372036854775807"),
    ("kernel-compile", "headers=9223372036854775807"),
    ("kernel-compile", "headers_per_unit=1099511627776"),
    ("web-serving", "log_bytes=9223372036854775807"),
    ("web-serving", "directories=9223372036854775807"),
    ("web-serving", "directories=100000000"),
    ("awm", "log_bytes=9223372036854775807"),
]


@pytest.mark.parametrize(("workload", "param"), SYNTH_CASES)
def test_synth_refuses_a_number_no_model_can_run(workload, param, tmp_path):
    out = tmp_path / "s.parquet"
    result = run_cli(["trace", "synth", workload, "-o", out, "-p", param, "--events", "3000"])
    assert_one_line(result, param.split("=")[0])
    assert not out.exists()


#: A key given twice once took its last value and dropped the first without a word;
#: in a sweep's grid the user meant both values to run.
TWICE_CASES = [
    (["trace", "synth", "phased", "-o", "{out}/s.parquet", "-p", "duration_s=1", "-p", "duration-s=2"], "'duration_s'"),
    (
        ["replay", "{trace}", "-s", "cmm", "-b", "50%", "-p", "reclaim_order=lru", "-p", "reclaim_order=lru"],
        "'reclaim_order'",
    ),
    (
        [
            "sweep",
            "{trace}",
            "-o",
            "{out}/sw",
            "-b",
            "50%",
            "-p",
            "cmm:reclaim_order=lru",
            "-p",
            "cmm:reclaim_order=two-list",
        ],
        "-p cmm:reclaim_order=lru,two-list",
    ),
]


@pytest.mark.parametrize(("args", "names"), TWICE_CASES, ids=["synth", "replay", "sweep"])
def test_a_parameter_given_twice_is_refused(args, names, tmp_path):
    trace = SAMPLE_DIR / "linux-sqlite.parquet"
    result = run_cli([a.format(out=tmp_path / "out", trace=trace) for a in args])
    assert_one_line(result, names)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("param", ["daemon_touches=1000000", "daemon_reads=1000000"])
def test_synth_a_large_daemon_step_fits_the_event_buffer(param, tmp_path):
    """The system task's daemon step is a step too: the event buffer holds it."""
    out = tmp_path / "s.parquet"
    result = run_cli(["trace", "synth", "phased", "-o", out, "-p", param, "--events", "3000", "-q"])
    assert result.exit_code == 0, result.output
    assert out.exists()


# -- converter input: line ends split across reads ---------------------------------------------------
@pytest.mark.parametrize("block", [1, 2, 3, 5])
@pytest.mark.parametrize("data", [b"a\r\r\nb\n", b"a\r\r\r\nb", b"\r\r\n\r\n", b"x\r\ry\r\n\rz"])
def test_line_blocks_split_lines_as_the_text_reader(data, block):
    """A "\\r\\r\\n" whose "\\r\\n" straddles a read is two line ends, as the text reader
    of the reference path reads it (it once gave three: a blank line more, and every
    line number after it one off in the fast path)."""
    from cmmsim.tracer.linux.textio import line_blocks

    got = b"".join(bytes(b) for b in line_blocks(io.BytesIO(data), block))
    want = "".join(io.TextIOWrapper(io.BytesIO(data), encoding="latin-1", newline=None)).encode("latin-1")
    assert got == (want if want.endswith(b"\n") else want + b"\n")


@given(data=st.lists(st.sampled_from([b"a", b"\r", b"\n"]), max_size=40).map(b"".join), block=st.integers(1, 9))
def test_line_blocks_equal_the_text_reader_on_random_line_ends(data, block):
    # The same twin on drawn inputs: every mix of CR and LF at every block edge,
    # each block whole lines (the scan kernels _has_cr and _last_newline decide them).
    from cmmsim.tracer.linux.textio import line_blocks

    blocks = [bytes(b) for b in line_blocks(io.BytesIO(data), block)]
    assert all(b.endswith(b"\n") for b in blocks)
    want = "".join(io.TextIOWrapper(io.BytesIO(data), encoding="latin-1", newline=None)).encode("latin-1")
    assert b"".join(blocks) == (want + b"\n" if want and not want.endswith(b"\n") else want)


def test_cr_cr_lf_at_a_block_edge_converts_as_the_reference(tmp_path, monkeypatch):
    """Both paths count the same lines and name the same line of a bad input."""
    import functools

    from cmmsim.tracer.linux import converter, textio
    from cmmsim.tracer.linux.converter import ConvertError, convert

    lines = (DATA / "perf-default.txt").read_text().splitlines()
    src = tmp_path / "crcrlf.txt"
    src.write_bytes(b"".join(line.encode() + b"\r\r\n" for line in lines[:40]) + b"bad line\n")
    monkeypatch.setattr(converter, "line_blocks", functools.partial(textio.line_blocks, block_bytes=7))
    errors = []
    for engine in ("fast", "python"):
        with pytest.raises(ConvertError) as exc:
            convert(src, tmp_path / f"{engine}.parquet", engine=engine)
        errors.append(str(exc.value))
    assert errors[0] == errors[1] and ":81: " in errors[0], errors
    metas = [convert(src, tmp_path / f"l{e}.parquet", engine=e, lenient=True).converter for e in ("fast", "python")]
    assert metas[0] == metas[1] and metas[0]["lines_read"] == 81


# -- mrc: streamed and in memory agree on a trace with no access --------------------------------------
def _write(path: Path, ops: list[int], pfns: list[int], guest_pages: int) -> Path:
    import numpy as np

    from cmmsim.tracer.io import write_trace
    from cmmsim.tracer.schema import TraceMeta

    n = len(ops)
    write_trace(
        path,
        np.arange(n, dtype=np.int64),
        np.asarray(pfns, np.uint32),
        np.asarray(ops, np.uint8),
        TraceMeta(guest_pages=guest_pages, source="test"),
    )
    return path


@pytest.mark.parametrize("extra", [[], ["--copies", "3", "--stagger", "1ms"]])
def test_mrc_of_a_hints_only_trace_is_the_same_streamed(extra, tmp_path):
    """No access, no footprint: the exact curve in memory and streamed are the same
    frame (streamed, the sampled share of an empty footprint once read 0, not 1)."""
    import polars as pl

    from cmmsim.tracer.schema import Op

    hints = [Op.SET_STABLE, Op.SET_VOLATILE, Op.SET_UNUSED, Op.SET_STABLE_IF_RESIDENT]
    src = _write(tmp_path / "h.parquet", [int(o) for o in hints], [0, 1, 2, 0], 3)
    frames = []
    for mode in ([], ["--stream"]):
        out = tmp_path / f"m{len(mode)}.parquet"
        result = run_cli(["mrc", src, "-b", "1", "-b", "7", "-q", "-o", out, *extra, *mode])
        assert result.exit_code == 0, result.output
        frames.append(pl.read_parquet(out))
    assert frames[0].equals(frames[1]), (frames[0], frames[1])
    assert frames[0]["page_fraction"].to_list() == [1.0, 1.0]


# -- converter input: ftrace's marks of lost events ---------------------------------------------------
def _ftrace_with_lost_marks(tmp_path: Path, marks: list[str]) -> Path:
    lines = (DATA / "ftrace.txt").read_text().splitlines()[:30]
    body = []
    for i, line in enumerate(lines):
        body.append(line)
        if i % 10 == 5 and marks:
            body.append(marks.pop(0))
    src = tmp_path / "lost.txt"
    src.write_text("\n".join(body) + "\n")
    return src


@pytest.mark.parametrize("engine", ["fast", "python", "stream"])
def test_ftrace_lost_marks_are_counted_not_malformed(engine, tmp_path):
    """``CPU:N [LOST M EVENTS]`` (trace_pipe when its buffer overran) is a gap of M
    events: strict mode converts, and the output's metadata says how many were lost
    (it once stopped strict mode as "not a tracepoint line", and lenient mode counted
    one skipped line, the M events gone from the record)."""
    from cmmsim.tracer.io import read_meta
    from cmmsim.tracer.linux import convert

    src = _ftrace_with_lost_marks(tmp_path, ["CPU:0 [LOST 1234 EVENTS]", "  CPU:11 [LOST 5 EVENTS]  "])
    out = tmp_path / "t.parquet"
    if engine == "stream":
        with open(src) as text:
            convert(src, out, stream=text)
    else:
        convert(src, out, engine=engine)
    conv = read_meta(out).converter
    assert conv["lost_events"] == 1239 and conv["skipped"] == {} and conv["lines_read"] == 32


def test_a_lost_count_past_int64_is_a_malformed_line(tmp_path):
    src = _ftrace_with_lost_marks(tmp_path, ["CPU:0 [LOST 99999999999999999999 EVENTS]"])
    out = tmp_path / "t.parquet"
    assert_one_line(run_cli(["trace", "convert", src, "-o", out]), "lost.txt:7")
    assert not out.exists()
    result = run_cli(["trace", "convert", src, "-o", out, "--lenient"])
    assert result.exit_code == 0 and "not a tracepoint line" in result.output


# -- convert --start: a snapshot's states are the rules' states ---------------------------------------
@pytest.mark.parametrize(("states", "dtype"), [(200, "uint8"), (-1, "int64"), (1.0, "float64"), (4, "uint8")])
def test_a_start_snapshot_with_unknown_states_is_refused(states, dtype, tmp_path):
    """A state code that is none of U, S, V, P once gave an IndexError traceback (200)
    or a silently wrong initial state (-1: "not seen yet" in the fast path, P in the
    reference)."""
    import numpy as np

    snap = tmp_path / "t.start.npz"
    np.savez(snap, states=np.full(0x20, states, dtype), mapped_pages=np.zeros((0, 5), np.int64))
    src = tmp_path / "t.txt"
    src.write_text(
        " dd 1 [000] 1.5: kmem:mm_page_free: page=0x10 pfn=0x10 order=0\n"
        " dd 1 [000] 1.6: kmem:mm_page_alloc: page=0x11 pfn=0x11 order=0 migratetype=0 gfp_flags=X\n"
    )
    out = tmp_path / "t.parquet"
    assert_one_line(run_cli(["trace", "convert", src, "-o", out, "--start", snap]), "t.start.npz")
    assert not out.exists()
