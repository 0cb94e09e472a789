"""The fast mapper: numba replays the mapping rules over columns of parsed events.

Same rules, same output as the line-by-line :class:`tracer.linux.reference.Mapper`
(its reference twin; the tests demand identical traces and counters). The
events come as columns (:class:`Events`, from :mod:`tracer.linux.scan` or
:mod:`tracer.linux.parse`); :func:`_map_events` keeps the state in flat
arrays indexed by a compact slot per frame (:class:`Frames`; only the slot
itself is indexed by physical pfn) and two hash tables
(:mod:`tracer.linux.filepage_hash`, in :class:`Files`): (dev, inode) -> a
small file id, and (file id, page index) -> slot.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np
import polars as pl

from tracer.linux import filepage_hash as fph
from tracer.linux.counters import Counters
from tracer.linux.rules import (
    COLUMNS,
    DIRTY_EXPIRE_S,
    EV_CACHE_ADD,
    EV_CACHE_DELETE,
    EV_DIRTY_FOLIO,
    EV_EXT4_WRITEPAGES,
    EV_FAULT,
    EV_GET_PAGES,
    EV_LRU_ACTIVATE,
    EV_MAP_PAGES,
    EV_PAGE_ALLOC,
    EV_PAGE_FREE,
    EV_PAGE_FREE_BATCHED,
    EV_SINGLE_INODE,
    EVENTS,
    INITIAL_OPS,
    MAX_ORDER,
    MAX_RANGE_PAGES,
    OP_READ,
    OP_SET_POT_VOLATILE,
    OP_SET_STABLE,
    OP_SET_STABLE_IF_RESIDENT,
    OP_SET_UNUSED,
    OP_SET_VOLATILE,
    OP_WRITE,
    ORDER_EVENTS,
    PAGE_SHIFT,
    POT_VOLATILE,
    STABLE,
    STATE_NAMES,
    UNUSED,
    VOLATILE,
    clean_after_ns,
)

#: Events whose column a is a physical pfn (the mapper's arrays must reach it).
PFN_EVENTS = (EV_PAGE_ALLOC, EV_PAGE_FREE, EV_PAGE_FREE_BATCHED, EV_CACHE_ADD, EV_CACHE_DELETE,
              EV_LRU_ACTIVATE)
#: Events that may name a file not seen before.
FILE_EVENTS = (EV_CACHE_ADD, EV_DIRTY_FOLIO)
#: A device number as the kernel's ``MKDEV``: major above 20 bits of minor.
MINOR_BITS = 20

#: Counter slots of the kernel, named as the :class:`Counters` fields they add to.
COUNTER_FIELDS = ("unresolved_accesses", "unresolved_dirty", "duplicate_frees",
                  "failed_allocations", "activate_on_free", "expired_clean", "reordered",
                  "clamped_ranges")
(C_UNRESOLVED_ACCESSES, C_UNRESOLVED_DIRTY, C_DUPLICATE_FREES, C_FAILED_ALLOCATIONS,
 C_ACTIVATE_ON_FREE, C_EXPIRED_CLEAN, C_REORDERED, C_CLAMPED_RANGES) = range(len(COUNTER_FIELDS))
# Scalars: t0 set?, t0, last t, dense ids given, expiry queue head, ops out, slots used,
# page-table keys, files named, expiry queue length.
N_SCALARS = 10
(S_HAVE_T0, S_T0, S_LAST_T, S_N_DENSE, S_Q_HEAD, S_N_OUT, S_N_SLOTS, S_PAGE_KEYS, S_N_FILES,
 S_Q_LEN) = range(N_SCALARS)

# Page states of the mapper: the rules' states plus one. Every per-frame
# array uses 0 for "nothing yet" (states, dense ids and folio orders are
# stored plus one, dirty times too), so the arrays come from np.zeros /
# np.empty and only the pages the trace touches are ever written: a 24 GiB
# guest's pfn range costs no up-front fill.
_UNSEEN = 0
_UNUSED, _STABLE, _VOLATILE, _POT_VOLATILE = UNUSED + 1, STABLE + 1, VOLATILE + 1, POT_VOLATILE + 1


class Events(NamedTuple):
    """A batch of parsed events: kind codes, times (ns) and the columns a ... f of the rules."""

    code: np.ndarray  # uint8
    t_ns: np.ndarray  # int64
    a: np.ndarray  # int64 each
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    e: np.ndarray
    f: np.ndarray


class Frames(NamedTuple):
    """Per-frame state, indexed by slot (``slot`` itself by pfn, ``first`` by dense id)."""

    slot: np.ndarray  # int32 [pfn]: slot + 1, 0 for a frame not seen
    slot_phys: np.ndarray  # int64 [slot]: its pfn
    state: np.ndarray  # uint8 [slot]: guest state + 1 (_UNSEEN: not yet known)
    first: np.ndarray  # uint8 [dense id]: initial state + 1
    dense: np.ndarray  # int64 [slot]: dense id + 1
    dense_to_phys: np.ndarray  # int64 [dense id]: its pfn
    cached: np.ndarray  # uint8 [slot]: 1 while the frame holds a page of a file
    file: np.ndarray  # int64 [slot]: that file's id
    index: np.ndarray  # int64 [slot]: that page's index
    folio: np.ndarray  # int8 [slot]: order + 1 of the folio the frame heads
    dirty_t: np.ndarray  # int64 [slot]: t + 1 when dirtied, 0 when clean
    dprev: np.ndarray  # int64 [slot]: links of its file's dirty list (-1: none)
    dnext: np.ndarray


#: Frames arrays read only where written (slots and dense ids in use, links
#: of dirty pages): grown with np.empty.
_WRITTEN_BEFORE_READ = ("slot_phys", "dense_to_phys", "dprev", "dnext")
_FRAME_DTYPES = {"slot": np.int32, "slot_phys": np.int64, "state": np.uint8, "first": np.uint8,
                 "dense": np.int64, "dense_to_phys": np.int64, "cached": np.uint8,
                 "file": np.int64, "index": np.int64, "folio": np.int8, "dirty_t": np.int64,
                 "dprev": np.int64, "dnext": np.int64}


class Files(NamedTuple):
    """Per-file state: the two hash tables and each file's dirty list."""

    page_file: np.ndarray  # (file id, page index) -> slot: see filepage_hash
    page_index: np.ndarray
    page_slot: np.ndarray
    file_dev: np.ndarray  # (dev, inode) -> file id
    file_ino: np.ndarray
    file_id: np.ndarray
    dirty_head: np.ndarray  # int64 [file id]: first and last slot of its dirty list (-1: none)
    dirty_tail: np.ndarray


