"""Byte-level scanner for the common shape of ``perf script`` lines (the fastest path).

Most lines of a ``perf script`` capture have one shape::

    <task> <pid> [<cpu>] <sec>.<frac>: <spaces><sys>:<event>: <body>

``_scan`` (numba) reads such lines straight from the input bytes and
parses the body of every event :mod:`tracer.linux` uses (except
``writeback_single_inode`` and ``ext4_writepages_result``, rare and with
looser patterns). It is deliberately *sound, not complete*: it claims a line
only when the reference regular expressions of :mod:`tracer.linux` provably
give the same event, time and fields (ASCII only, no ``:<whitespace>``
before the time, not a header or comment line, every field number short
enough for int64, orders within range), and leaves every other line to the
polars path (:func:`tracer.linux_fast.parse_chunk`), which decides exactly
(other formats, unused events, malformed lines and their errors). The
tests feed both paths the same lines and demand the same parse.

Field patterns are encoded per event as a small program of literals and
numbers, matched at the leftmost position where the whole pattern matches,
as a regex search does (a number is all the digits there are: each is
followed by a literal that starts with a non-digit, so no backtracking
could find another match).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from tracer.linux import MAX_ORDER
from tracer.linux_fast import KINDS

#: Event -> pattern: literal strings and (column, base) numbers, as the
#: regexes of ``tracer.linux._FIELDS`` (columns as ``tracer.linux_fast._COLUMNS``).
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
_ORDER_IN_B = ("mm_page_alloc", "mm_page_free", "mm_filemap_add_to_page_cache",
               "mm_filemap_delete_from_page_cache")
#: Token kinds of a program row: literal (offset, length into the pool) or number (column, base).
_LIT, _NUM = 0, 1


def _compile() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Names, pattern programs and flags as flat arrays for numba."""
    names = np.zeros((len(KINDS), 40), np.uint8)
    name_len = np.zeros(len(KINDS), np.int64)
    prog_start = np.zeros(len(KINDS) + 1, np.int64)
    rows: list[tuple[int, int, int]] = []
    pool = bytearray()
    for k, name in enumerate(KINDS):
        b = name.encode()
        names[k, :len(b)] = np.frombuffer(b, np.uint8)
        name_len[k] = len(b)
        prog_start[k] = len(rows)
        for tok in PATTERNS.get(name, []):
            if isinstance(tok, str):
                rows.append((_LIT, len(pool), len(tok)))
                pool += tok.encode()
            else:
                rows.append((_NUM, "abcdef".index(tok[0]), tok[1]))
    prog_start[len(KINDS)] = len(rows)
    # _parse_line tries a pattern only where its first byte is: each starts with a literal.
    assert all(rows[prog_start[k]][0] == _LIT for k, name in enumerate(KINDS) if name in PATTERNS)
    flags = np.zeros(len(KINDS), np.int64)  # 1: handled, 2: order in b, 4: b = a (fault)
    for k, name in enumerate(KINDS):
        flags[k] = (1 if name in PATTERNS else 0) | (2 if name in _ORDER_IN_B else 0) | (
            4 if name == "mm_filemap_fault" else 0)
    return (names, name_len, prog_start, np.array(rows, np.int64).reshape(-1, 3),
            np.frombuffer(bytes(pool), np.uint8).copy(), flags)


TABLES = _compile()


@nb.njit(cache=True, inline="always")
def _ws(c):
    return c == 32 or (9 <= c <= 13)


@nb.njit(cache=True, inline="always")
def _digit(c):
    return 48 <= c <= 57


@nb.njit(cache=True, inline="always")
def _word(c):
    return _digit(c) or (65 <= c <= 90) or (97 <= c <= 122) or c == 95


@nb.njit(cache=True, inline="always")
def _hexval(c):
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
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
    """True if the noise regex of tracer.linux could match (then the polars path decides)."""
    i = s
    while i < e and _ws(buf[i]):
        i += 1
    if i == e:
        return True
    c = buf[i]
    if c == 35:  # '#'
        return True
    if _starts(buf, i, e, _CPUS):
        return True
    if _starts(buf, i, e, _VERSION):  # version\s*=
        j = i + len(_VERSION)
        while j < e and _ws(buf[j]):
            j += 1
        if j < e and buf[j] == 61:
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
    if c == 91:  # '[' then spaces then 'perf'
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
    limit = 18 if base == 10 else 15
    while j < e:
        c = buf[j]
        if base == 10:
            d = c - 48 if _digit(c) else -1
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
        if prog[r, 0] == 0:
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


