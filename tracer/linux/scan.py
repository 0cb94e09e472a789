"""Byte-level scanner of tracepoint lines of every shape (the fastest path).

Most lines of a capture are well formed in one of the shapes of
:mod:`cmmsim.tracer.linux.rules`::

    perf script:  [<task>] [<pid>[/<tid>]] [[<cpu>]] <sec>.<frac>: <sys>:<event>: <body>
    ftrace:       <task>-<pid> [(<tgid>)] [<cpu>] <flags> <sec>.<frac>: <event>: <body>
    trace-cmd:    <task>-<pid> [<cpu>] <sec>.<frac>: <event>: <body>

:func:`scan_lines` (numba) reads such lines straight from the input bytes:
it parses the body of every event the converter maps and names the event of
every other well-formed line (the converter counts those by name, see
:func:`count_unused`). It is deliberately *sound, not complete*: it claims a
line only when the reference regular expressions of
:mod:`cmmsim.tracer.linux.rules` provably give the same verdict, event, time and
fields, and leaves every other line to the polars path
(:func:`cmmsim.tracer.linux.parse.parse_chunk`), which decides exactly (noise
lines, malformed lines and their errors, unusual spacing). The tests feed
both paths the same lines and demand the same parse.

Why the claims are sound. Every shape's time is ``<digits>.<digits>``
followed by a colon and whitespace, and preceded by whitespace (or the line
start, for perf). Call the first colon followed by whitespace the head end;
the scanner leaves a line whose head end is no such time. A line whose body
holds another such time is left too, unless it is claimed as perf: then
every shape's regex can only put its time at the head end (the task names
of perf lines are lazy, so perf takes its earliest time). With the time
fixed, the event and body are fixed by what follows it, and the scanner
decides each shape's structure before the time exactly, in the order
``--format auto`` tries them (perf, ftrace, trace-cmd).

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

from cmmsim.tracer.linux.rules import (
    COLUMNS,
    EVENTS,
    MAX_ORDER,
    MAX_PFN,
    MAX_TIME_S,
    ORDER_GROUP,
    PFN_NAMES,
)

#: A number whose digits are parsed and dropped (``-?[0-9]+`` of a field the converter ignores).
SIGNED_SKIP = ("skip", 10)
#: Event -> pattern: literal strings and (column, base) numbers, as the
#: regexes of ``cmmsim.tracer.linux.rules.FIELDS`` (columns as ``rules.EVENT_COLUMNS``).
PATTERNS = {
    "mm_page_alloc": ["pfn=0x", ("a", 16), " order=", ("b", 10)],
    "mm_page_free": ["pfn=0x", ("a", 16), " order=", ("b", 10)],
    "mm_page_free_batched": ["pfn=0x", ("a", 16)],
    "mm_filemap_add_to_page_cache": [
        "dev ",
        ("c", 10),
        ":",
        ("d", 10),
        " ino ",
        ("e", 16),
        " pfn=0x",
        ("a", 16),
        " ofs=",
        ("f", 10),
        " order=",
        ("b", 10),
    ],
    "mm_filemap_delete_from_page_cache": [
        "dev ",
        ("c", 10),
        ":",
        ("d", 10),
        " ino ",
        ("e", 16),
        " pfn=0x",
        ("a", 16),
        " ofs=",
        ("f", 10),
        " order=",
        ("b", 10),
    ],
    "mm_filemap_get_pages": ["dev=", ("c", 10), ":", ("d", 10), " ino=", ("e", 16), " ofs=", ("a", 10), "-", ("b", 10)],
    "mm_filemap_map_pages": ["dev=", ("c", 10), ":", ("d", 10), " ino=", ("e", 16), " ofs=", ("a", 10), "-", ("b", 10)],
    "mm_filemap_fault": ["dev=", ("c", 10), ":", ("d", 10), " ino=", ("e", 16), " ofs=", ("a", 10)],
    "writeback_dirty_folio": ["bdi ", ("c", 10), ":", ("d", 10), ": ino=", ("e", 10), " index=", ("a", 10)],
    # ``.*\bwrote=([0-9]+)`` follows: the last "wrote=" of the line (FLAG_WROTE_TAIL).
    "writeback_single_inode": ["bdi ", ("c", 10), ":", ("d", 10), ": ino=", ("e", 10), " "],
    "ext4_writepages_result": [
        "dev ",
        ("c", 10),
        ",",
        ("d", 10),
        " ino ",
        ("e", 10),
        " ret ",
        SIGNED_SKIP,
        " pages_written ",
        ("a", 10),
    ],
    "mm_lru_activate": ["pfn=0x", ("a", 16)],
    "cmmsim_sampled_access": ["pfn=0x", ("a", 16)],
}
#: Token kinds of a program row: literal (offset, length into the pool),
#: number (column, base), signed number dropped.
_LIT, _NUM, _SKIP = 0, 1, 2
#: Per-event flags: column b holds an order (checked against MAX_ORDER); b
#: repeats a (a fault is a range of one offset); the pattern ends in the
#: line's last ``\bwrote=<digits>``, which goes to column a; column a is a pfn
#: (its frames checked against MAX_PFN).
FLAG_ORDER_IN_B, FLAG_B_IS_A, FLAG_WROTE_TAIL, FLAG_PFN_IN_A = 1, 2, 4, 8
_COL_A, _COL_B = COLUMNS.index("a"), COLUMNS.index("b")
#: The longest event name the tables hold, in bytes.
_NAME_BYTES = 40
#: Most digits of a number that always fits int64: decimal, hex.
_MAX_DEC_DIGITS, _MAX_HEX_DIGITS = 18, 15
_NS_PER_S = 1_000_000_000
#: Most digits of seconds this scanner takes (their nanoseconds always fit
#: int64); a longer time is left to the polars path, which refuses one past
#: MAX_TIME_S.
_MAX_SEC_DIGITS = len(str(MAX_TIME_S)) - 1
_FRAC_DIGITS = 9
#: Line shapes, as bits of the ``shapes`` argument (``--format`` picks one, auto all).
SHAPE_PERF, SHAPE_FTRACE, SHAPE_TRACE_CMD = 1, 2, 4
SHAPE_BITS = {"auto": 7, "perf": SHAPE_PERF, "ftrace": SHAPE_FTRACE, "trace-cmd": SHAPE_TRACE_CMD}
#: ``code`` of a line left to the polars path, and of a well-formed line of
#: an event the converter does not map (its name's bytes are at columns a, b).
LEFT, UNUSED = -1, -2
#: Length of ftrace's flags column (``[^\s\[\]]{4,6}``).
_FLAGS_MIN, _FLAGS_MAX = 4, 6

# ASCII codes the scanner tests bytes against.
_TAB, _SPACE, _HASH, _DASH, _DOT, _COLON, _EQUALS = 9, 32, 35, 45, 46, 58, 61
_LPAREN, _RPAREN, _LBRACKET, _RBRACKET, _UNDERSCORE, _DEL = 40, 41, 91, 93, 95, 127
_ZERO, _NINE, _UPPER_A, _UPPER_F, _UPPER_Z, _LOWER_A, _LOWER_F, _LOWER_Z = (48, 57, 65, 70, 90, 97, 102, 122)
_CR = 13
_NEWLINE = 10


class ScanTables(NamedTuple):
    """Event names, pattern programs and flags as flat arrays for numba (kind code = row)."""

    names: np.ndarray  # uint8 [kind, byte]: the event's name
    name_len: np.ndarray  # int64 [kind]
    prog_start: np.ndarray  # int64 [kind + 1]: the event's rows of prog
    prog: np.ndarray  # int64 [row, 3]: (_LIT, offset, length), (_NUM, column, base) or (_SKIP, 0, 10)
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
        names[k, : len(b)] = np.frombuffer(b, np.uint8)
        name_len[k] = len(b)
        prog_start[k] = len(rows)
        for tok in PATTERNS[name]:
            if isinstance(tok, str):
                rows.append((_LIT, len(pool), len(tok)))
                pool += tok.encode()
            elif tok is SIGNED_SKIP:
                rows.append((_SKIP, 0, 10))
            else:
                rows.append((_NUM, COLUMNS.index(tok[0]), tok[1]))
    prog_start[len(EVENTS)] = len(rows)
    # _search_fields tries a pattern only where its first byte is: each starts with a literal.
    assert all(rows[prog_start[k]][0] == _LIT for k in range(len(EVENTS)))
    flags = np.zeros(len(EVENTS), np.int64)
    for k, name in enumerate(EVENTS):
        flags[k] = (
            (FLAG_ORDER_IN_B if name in ORDER_GROUP else 0)
            | (FLAG_B_IS_A if name == "mm_filemap_fault" else 0)
            | (FLAG_WROTE_TAIL if name == "writeback_single_inode" else 0)
            | (FLAG_PFN_IN_A if name in PFN_NAMES else 0)
        )
    return ScanTables(
        names,
        name_len,
        prog_start,
        np.array(rows, np.int64).reshape(-1, 3),
        np.frombuffer(bytes(pool), np.uint8).copy(),
        flags,
    )


TABLES = _compile()


def _classes() -> tuple[np.ndarray, np.ndarray]:
    # Byte classes as bits of one lookup (a load is cheaper than range tests),
    # and each byte's hex digit value (-1: none).
    cls = np.zeros(256, np.uint8)
    for c in range(256):
        ch = chr(c)
        cls[c] = (
            (_C_WS if c == _SPACE or _TAB <= c <= _CR else 0)
            | (_C_DIGIT if ch.isascii() and ch.isdigit() else 0)
            | (_C_WORD if ch.isascii() and (ch.isalnum() or ch == "_") else 0)
        )
    hexval = np.full(256, -1, np.int8)
    for c in b"0123456789abcdefABCDEF":
        hexval[c] = int(chr(c), 16)
    return cls, hexval


_C_WS, _C_DIGIT, _C_WORD = 1, 2, 4
_CLASS, _HEXVAL = _classes()


@nb.njit(cache=True, inline="always")
def _ws(c):
    return _CLASS[c] & _C_WS


@nb.njit(cache=True, inline="always")
def _digit(c):
    return _CLASS[c] & _C_DIGIT


@nb.njit(cache=True, inline="always")
def _word(c):
    return _CLASS[c] & _C_WORD


@nb.njit(cache=True, inline="always")
def _hexval(c):
    return _HEXVAL[c]


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
_WROTE = np.frombuffer(b"wrote=", np.uint8).copy()


@nb.njit(cache=True)
def _maybe_noise(buf, s, e):
    """True if the noise regex of cmmsim.tracer.linux.rules could match (then the polars path decides)."""
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
    """End of the pattern matched at i, or -1."""
    for r in range(r0, r1):
        kind = prog[r, 0]
        if kind == _LIT:
            off = prog[r, 1]
            n = prog[r, 2]
            if e - i < n:
                return -1
            for j in range(n):
                if buf[i + j] != pool[off + j]:
                    return -1
            i += n
        else:
            if kind == _SKIP and i < e and buf[i] == _DASH:
                i += 1
            v, j = _number(buf, i, e, prog[r, 2])
            if j < 0:
                return -1
            if kind == _NUM:
                vals[prog[r, 1]] = v
            i = j
    return i


@nb.njit(cache=True)
def _last_wrote(buf, i, e):
    """(value, ok) of the line's last ``\\bwrote=<digits>`` at or after i (``.*\\bwrote=([0-9]+)``)."""
    n = len(_WROTE)
    for p in range(e - n - 1, i - 1, -1):
        if (
            buf[p] == _WROTE[0]
            and _starts(buf, p, e, _WROTE)
            and _digit(buf[p + n])
            and (p == i or not _word(buf[p - 1]))
        ):
            v, j = _number(buf, p + n, e, 10)
            return v, j >= 0
    return np.int64(0), False


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
def _plain_ascii_no_colon_ws(buf, s, e):
    """(plain ASCII, no ':' followed by whitespace) of buf[s:e], in one branch-free pass."""
    bad = False
    colon_ws = False
    for i in range(s, e - 1):
        x = buf[i]
        y = buf[i + 1]
        bad = bad | (x >= _DEL) | ((x < _SPACE) & (x != _TAB))
        colon_ws = colon_ws | ((x == _COLON) & ((y == _SPACE) | ((y >= _TAB) & (y <= _CR))))
    if e > s:
        x = buf[e - 1]
        bad = bad | (x >= _DEL) | ((x < _SPACE) & (x != _TAB))
    return not bad, not colon_ws


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
def _time_ending_at(buf, s, colon):
    """(first digit of the seconds, the dot) of ``<digits>.<digits>`` just before ``colon``,
    preceded by whitespace or the line start; else (-1, -1). Seconds too long for int64
    nanoseconds are left to the polars path."""
    j = colon - 1
    while j >= s and _digit(buf[j]):
        j -= 1
    if j + 1 == colon or j < s or buf[j] != _DOT:
        return -1, -1
    dot = j
    j -= 1
    while j >= s and _digit(buf[j]):
        j -= 1
    sec_start = j + 1
    if sec_start == dot or dot - sec_start > _MAX_DEC_DIGITS or (j >= s and not _ws(buf[j])):
        return -1, -1
    return sec_start, dot


