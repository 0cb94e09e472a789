"""Converter fuzzing (issue 17): real tracepoint lines, mutated, through ``convert``.

The lines come from the committed fixtures (tests/data/*.txt); each example
mutates a few of them (cut, bytes flipped, fields swapped, numbers enlarged,
compressed bytes damaged) and converts the file with both engines. Whatever
the damage:

- strict mode converts, or stops with a one-line :class:`CmmsimError` that
  names ``file:line`` of a mutated line (or the file, for damaged compressed
  data or an input with no events left);
- lenient mode counts as skipped exactly the lines the reference parser
  calls malformed, and both engines give the same trace and counters;
- damaged compressed data that still converts gives the undamaged trace;
- nothing else is raised (no traceback) and the conversion's traced peak
  memory stays small: no table is sized by an untrusted number.
"""

from __future__ import annotations

import gzip
import lzma
import re
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cmmsim.tracer.errors import CmmsimError
from cmmsim.tracer.linux import convert
from cmmsim.tracer.linux.reference import parse_line

DATA = Path(__file__).parent / "data"
#: Real lines of every shape (perf, trace-cmd, ftrace), a few per fixture.
REAL = [line for path in sorted(DATA.glob("*.txt")) for line in path.read_text().splitlines()[:25] if line.strip()]
#: Numbers a mutation puts in place of one: past int64, past any machine's
#: pfn, just under it, an order past MAX_ORDER, a time past int64 nanoseconds.
BIG = [
    "9" * 25,
    "0x" + "f" * 20,
    "0xffffffffff",
    "0x10000000000",
    "18446744073709551616",
    "99999999999999",
    "4294967296",
    "11",
    "-1",
]
#: Traced allocations of one conversion of a few dozen lines stay under this
#: (the text blocks and tables are a few MiB; a table sized by a huge pfn or
#: count would be gigabytes).
PEAK_BYTES = 256 << 20

_NUMBER = re.compile(rb"0x[0-9a-fA-F]+|[0-9]+")


def _mutate(line: bytes, kind: str, pos: int, value: int, big: str) -> bytes:
    """``line`` mutated; a line end it might hold becomes a space (one line stays one line)."""
    return _mutate_raw(line, kind, pos, value, big).replace(b"\n", b" ").replace(b"\r", b" ")


def _mutate_raw(line: bytes, kind: str, pos: int, value: int, big: str) -> bytes:
    if kind == "cut":
        return line[: pos % (len(line) + 1)]
    if kind == "flip":
        i = pos % max(len(line), 1)
        return line[:i] + bytes([value % 256]) + line[i + 1 :]
    if kind == "swap":
        words = line.split(b" ")
        i, j = pos % len(words), value % len(words)
        words[i], words[j] = words[j], words[i]
        return b" ".join(words)
    numbers = list(_NUMBER.finditer(line))  # enlarge one number
    if not numbers:
        return line + big.encode()
    m = numbers[pos % len(numbers)]
    return line[: m.start()] + big.encode() + line[m.end() :]


#: Flipped-in byte values, less the separators 0x1c-0x1f: Python's str.split and
#: re (the reference) count them as whitespace, the byte scanner does not. A
#: known, documented gap (docs/model.md, converter): real captures hold none.
_BYTE = st.integers(0, 255).filter(lambda v: not 0x1C <= v <= 0x1F)
mutation = st.tuples(
    st.sampled_from(["cut", "flip", "swap", "enlarge"]), st.integers(0, 400), _BYTE, st.sampled_from(BIG)
)


def _write(tmp: Path, name: str, lines: list[bytes]) -> Path:
    src = tmp / name
    body = b"".join(x + b"\n" for x in lines)
    src.write_bytes(gzip.compress(body, mtime=0) if name.endswith(".gz") else body)
    return src


def _convert(src: Path, out: Path, **kw):
    """``convert``, with its traced peak memory checked; returns the metadata or the error."""
    tracemalloc.start()
    try:
        return convert(src, out, **kw)
    except CmmsimError as exc:
        assert "\n" not in str(exc), str(exc)
        return exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < PEAK_BYTES, peak


def _expected_skips(lines: list[bytes]) -> int:
    """Lines the reference parser calls malformed (lenient mode skips and counts them)."""
    kinds = [parse_line(x.decode("utf-8", "replace"))[0] for x in lines]
    return sum(k in ("bad-line", "bad-fields") for k in kinds)


