"""The byte scanner claims a line only when the polars path parses it the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.linux.parse import LINE_EVENT, parse_chunk
from tracer.linux.scan import line_bounds, scan_lines

DATA = Path(__file__).parent / "data"


def _compare(lines: list[str]) -> int:
    """Scan and parse the same lines; every claimed line must agree. Returns lines claimed."""
    raw = "".join(line + "\n" for line in lines).encode()
    buf = np.frombuffer(raw, np.uint8)
    starts, ends = line_bounds(buf)
    assert len(starts) == len(lines)
    code, t, vals = scan_lines(buf, starts, ends)
    parsed = parse_chunk(lines, "auto")
    claimed = np.flatnonzero(code >= 0)
    kind = parsed["kind"].to_numpy()
    assert (kind[claimed] == LINE_EVENT).all(), [lines[i] for i in claimed if kind[i] != LINE_EVENT]
    np.testing.assert_array_equal(code[claimed], parsed["code"].to_numpy()[claimed])
    np.testing.assert_array_equal(t[claimed], parsed["t_ns"].to_numpy()[claimed])
    for q, col in enumerate("abcdef"):
        np.testing.assert_array_equal(vals[q, claimed], parsed[col].to_numpy()[claimed], err_msg=col)
    return len(claimed)


def test_scanner_agrees_on_real_perf_lines():
    lines = []
    for name in ("perf-default.txt", "perf-fields.txt", "ftrace.txt", "trace-cmd.txt"):
        lines += (DATA / name).read_text().splitlines()
    claimed = _compare(lines)
    perf = sum(1 for x in (DATA / "perf-default.txt").read_text().splitlines() if "kmem:" in x)
    assert claimed >= perf  # it claims most perf event lines, and nothing it should not


_REAL = (DATA / "perf-default.txt").read_text().splitlines()[:200]


@settings(max_examples=300)
@given(base=st.sampled_from(_REAL), cut=st.integers(0, 300), junk=st.text(max_size=6),
       where=st.integers(0, 300))
def test_scanner_agrees_on_mangled_lines(base, cut, junk, where):
    # Truncated lines, inserted text (including non-ASCII, colons, digits, tabs).
    mangled = [base[:cut], base[:where] + junk + base[where:], junk + base,
               base.replace(": ", ":\t", 1), base.replace(" ", "  "), "  cpus=4 " + base,
               base.replace("order=0", "order=11"), base.replace("0x", "0x" + "f" * 16, 1)]
    lines = [m.replace("\n", " ").replace("\r", " ") for m in mangled]
    _compare(lines)