@nb.njit(cache=True, inline="always")
def _run_back(buf, s, j, cls):
    """j moved left over bytes of class ``cls``; -2 when there were none (a required
    ``\\s+`` or ``[0-9]+`` is missing)."""
    k = j
    while j >= s and _CLASS[buf[j]] & cls:
        j -= 1
    return j if j < k else -2


@nb.njit(cache=True, inline="always")
def _skip_ws_back(buf, s, j):
    return _run_back(buf, s, j, _C_WS)


@nb.njit(cache=True, inline="always")
def _digits_back(buf, s, j):
    return _run_back(buf, s, j, _C_DIGIT)


@nb.njit(cache=True)
def _cpu_and_pid_back(buf, s, j, tgid):
    """True if ``-<pid>\\s+[(<tgid>)\\s+]\\[<cpu>\\]`` ends at j (the ``]``), with the task before."""
    if j < s or buf[j] != _RBRACKET:
        return False
    j = _digits_back(buf, s, j - 1)
    if j < s or buf[j] != _LBRACKET:
        return False
    j = _skip_ws_back(buf, s, j - 1)
    if j < s:
        return False
    if tgid and buf[j] == _RPAREN:  # \(\s*[0-9-]+\)\s+
        j -= 1
        k = j
        while j >= s and (_digit(buf[j]) or buf[j] == _DASH):
            j -= 1
        if j == k:
            return False
        while j >= s and _ws(buf[j]):
            j -= 1
        if j < s or buf[j] != _LPAREN:
            return False
        j = _skip_ws_back(buf, s, j - 1)
        if j < s:
            return False
    j = _digits_back(buf, s, j)
    return j >= s and buf[j] == _DASH