class Queue(NamedTuple):
    """The expiry queue: pages in the order dirtied (time, slot, file id)."""

    t_ns: np.ndarray
    slot: np.ndarray
    file: np.ndarray


class Ops(NamedTuple):
    """Output buffers: time (ns), dense pfn, op code."""

    t_ns: np.ndarray
    pfn: np.ndarray
    op: np.ndarray


# -- the numba mapper ---------------------------------------------------------------------------
# The mapper kernel is compiled without reference counting (_nrt=False): it
# allocates nothing (the caller sizes every array, see FastMapper.feed), and
# numba otherwise increfs and decrefs each array argument of each helper call
# with atomic operations, which measured 5x the cost of the mapping itself.
# The handlers of each event kind are inlined into it by numba
# (inline="always"), its small helpers by LLVM; the same tests check them.

@nb.njit(cache=True, inline="always")
def _dev(major, minor):
    return (major << MINOR_BITS) | minor


@nb.njit(cache=True, inline="always")
def _id_of(key, ids, back, value, scal, counter):
    # ids[key] holds key's id + 1 (0: none yet); new ids are handed out in
    # order of first sight, counted in scal[counter], and back[id] = value.
    i = ids[key] - 1
    if i < 0:
        i = scal[counter]
        ids[key] = i + 1
        back[i] = value
        scal[counter] = i + 1
    return i


@nb.njit(cache=True)
def _slot(phys, fr, scal):
    # Frames get compact slots in the order first seen: per-frame state lives
    # in slot-indexed arrays (a capture touches few of a large guest's frames;
    # 64 K of 4 M on the benchmark's), and only this array spans the pfn range.
    return _id_of(phys, fr.slot, fr.slot_phys, phys, scal, S_N_SLOTS)


@nb.njit(cache=True)
def _dense_id(s, fr, scal):
    # Dense ids in the order frames first appear in the output (the reference's numbering).
    return _id_of(s, fr.dense, fr.dense_to_phys, fr.slot_phys[s], scal, S_N_DENSE)


