"""The fast path of :mod:`tracer.linux`: polars parses chunks of lines, numba maps events.

Same rules, same output as the line-by-line :class:`tracer.linux.Mapper`
(its reference twin; the tests demand identical traces and counters). Lines
are parsed a chunk at a time with polars' (Rust) regular expressions into
numeric event columns; ``_map_events`` then replays the mapping rules over
them with state kept in flat arrays indexed by physical pfn and two typed
dicts (page-cache index -> pfn, inode -> its dirty list).
"""

from __future__ import annotations

from collections import Counter

import numba as nb
import numpy as np
import polars as pl
from numba import types
from numba.typed import Dict, List

from tracer.linux import (
    _BDI_ANY,
    _FIELDS,
    _LINE,
    _NOISE,
    _ORDER_FIELD,
    DIRTY_EXPIRE_S,
    MAX_ORDER,
    MAX_RANGE_PAGES,
    WRITEBACK_PERIOD_S,
    Counters,
)
from tracer.schema import Op

KINDS = list(_FIELDS)  # kind code = position
K = {name: i for i, name in enumerate(KINDS)}
#: Column each regex group of an event goes to (a: pfn or first offset or
#: index or wrote; b: order or last offset; c/d: device major/minor; e: inode;
#: f: byte offset of a page-cache folio).
_COLUMNS = {
    "mm_page_alloc": "ab", "mm_page_free": "ab", "mm_page_free_batched": "a",
    "mm_filemap_add_to_page_cache": "cdeafb", "mm_filemap_delete_from_page_cache": "cdeafb",
    "mm_filemap_get_pages": "cdeab", "mm_filemap_map_pages": "cdeab", "mm_filemap_fault": "cdea",
    "writeback_dirty_folio": "cdea", "writeback_single_inode": "cdea",
    "ext4_writepages_result": "cdea", "mm_lru_activate": "a",
}
_HEX_COLUMNS = {
    "mm_page_alloc": "a", "mm_page_free": "a", "mm_page_free_batched": "a",
    "mm_filemap_add_to_page_cache": "ae", "mm_filemap_delete_from_page_cache": "ae",
    "mm_filemap_get_pages": "e", "mm_filemap_map_pages": "e", "mm_filemap_fault": "e",
    "mm_lru_activate": "a",
}
_SHAPE_ORDER = list(_LINE)  # perf, ftrace, trace-cmd: the reference's order
# Line kinds of parse_chunk.
K_EVENT, K_UNUSED, K_NOISE, K_BAD_LINE, K_BAD_FIELDS = range(5)
KIND_NAMES = ("event", "unused", "noise", "bad-line", "bad-fields")

# Counter slots of the numba mapper.
C_UNRES_ACC, C_UNRES_DIRTY, C_DUP_FREE, C_FAILED, C_ACT_FREE, C_EXPIRED, C_REORDER, C_CLAMP = range(8)
N_C = 8
# Scalars: t0 set?, t0, last_t, n_dense, queue head.
S_HAVE_T0, S_T0, S_LAST, S_NDENSE, S_QHEAD, S_NOUT = range(6)

_U, _S, _V, _P = 0, 1, 2, 3
_UNSEEN = 255
_READ, _WRITE = int(Op.READ), int(Op.WRITE)
_SS, _SU, _SV, _SPV, _SIR = (int(Op.SET_STABLE), int(Op.SET_UNUSED), int(Op.SET_VOLATILE),
                             int(Op.SET_POT_VOLATILE), int(Op.SET_STABLE_IF_RESIDENT))