@pytest.mark.slow  # both engines convert every example through the CLI: about a minute
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.lists(st.sampled_from(REAL), min_size=1, max_size=12),
    edits=st.lists(st.tuples(st.integers(0, 11), mutation), min_size=1, max_size=4),
    gz=st.booleans(),
)
def test_mutated_lines_stop_strict_mode_at_a_named_line(tmp_path, base, edits, gz):
    lines = [x.encode() for x in base]
    mutated = set()
    for at, (kind, pos, value, big) in edits:
        i = at % len(lines)
        new = _mutate(lines[i], kind, pos, value, big)
        if new != lines[i]:
            lines[i] = new
            mutated.add(i + 1)
    src = _write(tmp_path, "in.txt.gz" if gz else "in.txt", lines)
    bad = {
        n for n, x in enumerate(lines, 1) if parse_line(x.decode("utf-8", "replace"))[0] in ("bad-line", "bad-fields")
    }
    done = {}
    for engine in ("fast", "python"):
        out = tmp_path / f"{engine}.parquet"
        got = _convert(src, out, engine=engine)
        if not isinstance(got, CmmsimError):
            assert not bad, (engine, bad)
            done[engine] = (got.converter, pq.read_table(out).to_pydict())
            continue
        msg = str(got)
        m = re.match(rf"{re.escape(str(src))}:(\d+): ", msg)
        if m:  # the first malformed line, named by both engines
            assert int(m.group(1)) == min(bad) and int(m.group(1)) in mutated, (msg, bad, mutated)
        else:
            assert msg.startswith(f"{src}: no page tracepoint events"), msg
    # Both engines convert or neither; when they do, the same trace and counters.
    assert len(done) in (0, 2) and done.get("fast") == done.get("python")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.lists(st.sampled_from(REAL), min_size=2, max_size=12),
    edits=st.lists(st.tuples(st.integers(0, 11), mutation), min_size=1, max_size=6),
)
def test_lenient_mode_counts_what_the_reference_calls_malformed(tmp_path, base, edits):
    lines = [x.encode() for x in base]
    for at, (kind, pos, value, big) in edits:
        i = at % len(lines)
        lines[i] = _mutate(lines[i], kind, pos, value, big)
    src = _write(tmp_path, "in.txt", lines)
    results = {}
    for engine in ("fast", "python"):
        out = tmp_path / f"{engine}.parquet"
        got = _convert(src, out, engine=engine, lenient=True)
        if isinstance(got, CmmsimError):
            assert str(got).startswith(f"{src}: no page tracepoint events"), str(got)
            results[engine] = str(got)
            continue
        skipped = got.converter["skipped"]
        malformed = sum(v for k, v in skipped.items() if k != "header or comment")
        assert malformed == _expected_skips(lines), (engine, skipped)
        results[engine] = (got.converter, pq.read_table(out).to_pydict())
    assert results["fast"] == results["python"]


@pytest.mark.parametrize("suffix", [".gz", ".xz"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=3),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
@example(flips=[(5, 0xFF)], cut=None)  # gzip's mtime, which no checksum covers; xz's stream flags
def test_damaged_compressed_input_is_one_line_naming_the_file(tmp_path, suffix, flips, cut):
    text = "".join(line + "\n" for line in REAL).encode()
    data = bytearray(gzip.compress(text, mtime=0) if suffix == ".gz" else lzma.compress(text))
    for pos, x in flips:
        data[pos % len(data)] ^= x
    if cut is not None:
        data = data[: cut % len(data)]
    src = tmp_path / f"in.txt{suffix}"
    src.write_bytes(bytes(data))
    (tmp_path / "clean.txt").write_bytes(text)
    clean = convert(tmp_path / "clean.txt", tmp_path / "clean.parquet")
    for lenient in (False, True):
        got = _convert(src, tmp_path / "out.parquet", lenient=lenient)
        if isinstance(got, CmmsimError):
            assert str(got).startswith(f"{src}"), str(got)
        else:
            # Damage the checksums cannot see (a header byte): the undamaged trace.
            assert got.converter == clean.converter
            assert pq.read_table(tmp_path / "out.parquet").equals(pq.read_table(tmp_path / "clean.parquet"))