@nb.njit(cache=True)
def _emit(t, s, op, fr, scal, out):
    d = _dense_id(s, fr, scal)
    n = scal[S_N_OUT]
    out.t_ns[n] = t
    out.pfn[n] = d
    out.op[n] = op
    scal[S_N_OUT] = n + 1


@nb.njit(cache=True)
def _current(s, implied, initial, fr, scal):
    # The frame's state; on first sight, the implied (or snapshot) initial state.
    st = fr.state[s]
    if st == _UNSEEN:
        phys = fr.slot_phys[s]
        if initial.shape[0] > 0 and phys < initial.shape[0]:
            st = initial[phys] + 1  # the snapshot holds the rules' states
        else:
            st = implied
        fr.state[s] = st
        fr.first[_dense_id(s, fr, scal)] = st
    return st


@nb.njit(cache=True)
def _dirty_unlink(s, fr, files):
    iid = fr.file[s]
    a = fr.dprev[s]
    b = fr.dnext[s]
    if a >= 0:
        fr.dnext[a] = b
    else:
        files.dirty_head[iid] = b
    if b >= 0:
        fr.dprev[b] = a
    else:
        files.dirty_tail[iid] = a
    fr.dirty_t[s] = 0


@nb.njit(cache=True, inline="always")
def _dirty_append(s, iid, fr, files):
    # New in the file's dirty list: appended (the reference's dict order).
    tail = files.dirty_tail[iid]
    fr.dprev[s] = tail
    fr.dnext[s] = -1
    if tail >= 0:
        fr.dnext[tail] = s
    else:
        files.dirty_head[iid] = s
    files.dirty_tail[iid] = s


@nb.njit(cache=True)
def _forget(s, fr, files, scal):
    # The frame's page-cache identity goes (and its place in a dirty list).
    if fr.cached[s]:
        p = fph.find(fr.file[s], fr.index[s], files.page_file, files.page_index)
        if p >= 0 and files.page_slot[p] == s:
            fph.remove_at(p, files.page_file, files.page_index, files.page_slot)
            scal[S_PAGE_KEYS] -= 1
        if fr.dirty_t[s] > 0:
            _dirty_unlink(s, fr, files)
        fr.cached[s] = 0
    fr.folio[s] = 0


@nb.njit(cache=True)
def _file_id(dev, ino, files, scal):
    # Files (dev, ino) get small ids: the page table's key and the dirty lists' index.
    p = fph.find(dev, ino, files.file_dev, files.file_ino)
    if p >= 0:
        return files.file_id[p]
    iid = scal[S_N_FILES]
    scal[S_N_FILES] = iid + 1
    fph.put(dev, ino, iid, files.file_dev, files.file_ino, files.file_id)
    files.dirty_head[iid] = -1
    files.dirty_tail[iid] = -1
    return iid


@nb.njit(cache=True)
def _worst_out(k, a, b, scal):
    # The most ops event kind k can emit (checked before it runs: no buffer grows inside):
    # per frame 2 for an allocation, 1 for a free, 3 for a page added, read or dirtied.
    if k == EV_PAGE_ALLOC:
        return 2 << b
    if k == EV_PAGE_FREE:
        return 1 << b
    if k == EV_CACHE_ADD:
        return 3 << b
    if k == EV_CACHE_DELETE:
        return 0
    if k == EV_GET_PAGES or k == EV_MAP_PAGES or k == EV_FAULT:
        return 3 * min((b >> PAGE_SHIFT) - (a >> PAGE_SHIFT) + 1, MAX_RANGE_PAGES)
    if k == EV_DIRTY_FOLIO:
        return 3 << MAX_ORDER
    if k == EV_SINGLE_INODE or k == EV_EXT4_WRITEPAGES:
        return scal[S_N_SLOTS]  # every dirty page of the file, at most once each
    return 1


@nb.njit(cache=True, inline="always")
def _event_time(t_in, scal, cnt):
    # Relative to the first event, never earlier than the one before.
    if scal[S_HAVE_T0] == 0:
        scal[S_HAVE_T0] = 1
        scal[S_T0] = t_in
    t = t_in - scal[S_T0]
    if t < scal[S_LAST_T]:
        cnt[C_REORDERED] += 1
        t = scal[S_LAST_T]
    scal[S_LAST_T] = t
    return t