def parse_chunk(lines: list[str], fmt: str) -> pl.DataFrame:
    """Classify and parse a chunk of lines.

    Returns one row per line: ``kind`` (str: event, unused, noise, bad-line,
    bad-fields), ``name`` (event name or unused-event label), ``code``
    (uint8 event kind), ``t_ns`` and the numeric fields ``a`` ... ``f``.
    """
    line = pl.Series("line", lines, dtype=pl.String).str.strip_chars_end("\r\n")
    noise = line.str.contains(_NOISE.pattern)
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
        hit = line.gather(idx).str.contains(_LINE[name].pattern).fill_null(False).to_numpy()
        shape_np[idx[hit]] = _SHAPE_ORDER.index(name)
        todo[idx[hit]] = False
    has_shape = pl.Series(shape_np >= 0)
    is_perf = pl.Series(shape_np == _SHAPE_ORDER.index("perf"))
    easy = (clean & has_shape
            & pl.select(pl.when(is_perf).then(mid.str.contains(r"^\w+:\w+$"))
                        .otherwise(mid.str.contains(r"^\w+$"))).to_series()).fill_null(False)
    mid_parts = mid.str.splitn(":", 2).struct.unnest()
    ts = pl.select(pl.when(easy).then(head.str.extract(r"([0-9]+\.[0-9]+)$", 1))).to_series()
    ev = pl.select(pl.when(easy & is_perf).then(mid_parts["field_1"])
                   .when(easy).then(mid)).to_series()
    sysn = pl.select(pl.when(easy & is_perf).then(mid_parts["field_0"])).to_series()
    body = pl.select(pl.when(easy).then(rest)).to_series()
    hard = (has_shape & ~easy).fill_null(False)
    if hard.any():
        rows = np.flatnonzero(hard.to_numpy())
        ts, ev, sysn, body = (c.to_list() for c in (ts, ev, sysn, body))
        for r in rows.tolist():
            m = _LINE[_SHAPE_ORDER[shape_np[r]]].match(lines[r])
            gd = m.groupdict()
            ts[r], ev[r], sysn[r], body[r] = gd["ts"], gd["ev"], gd.get("sys"), gd["body"]
        ts, ev, sysn, body = (pl.Series(v, dtype=pl.String) for v in (ts, ev, sysn, body))
    out = pl.DataFrame({"ts": ts, "ev": ev, "sys": sysn, "body": body})
    out = out.with_columns(
        pl.col("ev").replace_strict(K, default=255, return_dtype=pl.UInt8).fill_null(255)
        .alias("code"))
    code = out["code"].to_numpy()
    matched = out["ev"].is_not_null().to_numpy()
    is_event = (code != 255) & matched
    good = np.zeros(n, dtype=bool)
    arrays = {c: np.zeros(n, dtype=np.int64) for c in "abcdef"}
    for name in KINDS:
        rows = np.flatnonzero(code == K[name])
        if not len(rows):
            continue
        g = out["body"].gather(rows).str.extract_groups(_FIELDS[name].pattern).struct.unnest()
        ok = np.ones(len(rows), dtype=bool)
        for idx, col in enumerate(_COLUMNS[name], start=1):
            base = 16 if col in _HEX_COLUMNS.get(name, "") else 10
            v = g[str(idx)].str.to_integer(base=base, strict=False)
            ok &= v.is_not_null().to_numpy()
            arrays[col][rows] = v.fill_null(0).cast(pl.Int64).to_numpy()
        if name in _ORDER_FIELD:
            ok &= arrays["b"][rows] <= MAX_ORDER
        if name == "mm_filemap_fault":
            arrays["b"][rows] = arrays["a"][rows]
        good[rows] = ok
    noise_np = noise.to_numpy()
    kind = np.full(n, K_EVENT, np.uint8)
    kind[~good] = K_BAD_FIELDS
    kind[~is_event] = K_UNUSED
    kind[~matched] = K_BAD_LINE
    kind[noise_np] = K_NOISE
    # Names only where the counters need them (unused and bad lines are few).
    name_col = np.full(n, None, dtype=object)
    odd = np.flatnonzero((kind == K_UNUSED) | (kind == K_BAD_FIELDS))
    if len(odd):
        ev_l = out["ev"].gather(odd).to_list()
        sys_l = out["sys"].gather(odd).to_list()
        body_l = out["body"].gather(odd).to_list()
        for j, r in enumerate(odd.tolist()):
            e_, sy = ev_l[j], sys_l[j]
            if kind[r] == K_BAD_FIELDS:
                if e_.startswith("writeback_") and _BDI_ANY.search(body_l[j]):
                    kind[r] = K_UNUSED
                    name_col[r] = f"{e_} (non-block bdi)"
                else:
                    name_col[r] = e_
            else:
                name_col[r] = f"{sy}:{e_}" if sy else e_
    ev_rows = np.flatnonzero(kind == K_EVENT)
    parts = out["ts"].gather(ev_rows).str.split_exact(".", 1).struct.unnest()
    sec = parts["field_0"].str.to_integer(strict=False).fill_null(0).cast(pl.Int64)
    frac = (parts["field_1"].fill_null("0").str.pad_end(9, "0").str.slice(0, 9)
            .str.to_integer(strict=False).fill_null(0).cast(pl.Int64))
    t_ns = np.zeros(n, np.int64)
    t_ns[ev_rows] = (sec * 1_000_000_000 + frac).to_numpy()
    return pl.DataFrame({"kind": kind, "name": pl.Series(name_col.tolist(), dtype=pl.String),
                         "code": code, "t_ns": t_ns, **arrays})


