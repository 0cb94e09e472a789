"""The exact parse of the fast path: polars classifies and parses chunks of lines.

Same answers as :func:`cmmsim.tracer.linux.reference.parse_line` a chunk at a time:
polars' (Rust) regular expressions turn lines into a line kind, the event's
kind code, its time and the numeric columns of :mod:`cmmsim.tracer.linux.rules`.
The byte scanner (:mod:`cmmsim.tracer.linux.scan`) leaves every line it cannot
claim to this parse, which decides exactly (other formats, unused events,
malformed lines and their errors).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl

from cmmsim.tracer.linux.counters import SKIP_BAD_LINE, SKIP_NOISE, Counters, skip_bad_fields
from cmmsim.tracer.linux.rules import (
    BDI_ANY,
    COLUMNS,
    EVENT_CODE,
    EVENT_COLUMNS,
    EVENTS,
    FIELDS,
    HEX_COLUMNS,
    LINE_SHAPES,
    LOST,
    MAX_ORDER,
    MAX_PFN,
    MAX_TIME_S,
    NOISE,
    ORDER_GROUP,
    PFN_NAMES,
    SHAPE_HEADS,
)

_SHAPE_ORDER = list(LINE_SHAPES)  # perf, ftrace, trace-cmd: the reference's order
#: Line kinds of :func:`parse_chunk` (codes index the names, which are the reference's).
LINE_EVENT, LINE_UNUSED, LINE_NOISE, LINE_BAD, LINE_BAD_FIELDS, LINE_LOST = range(6)
LINE_KIND_NAMES = ("event", "unused", "noise", "bad-line", "bad-fields", "lost")
#: ``code`` of a line that is no event the converter maps.
NO_EVENT = 255


def parse_chunk(lines: list[str], fmt: str) -> pl.DataFrame:
    """Classify and parse a chunk of lines.

    Returns one row per line: ``kind`` (uint8 line kind, ``LINE_*``),
    ``name`` (event name or unused-event label, where the counters need it),
    ``code`` (uint8 event kind code, :data:`NO_EVENT` for none), ``t_ns``
    and the numeric columns ``a`` ... ``f`` (of a ``LINE_LOST`` line, ``a``
    is the count of events lost).
    """
    line = pl.Series("line", lines, dtype=pl.String).str.strip_chars_end("\r\n")
    noise = line.str.contains(NOISE.pattern)
    lost_n = line.str.extract(LOST.pattern, 1)
    noise = noise | lost_n.is_not_null()  # not parsed as an event line; its kind is set below
    # Captures of the header regexes are slow (their lazy task-name group);
    # matching without captures is fast. So: which shape matches is decided
    # by the reference regexes themselves, and the fields come from splitting
    # at ": " wherever that provably gives the regex's captures: the part
    # before the first ": " holds no other colon-whitespace, the event part
    # is a bare name (sys:event for perf) and a body follows. Other lines
    # take the regex captures.
    parts = line.str.splitn(": ", 3).struct.unnest()
    head, mid, rest = parts["field_0"], parts["field_1"], parts["field_2"]
    clean = (~head.str.contains(r":\s").fill_null(True)) & rest.is_not_null()
    mid = mid.str.strip_chars_start()
    shapes = _SHAPE_ORDER if fmt == "auto" else [fmt]
    n = len(line)
    shape_np = np.full(n, -1, dtype=np.int8)
    todo = ~noise.to_numpy()
    for name in shapes:
        idx = np.flatnonzero(todo)
        if not len(idx):
            break
        hit = line.gather(idx).str.contains(LINE_SHAPES[name].pattern).fill_null(False).to_numpy()
        shape_np[idx[hit]] = _SHAPE_ORDER.index(name)
        todo[idx[hit]] = False
    has_shape = pl.Series(shape_np >= 0)
    is_perf = pl.Series(shape_np == _SHAPE_ORDER.index("perf"))
    # The split holds the regex's captures when the shape's head ends at the
    # first ": " (its time there) and the event part follows it.
    head_ok = np.zeros(n, dtype=bool)
    for code, name in enumerate(_SHAPE_ORDER):
        idx = np.flatnonzero(shape_np == code)
        if len(idx):
            head_ok[idx] = head.gather(idx).str.contains(SHAPE_HEADS[name] + "$").fill_null(False).to_numpy()
    easy = (
        clean
        & has_shape
        & pl.Series(head_ok)
        & pl.select(
            pl.when(is_perf).then(mid.str.contains(r"^\w+:\w+$")).otherwise(mid.str.contains(r"^\w+$"))
        ).to_series()
    ).fill_null(False)
    mid_parts = mid.str.splitn(":", 2).struct.unnest()
    ts = pl.select(pl.when(easy).then(head.str.extract(r"([0-9]+\.[0-9]+)$", 1))).to_series()
    ev = pl.select(pl.when(easy & is_perf).then(mid_parts["field_1"]).when(easy).then(mid)).to_series()
    sysn = pl.select(pl.when(easy & is_perf).then(mid_parts["field_0"])).to_series()
    body = pl.select(pl.when(easy).then(rest)).to_series()
    hard = (has_shape & ~easy).fill_null(False)
    if hard.any():
        rows = np.flatnonzero(hard.to_numpy())
        ts, ev, sysn, body = (c.to_list() for c in (ts, ev, sysn, body))
        for r in rows.tolist():
            m = LINE_SHAPES[_SHAPE_ORDER[shape_np[r]]].match(lines[r])
            gd = m.groupdict()
            ts[r], ev[r], sysn[r], body[r] = gd["ts"], gd["ev"], gd.get("sys"), gd["body"]
        ts, ev, sysn, body = (pl.Series(v, dtype=pl.String) for v in (ts, ev, sysn, body))
    out = pl.DataFrame({"ts": ts, "ev": ev, "sys": sysn, "body": body})
    out = out.with_columns(
        pl.col("ev")
        .replace_strict(EVENT_CODE, default=NO_EVENT, return_dtype=pl.UInt8)
        .fill_null(NO_EVENT)
        .alias("code")
    )
    code = out["code"].to_numpy()
    matched = out["ev"].is_not_null().to_numpy()
    is_event = (code != NO_EVENT) & matched
    good = np.zeros(n, dtype=bool)
    arrays = {c: np.zeros(n, dtype=np.int64) for c in COLUMNS}
    for name in EVENTS:
        rows = np.flatnonzero(code == EVENT_CODE[name])
        if not len(rows):
            continue
        g = out["body"].gather(rows).str.extract_groups(FIELDS[name].pattern).struct.unnest()
        ok = np.ones(len(rows), dtype=bool)
        for idx, col in enumerate(EVENT_COLUMNS[name], start=1):
            base = 16 if col in HEX_COLUMNS.get(name, "") else 10
            v = g[str(idx)].str.to_integer(base=base, strict=False)
            ok &= v.is_not_null().to_numpy()
            arrays[col][rows] = v.fill_null(0).cast(pl.Int64).to_numpy()
        if name in ORDER_GROUP:
            ok &= arrays["b"][rows] <= MAX_ORDER
        if name in PFN_NAMES:  # frames past any machine's: refused, never allocated by
            order = np.clip(arrays["b"][rows], 0, MAX_ORDER) if name in ORDER_GROUP else 0
            pfn = arrays["a"][rows]
            ok &= (pfn >= 0) & (pfn <= MAX_PFN - (1 << order))
        if name == "mm_filemap_fault":
            arrays["b"][rows] = arrays["a"][rows]
        good[rows] = ok
    # Times whose nanoseconds would not fit int64 (polars would wrap them).
    parts = out["ts"].str.split_exact(".", 1).struct.unnest()
    sec = parts["field_0"].str.to_integer(strict=False)
    good &= ~(sec.is_null() | (sec > MAX_TIME_S)).to_numpy() | out["ts"].is_null().to_numpy()
    noise_np = noise.to_numpy()
    kind = np.full(n, LINE_EVENT, np.uint8)
    kind[~good] = LINE_BAD_FIELDS
    kind[~is_event] = LINE_UNUSED
    kind[~matched] = LINE_BAD
    kind[noise_np] = LINE_NOISE
    lost_rows = np.flatnonzero(lost_n.is_not_null().to_numpy())
    if len(lost_rows):
        count = lost_n.gather(lost_rows).str.to_integer(strict=False)
        fits = count.is_not_null().to_numpy()  # a count past int64 is no count
        kind[lost_rows] = np.where(fits, LINE_LOST, LINE_BAD)
        arrays["a"][lost_rows] = count.fill_null(0).cast(pl.Int64).to_numpy()
    # Names only where the counters need them (unused and bad lines are few).
    name_col = np.full(n, None, dtype=object)
    odd = np.flatnonzero((kind == LINE_UNUSED) | (kind == LINE_BAD_FIELDS))
    if len(odd):
        ev_l = out["ev"].gather(odd).to_list()
        sys_l = out["sys"].gather(odd).to_list()
        body_l = out["body"].gather(odd).to_list()
        for j, r in enumerate(odd.tolist()):
            e_, sy = ev_l[j], sys_l[j]
            if kind[r] == LINE_BAD_FIELDS:
                if e_.startswith("writeback_") and BDI_ANY.search(body_l[j]):
                    kind[r] = LINE_UNUSED
                    name_col[r] = f"{e_} (non-block bdi)"
                else:
                    name_col[r] = e_
            else:
                name_col[r] = f"{sy}:{e_}" if sy else e_
    ev = kind == LINE_EVENT
    frac = (
        parts["field_1"]
        .fill_null("0")
        .str.pad_end(9, "0")
        .str.slice(0, 9)
        .str.to_integer(strict=False)
        .fill_null(0)
        .cast(pl.Int64)
    )
    sec = sec.fill_null(0).cast(pl.Int64)
    t_ns = np.where(ev, (sec * 1_000_000_000 + frac).to_numpy(), 0)
    return pl.DataFrame(
        {"kind": kind, "name": pl.Series(name_col.tolist(), dtype=pl.String), "code": code, "t_ns": t_ns, **arrays}
    )


def tally(parsed: pl.DataFrame, c: Counters) -> None:
    """Add a chunk's noise, unused and skipped lines to the counters (lenient)."""
    kind = parsed["kind"].to_numpy()
    c.lost_events += sum(parsed["a"].to_numpy()[kind == LINE_LOST].tolist())  # Python ints: no wrap
    c.skipped[SKIP_NOISE] += int((kind == LINE_NOISE).sum()) or 0
    c.skipped[SKIP_BAD_LINE] += int((kind == LINE_BAD).sum()) or 0
    for k, add in ((LINE_UNUSED, c.unused_events), (LINE_BAD_FIELDS, None)):
        rows = np.flatnonzero(kind == k)
        if not len(rows):
            continue
        for name, cnt in Counter(parsed["name"].gather(rows).to_list()).items():
            if add is not None:
                add[name] += cnt
            else:
                c.skipped[skip_bad_fields(name)] += cnt
    for key in (SKIP_NOISE, SKIP_BAD_LINE):
        if not c.skipped[key]:
            del c.skipped[key]
