"""The fast path of :mod:`tracer.linux`: polars parses chunks of lines, numba maps events.

Same rules, same output as the line-by-line :class:`tracer.linux.Mapper`
(its reference twin; the tests demand identical traces and counters). Lines
are parsed a chunk at a time with polars' (Rust) regular expressions into
numeric event columns; ``_map_events`` then replays the mapping rules over
them with state kept in flat arrays indexed by a compact slot per frame
(only the slot itself is indexed by physical pfn) and two hash tables
(:mod:`tracer.filepage_hash`): (dev, inode) -> a small file id, and (file
id, page index) -> slot.
"""

from __future__ import annotations

from collections import Counter

import numba as nb
import numpy as np
import polars as pl

from tracer import filepage_hash as fph
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
# Scalars: t0 set?, t0, last_t, n_dense, queue head, events out, slots used, page-table keys,
# files named, queue length.
(S_HAVE_T0, S_T0, S_LAST, S_NDENSE, S_QHEAD, S_NOUT, S_NSLOT, S_HUSED, S_NFILES,
 S_QLEN) = range(10)
N_SCAL = 10

# Page states of the mapper. Every pfn-indexed array uses 0 for "nothing yet"
# (states, dense ids and folio orders are stored plus one, dirty times too), so
# the arrays come from np.zeros / np.empty and only the pages the trace touches
# are ever written: a 24 GiB guest's pfn range costs no up-front fill.
_UNSEEN, _U, _S, _V, _P = 0, 1, 2, 3, 4
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
# The mapper kernel is compiled without reference counting (_nrt=False): it
# allocates nothing (the caller sizes every array, see FastMapper.feed), and
# numba otherwise increfs and decrefs each array argument of each helper call
# with atomic operations, which measured 5x the cost of the mapping itself.
# Its helpers are plain functions: inlined by LLVM, checked by the same tests.

@nb.njit(cache=True)
def _slot(phys, slot, slot_phys, scal):
    # Frames get compact slots in the order first seen: per-frame state lives
    # in slot-indexed arrays (a capture touches few of a large guest's frames;
    # 64 K of 4 M on the benchmark's), and only this array spans the pfn range.
    s = slot[phys] - 1
    if s < 0:
        s = scal[S_NSLOT]
        slot[phys] = s + 1
        slot_phys[s] = phys
        scal[S_NSLOT] = s + 1
    return s


@nb.njit(cache=True)
def _dense_id(s, slot_phys, dense, dense_to_phys, scal):
    # Dense ids in the order frames first appear in the output (the reference's numbering).
    d = dense[s] - 1
    if d < 0:
        d = scal[S_NDENSE]
        dense[s] = d + 1
        dense_to_phys[d] = slot_phys[s]
        scal[S_NDENSE] = d + 1
    return d


@nb.njit(cache=True)
def _emit(t, s, op, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o):
    d = _dense_id(s, slot_phys, dense, dense_to_phys, scal)
    n = scal[S_NOUT]
    out_t[n] = t
    out_p[n] = d
    out_o[n] = op
    scal[S_NOUT] = n + 1


@nb.njit(cache=True)
def _current(s, implied, state, first, initial, slot_phys, dense, dense_to_phys, scal):
    st = state[s]
    if st == _UNSEEN:
        phys = slot_phys[s]
        if initial.shape[0] > 0 and phys < initial.shape[0]:
            st = initial[phys] + 1  # kpageflags states are U, S, V, P = 0..3
        else:
            st = implied
        state[s] = st
        first[_dense_id(s, slot_phys, dense, dense_to_phys, scal)] = st
    return st


@nb.njit(cache=True)
def _dirty_unlink(s, kfile, ihead, itail, dprev, dnext, dirty_t):
    iid = kfile[s]
    a = dprev[s]
    b = dnext[s]
    if a >= 0:
        dnext[a] = b
    else:
        ihead[iid] = b
    if b >= 0:
        dprev[b] = a
    else:
        itail[iid] = a
    dirty_t[s] = 0


