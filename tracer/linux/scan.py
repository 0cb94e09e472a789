"""Byte-level scanner for the common shape of ``perf script`` lines (the fastest path).

Most lines of a ``perf script`` capture have one shape::

    <task> <pid> [<cpu>] <sec>.<frac>: <spaces><sys>:<event>: <body>

:func:`scan_lines` (numba) reads such lines straight from the input bytes
and parses the body of every event the converter maps (except
``writeback_single_inode`` and ``ext4_writepages_result``, rare and with
looser patterns). It is deliberately *sound, not complete*: it claims a line
only when the reference regular expressions of :mod:`tracer.linux.rules`
provably give the same event, time and fields (ASCII only, no
``:<whitespace>`` before the time, not a header or comment line, every field
number short enough for int64, orders within range), and leaves every other
line to the polars path (:func:`tracer.linux.parse.parse_chunk`), which
decides exactly (other formats, unused events, malformed lines and their
errors). The tests feed both paths the same lines and demand the same parse.

Field patterns are encoded per event as a small program of literals and
numbers, matched at the leftmost position where the whole pattern matches,
as a regex search does (a number is all the digits there are: each is
followed by a literal that starts with a non-digit, so no backtracking
could find another match).
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from tracer.linux.rules import COLUMNS, EVENTS, MAX_ORDER, ORDER_GROUP

#: Event -> pattern: literal strings and (column, base) numbers, as the
#: regexes of ``tracer.linux.rules.FIELDS`` (columns as ``rules.EVENT_COLUMNS``).
PATTERNS = {
    "mm_page_alloc": ["pfn=0x", ("a", 16), " order=", ("b", 10)],
    "mm_page_free": ["pfn=0x", ("a", 16), " order=", ("b", 10)],
    "mm_page_free_batched": ["pfn=0x", ("a", 16)],
    "mm_filemap_add_to_page_cache": ["dev ", ("c", 10), ":", ("d", 10), " ino ", ("e", 16),
                                     " pfn=0x", ("a", 16), " ofs=", ("f", 10), " order=", ("b", 10)],
    "mm_filemap_delete_from_page_cache": ["dev ", ("c", 10), ":", ("d", 10), " ino ", ("e", 16),
                                          " pfn=0x", ("a", 16), " ofs=", ("f", 10), " order=",
                                          ("b", 10)],
    "mm_filemap_get_pages": ["dev=", ("c", 10), ":", ("d", 10), " ino=", ("e", 16), " ofs=",
                             ("a", 10), "-", ("b", 10)],
    "mm_filemap_map_pages": ["dev=", ("c", 10), ":", ("d", 10), " ino=", ("e", 16), " ofs=",
                             ("a", 10), "-", ("b", 10)],
    "mm_filemap_fault": ["dev=", ("c", 10), ":", ("d", 10), " ino=", ("e", 16), " ofs=", ("a", 10)],
    "writeback_dirty_folio": ["bdi ", ("c", 10), ":", ("d", 10), ": ino=", ("e", 10), " index=",
                              ("a", 10)],
    "mm_lru_activate": ["pfn=0x", ("a", 16)],
}
#: Token kinds of a program row: literal (offset, length into the pool) or number (column, base).
_LIT, _NUM = 0, 1
#: Per-event flags: the scanner parses it; column b holds an order (checked
#: against MAX_ORDER); b repeats a (a fault is a range of one offset).
FLAG_HANDLED, FLAG_ORDER_IN_B, FLAG_B_IS_A = 1, 2, 4
_COL_A, _COL_B = COLUMNS.index("a"), COLUMNS.index("b")
#: The longest event name the tables hold, in bytes.
_NAME_BYTES = 40
#: Most digits of a number that always fits int64: decimal, hex.
_MAX_DEC_DIGITS, _MAX_HEX_DIGITS = 18, 15
_NS_PER_S = 1_000_000_000
_FRAC_DIGITS = 9

# ASCII codes the scanner tests bytes against.
_TAB, _SPACE, _HASH, _DASH, _DOT, _COLON, _EQUALS = 9, 32, 35, 45, 46, 58, 61
_LBRACKET, _RBRACKET, _UNDERSCORE, _DEL = 91, 93, 95, 127
_ZERO, _NINE, _UPPER_A, _UPPER_F, _UPPER_Z, _LOWER_A, _LOWER_F, _LOWER_Z = (
    48, 57, 65, 70, 90, 97, 102, 122)
_CR = 13
_NEWLINE = 10


class ScanTables(NamedTuple):
    """Event names, pattern programs and flags as flat arrays for numba (kind code = row)."""

    names: np.ndarray  # uint8 [kind, byte]: the event's name
    name_len: np.ndarray  # int64 [kind]
    prog_start: np.ndarray  # int64 [kind + 1]: the event's rows of prog
    prog: np.ndarray  # int64 [row, 3]: (_LIT, offset, length) or (_NUM, column, base)
    pool: np.ndarray  # uint8: the literals, back to back
    flags: np.ndarray  # int64 [kind]: FLAG_*


def _compile() -> ScanTables:
    rows: list[tuple[int, int, int]] = []
    names = np.zeros((len(EVENTS), _NAME_BYTES), np.uint8)
    name_len = np.zeros(len(EVENTS), np.int64)
    prog_start = np.zeros(len(EVENTS) + 1, np.int64)
    pool = bytearray()
    for k, name in enumerate(EVENTS):
        b = name.encode()
        names[k, :len(b)] = np.frombuffer(b, np.uint8)
        name_len[k] = len(b)
        prog_start[k] = len(rows)
        for tok in PATTERNS.get(name, []):
            if isinstance(tok, str):
                rows.append((_LIT, len(pool), len(tok)))
                pool += tok.encode()
            else:
                rows.append((_NUM, COLUMNS.index(tok[0]), tok[1]))
    prog_start[len(EVENTS)] = len(rows)
    # _parse_line tries a pattern only where its first byte is: each starts with a literal.
    assert all(rows[prog_start[k]][0] == _LIT for k, name in enumerate(EVENTS) if name in PATTERNS)
    flags = np.zeros(len(EVENTS), np.int64)
    for k, name in enumerate(EVENTS):
        flags[k] = ((FLAG_HANDLED if name in PATTERNS else 0)
                    | (FLAG_ORDER_IN_B if name in ORDER_GROUP else 0)
                    | (FLAG_B_IS_A if name == "mm_filemap_fault" else 0))
    return ScanTables(names, name_len, prog_start, np.array(rows, np.int64).reshape(-1, 3),
                      np.frombuffer(bytes(pool), np.uint8).copy(), flags)


TABLES = _compile()


@nb.njit(cache=True, inline="always")
def _ws(c):
    return c == _SPACE or (_TAB <= c <= _CR)


@nb.njit(cache=True, inline="always")
def _digit(c):
    return _ZERO <= c <= _NINE


@nb.njit(cache=True, inline="always")
def _word(c):
    return (_digit(c) or (_UPPER_A <= c <= _UPPER_Z) or (_LOWER_A <= c <= _LOWER_Z)
            or c == _UNDERSCORE)


@nb.njit(cache=True, inline="always")
def _hexval(c):
    if _ZERO <= c <= _NINE:
        return c - _ZERO
    if _LOWER_A <= c <= _LOWER_F:
        return c - _LOWER_A + 10
    if _UPPER_A <= c <= _UPPER_F:
        return c - _UPPER_A + 10
    return -1


@nb.njit(cache=True)
def _starts(buf, i, end, lit):
    if end - i < len(lit):
        return False
    for j in range(len(lit)):
        if buf[i + j] != lit[j]:
            return False
    return True


_CPUS = np.frombuffer(b"cpus=", np.uint8).copy()
_VERSION = np.frombuffer(b"version", np.uint8).copy()
_CPU = np.frombuffer(b"CPU", np.uint8).copy()
_EMPTY = np.frombuffer(b"is empty", np.uint8).copy()
_PERF = np.frombuffer(b"perf", np.uint8).copy()


@nb.njit(cache=True)
def _maybe_noise(buf, s, e):
    """True if the noise regex of tracer.linux.rules could match (then the polars path decides)."""
    i = s
    while i < e and _ws(buf[i]):
        i += 1
    if i == e:
        return True
    c = buf[i]
    if c == _HASH:
        return True
    if _starts(buf, i, e, _CPUS):
        return True
    if _starts(buf, i, e, _VERSION):  # version\s*=
        j = i + len(_VERSION)
        while j < e and _ws(buf[j]):
            j += 1
        if j < e and buf[j] == _EQUALS:
            return True
    if _starts(buf, i, e, _CPU):  # CPU\s*\d+\s+is empty
        j = i + len(_CPU)
        while j < e and _ws(buf[j]):
            j += 1
        k = j
        while j < e and _digit(buf[j]):
            j += 1
        if j > k:
            k = j
            while j < e and _ws(buf[j]):
                j += 1
            if j > k and _starts(buf, j, e, _EMPTY):
                return True
    if c == _LBRACKET:  # '[' then spaces then 'perf'
        j = i + 1
        while j < e and _ws(buf[j]):
            j += 1
        if _starts(buf, j, e, _PERF):
            return True
    return False


@nb.njit(cache=True)
def _number(buf, i, e, base):
    """(value, end) of the digits at i; end == -1 when none or too many for int64."""
    v = np.int64(0)
    j = i
    limit = _MAX_DEC_DIGITS if base == 10 else _MAX_HEX_DIGITS
    while j < e:
        c = buf[j]
        if base == 10:
            d = c - _ZERO if _digit(c) else -1
        else:
            d = _hexval(c)
        if d < 0:
            break
        v = v * base + d
        j += 1
    if j == i or j - i > limit:
        return v, -1
    return v, j


@nb.njit(cache=True)
def _match_at(buf, i, e, prog, r0, r1, pool, vals):
    for r in range(r0, r1):
        if prog[r, 0] == _LIT:
            off = prog[r, 1]
            n = prog[r, 2]
            if e - i < n:
                return False
            for j in range(n):
                if buf[i + j] != pool[off + j]:
                    return False
            i += n
        else:
            v, j = _number(buf, i, e, prog[r, 2])
            if j < 0:
                return False
            vals[prog[r, 1]] = v
            i = j
    return True


@nb.njit(cache=True, inline="always")
def _plain_ascii(buf, s, e):
    """ASCII without control characters but tab: there the regexes' \\s and \\w agree with ours."""
    # Branch-free, so the loop vectorizes (it reads every byte of the input).
    bad = False
    for i in range(s, e):
        x = buf[i]
        bad = bad | (x >= _DEL) | ((x < _SPACE) & (x != _TAB))
    return not bad