@nb.njit(cache=True, inline="always")
def _expire(t, expire_ns, fr, files, q, scal, cnt, out):
    # Dirty pages past expiry are taken as written back (before the event at t).
    while scal[S_Q_HEAD] < scal[S_Q_LEN] and t - q.t_ns[scal[S_Q_HEAD]] > expire_ns:
        h = scal[S_Q_HEAD]
        scal[S_Q_HEAD] = h + 1
        when = q.t_ns[h]
        s = q.slot[h]
        if fr.dirty_t[s] == when + 1 and fr.cached[s] and fr.file[s] == q.file[h]:
            _dirty_unlink(s, fr, files)
            if fr.state[s] == _STABLE:
                fr.state[s] = _VOLATILE
                _emit(when + expire_ns, s, OP_SET_VOLATILE, fr, scal, out)
                cnt[C_EXPIRED_CLEAN] += 1


# -- one handler per event kind (the rules of tracer.linux.rules) ------------------------------

@nb.njit(cache=True, inline="always")
def _page_alloc(t, pfn, order, initial, fr, files, scal, cnt, out):
    if pfn == 0:
        cnt[C_FAILED_ALLOCATIONS] += 1
        return
    for phys in range(pfn, pfn + (1 << order)):
        s = _slot(phys, fr, scal)
        _current(s, _UNUSED, initial, fr, scal)
        _forget(s, fr, files, scal)
        fr.state[s] = _STABLE
        _emit(t, s, OP_SET_STABLE, fr, scal, out)
        _emit(t, s, OP_WRITE, fr, scal, out)


@nb.njit(cache=True, inline="always")
def _page_free(t, pfn, order, initial, fr, files, scal, cnt, out):
    for phys in range(pfn, pfn + (1 << order)):
        s = _slot(phys, fr, scal)
        if _current(s, _STABLE, initial, fr, scal) == _UNUSED:
            cnt[C_DUPLICATE_FREES] += 1
            continue
        _forget(s, fr, files, scal)
        fr.state[s] = _UNUSED
        _emit(t, s, OP_SET_UNUSED, fr, scal, out)


@nb.njit(cache=True, inline="always")
def _cache_add(t, dev, ino, pfn, order, index, initial, fr, files, scal, out):
    iid = _file_id(dev, ino, files, scal)
    n = 1 << order
    for phys in range(pfn, pfn + n):
        _forget(_slot(phys, fr, scal), fr, files, scal)
    fr.folio[fr.slot[pfn] - 1] = order + 1
    for j in range(n):
        s = fr.slot[pfn + j] - 1
        if _current(s, _STABLE, initial, fr, scal) == _UNUSED:
            # A frame the converter holds free: its allocation is not in the
            # trace (e.g. lost by perf); allocate it here.
            fr.state[s] = _STABLE
            _emit(t, s, OP_SET_STABLE, fr, scal, out)
            _emit(t, s, OP_WRITE, fr, scal, out)
        scal[S_PAGE_KEYS] += fph.put(iid, index + j, s, files.page_file, files.page_index,
                                     files.page_slot)
        fr.cached[s] = 1
        fr.file[s] = iid
        fr.index[s] = index + j
        fr.state[s] = _VOLATILE
        _emit(t, s, OP_SET_VOLATILE, fr, scal, out)


@nb.njit(cache=True, inline="always")
def _cache_delete(pfn, order, initial, fr, files, scal):
    for phys in range(pfn, pfn + (1 << order)):
        s = _slot(phys, fr, scal)
        _current(s, _VOLATILE, initial, fr, scal)
        _forget(s, fr, files, scal)


