"""The Linux tracepoint converter: real fixture lines, mapping rules, bad input, recording."""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmmsim.replay.scenario import load
from cmmsim.replay.states import C
from cmmsim.replay.strategies import get_strategy
from cmmsim.tracer.errors import CmmsimError, TraceError
from cmmsim.tracer.io import read_arrays, validate_trace
from cmmsim.tracer.linux import EVENTS, ConvertError, convert, parse_line, pfnmap_path
from cmmsim.tracer.schema import Op
from tests.helpers import LIVE_KERNEL, SAMPLE_DIR

DATA = Path(__file__).parent / "data"
FIXTURES = sorted(DATA.glob("*.txt"))
R, W, SS, SU, SV, SIR = (Op.READ, Op.WRITE, Op.SET_STABLE, Op.SET_UNUSED, Op.SET_VOLATILE, Op.SET_STABLE_IF_RESIDENT)


def ops_of(path) -> list[tuple[int, int]]:
    a = read_arrays(path)
    return list(zip(a.pfn.tolist(), a.op.tolist(), strict=True))


def lines_to_trace(tmp_path, lines, **kw):
    src = tmp_path / "in.txt"
    src.write_text("".join(line.rstrip("\n") + "\n" for line in lines))
    out = tmp_path / "out.parquet"
    meta = convert(src, out, **kw)
    return out, meta


def test_fixtures_are_real_captures_covering_every_event():
    assert len(FIXTURES) == 12
    seen = set()
    for f in FIXTURES:
        for line in f.read_text().splitlines():
            kind, what = parse_line(line)
            assert kind in ("event", "unused", "noise"), (f.name, line)
            if kind == "event":
                seen.add(what.name)
    assert seen == set(EVENTS)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_fixture_round_trip_validates(tmp_path, fixture):
    out = tmp_path / "t.parquet"
    meta = convert(fixture, out)
    assert validate_trace(out) == meta
    assert meta.source.startswith("linux:") and meta.converter["lines_read"] > 300
    assert meta.converter["events"], "no events converted"
    pmap = pfnmap_path(out)
    assert pmap.exists() and not pmap.name.endswith(".parquet")


def test_same_events_in_every_line_shape(tmp_path):
    a = convert(DATA / "perf-default.txt", tmp_path / "a.parquet")
    b = convert(DATA / "perf-fields.txt", tmp_path / "b.parquet")
    assert ops_of(tmp_path / "a.parquet") == ops_of(tmp_path / "b.parquet")
    assert a.converter == b.converter
    convert(DATA / "ftrace.txt", tmp_path / "c.parquet", fmt="ftrace")
    convert(DATA / "trace-cmd.txt", tmp_path / "d.parquet", fmt="trace-cmd")
    assert ops_of(tmp_path / "c.parquet") == ops_of(tmp_path / "d.parquet")


@pytest.mark.parametrize("shape", ["compact", "pid-tid", "bare"])
def test_perf_field_selections_give_the_default_shapes_trace(tmp_path, shape):
    # One capture printed by `perf script` as is and with -F selections
    # (tests/data/README.md has the commands): the same trace and counters.
    a = convert(DATA / "perf-window-default.txt", tmp_path / "a.parquet")
    b = convert(DATA / f"perf-window-{shape}.txt", tmp_path / "b.parquet", fmt="perf")
    assert ops_of(tmp_path / "a.parquet") == ops_of(tmp_path / "b.parquet")
    assert a.converter == b.converter and a.n_events > 500


def test_trace_cmd_report_in_auto_and_its_own_format(tmp_path):
    a = convert(DATA / "trace-cmd-report.txt", tmp_path / "a.parquet")
    b = convert(DATA / "trace-cmd-report.txt", tmp_path / "b.parquet", fmt="trace-cmd")
    assert ops_of(tmp_path / "a.parquet") == ops_of(tmp_path / "b.parquet")
    assert a.converter == b.converter and a.converter["skipped"] == {"header or comment": 1}


def test_ignored_events_are_counted_by_name(tmp_path):
    meta = convert(DATA / "perf-ignored.txt", tmp_path / "a.parquet")
    text = (DATA / "perf-ignored.txt").read_text()
    assert meta.converter["unused_events"] == {
        name: text.count(f" {name}: ")
        for name in ("exceptions:page_fault_user", "pagemap:mm_lru_insertion", "sched:sched_switch")
    }


