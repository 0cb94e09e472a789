"""Trace exchange with libCacheSim (cmmsim.tracer.exchange, `cmmsim trace export|import`)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from cmmsim.cli import app
from cmmsim.replay import scenario as sc
from cmmsim.tracer import exchange as ex
from cmmsim.tracer.errors import TraceError
from cmmsim.tracer.io import read_arrays, read_meta, write_trace
from cmmsim.tracer.schema import Op, TraceMeta
from tests.test_peer_libcachesim import host_lru_misses

runner = CliRunner()
EXT = {"csv": "csv", "txt": "txt", "oracle-general": "oracleGeneral"}


@pytest.fixture
def trace(tmp_path):
    """A skewed access stream over 400 of 500 frames, hints mixed in, over 5 s."""
    rng = np.random.default_rng(5)
    n = 6000
    pfn = np.where(rng.random(n) < 0.7, rng.integers(0, 40, n), rng.integers(0, 400, n)).astype(np.uint32)
    op = rng.choice([Op.READ, Op.WRITE, Op.SET_UNUSED, Op.SET_STABLE], n).astype(np.uint8)
    t_ns = np.sort(rng.integers(0, 5 * 10**9, n)).astype(np.int64)
    path = tmp_path / "a.parquet"
    write_trace(path, t_ns, pfn, op, TraceMeta(guest_pages=500, source="test"))
    return path


def _lcs_reader(lcs, path, fmt):
    if fmt == "oracle-general":
        return lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam())
    if fmt == "txt":
        return lcs.TraceReader(str(path), lcs.TraceType.PLAIN_TXT_TRACE, lcs.ReaderInitParam())
    params = lcs.ReaderInitParam(has_header=True, delimiter=",")
    params.time_field, params.obj_id_field, params.obj_size_field = 1, 2, 3
    return lcs.TraceReader(str(path), lcs.TraceType.CSV_TRACE, params)


@pytest.mark.parametrize("fmt", ex.FORMATS)
def test_libcachesim_lru_on_export_equals_host_lru(tmp_path, trace, fmt):
    lcs = pytest.importorskip("libcachesim", reason="libcachesim (dev extra) is not installed")
    out = tmp_path / f"a.{EXT[fmt]}"
    r = runner.invoke(app, ["trace", "export", str(trace), "-o", str(out), "--format", fmt])
    assert r.exit_code == 0, r.output
    scn = sc.load([trace])
    accesses = int((scn.op <= Op.WRITE).sum())
    for pages in (1, 7, 40, 150, 400):
        # txt has no sizes: libCacheSim counts each object as 1 byte there.
        size = pages if fmt == "txt" else pages * 4096
        obj_miss, _ = lcs.LRU(cache_size=size).process_trace(_lcs_reader(lcs, out, fmt))
        assert obj_miss == pytest.approx(host_lru_misses(scn, pages) / accesses, abs=1e-12), pages


@pytest.mark.parametrize("fmt", ex.FORMATS)
def test_export_import_export_gives_the_same_bytes(tmp_path, trace, fmt):
    first, second = tmp_path / "1", tmp_path / "2"
    s = ex.export_trace(trace, first, fmt)
    assert s.requests == int((read_arrays(trace).op <= Op.WRITE).sum()) and s.skipped_hints > 0
    ex.import_trace(first, tmp_path / "b.parquet", fmt)
    ex.export_trace(tmp_path / "b.parquet", second, fmt)
    assert first.read_bytes() == second.read_bytes()


def test_oracle_general_records_and_next_access(tmp_path):
    path = tmp_path / "t.parquet"
    t = np.array([0, 10**9, 2 * 10**9 + 5, 3 * 10**9, 3 * 10**9], np.int64)
    write_trace(
        path,
        t,
        np.array([9, 4, 9, 2, 4], np.uint32),
        np.array([0, 1, 3, 0, 0], np.uint8),
        TraceMeta(guest_pages=10, source="test"),
    )
    ex.export_trace(path, tmp_path / "o", "oracle-general")
    rec = np.fromfile(tmp_path / "o", ex.ORACLE_GENERAL_DTYPE)
    assert ex.ORACLE_GENERAL_DTYPE.itemsize == 24
    # The SET_UNUSED hint (row 2) is left out; pages 2, 4, 9 are objects 0, 1, 2.
    assert rec["time"].tolist() == [0, 1, 3, 3]
    assert rec["obj_id"].tolist() == [2, 1, 0, 1]
    assert rec["obj_size"].tolist() == [4096] * 4
    assert rec["next_access_vtime"].tolist() == [-1, 3, -1, -1]


def test_import_splits_large_objects_into_pages_and_says_no_hints(tmp_path):
    src = tmp_path / "in.csv"
    # id 20 is 3 pages at most; its 4096-byte request touches its first page only.
    src.write_text("ts;key;bytes\n5;20;12000\n6;7;100\n7;20;4096\n8;9;0\n4;7;1\n")
    out = tmp_path / "t.parquet"
    r = runner.invoke(
        app, ["trace", "import", str(src), "-o", str(out), "--format", "csv", "--delimiter", ";", "--time-unit", "ms"]
    )
    assert r.exit_code == 0, r.output
    arr = read_arrays(out)
    # Objects 7 -> page 0, 20 -> pages 1-3; the size-0 request is skipped; time 4 after 7 is repaired.
    assert arr.pfn.tolist() == [1, 2, 3, 0, 1, 0]
    assert arr.t_ns.tolist() == [5_000_000] * 3 + [6_000_000, 7_000_000, 7_000_000]
    assert set(arr.op.tolist()) == {Op.READ}
    meta = read_meta(out)
    assert meta.guest_pages == 4 and meta.params["hints"] == "none" and meta.source == "libcachesim:csv"
    assert meta.converter["size_zero_skipped"] == 1 and meta.converter["time_repaired"] == 1
    r = runner.invoke(app, ["trace", "info", str(out)])
    assert r.exit_code == 0 and "no hints" in r.output


def test_import_txt_with_text_ids_and_no_times(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("b\na\nb\nc\n")
    ex.import_trace(src, tmp_path / "t.parquet", "txt", request_ns=50)
    arr = read_arrays(tmp_path / "t.parquet")
    assert arr.pfn.tolist() == [1, 0, 1, 2] and arr.t_ns.tolist() == [0, 50, 100, 150]


@pytest.mark.parametrize(
    ("fmt", "text", "where"),
    [
        ("csv", "time,obj_id,obj_size\n1,2,4096\n2,x\n", "line 3: expected at least 3 fields"),
        ("csv", "1,2,4096\n2,3,big\n", "line 2: object size is not an integer"),
        ("csv", "1,2,4096\nsoon,3,1\n", "line 2: time is not a number"),
        ("txt", "1\n2\n\n3\n", "line 3: expected one object id"),
        ("oracle-general", "x" * 30, "record 1: cut short"),
    ],
)
def test_malformed_input_is_one_line_naming_file_and_line(tmp_path, fmt, text, where):
    src = tmp_path / "bad.in"
    src.write_text(text)
    with pytest.raises(TraceError, match=where):
        ex.import_trace(src, tmp_path / "t.parquet", fmt)
    r = runner.invoke(app, ["trace", "import", str(src), "-o", str(tmp_path / "t.parquet"), "--format", fmt])
    err = r.stderr.strip()
    assert r.exit_code == 2 and "\n" not in err and str(src) in err and where in err, err
    assert not (tmp_path / "t.parquet").exists()


def test_unknown_format_is_refused(tmp_path, trace):
    r = runner.invoke(app, ["trace", "export", str(trace), "-o", str(tmp_path / "x"), "--format", "vscsi"])
    assert r.exit_code == 2 and "oracle-general" in r.stderr


def test_import_times_exact_in_ns_and_fractional_seconds_rounded(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("1733300000123456789,5,4096\n1733300000123456790,6,4096\n")
    ex.import_trace(src, tmp_path / "ns.parquet", "csv", time_unit="ns")
    assert read_arrays(tmp_path / "ns.parquet").t_ns.tolist() == [1733300000123456789, 1733300000123456790]
    src.write_text("0.5,5,4096\n1.25,6,4096\n")
    ex.import_trace(src, tmp_path / "s.parquet", "csv")
    assert read_arrays(tmp_path / "s.parquet").t_ns.tolist() == [500_000_000, 1_250_000_000]
    src.write_text("99999999999999,5,4096\n")
    with pytest.raises(TraceError, match="request 0: time 99999999999999 does not fit"):
        ex.import_trace(src, tmp_path / "x.parquet", "csv")