# -- the numba mapper ---------------------------------------------------------------------------
@nb.njit(cache=True, inline="always")
def _dget(dct, key):
    # typed Dict.get(k, default) types as Optional; this stays int64.
    if key in dct:
        return dct[key]
    return -1


@nb.njit(cache=True)
def _id(phys, dense, dense_to_phys, scal):
    d = dense[phys]
    if d < 0:
        d = scal[S_NDENSE]
        dense[phys] = d
        dense_to_phys[d] = phys
        scal[S_NDENSE] = d + 1
    return d


@nb.njit(cache=True)
def _emit(t, phys, op, dense, dense_to_phys, scal, out):
    # out[0]: a (3, capacity) buffer of t, dense pfn, op; doubled when full
    # (a typed list holds it so the caller sees the grown one).
    buf = out[0]
    n = scal[S_NOUT]
    if n == buf.shape[1]:
        grown = np.empty((3, 2 * n + 1024), np.int64)
        grown[:, :n] = buf
        out[0] = grown
        buf = grown
    buf[0, n] = t
    buf[1, n] = _id(phys, dense, dense_to_phys, scal)
    buf[2, n] = op
    scal[S_NOUT] = n + 1


@nb.njit(cache=True)
def _current(phys, implied, state, first, initial, dense, dense_to_phys, scal):
    st = state[phys]
    if st == _UNSEEN:
        if initial.shape[0] > 0 and phys < initial.shape[0]:
            st = initial[phys]
        else:
            st = implied
        state[phys] = st
        d = _id(phys, dense, dense_to_phys, scal)
        first[d] = st
    return st


@nb.njit(cache=True)
def _dirty_unlink(phys, kdev, kino, inode_of, ihead, itail, dprev, dnext, dirty_t):
    iid = _dget(inode_of, (kdev[phys], kino[phys]))
    if iid >= 0:
        a = dprev[phys]
        b = dnext[phys]
        if a >= 0:
            dnext[a] = b
        else:
            ihead[iid] = b
        if b >= 0:
            dprev[b] = a
        else:
            itail[iid] = a
    dirty_t[phys] = -1


@nb.njit(cache=True)
def _forget(phys, kvalid, kdev, kino, kidx, page_at, folio, inode_of, ihead, itail, dprev, dnext,
            dirty_t):
    if kvalid[phys]:
        key = (kdev[phys], kino[phys], kidx[phys])
        if _dget(page_at, key) == phys:
            del page_at[key]
        if dirty_t[phys] >= 0:
            _dirty_unlink(phys, kdev, kino, inode_of, ihead, itail, dprev, dnext, dirty_t)
        kvalid[phys] = 0
    folio[phys] = -1


