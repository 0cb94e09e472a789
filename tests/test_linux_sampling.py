"""Access sampling during ``trace record`` (cmmsim.tracer.linux.sampling).

Pure tests (merge in time order, page pick, metadata words, the converter's
rule for sampled lines) run everywhere; the live tests record a controlled
workload (tests/sampling_workload.py) with and without sampling and need
root, perf and the kernel's clear_refs/smaps/pagemap (skipped with the reason).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from cmmsim.tracer.io import read_arrays
from cmmsim.tracer.linux import convert
from cmmsim.tracer.linux.sampling import (
    RECORD,
    SAMPLE_EVENT,
    SAMPLE_TAG,
    _smaps_referenced_kb,
    clear_accessed,
    damon_reason,
    kdamond_threads,
    line_time_ns,
    merge_lines,
    pick_pages,
    probe,
    sample_lines,
    sampling_lines,
)
from cmmsim.tracer.schema import Op
from tests.helpers import LIVE_KERNEL

WORKLOAD = Path(__file__).with_name("sampling_workload.py")


def _records(pairs):
    rows = np.zeros(len(pairs), RECORD)
    if pairs:
        rows["t_ns"], rows["pfn"] = zip(*pairs, strict=True)
    return rows


def _perf(t_us: int, body: str = "kmem:mm_page_free: page=0x1 pfn=0x1 order=0") -> bytes:
    return f"  task 12 [000] {t_us // 1_000_000}.{t_us % 1_000_000:06d}: {body}\n".encode()


def test_sample_lines_parse_back_to_their_time_and_frame():
    line = sample_lines(_records([(5_123_456_789, 0x1F)]))
    assert line == b"cmmsim-sampler 0 [000] 5.123456789: cmmsim:cmmsim_sampled_access: pfn=0x1f\n"
    assert line_time_ns(line) == 5_123_456_789
    assert line_time_ns(_perf(1_000_002)) == 1_000_002_000
    assert line_time_ns(b"# comment") is None


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 20])
def test_merge_puts_samples_before_the_first_later_line(block_bytes):
    perf = b"# header\n" + _perf(1_000_000) + _perf(2_000_000) + _perf(2_000_000) + _perf(3_000_000)
    recs = _records(
        [
            (500_000_000, 1),
            (1_000_000_000, 2),
            (1_500_000_000, 3),
            (2_000_000_000, 4),
            (2_500_000_001, 5),
            (9_000_000_000, 6),
        ]
    )
    out = io.BytesIO()
    # Records in chunks of two: a chunk boundary falls between lines, too.
    n = merge_lines(io.BytesIO(perf), iter([recs[:2], recs[2:4], recs[4:]]), out, block_bytes)
    assert n == 6

    def label(line: bytes) -> str:
        if SAMPLE_TAG.encode() in line:
            return "S" + line.split(b"pfn=0x")[1].strip().decode()
        t = line_time_ns(line)
        return "H" if t is None else f"P{t // 1_000_000_000}"

    assert [label(x) for x in out.getvalue().splitlines()] == [
        "H",
        "S1",
        "P1",
        "S2",
        "S3",
        "P2",
        "P2",
        "S4",
        "S5",
        "P3",
        "S6",
    ]
    # Without samples the text is unchanged.
    out2 = io.BytesIO()
    assert merge_lines(io.BytesIO(perf), iter([]), out2, block_bytes) == 0
    assert out2.getvalue() == perf


def test_merge_of_a_text_without_final_newline_and_no_perf_lines():
    out = io.BytesIO()
    merge_lines(io.BytesIO(_perf(1)[:-1]), iter([_records([(5_000, 9)])]), out)
    assert out.getvalue() == _perf(1) + sample_lines(_records([(5_000, 9)]))
    out = io.BytesIO()
    merge_lines(io.BytesIO(b""), iter([_records([(5, 9), (6, 10)])]), out)
    assert out.getvalue() == sample_lines(_records([(5, 9), (6, 10)]))


def test_pick_pages_all_none_or_a_seeded_subset():
    present = np.arange(100, 200, dtype=np.int64)
    assert pick_pages(present, 0, (1,)).tolist() == []
    assert pick_pages(present, 100, (1,)).tolist() == present.tolist()
    assert pick_pages(present, 500, (1,)).tolist() == present.tolist()
    a = pick_pages(present, 30, (0, 1, 2, 3))
    assert len(a) == 30 and len(set(a.tolist())) == 30 and a.tolist() == sorted(a.tolist())
    assert a.tolist() == pick_pages(present, 30, (0, 1, 2, 3)).tolist()
    assert a.tolist() != pick_pages(present, 30, (0, 1, 2, 4)).tolist()
    # Uniform over positions: over many keys every position is picked about as often.
    hits = np.zeros(100)
    for key in range(400):
        hits[pick_pages(present, 25, (key,)) - 100] += 1
    assert hits.min() > 50 and hits.max() < 150  # expectation 100


def _convert_lines(tmp_path, lines, engine):
    src = tmp_path / f"in-{engine}.txt"
    src.write_text("".join(lines))
    out = tmp_path / f"{engine}.parquet"
    meta = convert(src, out, engine=engine)
    return read_arrays(out), meta


@pytest.mark.parametrize("engine", ["fast", "python"])
def test_sampled_lines_read_as_accesses_and_drop_on_free_frames(tmp_path, engine):
    lines = [
        " t 1 [000] 1.000000: kmem:mm_page_alloc: page=0x10 pfn=0x10 order=0 migratetype=0 gfp_flags=X\n",
        f" cmmsim-sampler 0 [000] 1.100000000: {SAMPLE_TAG}: pfn=0x10\n",
        f" cmmsim-sampler 0 [000] 1.200000000: {SAMPLE_TAG}: pfn=0x10\n",
        " t 1 [000] 1.300000: kmem:mm_page_free: page=0x10 pfn=0x10 order=0\n",
        f" cmmsim-sampler 0 [000] 1.400000000: {SAMPLE_TAG}: pfn=0x10\n",
        " t 1 [000] 1.500000: filemap:mm_filemap_add_to_page_cache: dev 8:1 ino 5 pfn=0x20 ofs=0 order=0\n",
        f" cmmsim-sampler 0 [000] 1.600000000: {SAMPLE_TAG}: pfn=0x20\n",
    ]
    arr, meta = _convert_lines(tmp_path, lines, engine)
    ops = [(int(p), Op(o).name, int(t)) for p, o, t in zip(arr.pfn, arr.op, arr.t_ns, strict=True)]
    # Frame 0x20 is first seen entering the page cache: stable before (its initial ops at 0).
    assert ops == [
        (1, "SET_STABLE", 0),
        (1, "WRITE", 0),
        (0, "SET_STABLE", 0),
        (0, "WRITE", 0),
        (0, "READ", 100_000_000),
        (0, "READ", 200_000_000),
        (0, "SET_UNUSED", 300_000_000),
        (1, "SET_VOLATILE", 500_000_000),
        (1, "SET_STABLE_IF_RESIDENT", 600_000_000),
        (1, "READ", 600_000_000),
        (1, "SET_VOLATILE", 600_000_000),
    ]
    assert meta.converter["events"][SAMPLE_EVENT] == 4
    assert meta.converter["sampled_on_free"] == 1


def test_sampling_lines_name_method_availability_and_counts():
    sampling = {
        "method": "smaps-referenced",
        "period_s": 0.2,
        "seed": 0,
        "samples": 10,
        "probe": {
            "clear_refs": True,
            "pagemap_pfns": True,
            "soft_dirty": False,
            "page_idle": False,
            "reasons": {"soft_dirty": "none set"},
        },
    }
    text = "\n".join(sampling_lines(sampling, {"events": {SAMPLE_EVENT: 12}, "sampled_on_free": 2}))
    assert "soft_dirty no" in text and "clear_refs yes" in text and "DAMON not used" in text
    assert "smaps-referenced every 0.2 s" in text and "accesses from sampling: 10 " in text
    off = "\n".join(sampling_lines({"method": "off", "probe": {}}, {}))
    assert "method: off" in off


def test_probe_reports_every_mechanism_with_a_reason():
    p = probe()
    assert set(p.reasons) >= {"clear_refs", "pagemap_pfns", "soft_dirty", "page_idle", "damon"}
    assert p.as_dict()["method"] in (None, "smaps-referenced")
    if os.geteuid() != 0:
        assert p.method is None


def test_kdamond_threads_are_found_by_their_comm(tmp_path):
    for pid, comm in [(1, "systemd"), (105, "kdamond.0"), (2071, "kdamond.12"), (7, "kdamondx"), (9, "kdamond.")]:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "comm").write_text(comm + "\n")
    (tmp_path / "300").mkdir()  # exited: no comm left
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "comm").write_text("kdamond.0\n")  # not a pid
    assert kdamond_threads(tmp_path) == [(105, "kdamond.0"), (2071, "kdamond.12")]
    assert kdamond_threads(tmp_path / "300") == []


def test_damon_reason_names_the_threads_or_says_none_runs():
    assert damon_reason([]) == "not used; no DAMON thread (kdamond) runs here"
    text = damon_reason([(105, "kdamond.0"), (2071, "kdamond.1")])
    assert text.startswith("not used;") and "kdamond.0 pid 105, kdamond.1 pid 2071" in text


@pytest.mark.skipif(sys.platform != "linux", reason="not Linux")
def test_after_the_samplers_clear_every_touched_page_is_referenced():
    """50 clears in a row: none referenced after each, all 64 after touching each.

    A clear without the TLB flush (``clear_refs`` 1 alone) fails this on a CPU
    that keeps the pages' translations cached between two clears.
    """
    import mmap

    pages, page = 64, 4096
    buf = mmap.mmap(-1, pages * page)
    view = np.frombuffer(buf, np.uint8)
    start = int(view.ctypes.data)
    view[::page] = 1
    seen = []
    try:
        for i in range(50):
            try:
                clear_accessed("self")
            except PermissionError as exc:
                pytest.skip(f"clear_refs refused: {exc}")
            before = _smaps_referenced_kb("self", start)
            view[::page] = 2 + i % 200
            seen.append((before, _smaps_referenced_kb("self", start)))
    finally:
        del view
        buf.close()
    assert seen == [(0, pages * page // 1024)] * 50


# -- live: record the controlled workload --------------------------------------------------------


def _live_skip_reason() -> str | None:
    if sys.platform != "linux":
        return "not Linux"
    if os.geteuid() != 0:
        return "needs root (pagemap frame numbers, clear_refs of another process, perf -a)"
    if shutil.which("perf") is None:
        return "perf is not installed"
    p = probe()
    if p.method is None:
        return "no sampling method on this kernel: " + "; ".join(p.reasons.values())
    return None


_SKIP = _live_skip_reason()
MIB, PASSES, GAP_S, PERIOD_S = 8, 4, 0.5, 0.1


def _life_accesses(arr, dense: np.ndarray) -> np.ndarray:
    """Per frame: accesses (READ or WRITE) in its life (from one free to the next) with the most.

    A frame the start snapshot held stable starts with a write at time 0 and
    is allocated without a free before it: its life holds that write too.
    """
    best = np.zeros(len(dense), np.int64)
    pos = {int(d): i for i, d in enumerate(dense.tolist())}
    cur = np.zeros(len(dense), np.int64)
    for p, o in zip(arr.pfn.tolist(), arr.op.tolist(), strict=True):
        i = pos.get(p)
        if i is None:
            continue
        if o == Op.SET_UNUSED:
            cur[i] = 0
        elif o in (Op.READ, Op.WRITE):
            cur[i] += 1
            best[i] = max(best[i], cur[i])
    return best


def _record(tmp_path: Path, name: str, period: float | None):
    import pyarrow.parquet as pq

    from cmmsim.tracer.linux import pfnmap_path
    from cmmsim.tracer.record import record

    out = tmp_path / f"{name}.parquet"
    facts = tmp_path / f"{name}.json"
    data = Path.cwd() / f".sampling-{os.getpid()}-{name}.bin"  # a disk file system, not tmpfs
    try:
        meta = record(
            out,
            [sys.executable, str(WORKLOAD), str(facts), str(MIB), str(PASSES), str(GAP_S), str(data)],
            buffer_pages=1024,
            sample_period_s=period,
        )
    finally:
        data.unlink(missing_ok=True)
    frames = json.loads(facts.read_text())
    pm = pq.read_table(pfnmap_path(out)).to_pydict()
    dense_of = dict(zip(pm["phys_pfn"], pm["pfn"], strict=True))
    arr = read_arrays(out)
    found = {k: np.array([dense_of[p] for p in frames[k] if p in dense_of], np.int64) for k in ("anon", "file")}
    return meta, arr, found, frames


@LIVE_KERNEL
@pytest.mark.slow
@pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")
def test_live_workload_shows_about_k_accesses_per_page_with_sampling_one_without(tmp_path):
    on, arr_on, found_on, frames_on = _record(tmp_path, "on", PERIOD_S)
    off, arr_off, found_off, frames_off = _record(tmp_path, "off", None)
    # The array's frames: every one is in the trace (its allocation).
    assert len(found_on["anon"]) == len(frames_on["anon"]) == MIB * 256
    anon_on = np.median(_life_accesses(arr_on, found_on["anon"]))
    anon_off = np.median(_life_accesses(arr_off, found_off["anon"]))
    # Off: the allocation's write only (and the initial write of a frame held
    # stable at the start). On: one sampled access more per pass (each pass
    # falls in its own sample period), with a period's slack.
    assert anon_off <= 2
    assert PASSES - 1 <= anon_on - anon_off <= PASSES + 1, (anon_on, anon_off)
    # The mapped file read twice: two more accesses with sampling than without.
    file_on = np.median(_life_accesses(arr_on, found_on["file"]))
    file_off = np.median(_life_accesses(arr_off, found_off["file"]))
    assert 1 <= file_on - file_off <= 3, (file_on, file_off)
    s = on.params["sampling"]
    assert s["method"] == "smaps-referenced" and s["period_s"] == PERIOD_S
    assert s["sampled_accesses"] == on.converter["events"][SAMPLE_EVENT] > 0
    assert off.params["sampling"]["method"] == "off"
    assert SAMPLE_EVENT not in off.converter["events"]