P = " cc 100 [000] 10.{:06d}: "


def test_alloc_free_and_double_free(tmp_path):
    out, meta = lines_to_trace(
        tmp_path,
        [
            P.format(1) + "kmem:mm_page_alloc: page=0x100 pfn=0x100 order=1 migratetype=0 gfp_flags=GFP_KERNEL",
            P.format(2) + "kmem:mm_page_free: page=0x100 pfn=0x100 order=0",
            P.format(3) + "kmem:mm_page_free_batched: page=0x100 pfn=0x100 order=0",
            P.format(4) + "kmem:mm_page_alloc: page=0x0 pfn=0x0 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
        ],
    )
    assert ops_of(out) == [(0, SS), (0, W), (1, SS), (1, W), (0, SU)]
    assert meta.converter["duplicate_frees"] == 1
    assert meta.converter["failed_allocations"] == 1
    assert read_arrays(out).t_ns.tolist() == [0, 0, 0, 0, 1000]


def test_page_cache_reads_dirtying_and_writeback_join_hex_and_decimal_inodes(tmp_path):
    ino_hex, ino_dec = "3f85d", str(0x3F85D)
    out, meta = lines_to_trace(
        tmp_path,
        [
            P.format(1) + "kmem:mm_page_alloc: page=0x200 pfn=0x200 order=0 migratetype=0 gfp_flags=X",
            P.format(2) + f"filemap:mm_filemap_add_to_page_cache: dev 254:0 ino {ino_hex} pfn=0x200 ofs=8192 order=0",
            P.format(3) + f"filemap:mm_filemap_get_pages: dev=254:0 ino={ino_hex} ofs=8192-12287",
            P.format(4) + f"filemap:mm_filemap_map_pages: dev=254:0 ino={ino_hex} ofs=0-16383",
            P.format(5) + f"writeback:writeback_dirty_folio: bdi 254:0: ino={ino_dec} index=2",
            P.format(6) + f"filemap:mm_filemap_fault: dev=254:0 ino={ino_hex} ofs=8192",
            P.format(7) + f"writeback:writeback_single_inode: bdi 254:0: ino={ino_dec} state=0x0 "
            "dirtied_when=1 age=1 index=0 to_write=1 wrote=1 cgroup_ino=1",
            P.format(8) + "writeback:writeback_dirty_folio: bdi 254:0: ino=999 index=0",
        ],
    )
    assert ops_of(out) == [
        (0, SS),
        (0, W),
        (0, SV),  # allocated, filled, clean in the page cache
        (0, SIR),
        (0, R),
        (0, SV),  # read(): pinned, copied, volatile again
        (0, SIR),
        (0, R),
        (0, SV),  # fault-around over 4 pages: one is cached
        (0, SIR),
        (0, W),
        (0, SS),  # dirtied (decimal inode joined to hex)
        (0, R),  # a fault on a dirty page: a plain read
        (0, SV),  # its inode was written back
    ]
    # The three fault-around offsets without a page are not accesses: fault-around
    # maps only cached pages, and only the faulting page is read.
    assert meta.converter["unresolved_accesses"] == 0
    assert meta.converter["fault_around_unknown"] == 3
    assert meta.converter["page_cache_reads"] == 3
    assert meta.converter["unresolved_dirty"] == 1


def test_large_folios_are_expanded_and_pfns_renumbered(tmp_path):
    out, meta = lines_to_trace(
        tmp_path,
        [
            P.format(1) + "kmem:mm_page_alloc: page=0x5000 pfn=0x5000 order=2 migratetype=0 gfp_flags=X",
            P.format(2) + "filemap:mm_filemap_add_to_page_cache: dev 8:1 ino 10 pfn=0x5000 ofs=0 order=2",
            P.format(3) + "writeback:writeback_dirty_folio: bdi 8:1: ino=16 index=0",
        ],
    )
    a = read_arrays(out)
    assert sorted(set(a.pfn.tolist())) == [0, 1, 2, 3]
    assert meta.guest_pages == 4 and (a.op == W).sum() == 4 + 4
    import pyarrow.parquet as pq

    assert pq.read_table(pfnmap_path(out))["phys_pfn"].to_pylist() == [0x5000, 0x5001, 0x5002, 0x5003]


