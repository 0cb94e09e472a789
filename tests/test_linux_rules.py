"""The converter's page-cache read rules: read() turns, fault-around, faults before their
fill, block-device writeback, the start snapshot and why an access stays unresolved.

Every case runs through both mappers (the fast path and the line-by-line twin) and
demands the same trace and counters.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmmsim.tracer.io import read_arrays
from cmmsim.tracer.linux import convert
from cmmsim.tracer.schema import Op

R, W, SS, SU, SV, SIR = (Op.READ, Op.WRITE, Op.SET_STABLE, Op.SET_UNUSED, Op.SET_VOLATILE, Op.SET_STABLE_IF_RESIDENT)


def _line(t_us: int, body: str) -> str:
    return f" cc 100 [000] {10 + t_us // 10**6}.{t_us % 10**6:06d}: {body}\n"


def _add(t_us, pfn, index, order=0, dev="254:0", ino="1f"):
    return _line(
        t_us,
        f"filemap:mm_filemap_add_to_page_cache: dev {dev} ino {ino} pfn=0x{pfn:x} ofs={index * 4096} order={order}",
    )


def _range(t_us, event, first, last, dev="254:0", ino="1f"):
    return _line(t_us, f"filemap:mm_filemap_{event}: dev={dev} ino={ino} ofs={first * 4096}-{(last + 1) * 4096 - 1}")


def _fault(t_us, index, dev="254:0", ino="1f"):
    return _line(t_us, f"filemap:mm_filemap_fault: dev={dev} ino={ino} ofs={index * 4096}")


def _both(tmp_path, lines, **kw):
    """Convert with both mappers; returns (meta, [(dense pfn, op)], reads per physical pfn)."""
    src = tmp_path / "in.txt"
    src.write_text("".join(lines))
    a = convert(src, tmp_path / "fast.parquet", **kw)
    b = convert(src, tmp_path / "ref.parquet", engine="python", **kw)
    x, y = read_arrays(tmp_path / "fast.parquet"), read_arrays(tmp_path / "ref.parquet")
    for col in ("t_ns", "pfn", "op"):
        np.testing.assert_array_equal(getattr(x, col), getattr(y, col))
    assert a.converter == b.converter
    import pyarrow.parquet as pq

    from cmmsim.tracer.linux import pfnmap_path

    phys = pq.read_table(pfnmap_path(tmp_path / "fast.parquet"))["phys_pfn"].to_numpy()
    reads = {int(p): int(n) for p, n in zip(*np.unique(phys[x.pfn[x.op == R]], return_counts=True), strict=True)}
    return a, list(zip(x.pfn.tolist(), x.op.tolist(), strict=True)), reads


def _cached(pages: list[int], pfn0: int = 0x100):
    """Lines adding file pages ``pages`` at frames pfn0 + page."""
    return [_add(1 + i, pfn0 + p, p) for i, p in enumerate(pages)]


def test_a_read_in_turns_reads_each_page_once(tmp_path):
    # A read of pages 0-19 of a file whose pages 0-9 are cached reports the rest of
    # the request at each turn (start 0, 4, 8): every cached page is read once.
    lines = _cached(range(10)) + [
        _range(100, "get_pages", 0, 19),
        _range(101, "get_pages", 4, 19),
        _range(102, "get_pages", 8, 19),
    ]
    meta, _, reads = _both(tmp_path, lines)
    assert reads == {0x100 + p: 1 for p in range(10)}
    c = meta.converter
    assert c["unresolved_accesses"] == 0 and c["page_cache_reads"] == 10
    assert c["get_pages_unread"] == 10 + 10 + 10  # pages 10-19 each turn: past the file's end


def test_a_turn_read_past_an_unknown_page_is_completed_by_the_next(tmp_path):
    # Pages 4 and 5 were cached before the capture: the first turn stops there, the
    # next turn (start 8) shows it read up to 8, so 4 and 5 are unresolved, 6 and 7 read.
    lines = _cached([0, 1, 2, 3, 6, 7, 8, 9]) + [_range(100, "get_pages", 0, 9), _range(101, "get_pages", 8, 9)]
    meta, _, reads = _both(tmp_path, lines)
    assert reads == {0x100 + p: 1 for p in (0, 1, 2, 3, 6, 7, 8, 9)}
    assert meta.converter["unresolved_accesses"] == 2
    assert meta.converter["unresolved_causes"] == {"page not seen": 2}


def test_a_new_read_of_the_same_range_reads_again(tmp_path):
    # The same request again (start not past the last turn's): a new read.
    lines = _cached([0, 1]) + [_range(100, "get_pages", 0, 1), _range(101, "get_pages", 0, 1)]
    _, _, reads = _both(tmp_path, lines)
    assert reads == {0x100: 2, 0x101: 2}


def test_a_turn_always_reads_its_first_page(tmp_path):
    lines = [_range(100, "get_pages", 3, 9), _range(101, "get_pages", 3, 9, dev="0:5")]
    meta, ops, _ = _both(tmp_path, lines)
    assert ops == []
    assert meta.converter["unresolved_causes"] == {"file not seen": 1, "pseudo file system": 1}
    assert meta.converter["get_pages_unread"] == 12


def test_fault_around_reads_only_the_first_cached_page(tmp_path):
    lines = _cached([5, 6]) + [_range(100, "map_pages", 4, 7)]
    meta, _, reads = _both(tmp_path, lines)
    assert reads == {0x105: 1}
    c = meta.converter
    assert (c["fault_around_mapped"], c["fault_around_unknown"], c["unresolved_accesses"]) == (1, 2, 0)
    # None of the range known: the faulting page is unresolved, the rest counted apart.
    meta, ops, _ = _both(tmp_path, [_range(100, "map_pages", 4, 7)])
    assert ops == [] and meta.converter["unresolved_accesses"] == 1
    assert meta.converter["fault_around_unknown"] == 3


def test_fault_around_skips_the_front_its_last_range_mapped(tmp_path):
    # A task reading a mapping forward: windows aligned on the address overlap the
    # file's offsets; the second window's fault is on page 16, past the first.
    lines = _cached(range(32)) + [
        _range(100, "map_pages", 0, 15),
        _range(101, "map_pages", 11, 26),
        _range(102, "map_pages", 27, 31),
    ]
    meta, _, reads = _both(tmp_path, lines)
    assert reads == {0x100: 1, 0x110: 1, 0x11B: 1}
    assert meta.converter["fault_around_mapped"] == 15 + 10 + 4


def test_a_fault_retried_after_its_read_in_is_read_once(tmp_path):
    # The fault on page 5 waits for its read-in (the fill), then is retried: its
    # fault-around maps pages 4-7 and reads nothing more.
    lines = [_fault(100, 5), _add(150, 0x200, 4, order=2), _range(900, "map_pages", 4, 7)]
    meta, _, reads = _both(tmp_path, lines)
    assert reads == {0x201: 1}
    c = meta.converter
    assert (c["fault_around_retries"], c["fault_around_mapped"], c["faults_filled"]) == (1, 3, 1)
    # Past the retry window, or not covering the fault's page: a fault-around of its own.
    for t_us, first, last, page in ((1_000_151, 4, 7, 4), (900, 6, 7, 6)):
        lines = [_fault(100, 5), _add(150, 0x200, 4, order=2), _range(t_us, "map_pages", first, last)]
        meta, _, reads = _both(tmp_path, lines)
        assert reads == {0x201: 1, 0x200 + page - 4: 1}
        assert meta.converter["fault_around_retries"] == 0


def test_a_fault_before_its_fill_reads_the_page_once_filled(tmp_path):
    # The fault event comes before the page is read in; the fill (an order-2 folio
    # over pages 4-7) follows: page 5 is read then, after its fill.
    lines = [_fault(100, 5), _add(150, 0x200, 4, order=2)]
    meta, ops, reads = _both(tmp_path, lines)
    assert reads == {0x201: 1}
    assert ops[-3:] == [(1, SIR), (1, R), (1, SV)]
    assert meta.converter["faults_filled"] == 1 and meta.converter["unresolved_accesses"] == 0


def test_a_fault_whose_fill_never_comes_is_unresolved(tmp_path):
    # A fill later than the window, a second fault replacing a pending one, and one
    # pending at the end: three unresolved, none read.
    lines = [_fault(100, 5), _add(100 + 20_000, 0x200, 5), _fault(30_000, 9, ino="2f"), _fault(30_001, 10, ino="2f")]
    meta, _, reads = _both(tmp_path, lines)
    assert reads == {}
    assert meta.converter["unresolved_accesses"] == 3 and meta.converter["faults_filled"] == 0
    assert meta.converter["unresolved_causes"] == {"file not seen": 3}


def test_block_device_pages_are_dirtied_through_their_bdi(tmp_path):
    # filemap names the disk's own page cache dev 0:3 ino fe00000; writeback names
    # it by the disk's bdi 254:0 and the same inode in decimal (254 << 20).
    ino = 254 << 20
    lines = [
        _add(1, 0x300, 7, dev="0:3", ino=f"{ino:x}"),
        _line(2, f"writeback:writeback_dirty_folio: bdi 254:0: ino={ino} index=7"),
        _line(
            3,
            f"writeback:writeback_single_inode: bdi 254:0: ino={ino} state=0x0 "
            "dirtied_when=1 age=1 index=0 to_write=1 wrote=1 cgroup_ino=1",
        ),
    ]
    meta, ops, _ = _both(tmp_path, lines)
    assert ops[-4:] == [(0, SIR), (0, W), (0, SS), (0, SV)]
    assert meta.converter["unresolved_dirty"] == 0


def test_the_start_snapshot_resolves_pages_cached_before_the_capture(tmp_path):
    snapshot = np.array([[254, 0, 0x1F, 3, 0x99], [254, 0, 0x1F, 4, 0x9A]])
    lines = [_range(100, "get_pages", 3, 9), _range(101, "map_pages", 4, 5)]
    meta, ops, reads = _both(tmp_path, lines, initial_pages=snapshot)
    assert reads == {0x99: 1, 0x9A: 2}
    # Frames first seen as read page cache: clean at t=0 (SS, W, SV), then read.
    assert ops[:6] == [(0, SS), (0, W), (0, SV), (1, SS), (1, W), (1, SV)]
    c = meta.converter
    assert c["snapshot_pages"] == 2 and c["unresolved_accesses"] == 0


_BODIES = [
    "kmem:mm_page_alloc: page=0x{p:x} pfn=0x{p:x} order={o} migratetype=0 gfp_flags=X",
    "kmem:mm_page_free: page=0x{p:x} pfn=0x{p:x} order={o}",
    "filemap:mm_filemap_add_to_page_cache: dev 8:1 ino {i:x} pfn=0x{p:x} ofs={f} order={o}",
    "filemap:mm_filemap_add_to_page_cache: dev 0:3 ino 800001 pfn=0x{p:x} ofs={f} order={o}",
    "filemap:mm_filemap_delete_from_page_cache: dev 8:1 ino {i:x} pfn=0x{p:x} ofs={f} order={o}",
    "filemap:mm_filemap_get_pages: dev=8:1 ino={i:x} ofs={f}-32767",
    "filemap:mm_filemap_get_pages: dev=8:1 ino={i:x} ofs={f}-{g}",
    "filemap:mm_filemap_get_pages: dev=0:3 ino=800001 ofs={f}-32767",
    "filemap:mm_filemap_map_pages: dev=8:1 ino={i:x} ofs={f}-{g}",
    "filemap:mm_filemap_fault: dev=8:1 ino={i:x} ofs={f}",
    "filemap:mm_filemap_fault: dev=0:7 ino={i:x} ofs={f}",
    "writeback:writeback_dirty_folio: bdi 8:1: ino={i} index={x}",
    "writeback:writeback_dirty_folio: bdi 8:1: ino=8388609 index={x}",
    "writeback:writeback_single_inode: bdi 8:1: ino=8388609 state=0x0 dirtied_when=1 age=1 "
    "index=0 to_write=1 wrote={w} cgroup_ino=1",
    "ext4:ext4_writepages_result: dev 8,1 ino {i} ret 0 pages_written {w} pages_skipped 0 "
    "sync_mode 1 writeback_index 0",
    "pagemap:mm_lru_activate: folio=0xffff pfn=0x{p:x}",
]
#: Gaps between events, ns: same instant, within and past the fill window, past dirty expiry.
_GAPS = (0, 1_000_000, 9_000_000, 11_000_000, 40_000_000_000)


@settings(max_examples=150, deadline=None)
@given(
    draws=st.lists(
        st.tuples(
            st.integers(0, len(_BODIES) - 1),
            st.integers(1, 24),
            st.integers(0, 2),
            st.integers(1, 3),
            st.integers(0, 7),
            st.integers(0, 3),
            st.sampled_from(_GAPS),
        ),
        min_size=1,
        max_size=80,
    ),
    snapshot=st.lists(st.tuples(st.integers(1, 3), st.integers(0, 7), st.integers(1, 30)), max_size=6),
)
def test_both_mappers_agree_on_reads_fills_aliases_and_snapshots(tmp_path_factory, draws, snapshot):
    tmp = tmp_path_factory.mktemp("rules")
    t = 10**9
    lines = []
    for k, pfn, order, ino, idx, wrote, gap in draws:
        t += gap
        body = _BODIES[k].format(p=pfn, o=order, i=ino, f=idx * 4096, g=idx * 4096 + 8191, x=idx, w=wrote)
        lines.append(f" task 1 [000] {t // 10**9}.{t % 10**9:09d}: {body}\n")
    rows = np.array([(8, 1, ino, idx, pfn) for ino, idx, pfn in snapshot], np.int64).reshape(-1, 5)
    _both(tmp, lines, lenient=True, initial_pages=rows)


@pytest.mark.parametrize("rows", [np.zeros((0, 5), np.int64), None])
def test_an_empty_snapshot_changes_nothing(tmp_path, rows):
    lines = _cached([0]) + [_range(100, "get_pages", 0, 0)]
    meta, _, reads = _both(tmp_path, lines, initial_pages=rows)
    assert reads == {0x100: 1} and meta.converter["snapshot_pages"] == 0


def test_a_snapshot_covers_the_whole_large_folio_of_a_mapped_page():
    from cmmsim.tracer.linux.snapshot import unique_snapshot, whole_folios

    head, tail = np.uint64(1 << 15), np.uint64(1 << 16)
    flags = np.zeros(64, np.uint64)
    flags[8], flags[9:12] = head, tail  # an order-2 folio at frames 8-11
    rows = np.array([[254, 0, 7, 41, 10], [254, 0, 7, 3, 30]])  # page 41 in frame 10
    out = whole_folios(rows, flags)
    assert (
        out.tolist()
        == unique_snapshot(
            np.array(
                [[254, 0, 7, 41, 10], [254, 0, 7, 3, 30], [254, 0, 7, 39, 8], [254, 0, 7, 40, 9], [254, 0, 7, 42, 11]]
            )
        ).tolist()
    )


def test_a_snapshot_keeps_each_page_and_frame_once():
    from cmmsim.tracer.linux.snapshot import unique_snapshot

    rows = np.array([[8, 1, 5, 0, 100], [8, 1, 5, 0, 101], [8, 1, 6, 0, 100], [8, 1, 5, 1, 102]])
    assert unique_snapshot(rows).tolist() == [[8, 1, 5, 0, 100], [8, 1, 5, 1, 102]]