@nb.njit(cache=True, inline="always")
def _read_range(t, dev, ino, lo, last, initial, fr, files, scal, cnt, out):
    # read(), fault-around and faults: every cached page of the range is read.
    if last - lo >= MAX_RANGE_PAGES:
        cnt[C_CLAMPED_RANGES] += 1
        last = lo + MAX_RANGE_PAGES - 1
    p = fph.find(dev, ino, files.file_dev, files.file_ino)
    if p < 0:  # no page of this file was ever cached
        cnt[C_UNRESOLVED_ACCESSES] += last - lo + 1
        return
    iid = files.file_id[p]
    for index in range(lo, last + 1):
        s = fph.get(iid, index, files.page_file, files.page_index, files.page_slot)
        if s < 0:
            cnt[C_UNRESOLVED_ACCESSES] += 1
            continue
        st = _current(s, _VOLATILE, initial, fr, scal)
        if st == _VOLATILE or st == _POT_VOLATILE:
            # The guest pins a clean page while it copies it.
            _emit(t, s, OP_SET_STABLE_IF_RESIDENT, fr, scal, out)
            _emit(t, s, OP_READ, fr, scal, out)
            _emit(t, s, OP_SET_VOLATILE if st == _VOLATILE else OP_SET_POT_VOLATILE, fr, scal,
                  out)
        else:
            _emit(t, s, OP_READ, fr, scal, out)


@nb.njit(cache=True, inline="always")
def _dirty_folio(t, dev, ino, index, initial, fr, files, q, scal, cnt, out):
    iid = _file_id(dev, ino, files, scal)
    head = fph.get(iid, index, files.page_file, files.page_index, files.page_slot)
    if head < 0:
        cnt[C_UNRESOLVED_DIRTY] += 1
        return
    order = fr.folio[head] - 1 if fr.folio[head] > 0 else 0
    head_phys = fr.slot_phys[head]
    for phys in range(head_phys, head_phys + (1 << order)):
        s = fr.slot[phys] - 1
        if s < 0 or fph.get(iid, index + phys - head_phys, files.page_file, files.page_index,
                            files.page_slot) != s:
            continue
        st = _current(s, _VOLATILE, initial, fr, scal)
        if st == _VOLATILE or st == _POT_VOLATILE:
            # As the guest does before writing a clean cached page: pin it
            # stable if still resident, then keep it stable.
            _emit(t, s, OP_SET_STABLE_IF_RESIDENT, fr, scal, out)
            _emit(t, s, OP_WRITE, fr, scal, out)
            _emit(t, s, OP_SET_STABLE, fr, scal, out)
            fr.state[s] = _STABLE
        else:
            _emit(t, s, OP_WRITE, fr, scal, out)
        if fr.dirty_t[s] == 0:
            _dirty_append(s, iid, fr, files)
        fr.dirty_t[s] = t + 1
        h = scal[S_Q_LEN]
        q.t_ns[h] = t
        q.slot[h] = s
        q.file[h] = iid
        scal[S_Q_LEN] = h + 1


@nb.njit(cache=True, inline="always")
def _written_back(t, dev, ino, fr, files, scal, out):
    # The file's writeback wrote pages: its dirty pages are clean again.
    p = fph.find(dev, ino, files.file_dev, files.file_ino)
    if p < 0:
        return
    iid = files.file_id[p]
    s = files.dirty_head[iid]
    while s >= 0:
        nxt = fr.dnext[s]
        fr.dirty_t[s] = 0
        if fr.state[s] == _STABLE and fr.cached[s]:
            fr.state[s] = _VOLATILE
            _emit(t, s, OP_SET_VOLATILE, fr, scal, out)
        s = nxt
    files.dirty_head[iid] = -1
    files.dirty_tail[iid] = -1


@nb.njit(cache=True, inline="always")
def _lru_activate(t, pfn, initial, fr, scal, cnt, out):
    s = _slot(pfn, fr, scal)
    if _current(s, _STABLE, initial, fr, scal) == _UNUSED:
        cnt[C_ACTIVATE_ON_FREE] += 1
        return
    _emit(t, s, OP_READ, fr, scal, out)