@nb.njit(cache=True)
def _forget(s, kvalid, kfile, kidx, hf, hi, hv, folio, ihead, itail, dprev, dnext, dirty_t, scal):
    if kvalid[s]:
        p = fph.find(kfile[s], kidx[s], hf, hi)
        if p >= 0 and hv[p] == s:
            fph.remove_at(p, hf, hi, hv)
            scal[S_HUSED] -= 1
        if dirty_t[s] > 0:
            _dirty_unlink(s, kfile, ihead, itail, dprev, dnext, dirty_t)
        kvalid[s] = 0
    folio[s] = 0


@nb.njit(cache=True)
def _file_id(dev, ino, ff, fi, fv, ihead, itail, scal):
    # Files (dev, ino) get small ids: the page table's key and the dirty lists' index.
    p = fph.find(dev, ino, ff, fi)
    if p >= 0:
        return fv[p]
    iid = scal[S_NFILES]
    scal[S_NFILES] = iid + 1
    fph.put(dev, ino, iid, ff, fi, fv)
    ihead[iid] = -1
    itail[iid] = -1
    return iid


@nb.njit(cache=True)
def _worst_out(k, a, b, scal):
    # The most ops event kind k can emit (checked before it runs: no buffer grows inside).
    if k == 0:
        return 2 << b
    if k == 1:
        return 1 << b
    if k == 3:
        return 3 << b
    if k == 4:
        return 0
    if k == 5 or k == 6 or k == 7:
        return 3 * min((b >> 12) - (a >> 12) + 1, MAX_RANGE_PAGES)
    if k == 8:
        return 3 << MAX_ORDER
    if k == 9 or k == 10:
        return scal[S_NSLOT]  # every dirty page of the inode, at most once each
    return 1