@nb.njit(cache=True, inline="always")
def _head_end(buf, s, e):
    """Where the first ": " is (the head ends there); -1 if none, or ':' + other whitespace first."""
    for i in range(s, e - 1):
        if buf[i] == _COLON:
            if buf[i + 1] == _SPACE:
                return i
            if _ws(buf[i + 1]):
                return -1
    return -1


@nb.njit(cache=True, inline="always")
def _time_before(buf, s, head_end):
    """(first digit of the seconds, the dot) of the head's time, else (-1, -1).

    The head ends in ``<pid> [<cpu>] <sec>.<frac>``, read right to left:
    <digits>.<digits>, whitespace, an optional [cpu] and whitespace, -?pid,
    whitespace. Seconds too long for int64 nanoseconds are left to the
    polars path.
    """
    j = head_end - 1
    while j >= s and _digit(buf[j]):
        j -= 1
    if j + 1 == head_end or j < s or buf[j] != _DOT:
        return -1, -1
    dot = j
    j -= 1
    while j >= s and _digit(buf[j]):
        j -= 1
    sec_start = j + 1
    if sec_start == dot or j < s or not _ws(buf[j]) or dot - sec_start > _MAX_DEC_DIGITS:
        return -1, -1
    while j >= s and _ws(buf[j]):
        j -= 1
    if j >= s and buf[j] == _RBRACKET:
        j -= 1
        k = j
        while j >= s and _digit(buf[j]):
            j -= 1
        if j == k or j < s or buf[j] != _LBRACKET:
            return -1, -1
        j -= 1
        if j < s or not _ws(buf[j]):
            return -1, -1
        while j >= s and _ws(buf[j]):
            j -= 1
    k = j
    while j >= s and _digit(buf[j]):
        j -= 1
    if j == k:
        return -1, -1
    if j >= s and buf[j] == _DASH:
        j -= 1
    if j < s or not _ws(buf[j]):
        return -1, -1
    return sec_start, dot