@nb.njit(cache=True, nogil=True, _nrt=False)
def _map_events(i0, ev, initial, expire_ns, fr, files, q, scal, cnt, ev_counts, out):
    """Map events ``i0 ..``; returns where it stopped (``len(ev.code)``, or an event
    whose worst case no longer fits ``out`` or the expiry queue ``q``: grow, call again)."""
    # Frames are named by slot (see _slot) from here on: the page table, the
    # dirty lists and the expiry queue hold slots; pfns only enter from events.
    for i in range(i0, ev.code.shape[0]):
        k = ev.code[i]
        a = ev.a[i]
        b = ev.b[i]
        if (scal[S_N_OUT] + (scal[S_Q_LEN] - scal[S_Q_HEAD]) + _worst_out(k, a, b, scal)
                > out.t_ns.shape[0] or scal[S_Q_LEN] + (1 << MAX_ORDER) > q.t_ns.shape[0]):
            return i
        t = _event_time(ev.t_ns[i], scal, cnt)
        ev_counts[k] += 1
        _expire(t, expire_ns, fr, files, q, scal, cnt, out)
        if k == EV_PAGE_ALLOC:
            _page_alloc(t, a, b, initial, fr, files, scal, cnt, out)
        elif k == EV_PAGE_FREE:
            _page_free(t, a, b, initial, fr, files, scal, cnt, out)
        elif k == EV_PAGE_FREE_BATCHED:
            _page_free(t, a, 0, initial, fr, files, scal, cnt, out)
        elif k == EV_CACHE_ADD:
            _cache_add(t, _dev(ev.c[i], ev.d[i]), ev.e[i], a, b, ev.f[i] >> PAGE_SHIFT, initial,
                       fr, files, scal, out)
        elif k == EV_CACHE_DELETE:
            _cache_delete(a, b, initial, fr, files, scal)
        elif k == EV_GET_PAGES or k == EV_MAP_PAGES or k == EV_FAULT:  # b: last byte offset
            _read_range(t, _dev(ev.c[i], ev.d[i]), ev.e[i], a >> PAGE_SHIFT, b >> PAGE_SHIFT,
                        initial, fr, files, scal, cnt, out)
        elif k == EV_DIRTY_FOLIO:
            _dirty_folio(t, _dev(ev.c[i], ev.d[i]), ev.e[i], a, initial, fr, files, q, scal, cnt,
                         out)
        elif k == EV_SINGLE_INODE or k == EV_EXT4_WRITEPAGES:  # a: pages written
            if a > 0:
                _written_back(t, _dev(ev.c[i], ev.d[i]), ev.e[i], fr, files, scal, out)
        elif k == EV_LRU_ACTIVATE:
            _lru_activate(t, a, initial, fr, scal, cnt, out)
    return ev.code.shape[0]