@nb.njit(cache=True, nogil=True, _nrt=False)
def _map_events(i0, code, t_in, a, b, c, d, e, f, initial, expire_ns, slot, slot_phys,
                state, first, dense, dense_to_phys, kvalid, kfile, kidx, folio,
                dirty_t, dprev, dnext, hf, hi, hv, ff, fi, fv, ihead, itail,
                q_t, q_slot, q_file, scal, cnt, ev_counts, out_t, out_p, out_o):
    """Map events ``i0 ..``; returns where it stopped (``len(code)``, or an event
    whose worst case no longer fits the output or expiry queue: grow, call again)."""
    # Frames are named by slot (see _slot) from here on: the page table
    # (hf, hi, hv: file id, page index -> slot), the dirty lists and the
    # expiry queue hold slots; pfns only enter from events.
    for i in range(i0, code.shape[0]):
        k = code[i]
        if (scal[S_NOUT] + (scal[S_QLEN] - scal[S_QHEAD]) + _worst_out(k, a[i], b[i], scal)
                > out_t.shape[0] or scal[S_QLEN] + (1 << MAX_ORDER) > q_t.shape[0]):
            return i
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
        while scal[S_QHEAD] < scal[S_QLEN] and t - q_t[scal[S_QHEAD]] > expire_ns:
            h = scal[S_QHEAD]
            scal[S_QHEAD] = h + 1
            when = q_t[h]
            s = q_slot[h]
            if dirty_t[s] == when + 1 and kvalid[s] and kfile[s] == q_file[h]:
                _dirty_unlink(s, kfile, ihead, itail, dprev, dnext, dirty_t)
                if state[s] == _S:
                    state[s] = _V
                    _emit(when + expire_ns, s, _SV, slot_phys, dense, dense_to_phys, scal,
                          out_t, out_p, out_o)
                    cnt[C_EXPIRED] += 1
        if k == 0:  # mm_page_alloc
            if a[i] == 0:
                cnt[C_FAILED] += 1
                continue
            for phys in range(a[i], a[i] + (1 << b[i])):
                s = _slot(phys, slot, slot_phys, scal)
                _current(s, _U, state, first, initial, slot_phys, dense, dense_to_phys, scal)
                _forget(s, kvalid, kfile, kidx, hf, hi, hv, folio, ihead, itail, dprev, dnext,
                        dirty_t, scal)
                state[s] = _S
                _emit(t, s, _SS, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o)
                _emit(t, s, _WRITE, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o)
        elif k == 1 or k == 2:  # mm_page_free, mm_page_free_batched
            order = b[i] if k == 1 else 0
            for phys in range(a[i], a[i] + (1 << order)):
                s = _slot(phys, slot, slot_phys, scal)
                if _current(s, _S, state, first, initial, slot_phys, dense, dense_to_phys,
                            scal) == _U:
                    cnt[C_DUP_FREE] += 1
                    continue
                _forget(s, kvalid, kfile, kidx, hf, hi, hv, folio, ihead, itail, dprev, dnext,
                        dirty_t, scal)
                state[s] = _U
                _emit(t, s, _SU, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o)
        elif k == 3:  # add to page cache
            iid = _file_id((c[i] << 20) | d[i], e[i], ff, fi, fv, ihead, itail, scal)
            index = f[i] >> 12
            n = 1 << b[i]
            for phys in range(a[i], a[i] + n):
                s = _slot(phys, slot, slot_phys, scal)
                _forget(s, kvalid, kfile, kidx, hf, hi, hv, folio, ihead, itail, dprev, dnext,
                        dirty_t, scal)
            folio[slot[a[i]] - 1] = b[i] + 1
            for j in range(n):
                s = slot[a[i] + j] - 1
                if _current(s, _S, state, first, initial, slot_phys, dense, dense_to_phys,
                            scal) == _U:
                    state[s] = _S
                    _emit(t, s, _SS, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o)
                    _emit(t, s, _WRITE, slot_phys, dense, dense_to_phys, scal, out_t, out_p,
                          out_o)
                scal[S_HUSED] += fph.put(iid, index + j, s, hf, hi, hv)
                kvalid[s] = 1
                kfile[s] = iid
                kidx[s] = index + j
                state[s] = _V
                _emit(t, s, _SV, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o)
        elif k == 4:  # delete from page cache
            for phys in range(a[i], a[i] + (1 << b[i])):
                s = _slot(phys, slot, slot_phys, scal)
                _current(s, _V, state, first, initial, slot_phys, dense, dense_to_phys, scal)
                _forget(s, kvalid, kfile, kidx, hf, hi, hv, folio, ihead, itail, dprev, dnext,
                        dirty_t, scal)
        elif k == 5 or k == 6 or k == 7:  # get_pages, map_pages, fault
            lo = a[i] >> 12
            last = b[i] >> 12
            if last - lo >= MAX_RANGE_PAGES:
                cnt[C_CLAMP] += 1
                last = lo + MAX_RANGE_PAGES - 1
            p = fph.find((c[i] << 20) | d[i], e[i], ff, fi)
            if p < 0:  # no page of this file was ever cached
                cnt[C_UNRES_ACC] += last - lo + 1
                continue
            iid = fv[p]
            for index in range(lo, last + 1):
                s = fph.get(iid, index, hf, hi, hv)
                if s < 0:
                    cnt[C_UNRES_ACC] += 1
                    continue
                st = _current(s, _V, state, first, initial, slot_phys, dense, dense_to_phys, scal)
                if st == _V or st == _P:
                    _emit(t, s, _SIR, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o)
                    _emit(t, s, _READ, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o)
                    _emit(t, s, _SV if st == _V else _SPV, slot_phys, dense, dense_to_phys, scal,
                          out_t, out_p, out_o)
                else:
                    _emit(t, s, _READ, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o)
        elif k == 8:  # writeback_dirty_folio
            iid = _file_id((c[i] << 20) | d[i], e[i], ff, fi, fv, ihead, itail, scal)
            head = fph.get(iid, a[i], hf, hi, hv)
            if head < 0:
                cnt[C_UNRES_DIRTY] += 1
                continue
            order = folio[head] - 1 if folio[head] > 0 else 0
            head_phys = slot_phys[head]
            for phys in range(head_phys, head_phys + (1 << order)):
                s = slot[phys] - 1
                if s < 0 or fph.get(iid, a[i] + phys - head_phys, hf, hi, hv) != s:
                    continue
                st = _current(s, _V, state, first, initial, slot_phys, dense, dense_to_phys, scal)
                if st == _V or st == _P:
                    _emit(t, s, _SIR, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o)
                    _emit(t, s, _WRITE, slot_phys, dense, dense_to_phys, scal, out_t, out_p,
                          out_o)
                    _emit(t, s, _SS, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o)
                    state[s] = _S
                else:
                    _emit(t, s, _WRITE, slot_phys, dense, dense_to_phys, scal, out_t, out_p,
                          out_o)
                if dirty_t[s] == 0:
                    # New in the inode's dirty list: appended (the reference's dict order).
                    dprev[s] = itail[iid]
                    dnext[s] = -1
                    if itail[iid] >= 0:
                        dnext[itail[iid]] = s
                    else:
                        ihead[iid] = s
                    itail[iid] = s
                dirty_t[s] = t + 1
                h = scal[S_QLEN]
                q_t[h] = t
                q_slot[h] = s
                q_file[h] = iid
                scal[S_QLEN] = h + 1
        elif k == 9 or k == 10:  # writeback_single_inode, ext4_writepages_result
            if a[i] > 0:
                p = fph.find((c[i] << 20) | d[i], e[i], ff, fi)
                if p >= 0:
                    iid = fv[p]
                    s = ihead[iid]
                    while s >= 0:
                        nxt = dnext[s]
                        dirty_t[s] = 0
                        if state[s] == _S and kvalid[s]:
                            state[s] = _V
                            _emit(t, s, _SV, slot_phys, dense, dense_to_phys, scal, out_t, out_p,
                                  out_o)
                        s = nxt
                    ihead[iid] = -1
                    itail[iid] = -1
        elif k == 11:  # mm_lru_activate
            s = _slot(a[i], slot, slot_phys, scal)
            if _current(s, _S, state, first, initial, slot_phys, dense, dense_to_phys,
                        scal) == _U:
                cnt[C_ACT_FREE] += 1
                continue
            _emit(t, s, _READ, slot_phys, dense, dense_to_phys, scal, out_t, out_p, out_o)
    return code.shape[0]


