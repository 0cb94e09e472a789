"""The trace schema and its I/O: round trips, metadata, every validator error."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cmmsim.tracer.errors import TraceError
from cmmsim.tracer.io import (
    TraceWriter,
    atomic_output,
    meta_to_arrow,
    read_arrays,
    read_meta,
    scan_trace,
    validate_trace,
    write_trace,
)
from cmmsim.tracer.schema import META_KEYS, SCHEMA_VERSION, Op, TraceMeta, validate_arrays


def _cols(n=1000, seed=0, guest_pages=500):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(0, 5000, n)).astype(np.int64)
    pfn = rng.integers(0, guest_pages, n).astype(np.uint32)
    op = rng.integers(0, len(Op), n).astype(np.uint8)
    return t, pfn, op


META = TraceMeta(
    guest_pages=500, source="synthetic:test", params={"a": 1, "b": "x"}, seed=42, converter={"lines_read": 10}
)


def test_round_trip_keeps_rows_and_metadata(tmp_path):
    t, pfn, op = _cols()
    path = tmp_path / "t.parquet"
    written = write_trace(path, t, pfn, op, META, row_group_rows=300)
    back = read_arrays(path)
    np.testing.assert_array_equal(back.t_ns, t)
    np.testing.assert_array_equal(back.pfn, pfn)
    np.testing.assert_array_equal(back.op, op)
    assert back.t_ns.dtype == np.int64 and back.pfn.dtype == np.uint32 and back.op.dtype == np.uint8
    assert back.t_ns.flags.c_contiguous and back.pfn.flags.c_contiguous
    assert back.meta == written
    assert back.meta.params == {"a": 1, "b": "x"} and back.meta.seed == 42
    assert back.meta.converter == {"lines_read": 10}
    assert back.meta.event_counts == {o.name: int((op == o).sum()) for o in Op}
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    lf = scan_trace(path).collect()
    assert lf.height == len(t) and lf["pfn"].to_list() == pfn.tolist()


def test_streaming_writer_equals_whole_write(tmp_path):
    t, pfn, op = _cols(2000)
    with TraceWriter(tmp_path / "s.parquet", 500) as w:
        for a in range(0, 2000, 700):
            w.write(t[a : a + 700], pfn[a : a + 700], op[a : a + 700])
        w.finish(META)
    whole = write_trace(tmp_path / "w.parquet", t, pfn, op, META)
    s = read_arrays(tmp_path / "s.parquet")
    np.testing.assert_array_equal(s.t_ns, t)
    np.testing.assert_array_equal(s.op, op)
    assert s.meta == whole


def test_streaming_writer_refuses_time_going_back_across_batches(tmp_path):
    t, pfn, op = _cols(10)
    with pytest.raises(TraceError, match="decreases"):
        with TraceWriter(tmp_path / "s.parquet", 500) as w:
            w.write(t[5:], pfn[5:], op[5:])
            w.write(t[:5], pfn[:5], op[:5])
    assert not (tmp_path / "s.parquet").exists()
    assert list(tmp_path.iterdir()) == []


def test_unknown_schema_version_is_refused_naming_both(tmp_path):
    t, pfn, op = _cols(10)
    md = meta_to_arrow(META)
    md[META_KEYS["schema_version"].encode()] = b"99"
    table = pa.table({"t_ns": t, "pfn": pfn, "op": op}).replace_schema_metadata(md)
    pq.write_table(table, tmp_path / "v.parquet")
    with pytest.raises(TraceError, match=rf"version 99 .*version {SCHEMA_VERSION}"):
        read_meta(tmp_path / "v.parquet")


def test_plain_parquet_without_metadata_is_not_a_trace(tmp_path):
    t, pfn, op = _cols(10)
    pq.write_table(pa.table({"t_ns": t, "pfn": pfn, "op": op}), tmp_path / "p.parquet")
    with pytest.raises(TraceError, match="not a cmmsim trace"):
        read_arrays(tmp_path / "p.parquet")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t, p, o: (t[::-1].copy(), p, o), r"row 1: timestamp decreases"),
        (
            lambda t, p, o: (t, np.where(np.arange(len(p)) == 7, 500, p).astype(np.uint32), o),
            r"row 7: pfn 500 >= guest_pages 500",
        ),
        (lambda t, p, o: (t, p, np.where(np.arange(len(o)) == 3, 9, o).astype(np.uint8)), r"row 3: unknown op code 9"),
        (lambda t, p, o: (t.astype(np.int32), p, o), r"column 't_ns' has dtype int32"),
        (lambda t, p, o: (t - 10**9, p, o), r"row 0: negative timestamp"),
    ],
)
def test_validator_names_first_bad_row(mutate, message):
    t, pfn, op = _cols(20)
    t, pfn, op = mutate(t, pfn, op)
    with pytest.raises(TraceError, match=message):
        validate_arrays(t, pfn, op, 500, where="x.parquet")


def _raw_file(tmp_path, table, name="raw.parquet"):
    table = table.replace_schema_metadata(meta_to_arrow(META))
    pq.write_table(table, tmp_path / name)
    return tmp_path / name


def test_file_level_errors(tmp_path):
    t, pfn, op = _cols(10)
    with pytest.raises(TraceError, match="no such file"):
        validate_trace(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 this is not parquet at all PAR1")
    with pytest.raises(TraceError, match="not a Parquet file"):
        validate_trace(tmp_path / "junk.parquet")
    with pytest.raises(TraceError, match="missing column 'op'"):
        validate_trace(_raw_file(tmp_path, pa.table({"t_ns": t, "pfn": pfn})))
    with pytest.raises(TraceError, match="column 'pfn' has type int64"):
        validate_trace(_raw_file(tmp_path, pa.table({"t_ns": t, "pfn": pfn.astype(np.int64), "op": op})))
    bad_t = pa.array(list(t[:-1]) + [None], type=pa.int64())
    with pytest.raises(TraceError, match="null values"):
        validate_trace(_raw_file(tmp_path, pa.table({"t_ns": bad_t, "pfn": pfn, "op": op})))
    with pytest.raises(TraceError, match="row 1: timestamp decreases"):
        validate_trace(_raw_file(tmp_path, pa.table({"t_ns": t[::-1].copy(), "pfn": pfn, "op": op})))


def test_write_refuses_invalid_rows_and_leaves_nothing(tmp_path):
    t, pfn, op = _cols(10)
    with pytest.raises(TraceError):
        write_trace(tmp_path / "bad.parquet", t[::-1].copy(), pfn, op, META)
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "r.json"
    target.write_text(json.dumps({"old": True}))
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_column_spill_reads_back_its_batches_and_cleans_up(tmp_path):
    import numpy as np
    import pytest

    from cmmsim.tracer.io import ColumnSpill

    batches = [
        (np.arange(n, dtype=np.int64), np.arange(n, dtype=np.uint32) * 3, np.full(n, k, np.uint8))
        for k, n in enumerate([5, 0, 7])
    ]
    path = tmp_path / ".x.body"
    with ColumnSpill(path) as spill:
        for b in batches:
            spill.write(*b)
        got = list(spill.batches())
    assert not path.exists()
    want = [b for b in batches if len(b[0])]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert all(x.dtype == y.dtype and x.tolist() == y.tolist() for x, y in zip(g, w, strict=True))
    with pytest.raises(RuntimeError), ColumnSpill(path) as spill:
        spill.write(*batches[0])
        raise RuntimeError("conversion failed")
    assert not path.exists()