@nb.njit(cache=True)
def _ftrace_head(buf, s, sec_start):
    """True if ftrace's head (``<task>-<pid> [(<tgid>)] [<cpu>] <flags>``) ends before the time."""
    j = _skip_ws_back(buf, s, sec_start - 1)
    if j < s:
        return False
    k = j
    while j >= s and not _ws(buf[j]):
        if buf[j] == _LBRACKET or buf[j] == _RBRACKET:
            return False
        j -= 1
    if not (_FLAGS_MIN <= k - j <= _FLAGS_MAX):
        return False
    j = _skip_ws_back(buf, s, j)
    return j >= s and _cpu_and_pid_back(buf, s, j, True)


@nb.njit(cache=True)
def _trace_cmd_head(buf, s, sec_start):
    """True if trace-cmd's head (``<task>-<pid> [<cpu>]``) ends before the time."""
    j = _skip_ws_back(buf, s, sec_start - 1)
    return j >= s and _cpu_and_pid_back(buf, s, j, False)


@nb.njit(cache=True)
def _time_after(buf, i, e):
    """True if a ``\\s<digits>.<digits>:\\s`` (another shape's time) occurs at or after i."""
    for p in range(i, e - 1):
        if buf[p] == _COLON and _ws(buf[p + 1]) and _time_ending_at(buf, i, p)[0] > i:
            return True
    return False