def _grown(old: np.ndarray, size: int, alloc=np.zeros) -> np.ndarray:
    # Zeroed memory stays unmapped until touched (calloc'd pages); np.empty
    # for arrays read only where written.
    arr = alloc(size, old.dtype)
    arr[: len(old)] = old
    return arr


class FastMapper:
    """State of the numba mapper across chunks (grows with the highest pfn seen)."""

    def __init__(self, initial: np.ndarray | None = None, dirty_expire_s: float = DIRTY_EXPIRE_S):
        self.initial = (np.zeros(0, np.uint8) if initial is None
                        else np.ascontiguousarray(initial, np.uint8))
        self.expire_ns = int((dirty_expire_s + WRITEBACK_PERIOD_S) * 1e9)
        self.slot = np.zeros(0, np.int32)
        self._grow(1 << 16, 1 << 16)
        self.table = fph.new_table(1 << 12)  # (file id, page index) -> slot
        self.files = fph.new_table(1 << 10)  # (dev, inode) -> file id
        self.ihead = np.empty(1 << 10, np.int64)  # each file's dirty list
        self.itail = np.empty(1 << 10, np.int64)
        self.q = [np.empty(1 << 16, np.int64) for _ in range(3)]  # expiry queue: t, slot, file
        self.scal = np.zeros(N_SCAL, np.int64)
        self.cnt = np.zeros(N_C, np.int64)
        self.ev_counts = np.zeros(len(KINDS), np.int64)
        self.out = (np.empty(1 << 16, np.int64), np.empty(1 << 16, np.uint32),
                    np.empty(1 << 16, np.uint8))

    def _grow(self, pfns: int, slots: int) -> None:
        """Room for pfns below ``pfns`` and ``slots`` frames in all."""
        if pfns > len(self.slot):
            self.slot = _grown(self.slot, max(pfns, 2 * len(self.slot)))
        slot_cap = len(getattr(self, "state", ()))
        if slots > slot_cap:
            new = max(slots, 2 * slot_cap)
            for name, dtype in (("state", np.uint8), ("first", np.uint8), ("dense", np.int64),
                                ("kvalid", np.uint8), ("kfile", np.int64), ("kidx", np.int64),
                                ("folio", np.int8), ("dirty_t", np.int64)):
                setattr(self, name, _grown(getattr(self, name, np.zeros(0, dtype)), new))
            # Read only where written: slots and dense ids in use, links of dirty pages.
            for name in ("slot_phys", "dense_to_phys", "dprev", "dnext"):
                setattr(self, name, _grown(getattr(self, name, np.zeros(0, np.int64)), new,
                                           np.empty))

    def feed(self, ev: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Map one chunk's parsed events; returns the ops emitted (dense pfns)."""
        return self.feed_arrays(ev["code"].to_numpy(), ev["t_ns"].to_numpy(),
                                [ev[c].to_numpy() for c in "abcdef"])

    def feed_arrays(self, code: np.ndarray, t_ns: np.ndarray,
                    cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`feed` on columns: event kinds, times (ns) and the fields a ... f."""
        code = np.ascontiguousarray(code, np.uint8)
        t_ns = np.ascontiguousarray(t_ns, np.int64)
        cols = [np.ascontiguousarray(col, np.int64) for col in cols]
        pfn_kinds = np.isin(code, [0, 1, 2, 3, 4, 11])
        if pfn_kinds.any():
            frames = 1 << np.where(np.isin(code[pfn_kinds], [0, 1, 3, 4]), cols[1][pfn_kinds], 0)
            top = cols[0][pfn_kinds] + frames
            # At most one new slot per frame an event names.
            self._grow(int(top.max()) + 1, int(self.scal[S_NSLOT]) + int(frames.sum()))
            added = int(frames[code[pfn_kinds] == 3].sum())
            self.table = fph.reserve(self.table, int(self.scal[S_HUSED]), added)
        new_files = int(np.isin(code, [3, 8]).sum())
        self.files = fph.reserve(self.files, int(self.scal[S_NFILES]), new_files)
        if self.scal[S_NFILES] + new_files > len(self.ihead):
            size = 2 * (int(self.scal[S_NFILES]) + new_files)
            self.ihead = _grown(self.ihead, size, np.empty)
            self.itail = _grown(self.itail, size, np.empty)
        self._compact_queue()
        i = 0
        while True:
            i = _map_events(i, code, t_ns, *cols,
                            self.initial, self.expire_ns, self.slot, self.slot_phys, self.state,
                            self.first, self.dense, self.dense_to_phys, self.kvalid, self.kfile,
                            self.kidx, self.folio, self.dirty_t, self.dprev, self.dnext,
                            *self.table, *self.files, self.ihead, self.itail, *self.q,
                            self.scal, self.cnt, self.ev_counts, *self.out)
            if i == len(code):
                break
            # The next event might not fit: double the output and the queue, resume.
            self.out = tuple(_grown(o, 2 * len(o), np.empty) for o in self.out)
            self.q = [_grown(q, 2 * len(q), np.empty) for q in self.q]
        n = int(self.scal[S_NOUT])
        self.scal[S_NOUT] = 0
        return tuple(o[:n].copy() for o in self.out)

    def _compact_queue(self) -> None:
        # Drop the consumed head of the expiry queue now and then.
        h = int(self.scal[S_QHEAD])
        if h > (1 << 20):
            n = int(self.scal[S_QLEN])
            for q in self.q:
                q[: n - h] = q[h:n]
            self.scal[S_QLEN] = n - h
            self.scal[S_QHEAD] = 0

    @property
    def n_frames(self) -> int:
        return int(self.scal[S_NDENSE])

    def initial_events(self, counters: Counters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.n_frames
        first = self.first[:n]
        for st in (_S, _V, _P, _U):
            k = int((first == st).sum())
            if k:
                counters.initial_states["USVP"[st - _U]] += k
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