@nb.njit(cache=True)
def _parse_line(buf, s, e, names, name_len, prog_start, prog, pool, flags, vals):
    """(event kind, t_ns) of a line this scanner can claim, else (-1, 0)."""
    # ASCII without control characters: the regexes' \s and \w agree with ours.
    # Branch-free, so the loop vectorizes (it reads every byte of the input).
    bad = False
    for i in range(s, e):
        x = buf[i]
        bad = bad | (x >= 127) | ((x < 32) & (x != 9))
    if bad:
        return -1, 0
    if _maybe_noise(buf, s, e):
        return -1, 0
    # head = up to the first ": "; no ':' + whitespace inside it.
    p1 = -1
    for i in range(s, e - 1):
        if buf[i] == 58:
            if buf[i + 1] == 32:
                p1 = i
                break
            if _ws(buf[i + 1]):
                return -1, 0
    if p1 < 0:
        return -1, 0
    # Right to left: <digits>.<digits>, whitespace, optional [cpu] + whitespace, -?pid, whitespace.
    j = p1 - 1
    f_end = p1
    while j >= s and _digit(buf[j]):
        j -= 1
    f_start = j + 1
    if f_start == f_end or j < s or buf[j] != 46:
        return -1, 0
    dot = j
    j -= 1
    while j >= s and _digit(buf[j]):
        j -= 1
    sec_start = j + 1
    if sec_start == dot or j < s or not _ws(buf[j]):
        return -1, 0
    while j >= s and _ws(buf[j]):
        j -= 1
    if j >= s and buf[j] == 93:  # ']'
        j -= 1
        k = j
        while j >= s and _digit(buf[j]):
            j -= 1
        if j == k or j < s or buf[j] != 91:
            return -1, 0
        j -= 1
        if j < s or not _ws(buf[j]):
            return -1, 0
        while j >= s and _ws(buf[j]):
            j -= 1
    k = j
    while j >= s and _digit(buf[j]):
        j -= 1
    if j == k:
        return -1, 0
    if j >= s and buf[j] == 45:  # '-'
        j -= 1
    if j < s or not _ws(buf[j]):
        return -1, 0
    # sys:event: then one space, then the body.
    i = p1 + 2
    while i < e and _ws(buf[i]):
        i += 1
    k = i
    while i < e and _word(buf[i]):
        i += 1
    if i == k or i >= e or buf[i] != 58:
        return -1, 0
    i += 1
    ev = i
    while i < e and _word(buf[i]):
        i += 1
    if i == ev or i + 1 >= e or buf[i] != 58 or buf[i + 1] != 32:
        return -1, 0
    ev_end = i
    body = i + 2
    code = -1
    for kk in range(name_len.shape[0]):
        n = name_len[kk]
        if n == ev_end - ev:
            same = True
            for q in range(n):
                if buf[ev + q] != names[kk, q]:
                    same = False
                    break
            if same:
                code = kk
                break
    if code < 0 or not (flags[code] & 1):
        return -1, 0
    for q in range(6):
        vals[q] = 0
    found = False
    first = pool[prog[prog_start[code], 1]]  # every pattern starts with a literal
    for start in range(body, e):
        if buf[start] == first and _match_at(buf, start, e, prog, prog_start[code],
                                             prog_start[code + 1], pool, vals):
            found = True
            break
    if not found:
        return -1, 0
    if (flags[code] & 2) and vals[1] > MAX_ORDER:
        return -1, 0
    if flags[code] & 4:
        vals[1] = vals[0]
    if dot - sec_start > 18:
        return -1, 0
    sec = np.int64(0)
    for q in range(sec_start, dot):
        sec = sec * 10 + (buf[q] - 48)
    frac = np.int64(0)
    for q in range(9):
        d = buf[dot + 1 + q] - 48 if dot + 1 + q < f_end else 0
        frac = frac * 10 + d
    return code, sec * 1_000_000_000 + frac


@nb.njit(cache=True, parallel=True, nogil=True, _nrt=False)
def _scan(buf, starts, ends, names, name_len, prog_start, prog, pool, flags, code, t, vals):
    # No reference counting (_nrt=False; this kernel allocates nothing): numba
    # would incref and decref every array argument of _parse_line per line.
    for r in nb.prange(starts.shape[0]):  # lines are independent
        c, tt = _parse_line(buf, starts[r], ends[r], names, name_len, prog_start, prog, pool,
                            flags, vals[r])
        if c >= 0:
            code[r] = c
            t[r] = tt


def scan_lines(buf, starts, ends, names, name_len, prog_start, prog, pool, flags):
    """Parse every line ``buf[starts[i]:ends[i]]`` it can claim.

    Returns ``code`` (int16, -1: left to the polars path), ``t_ns`` and the
    field columns ``vals[6, n]`` (a ... f; garbage where code is -1).
    """
    n = starts.shape[0]
    code = np.full(n, -1, np.int16)
    t = np.zeros(n, np.int64)
    vals = np.zeros((n, 6), np.int64)
    _scan(buf, starts, ends, names, name_len, prog_start, prog, pool, flags, code, t, vals)
    return code, t, vals.T


def line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without the newline and trailing CRs) of each line in ``buf``.

    ``buf`` holds complete lines, each ending in ``\\n``.
    """
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate([[0], nl[:-1] + 1]).astype(np.int64)
    ends = nl.astype(np.int64)
    return starts, ends