@nb.njit(cache=True, inline="always")
def _word_end(buf, i, e):
    while i < e and _word(buf[i]):
        i += 1
    return i


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
        if buf[start] == first:
            end = _match_at(buf, start, e, tables.prog, r0, r1, tables.pool, vals)
            if end >= 0:
                if tables.flags[code] & FLAG_WROTE_TAIL:
                    v, ok = _last_wrote(buf, end, e)
                    if not ok:
                        return False
                    vals[_COL_A] = v
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
def _parse_line(buf, s, e, shapes, tables, vals):
    """(event kind, t_ns) of a line this scanner can claim (``UNUSED``: the name's bytes
    are in vals[a], vals[b]), else (LEFT, 0)."""
    if _maybe_noise(buf, s, e):
        return LEFT, 0
    head_end = _head_end(buf, s, e)
    if head_end < 0:
        return LEFT, 0
    sec_start, dot = _time_ending_at(buf, s, head_end)
    if sec_start < 0 or dot - sec_start > _MAX_SEC_DIGITS:
        return LEFT, 0
    # What follows the time: perf's "<spaces><sys>:<event>: ", the others' "<spaces><event>: ".
    i = head_end + 1
    while i < e and _ws(buf[i]):
        i += 1
    name = i
    i = _word_end(buf, name, e)
    if i == name or i + 1 >= e or buf[i] != _COLON:
        return LEFT, 0
    ev = i + 1
    ev_end = _word_end(buf, ev, e)
    perf = ev_end > ev and ev_end + 1 < e and buf[ev_end] == _COLON and buf[ev_end + 1] == _SPACE
    if perf:
        if not (shapes & SHAPE_PERF):
            return LEFT, 0
    elif buf[ev] == _SPACE:  # "<event>: "
        if (shapes & SHAPE_FTRACE) and _ftrace_head(buf, s, sec_start):
            pass
        elif (shapes & SHAPE_TRACE_CMD) and _trace_cmd_head(buf, s, sec_start):
            pass
        else:
            return LEFT, 0
        ev, ev_end = name, i
    else:
        return LEFT, 0
    body = ev_end + 2
    code = _event_code(buf, ev, ev_end, tables.names, tables.name_len)
    # The regexes' \s and \w are Unicode: the head must be plain ASCII, and so
    # must the body where it could hold another shape's time (not perf: its
    # lazy task takes the first time) or a \b (writeback_single_inode).
    if not _plain_ascii(buf, s, body):
        return LEFT, 0
    if not perf:
        plain, no_colon_ws = _plain_ascii_no_colon_ws(buf, body, e)
        if not plain or not (no_colon_ws or not _time_after(buf, body, e)):
            return LEFT, 0
    elif code >= 0 and tables.flags[code] & FLAG_WROTE_TAIL and not _plain_ascii(buf, body, e):
        return LEFT, 0
    if code < 0:
        vals[_COL_A] = name
        vals[_COL_B] = ev_end
        return UNUSED, 0
    if not _search_fields(buf, body, e, code, tables, vals):
        return LEFT, 0
    if (tables.flags[code] & FLAG_ORDER_IN_B) and vals[_COL_B] > MAX_ORDER:
        return LEFT, 0
    if tables.flags[code] & FLAG_PFN_IN_A:
        order = vals[_COL_B] if tables.flags[code] & FLAG_ORDER_IN_B else 0
        if vals[_COL_A] > MAX_PFN - (1 << order):
            return LEFT, 0
    if tables.flags[code] & FLAG_B_IS_A:
        vals[_COL_B] = vals[_COL_A]
    return code, _time_ns(buf, sec_start, dot, head_end)