@nb.njit(cache=True, nogil=True)
def _map_events(code, t_in, a, b, c, d, e, f, initial, expire_ns,
                state, first, dense, dense_to_phys, kvalid, kdev, kino, kidx, folio,
                dirty_t, dprev, dnext, page_at, inode_of, ihead, itail,
                q_t, q_phys, q_dev, q_ino, scal, cnt, ev_counts, out):
    for i in range(code.shape[0]):
        k = code[i]
        if scal[S_HAVE_T0] == 0:
            scal[S_HAVE_T0] = 1
            scal[S_T0] = t_in[i]
        t = t_in[i] - scal[S_T0]
        if t < scal[S_LAST]:
            cnt[C_REORDER] += 1
            t = scal[S_LAST]
        scal[S_LAST] = t
        ev_counts[k] += 1
        # Dirty pages past expiry are taken as written back (before this event).
        while scal[S_QHEAD] < len(q_t) and t - q_t[scal[S_QHEAD]] > expire_ns:
            h = scal[S_QHEAD]
            scal[S_QHEAD] = h + 1
            when = q_t[h]
            phys = q_phys[h]
            if (dirty_t[phys] == when and kvalid[phys] and kdev[phys] == q_dev[h]
                    and kino[phys] == q_ino[h]):
                _dirty_unlink(phys, kdev, kino, inode_of, ihead, itail, dprev, dnext, dirty_t)
                if state[phys] == _S:
                    state[phys] = _V
                    _emit(when + expire_ns, phys, _SV, dense, dense_to_phys, scal, out)
                    cnt[C_EXPIRED] += 1
        if k == 0:  # mm_page_alloc
            if a[i] == 0:
                cnt[C_FAILED] += 1
                continue
            for phys in range(a[i], a[i] + (1 << b[i])):
                _current(phys, _U, state, first, initial, dense, dense_to_phys, scal)
                _forget(phys, kvalid, kdev, kino, kidx, page_at, folio, inode_of, ihead, itail,
                        dprev, dnext, dirty_t)
                state[phys] = _S
                _emit(t, phys, _SS, dense, dense_to_phys, scal, out)
                _emit(t, phys, _WRITE, dense, dense_to_phys, scal, out)
        elif k == 1 or k == 2:  # mm_page_free, mm_page_free_batched
            order = b[i] if k == 1 else 0
            for phys in range(a[i], a[i] + (1 << order)):
                if _current(phys, _S, state, first, initial, dense, dense_to_phys, scal) == _U:
                    cnt[C_DUP_FREE] += 1
                    continue
                _forget(phys, kvalid, kdev, kino, kidx, page_at, folio, inode_of, ihead, itail,
                        dprev, dnext, dirty_t)
                state[phys] = _U
                _emit(t, phys, _SU, dense, dense_to_phys, scal, out)
        elif k == 3:  # add to page cache
            dev = (c[i] << 20) | d[i]
            index = f[i] >> 12
            n = 1 << b[i]
            for phys in range(a[i], a[i] + n):
                _forget(phys, kvalid, kdev, kino, kidx, page_at, folio, inode_of, ihead, itail,
                        dprev, dnext, dirty_t)
            folio[a[i]] = b[i]
            for j in range(n):
                phys = a[i] + j
                if _current(phys, _S, state, first, initial, dense, dense_to_phys, scal) == _U:
                    state[phys] = _S
                    _emit(t, phys, _SS, dense, dense_to_phys, scal, out)
                    _emit(t, phys, _WRITE, dense, dense_to_phys, scal, out)
                page_at[(dev, e[i], index + j)] = phys
                kvalid[phys] = 1
                kdev[phys] = dev
                kino[phys] = e[i]
                kidx[phys] = index + j
                state[phys] = _V
                _emit(t, phys, _SV, dense, dense_to_phys, scal, out)
        elif k == 4:  # delete from page cache
            for phys in range(a[i], a[i] + (1 << b[i])):
                _current(phys, _V, state, first, initial, dense, dense_to_phys, scal)
                _forget(phys, kvalid, kdev, kino, kidx, page_at, folio, inode_of, ihead, itail,
                        dprev, dnext, dirty_t)
        elif k == 5 or k == 6 or k == 7:  # get_pages, map_pages, fault
            dev = (c[i] << 20) | d[i]
            lo = a[i] >> 12
            hi = b[i] >> 12
            if hi - lo >= MAX_RANGE_PAGES:
                cnt[C_CLAMP] += 1
                hi = lo + MAX_RANGE_PAGES - 1
            for index in range(lo, hi + 1):
                phys = _dget(page_at, (dev, e[i], index))
                if phys < 0:
                    cnt[C_UNRES_ACC] += 1
                    continue
                st = _current(phys, _V, state, first, initial, dense, dense_to_phys, scal)
                if st == _V or st == _P:
                    _emit(t, phys, _SIR, dense, dense_to_phys, scal, out)
                    _emit(t, phys, _READ, dense, dense_to_phys, scal, out)
                    _emit(t, phys, _SV if st == _V else _SPV, dense, dense_to_phys, scal, out)
                else:
                    _emit(t, phys, _READ, dense, dense_to_phys, scal, out)
        elif k == 8:  # writeback_dirty_folio
            dev = (c[i] << 20) | d[i]
            head = _dget(page_at, (dev, e[i], a[i]))
            if head < 0:
                cnt[C_UNRES_DIRTY] += 1
                continue
            order = folio[head] if folio[head] >= 0 else 0
            iid = _dget(inode_of, (dev, e[i]))
            if iid < 0:
                iid = len(ihead)
                inode_of[(dev, e[i])] = iid
                ihead.append(-1)
                itail.append(-1)
            for phys in range(head, head + (1 << order)):
                if _dget(page_at, (dev, e[i], a[i] + phys - head)) != phys:
                    continue
                st = _current(phys, _V, state, first, initial, dense, dense_to_phys, scal)
                if st == _V or st == _P:
                    _emit(t, phys, _SIR, dense, dense_to_phys, scal, out)
                    _emit(t, phys, _WRITE, dense, dense_to_phys, scal, out)
                    _emit(t, phys, _SS, dense, dense_to_phys, scal, out)
                    state[phys] = _S
                else:
                    _emit(t, phys, _WRITE, dense, dense_to_phys, scal, out)
                if dirty_t[phys] < 0:
                    # New in the inode's dirty list: appended (the reference's dict order).
                    dprev[phys] = itail[iid]
                    dnext[phys] = -1
                    if itail[iid] >= 0:
                        dnext[itail[iid]] = phys
                    else:
                        ihead[iid] = phys
                    itail[iid] = phys
                dirty_t[phys] = t
                q_t.append(t)
                q_phys.append(phys)
                q_dev.append(dev)
                q_ino.append(e[i])
        elif k == 9 or k == 10:  # writeback_single_inode, ext4_writepages_result
            if a[i] > 0:
                dev = (c[i] << 20) | d[i]
                iid = _dget(inode_of, (dev, e[i]))
                if iid >= 0:
                    phys = ihead[iid]
                    while phys >= 0:
                        nxt = dnext[phys]
                        dirty_t[phys] = -1
                        if state[phys] == _S and kvalid[phys]:
                            state[phys] = _V
                            _emit(t, phys, _SV, dense, dense_to_phys, scal, out)
                        phys = nxt
                    ihead[iid] = -1
                    itail[iid] = -1
        elif k == 11:  # mm_lru_activate
            phys = a[i]
            if _current(phys, _S, state, first, initial, dense, dense_to_phys, scal) == _U:
                cnt[C_ACT_FREE] += 1
                continue
            _emit(t, phys, _READ, dense, dense_to_phys, scal, out)