@nb.njit(cache=True, inline="always")
def _event_name(buf, i, e):
    """(start, end) of the event in ``<spaces><sys>:<event>: `` at i, else (-1, -1)."""
    while i < e and _ws(buf[i]):
        i += 1
    k = i
    while i < e and _word(buf[i]):
        i += 1
    if i == k or i >= e or buf[i] != _COLON:
        return -1, -1
    i += 1
    ev = i
    while i < e and _word(buf[i]):
        i += 1
    if i == ev or i + 1 >= e or buf[i] != _COLON or buf[i + 1] != _SPACE:
        return -1, -1
    return ev, i


@nb.njit(cache=True, inline="always")
def _event_code(buf, ev, ev_end, names, name_len):
    """Kind code of the event named by ``buf[ev:ev_end]``, or -1."""
    for code in range(name_len.shape[0]):
        n = name_len[code]
        if n == ev_end - ev:
            same = True
            for q in range(n):
                if buf[ev + q] != names[code, q]:
                    same = False
                    break
            if same:
                return code
    return -1


@nb.njit(cache=True, inline="always")
def _search_fields(buf, body, e, code, tables, vals):
    """Match the event's pattern at the leftmost place in the body it matches; False if none."""
    for q in range(vals.shape[0]):
        vals[q] = 0
    r0 = tables.prog_start[code]
    r1 = tables.prog_start[code + 1]
    first = tables.pool[tables.prog[r0, 1]]  # every pattern starts with a literal
    for start in range(body, e):
        if buf[start] == first and _match_at(buf, start, e, tables.prog, r0, r1, tables.pool,
                                             vals):
            return True
    return False