def test_initial_states_are_inferred_from_the_first_event(tmp_path):
    out, meta = lines_to_trace(
        tmp_path,
        [
            P.format(1) + "kmem:mm_page_free: page=0x10 pfn=0x10 order=0",
            P.format(2) + "pagemap:mm_lru_activate: folio=0xffff pfn=0x20",
            P.format(3) + "filemap:mm_filemap_delete_from_page_cache: dev 254:0 ino 1 pfn=0x30 ofs=0 order=0",
        ],
    )
    assert ops_of(out) == [(0, SS), (0, W), (1, SS), (1, W), (2, SS), (2, W), (2, SV), (0, SU), (1, R)]
    assert meta.converter["initial_states"] == {"S": 2, "V": 1}
    assert read_arrays(out).t_ns[:7].tolist() == [0] * 7


def test_snapshot_initial_states_win(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text(
        P.format(1)
        + "kmem:mm_page_free: page=0x2 pfn=0x2 order=0\n"
        + P.format(2)
        + "kmem:mm_page_alloc: page=0x1 pfn=0x1 order=0 migratetype=0 gfp_flags=X\n"
    )
    from cmmsim.tracer.linux import kpageflags_to_states

    flags = np.array([1 << 10, 1 << 10, (1 << 5)], dtype=np.uint64)  # buddy, buddy, clean file LRU
    meta = convert(src, tmp_path / "o.parquet", initial=kpageflags_to_states(flags))
    # pfn 2 is a clean file page in the snapshot: volatile at t=0, then freed.
    assert ops_of(tmp_path / "o.parquet") == [(0, SS), (0, W), (0, SV), (0, SU), (1, SS), (1, W)]
    assert meta.converter["initial_states"] == {"U": 1, "V": 1}


def test_task_names_with_spaces_and_any_spacing(tmp_path):
    out, _ = lines_to_trace(
        tmp_path,
        [
            "   Web Content  4242 [001]    12.000001:     kmem:mm_page_alloc: page=0x7 pfn=0x7 order=0 migratetype=0 gfp_flags=X",
            "my task 7  12.000002: kmem:mm_page_free: page=0x7 pfn=0x7 order=0",
        ],
    )
    assert ops_of(out) == [(0, SS), (0, W), (0, SU)]


GOOD = P.format(1) + "kmem:mm_page_alloc: page=0x7 pfn=0x7 order=0 migratetype=0 gfp_flags=X"


@pytest.mark.parametrize(
    "bad, reason",
    [
        (" cc 100 [000] 10.000002: kmem:mm_page_al", "not a tracepoint line"),
        ("garbage that is no trace at all", "not a tracepoint line"),
        (P.format(2) + "kmem:mm_page_free: page=0x7 pfn=0xZZ order=0", "fields of mm_page_free"),
        (P.format(2) + "kmem:mm_page_free: page=0x7 pfn=0x7 order=11", "fields of mm_page_free"),
    ],
)
def test_malformed_lines_strict_and_lenient(tmp_path, bad, reason):
    with pytest.raises(ConvertError, match=rf"in.txt:2: {reason}"):
        lines_to_trace(tmp_path, [GOOD, bad])
    assert not (tmp_path / "out.parquet").exists()
    _, meta = lines_to_trace(tmp_path, [GOOD, bad, GOOD.replace("10.000001", "10.000003")], lenient=True)
    assert sum(meta.converter["skipped"].values()) == 1


def test_unused_events_are_counted_in_both_modes(tmp_path):
    other = (
        P.format(2)
        + "sched:sched_switch: prev_comm=a prev_pid=1 prev_prio=120 prev_state=S ==> next_comm=b next_pid=2 next_prio=120"
    )
    for lenient in (False, True):
        _, meta = lines_to_trace(tmp_path, [GOOD, other, other], lenient=lenient)
        assert meta.converter["unused_events"] == {"sched:sched_switch": 2}


def test_compressed_inputs_and_guest_memory(tmp_path):
    text = (DATA / "perf-default.txt").read_bytes()
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(text))
    (tmp_path / "a.txt.xz").write_bytes(lzma.compress(text))
    convert(DATA / "perf-default.txt", tmp_path / "plain.parquet")
    for name in ("a.txt.gz", "a.txt.xz"):
        convert(tmp_path / name, tmp_path / f"{name}.parquet", guest_pages=4096)
        assert ops_of(tmp_path / f"{name}.parquet") == ops_of(tmp_path / "plain.parquet")
        assert read_arrays(tmp_path / f"{name}.parquet").meta.guest_pages == 4096
    with pytest.raises(CmmsimError, match="less than the"):
        convert(DATA / "perf-default.txt", tmp_path / "x.parquet", guest_pages=2)