# First sizes of the mapper's arrays (all grow as needed): pfns, slots, expiry
# queue and output entries; page-table keys; files.
_START_SIZE, _START_PAGES, _START_FILES = 1 << 16, 1 << 12, 1 << 10
#: The expiry queue drops its consumed head once it is this long.
_COMPACT_QUEUE_AT = 1 << 20


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
        self.expire_ns = clean_after_ns(dirty_expire_s)
        self.frames = Frames(**{name: np.zeros(0, dtype) for name, dtype in _FRAME_DTYPES.items()})
        self._grow(_START_SIZE, _START_SIZE)
        self.files = Files(*fph.new_table(_START_PAGES), *fph.new_table(_START_FILES),
                           np.empty(_START_FILES, np.int64), np.empty(_START_FILES, np.int64))
        self.q = Queue(*(np.empty(_START_SIZE, np.int64) for _ in Queue._fields))
        self.scal = np.zeros(N_SCALARS, np.int64)
        self.cnt = np.zeros(len(COUNTER_FIELDS), np.int64)
        self.ev_counts = np.zeros(len(EVENTS), np.int64)
        self.out = Ops(np.empty(_START_SIZE, np.int64), np.empty(_START_SIZE, np.uint32),
                       np.empty(_START_SIZE, np.uint8))

    def _grow(self, pfns: int, slots: int) -> None:
        """Room for pfns below ``pfns`` and ``slots`` frames in all."""
        fr = self.frames
        if pfns > len(fr.slot):
            fr = fr._replace(slot=_grown(fr.slot, max(pfns, 2 * len(fr.slot))))
        if slots > len(fr.state):
            new = max(slots, 2 * len(fr.state))
            fr = Frames(*(arr if name == "slot" else
                          _grown(arr, new, np.empty if name in _WRITTEN_BEFORE_READ else np.zeros)
                          for name, arr in zip(Frames._fields, fr, strict=True)))
        self.frames = fr

    def _reserve_files(self, new_pages: int, new_files: int) -> None:
        """Room for ``new_pages`` more page-table keys and ``new_files`` more files."""
        f = self.files
        pages = fph.reserve(f[:3], int(self.scal[S_PAGE_KEYS]), new_pages)
        names = fph.reserve(f[3:6], int(self.scal[S_N_FILES]), new_files)
        head, tail = f.dirty_head, f.dirty_tail
        if self.scal[S_N_FILES] + new_files > len(head):
            size = 2 * (int(self.scal[S_N_FILES]) + new_files)
            head, tail = _grown(head, size, np.empty), _grown(tail, size, np.empty)
        self.files = Files(*pages, *names, head, tail)

    def feed(self, ev: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Map one chunk's parsed events; returns the ops emitted (dense pfns)."""
        return self.feed_arrays(ev["code"].to_numpy(), ev["t_ns"].to_numpy(),
                                [ev[c].to_numpy() for c in COLUMNS])

    def feed_arrays(self, code: np.ndarray, t_ns: np.ndarray,
                    cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`feed` on columns: event kinds, times (ns) and the columns a ... f."""
        ev = Events(np.ascontiguousarray(code, np.uint8), np.ascontiguousarray(t_ns, np.int64),
                    *(np.ascontiguousarray(col, np.int64) for col in cols))
        pfn_events = np.isin(ev.code, PFN_EVENTS)
        new_pages = 0
        if pfn_events.any():
            frames = 1 << np.where(np.isin(ev.code[pfn_events], ORDER_EVENTS), ev.b[pfn_events], 0)
            top = ev.a[pfn_events] + frames
            # At most one new slot per frame an event names.
            self._grow(int(top.max()) + 1, int(self.scal[S_N_SLOTS]) + int(frames.sum()))
            new_pages = int(frames[ev.code[pfn_events] == EV_CACHE_ADD].sum())
        self._reserve_files(new_pages, int(np.isin(ev.code, FILE_EVENTS).sum()))
        self._compact_queue()
        i = 0
        while True:
            i = _map_events(i, ev, self.initial, self.expire_ns, self.frames, self.files, self.q,
                            self.scal, self.cnt, self.ev_counts, self.out)
            if i == len(ev.code):
                break
            # The next event might not fit: double the output and the queue, resume.
            self.out = Ops(*(_grown(o, 2 * len(o), np.empty) for o in self.out))
            self.q = Queue(*(_grown(q, 2 * len(q), np.empty) for q in self.q))
        n = int(self.scal[S_N_OUT])
        self.scal[S_N_OUT] = 0
        return tuple(o[:n].copy() for o in self.out)

    def _compact_queue(self) -> None:
        # Drop the consumed head of the expiry queue now and then.
        h = int(self.scal[S_Q_HEAD])
        if h > _COMPACT_QUEUE_AT:
            n = int(self.scal[S_Q_LEN])
            for q in self.q:
                q[: n - h] = q[h:n]
            self.scal[S_Q_LEN] = n - h
            self.scal[S_Q_HEAD] = 0

    @property
    def n_frames(self) -> int:
        return int(self.scal[S_N_DENSE])

    def initial_events(self, counters: Counters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Events at t=0 that put every frame into its inferred initial state."""
        first = self.frames.first[: self.n_frames]  # states + 1
        seen = np.bincount(first, minlength=len(STATE_NAMES) + 1)
        for st, name in enumerate(STATE_NAMES):
            if seen[st + 1]:
                counters.initial_states[name] += int(seen[st + 1])
        # The rules' ops per state as a table (row: state + 1), vectorized.
        n_ops = np.zeros(len(STATE_NAMES) + 1, np.int64)
        table = np.zeros((len(STATE_NAMES) + 1, max(map(len, INITIAL_OPS.values()))), np.uint8)
        for st, ops in INITIAL_OPS.items():
            n_ops[st + 1] = len(ops)
            table[st + 1, : len(ops)] = ops
        reps = n_ops[first]
        pfn = np.repeat(np.arange(len(first), dtype=np.uint32), reps)
        step = np.arange(len(pfn)) - np.repeat(np.cumsum(reps) - reps, reps)
        return np.zeros(len(pfn), np.int64), pfn, table[np.repeat(first, reps), step]

    def fill_counters(self, c: Counters) -> None:
        """Add the kernel's counters to ``c``."""
        for slot, name in enumerate(COUNTER_FIELDS):
            setattr(c, name, getattr(c, name) + int(self.cnt[slot]))
        for code, name in enumerate(EVENTS):
            if self.ev_counts[code]:
                c.events[name] += int(self.ev_counts[code])

    def phys_of_dense(self) -> np.ndarray:
        return self.frames.dense_to_phys[: self.n_frames].astype(np.uint64)