@nb.njit(cache=True, parallel=True, nogil=True, _nrt=False)
def _scan(buf, starts, ends, shapes, tables, code, t, vals):
    # No reference counting (_nrt=False; this kernel allocates nothing): numba
    # would incref and decref every array argument of _parse_line per line.
    for r in nb.prange(starts.shape[0]):  # lines are independent
        c, tt = _parse_line(buf, starts[r], ends[r], shapes, tables, vals[r])
        code[r] = c
        t[r] = tt


def scan_lines(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, shapes: int = 7, tables: ScanTables = TABLES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse every line ``buf[starts[i]:ends[i]]`` it can claim.

    ``shapes`` are the line shapes allowed (``SHAPE_BITS`` of the format).
    Returns ``code`` (int16 event kind; ``UNUSED``: a well-formed line of
    another event; ``LEFT``: left to the polars path), ``t_ns`` (int64) and
    the columns ``vals[6, n]`` (a ... f; garbage where code is ``LEFT``; for
    ``UNUSED`` lines a and b delimit the event's name in ``buf``).
    """
    n = starts.shape[0]
    code = np.empty(n, np.int16)
    t = np.empty(n, np.int64)
    vals = np.empty((n, len(COLUMNS)), np.int64)
    _scan(buf, starts, ends, shapes, tables, code, t, vals)
    return code, t, vals.T


#: Most distinct unused event names one call of :func:`count_unused` tells apart.
MAX_UNUSED_NAMES = 1 << 10


@nb.njit(cache=True, nogil=True)
def _count_names(buf, rows, name_start, name_end, first, count):
    # Open addressing on a hash of the name's bytes, names compared in full.
    mask = first.shape[0] - 1
    n_names = 0
    for r in rows:
        a = name_start[r]
        b = name_end[r]
        h = np.uint64(14695981039346656037)
        for q in range(a, b):
            h = (h ^ np.uint64(buf[q])) * np.uint64(1099511628211)
        j = np.int64(h & np.uint64(mask))
        while True:
            f = first[j]
            if f < 0:
                if 2 * (n_names + 1) > first.shape[0]:
                    return -1  # too many names: the caller leaves them to the polars path
                first[j] = r
                count[j] = 1
                n_names += 1
                break
            fa = name_start[f]
            if name_end[f] - fa == b - a:
                same = True
                for q in range(b - a):
                    if buf[fa + q] != buf[a + q]:
                        same = False
                        break
                if same:
                    count[j] += 1
                    break
            j = (j + 1) & mask
    return n_names


def count_unused(buf: np.ndarray, code: np.ndarray, vals: np.ndarray) -> dict[str, int] | None:
    """Lines per event name of the ``UNUSED`` lines of a :func:`scan_lines` result.

    Names as the reference counts them (``sys:event`` for perf lines).
    Returns None when there are more than :data:`MAX_UNUSED_NAMES` names.
    """
    rows = np.flatnonzero(code == UNUSED)
    if not len(rows):
        return {}
    first = np.full(2 * MAX_UNUSED_NAMES, -1, np.int64)
    count = np.zeros(2 * MAX_UNUSED_NAMES, np.int64)
    if _count_names(buf, rows, vals[_COL_A], vals[_COL_B], first, count) < 0:
        return None
    used = np.flatnonzero(first >= 0)
    return {bytes(buf[vals[_COL_A][first[j]] : vals[_COL_B][first[j]]]).decode("ascii"): int(count[j]) for j in used}


def line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without the newline) of each line in ``buf``.

    ``buf`` holds complete lines, each ending in ``\\n``.
    """
    nl = np.flatnonzero(buf == _NEWLINE)
    starts = np.concatenate([[0], nl[:-1] + 1]).astype(np.int64)
    ends = nl.astype(np.int64)
    return starts, ends