@nb.njit(cache=True, inline="always")
def _time_ns(buf, sec_start, dot, frac_end):
    sec = np.int64(0)
    for q in range(sec_start, dot):
        sec = sec * 10 + (buf[q] - _ZERO)
    frac = np.int64(0)
    for q in range(_FRAC_DIGITS):
        d = buf[dot + 1 + q] - _ZERO if dot + 1 + q < frac_end else 0
        frac = frac * 10 + d
    return sec * _NS_PER_S + frac


@nb.njit(cache=True)
def _parse_line(buf, s, e, tables, vals):
    """(event kind, t_ns) of a line this scanner can claim, else (-1, 0)."""
    if not _plain_ascii(buf, s, e) or _maybe_noise(buf, s, e):
        return -1, 0
    head_end = _head_end(buf, s, e)
    if head_end < 0:
        return -1, 0
    sec_start, dot = _time_before(buf, s, head_end)
    if sec_start < 0:
        return -1, 0
    ev, ev_end = _event_name(buf, head_end + 2, e)
    if ev < 0:
        return -1, 0
    code = _event_code(buf, ev, ev_end, tables.names, tables.name_len)
    if code < 0 or not (tables.flags[code] & FLAG_HANDLED):
        return -1, 0
    if not _search_fields(buf, ev_end + 2, e, code, tables, vals):
        return -1, 0
    if (tables.flags[code] & FLAG_ORDER_IN_B) and vals[_COL_B] > MAX_ORDER:
        return -1, 0
    if tables.flags[code] & FLAG_B_IS_A:
        vals[_COL_B] = vals[_COL_A]
    return code, _time_ns(buf, sec_start, dot, head_end)


@nb.njit(cache=True, parallel=True, nogil=True, _nrt=False)
def _scan(buf, starts, ends, tables, code, t, vals):
    # No reference counting (_nrt=False; this kernel allocates nothing): numba
    # would incref and decref every array argument of _parse_line per line.
    for r in nb.prange(starts.shape[0]):  # lines are independent
        c, tt = _parse_line(buf, starts[r], ends[r], tables, vals[r])
        if c >= 0:
            code[r] = c
            t[r] = tt


def scan_lines(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               tables: ScanTables = TABLES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse every line ``buf[starts[i]:ends[i]]`` it can claim.

    Returns ``code`` (int16 event kind, -1: left to the polars path),
    ``t_ns`` (int64) and the columns ``vals[6, n]`` (a ... f; garbage where
    code is -1).
    """
    n = starts.shape[0]
    code = np.full(n, -1, np.int16)
    t = np.zeros(n, np.int64)
    vals = np.zeros((n, len(COLUMNS)), np.int64)
    _scan(buf, starts, ends, tables, code, t, vals)
    return code, t, vals.T


def line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without the newline) of each line in ``buf``.

    ``buf`` holds complete lines, each ending in ``\\n``.
    """
    nl = np.flatnonzero(buf == _NEWLINE)
    starts = np.concatenate([[0], nl[:-1] + 1]).astype(np.int64)
    ends = nl.astype(np.int64)
    return starts, ends