@nb.njit(cache=True)
def _drain(lst, dtype_sample):
    out = np.empty(len(lst), dtype=dtype_sample.dtype)
    for i in range(len(lst)):
        out[i] = lst[i]
    lst.clear()
    return out


class FastMapper:
    """State of the numba mapper across chunks (grows with the highest pfn seen)."""

    def __init__(self, initial: np.ndarray | None = None, dirty_expire_s: float = DIRTY_EXPIRE_S):
        self.initial = (np.zeros(0, np.uint8) if initial is None
                        else np.ascontiguousarray(initial, np.uint8))
        self.expire_ns = int((dirty_expire_s + WRITEBACK_PERIOD_S) * 1e9)
        self.cap = 0
        self._grow(1 << 16)
        self.page_at = Dict.empty(types.UniTuple(types.int64, 3), types.int64)
        self.inode_of = Dict.empty(types.UniTuple(types.int64, 2), types.int64)
        self.ihead = List.empty_list(types.int64)
        self.itail = List.empty_list(types.int64)
        self.q = [List.empty_list(types.int64) for _ in range(4)]
        self.scal = np.zeros(6, np.int64)
        self.cnt = np.zeros(N_C, np.int64)
        self.ev_counts = np.zeros(len(KINDS), np.int64)
        self.out = List([np.empty((3, 1 << 16), np.int64)])

    def _grow(self, need: int) -> None:
        if need <= self.cap:
            return
        new = max(need, 2 * self.cap)

        def ext(name, fill, dtype):
            old = getattr(self, name, np.zeros(0, dtype))
            arr = np.full(new, fill, dtype)
            arr[: len(old)] = old
            setattr(self, name, arr)

        ext("state", _UNSEEN, np.uint8)
        ext("first", _UNSEEN, np.uint8)
        ext("dense", -1, np.int64)
        ext("dense_to_phys", -1, np.int64)
        ext("kvalid", 0, np.uint8)
        ext("kdev", 0, np.int64)
        ext("kino", 0, np.int64)
        ext("kidx", 0, np.int64)
        ext("folio", -1, np.int8)
        ext("dirty_t", -1, np.int64)
        ext("dprev", -1, np.int64)
        ext("dnext", -1, np.int64)
        self.cap = new

    def feed(self, ev: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Map one chunk's parsed events; returns the ops emitted (dense pfns)."""
        code = ev["code"].to_numpy().astype(np.uint8)
        cols = [ev[c].to_numpy().astype(np.int64) for c in "abcdef"]
        pfn_kinds = np.isin(code, [0, 1, 2, 3, 4, 11])
        if pfn_kinds.any():
            top = cols[0][pfn_kinds] + (1 << np.where(np.isin(code[pfn_kinds], [0, 1, 3, 4]),
                                                      cols[1][pfn_kinds], 0))
            self._grow(int(top.max()) + 1)
        _map_events(code, ev["t_ns"].to_numpy().astype(np.int64), *cols, self.initial,
                    self.expire_ns, self.state, self.first, self.dense, self.dense_to_phys,
                    self.kvalid, self.kdev, self.kino, self.kidx, self.folio, self.dirty_t,
                    self.dprev, self.dnext, self.page_at, self.inode_of, self.ihead, self.itail,
                    *self.q, self.scal, self.cnt, self.ev_counts, self.out)
        if self.scal[S_QHEAD] > (1 << 20):
            # Drop the consumed head of the expiry queue now and then.
            h = int(self.scal[S_QHEAD])
            for j, lst in enumerate(self.q):
                kept = _drain(lst, np.zeros(1, np.int64))[h:]
                self.q[j] = List(kept.tolist()) if len(kept) else List.empty_list(types.int64)
            self.scal[S_QHEAD] = 0
        n = int(self.scal[S_NOUT])
        self.scal[S_NOUT] = 0
        buf = self.out[0]
        t = buf[0, :n].copy()
        p = buf[1, :n].astype(np.uint32)
        o = buf[2, :n].astype(np.uint8)
        return t, p, o

    @property
    def n_frames(self) -> int:
        return int(self.scal[S_NDENSE])

    def initial_events(self, counters: Counters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.n_frames
        first = self.first[:n]
        for st in (_S, _V, _P, _U):
            k = int((first == st).sum())
            if k:
                counters.initial_states["USVP"[st]] += k
        # S: SET_STABLE, WRITE; V: ... and SET_VOLATILE; P: ... SET_POT_VOLATILE.
        reps = np.select([first == _S, (first == _V) | (first == _P)], [2, 3], 0)
        pfn = np.repeat(np.arange(n, dtype=np.uint32), reps)
        step = np.arange(len(pfn)) - np.repeat(np.cumsum(reps) - reps, reps)
        third = np.repeat(np.where(first == _P, _SPV, _SV).astype(np.uint8), reps)
        ops = np.choose(np.minimum(step, 2), [np.full(len(pfn), _SS, np.uint8),
                                              np.full(len(pfn), _WRITE, np.uint8), third])
        ops = ops.astype(np.uint8)
        return np.zeros(len(pfn), np.int64), pfn, ops

    def fill_counters(self, c: Counters) -> None:
        c.unresolved_accesses += int(self.cnt[C_UNRES_ACC])
        c.unresolved_dirty += int(self.cnt[C_UNRES_DIRTY])
        c.duplicate_frees += int(self.cnt[C_DUP_FREE])
        c.failed_allocations += int(self.cnt[C_FAILED])
        c.activate_on_free += int(self.cnt[C_ACT_FREE])
        c.expired_clean += int(self.cnt[C_EXPIRED])
        c.reordered += int(self.cnt[C_REORDER])
        c.clamped_ranges += int(self.cnt[C_CLAMP])
        for name, k in K.items():
            if self.ev_counts[k]:
                c.events[name] += int(self.ev_counts[k])

    def phys_of_dense(self) -> np.ndarray:
        return self.dense_to_phys[: self.n_frames].astype(np.uint64)


def tally(parsed: pl.DataFrame, c: Counters) -> None:
    """Add a chunk's noise, unused and skipped lines to the counters (lenient)."""
    kind = parsed["kind"].to_numpy()
    c.skipped["header or comment"] += int((kind == K_NOISE).sum()) or 0
    c.skipped["not a tracepoint line"] += int((kind == K_BAD_LINE).sum()) or 0
    for k, add in ((K_UNUSED, c.unused_events), (K_BAD_FIELDS, None)):
        rows = np.flatnonzero(kind == k)
        if not len(rows):
            continue
        for name, cnt in Counter(parsed["name"].gather(rows).to_list()).items():
            if add is not None:
                add[name] += cnt
            else:
                c.skipped[f"fields of {name} do not parse"] += cnt
    for key in ("header or comment", "not a tracepoint line"):
        if not c.skipped[key]:
            del c.skipped[key]