@given(st.text(max_size=200))
def test_line_parser_never_crashes(line):
    kind, _ = parse_line(line)
    assert kind in ("event", "unused", "noise", "bad-line", "bad-fields")


@given(
    st.lists(
        st.sampled_from(
            [
                GOOD,
                "x",
                "",
                "# c",
                P.format(5) + "kmem:mm_page_free: pfn=0x7 order=0",
                P.format(5) + "filemap:mm_filemap_fault: dev=1:2 ino=zz ofs=1",
            ]
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_converter_fails_only_cleanly(tmp_path_factory, lines, lenient):
    tmp = tmp_path_factory.mktemp("fz")
    try:
        lines_to_trace(tmp, lines, lenient=lenient)
    except CmmsimError as exc:
        # Lenient mode stops only on an input with no events left to convert.
        assert not lenient or ("no page tracepoint events" in str(exc) and GOOD not in lines)


def test_real_sample_traces_replay_under_cmm_with_few_repairs():
    real = sorted(SAMPLE_DIR.glob("linux-*.parquet"))
    assert len(real) >= 3
    strat = get_strategy("cmm")
    for path in real:
        scn = load([path])
        res = strat.run(scn, np.array([max(1, scn.n_pages // 20)]), strat.parse_params({}))
        total = res.counters[0].sum(axis=0)
        # Documented bound (README): repairs stay under 1 % of accesses.
        assert total[C["repairs"]] <= 0.01 * total[C["accesses"]], path.name
        assert total[C["accesses"]] > 1000


@LIVE_KERNEL
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("perf") is None or not os.access("/proc/kpageflags", os.R_OK),
    reason="recording needs root, perf and /proc/kpageflags",
)
def test_record_a_live_command(tmp_path, monkeypatch):
    from cmmsim.tracer.record import record

    # The command sees the caller's PATH in its order: perf adds its own folders in
    # front, but must not put /usr/bin ahead of (say) a virtual environment's bin.
    first = tmp_path / "bin"
    first.mkdir()
    monkeypatch.setenv("PATH", f"{first}:{os.environ['PATH']}")
    seen_path = tmp_path / "path.txt"
    cmd = f'head -c 300000 /dev/urandom > /dev/null; echo "$PATH" > {seen_path}'
    meta = record(tmp_path / "r.parquet", ["sh", "-c", cmd], guest_pages=None)
    caller = list(dict.fromkeys(os.environ["PATH"].split(":")))
    seen = [d for d in dict.fromkeys(seen_path.read_text().strip().split(":")) if d in caller]
    assert seen == caller
    assert validate_trace(tmp_path / "r.parquet") == meta
    assert meta.params["kernel_release"] and "perf record" in meta.params["capture_command"]
    assert meta.converter["events"].get("mm_page_alloc", 0) > 0
    # The start snapshots: page flags of every frame, and the mapped file pages placed.
    from cmmsim.tracer.linux.kpageflags import read_kpageflags

    assert len(read_kpageflags()) * 4096 >= 2**30 and meta.converter["snapshot_pages"] > 0
    assert sum(meta.converter["initial_states"].values()) == meta.converter["frames"]


def test_record_reports_missing_perf(tmp_path, monkeypatch):
    from cmmsim.tracer import record as rec

    monkeypatch.setattr(rec.shutil, "which", lambda name: None)
    with pytest.raises(rec.RecordError, match="perf is not installed"):
        rec.record(tmp_path / "r.parquet", ["true"])


def _both(tmp_path, src, **kw):
    a = convert(src, tmp_path / "fast.parquet", engine="fast", **kw)
    b = convert(src, tmp_path / "ref.parquet", engine="python", **kw)
    return a, b, ops_of(tmp_path / "fast.parquet"), ops_of(tmp_path / "ref.parquet")


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_fast_path_equals_the_line_by_line_twin_on_fixtures(tmp_path, fixture):
    a, b, fa, fb = _both(tmp_path, fixture)
    assert fa == fb and a.converter == b.converter
    assert read_arrays(tmp_path / "fast.parquet").t_ns.tolist() == read_arrays(tmp_path / "ref.parquet").t_ns.tolist()


_LINES = [
    "kmem:mm_page_alloc: page=0x{p:x} pfn=0x{p:x} order={o} migratetype=0 gfp_flags=X",
    "kmem:mm_page_free: page=0x{p:x} pfn=0x{p:x} order={o}",
    "kmem:mm_page_free_batched: page=0x{p:x} pfn=0x{p:x} order=0",
    "filemap:mm_filemap_add_to_page_cache: dev 8:1 ino {i:x} pfn=0x{p:x} ofs={f} order={o}",
    "filemap:mm_filemap_delete_from_page_cache: dev 8:1 ino {i:x} pfn=0x{p:x} ofs={f} order={o}",
    "filemap:mm_filemap_get_pages: dev=8:1 ino={i:x} ofs={f}-{g}",
    "filemap:mm_filemap_map_pages: dev=8:1 ino={i:x} ofs={f}-{g}",
    "filemap:mm_filemap_fault: dev=8:1 ino={i:x} ofs={f}",
    "writeback:writeback_dirty_folio: bdi 8:1: ino={i} index={x}",
    "writeback:writeback_single_inode: bdi 8:1: ino={i} state=0x0 dirtied_when=1 age=1 index=0 to_write=1 wrote={w} cgroup_ino=1",
    "ext4:ext4_writepages_result: dev 8,1 ino {i} ret 0 pages_written {w} pages_skipped 0 sync_mode 1 writeback_index 0",
    "pagemap:mm_lru_activate: folio=0xffff pfn=0x{p:x}",
    "cmmsim:cmmsim_sampled_access: pfn=0x{p:x}",
    "sched:sched_switch: prev_comm=a",
    "kmem:mm_page_free: page=0x1 pfn=0x1 order=12",
]


@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_LINES) - 1),
            st.integers(1, 24),
            st.integers(0, 2),
            st.integers(1, 3),
            st.integers(0, 6),
            st.integers(0, 3),
            st.integers(0, 40),
        ),
        min_size=1,
        max_size=80,
    )
)
def test_fast_path_equals_the_twin_on_random_event_streams(tmp_path_factory, draws):
    tmp = tmp_path_factory.mktemp("par")
    lines = []
    for n, (k, pfn, order, ino, idx, wrote, dt) in enumerate(draws):
        body = _LINES[k].format(p=pfn, o=order, i=ino, f=idx * 4096, g=idx * 4096 + 8191, x=idx, w=wrote)
        lines.append(f" task {n} [000] {1 + n + dt * 2:d}.{n:06d}: {body}\n")
    (tmp / "in.txt").write_text("".join(lines))
    errors = []
    for engine in ("fast", "python"):
        try:
            convert(tmp / "in.txt", tmp / f"{engine}.parquet", engine=engine, lenient=True)
        except TraceError as e:  # only ignored or skipped lines: nothing to convert
            errors.append(str(e))
    if errors:
        assert len(errors) == 2 and errors[0] == errors[1] and "no page tracepoint events" in errors[0]
        return
    a, b, fa, fb = _both(tmp, tmp / "in.txt", lenient=True)
    assert fa == fb
    assert a.converter == b.converter
    assert read_arrays(tmp / "fast.parquet").t_ns.tolist() == read_arrays(tmp / "ref.parquet").t_ns.tolist()


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_text_stream_path_equals_the_byte_path(tmp_path, fixture):
    # `trace record` hands perf's text stream over: that goes through the chunked
    # polars path; files go through the byte scanner. Same trace either way.
    from cmmsim.tracer.linux import open_text

    a = convert(fixture, tmp_path / "bytes.parquet", lenient=True)
    with open_text(fixture) as text:
        b = convert(None, tmp_path / "text.parquet", lenient=True, stream=text)
    assert a.converter == b.converter
    x, y = read_arrays(tmp_path / "bytes.parquet"), read_arrays(tmp_path / "text.parquet")
    assert x.t_ns.tolist() == y.t_ns.tolist() and x.pfn.tolist() == y.pfn.tolist()
    assert x.op.tolist() == y.op.tolist()


def test_crlf_and_lone_cr_line_ends(tmp_path):
    text = (DATA / "perf-default.txt").read_text().splitlines()[:50]
    (tmp_path / "crlf.txt").write_bytes(("\r\n".join(text) + "\r\n").encode())
    (tmp_path / "lf.txt").write_text("\n".join(text) + "\n")
    a = convert(tmp_path / "crlf.txt", tmp_path / "a.parquet")
    b = convert(tmp_path / "lf.txt", tmp_path / "b.parquet")
    assert a.converter == b.converter and a.n_events == b.n_events > 0
    # The same events, not only as many: a CR left on a line would change a field.
    x, y = read_arrays(tmp_path / "a.parquet"), read_arrays(tmp_path / "b.parquet")
    assert ops_of(tmp_path / "a.parquet") == ops_of(tmp_path / "b.parquet")
    assert x.t_ns.tolist() == y.t_ns.tolist()


def test_mapper_resumes_when_its_buffers_fill(tmp_path, monkeypatch):
    # The numba mapper never grows a buffer itself: it stops before an event
    # that might not fit and the caller grows and resumes. Start from buffers
    # of one entry so every fixture crosses that path many times.
    import numpy as np

    from cmmsim.tracer.linux import converter, fast

    fixture = DATA / "perf-default.txt"
    convert(fixture, tmp_path / "normal.parquet")

    class Tiny(fast.FastMapper):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self.out = fast.Ops(*(np.empty(1, o.dtype) for o in self.out))
            self.q = fast.Queue(*(np.empty(1, np.int64) for _ in self.q))

    monkeypatch.setattr(converter, "FastMapper", Tiny)
    convert(fixture, tmp_path / "tiny.parquet")
    assert ops_of(tmp_path / "tiny.parquet") == ops_of(tmp_path / "normal.parquet")
    x, y = read_arrays(tmp_path / "tiny.parquet"), read_arrays(tmp_path / "normal.parquet")
    assert x.t_ns.tolist() == y.t_ns.tolist() and len(x.t_ns) > 100


def test_trace_info_states_what_the_conversion_lost(tmp_path):
    from typer.testing import CliRunner

    from cmmsim.cli import app

    convert(DATA / "perf-window-default.txt", tmp_path / "t.parquet")
    res = CliRunner().invoke(app, ["trace", "info", str(tmp_path / "t.parquet")], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    meta = read_arrays(tmp_path / "t.parquet").meta.converter
    lost = meta["unresolved_accesses"]
    assert lost > 0 and f"{meta['page_cache_reads']:,} placed, {lost:,} not placed" in res.output
    assert "file not seen" in res.output and "fault-around pages mapped untouched" in res.output
    # A synthetic trace has no converter counters: nothing is said.
    res = CliRunner().invoke(app, ["trace", "info", str(SAMPLE_DIR / "phased.parquet")])
    assert res.exit_code == 0 and "converter:" not in res.output


@pytest.mark.parametrize("failing", ["trace", "map"])
def test_a_failed_conversion_leaves_the_old_trace_and_map_a_pair(tmp_path, monkeypatch, failing):
    # The map names each dense pfn's physical frame: a new trace beside an old map
    # (or the reverse) would give every frame a wrong number.
    import errno

    import pyarrow.parquet as pq

    from cmmsim.tracer import io as tio
    from cmmsim.tracer.linux import converter

    out = tmp_path / "t.parquet"
    convert(DATA / "perf-default.txt", out)
    before = (out.read_bytes(), pfnmap_path(out).read_bytes())

    def boom(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if failing == "trace":
        monkeypatch.setattr(tio.TraceWriter, "finish", boom)
    else:
        monkeypatch.setattr(converter.pq, "write_table", boom)
    with pytest.raises(CmmsimError, match="No space left"):
        convert(DATA / "ftrace.txt", out, fmt="ftrace")
    monkeypatch.undo()
    assert (out.read_bytes(), pfnmap_path(out).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet", "t.pfnmap.pq"]
    # And a conversion that succeeds replaces both.
    convert(DATA / "ftrace.txt", out, fmt="ftrace")
    assert len(pq.read_table(pfnmap_path(out))) == read_arrays(out).meta.converter["frames"]
    assert (out.read_bytes(), pfnmap_path(out).read_bytes()) != before
