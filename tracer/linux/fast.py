"""The fast mapper: numba replays the mapping rules over columns of parsed events.

Same rules, same output as the line-by-line :class:`cmmsim.tracer.linux.reference.Mapper`
(its reference twin; the tests demand identical traces and counters). The
events come as columns (:class:`~cmmsim.tracer.linux.fast_state.Events`, from
:mod:`cmmsim.tracer.linux.scan` or :mod:`cmmsim.tracer.linux.parse`); :func:`_map_events`
runs one handler per event kind over the state of
:mod:`cmmsim.tracer.linux.fast_state`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import polars as pl

from cmmsim.tracer.linux import filepage_hash as fph
from cmmsim.tracer.linux.counters import CAUSES, Counters
from cmmsim.tracer.linux.fast_state import (
    ALIAS_DEV,
    C_ACTIVATE_ON_FREE,
    C_CLAMPED_RANGES,
    C_DUPLICATE_FREES,
    C_FAILED_ALLOCATIONS,
    C_FAULT_AROUND_MAPPED,
    C_FAULT_AROUND_RETRIES,
    C_FAULT_AROUND_UNKNOWN,
    C_FAULTS_FILLED,
    C_GET_PAGES_UNREAD,
    C_PAGE_CACHE_READS,
    C_SAMPLED_ON_FREE,
    C_SNAPSHOT_PAGES,
    C_UNRESOLVED_DIRTY,
    COUNTER_FIELDS,
    FRAME_DTYPES,
    N_COUNTERS,
    N_SCALARS,
    PER_FILE,
    PFN_CHUNK_BITS,
    PFN_CHUNK_MASK,
    S_FILE_KEYS,
    S_N_DENSE,
    S_N_FILES,
    S_N_OUT,
    S_N_SLOTS,
    S_PAGE_KEYS,
    S_Q_HEAD,
    S_Q_LEN,
    ST_POT_VOLATILE,
    ST_STABLE,
    ST_UNUSED,
    ST_VOLATILE,
    WRITTEN_BEFORE_READ,
    Events,
    Files,
    Frames,
    Ops,
    Queue,
    cause_of,
    current_state,
    dev_of,
    dirty_append,
    emit,
    event_time,
    expire,
    file_id_of,
    forget,
    known_slot,
    slot_of,
    writeback_file,
)
from cmmsim.tracer.linux.rules import (
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
    EV_SAMPLED_ACCESS,
    EV_SINGLE_INODE,
    EVENT_CODE,
    EVENTS,
    FILL_WINDOW_NS,
    INITIAL_OPS,
    MAX_ORDER,
    MAX_PFN,
    MAX_RANGE_PAGES,
    MINOR_BITS,
    OP_READ,
    OP_SET_POT_VOLATILE,
    OP_SET_STABLE,
    OP_SET_STABLE_IF_RESIDENT,
    OP_SET_UNUSED,
    OP_SET_VOLATILE,
    OP_WRITE,
    ORDER_EVENTS,
    PAGE_SHIFT,
    PFN_NAMES,
    RETRY_WINDOW_NS,
    STATE_NAMES,
    clean_after_ns,
)

#: Events whose column a is a physical pfn (the mapper's pfn map must reach it).
PFN_EVENTS = tuple(EVENT_CODE[name] for name in PFN_NAMES)
#: Events that may name a file not seen before (a page added may also add
#: its block-device alias to the file table).
FILE_EVENTS = (EV_CACHE_ADD, EV_DIRTY_FOLIO, EV_GET_PAGES, EV_MAP_PAGES, EV_FAULT)


@nb.njit(cache=True)
def _worst_out(k, a, b, scal):
    # The most ops event kind k can emit (checked before it runs: no buffer grows inside):
    # per frame 2 for an allocation, 1 for a free, 3 for a page added, read or dirtied.
    if k == EV_PAGE_ALLOC:
        return 2 << b
    if k == EV_PAGE_FREE:
        return 1 << b
    if k == EV_CACHE_ADD:
        return (3 << b) + 3  # and the read of a fault it fills
    if k == EV_CACHE_DELETE:
        return 0
    if k == EV_GET_PAGES:  # the last turn's rest, then its own range
        return 3 * (MAX_RANGE_PAGES + min((b >> PAGE_SHIFT) - (a >> PAGE_SHIFT) + 1, MAX_RANGE_PAGES))
    if k == EV_MAP_PAGES or k == EV_FAULT or k == EV_SAMPLED_ACCESS:
        return 3
    if k == EV_DIRTY_FOLIO:
        return 3 << MAX_ORDER
    if k == EV_SINGLE_INODE or k == EV_EXT4_WRITEPAGES:
        return scal[S_N_SLOTS]  # every dirty page of the file, at most once each
    return 1


# -- one handler per event kind (the rules of cmmsim.tracer.linux.rules) ------------------------------


@nb.njit(cache=True, inline="always")
def _page_alloc(t, pfn, order, initial, fr, files, scal, cnt, out):
    if pfn == 0:
        cnt[C_FAILED_ALLOCATIONS] += 1
        return
    for phys in range(pfn, pfn + (1 << order)):
        s = slot_of(phys, fr, scal)
        current_state(s, ST_UNUSED, initial, fr, scal)
        forget(s, fr, files, scal)
        fr.state[s] = ST_STABLE
        emit(t, s, OP_SET_STABLE, fr, scal, out)
        emit(t, s, OP_WRITE, fr, scal, out)


@nb.njit(cache=True, inline="always")
def _page_free(t, pfn, order, initial, fr, files, scal, cnt, out):
    for phys in range(pfn, pfn + (1 << order)):
        s = slot_of(phys, fr, scal)
        if current_state(s, ST_STABLE, initial, fr, scal) == ST_UNUSED:
            cnt[C_DUPLICATE_FREES] += 1
            continue
        forget(s, fr, files, scal)
        fr.state[s] = ST_UNUSED
        emit(t, s, OP_SET_UNUSED, fr, scal, out)


@nb.njit(cache=True, inline="always")
def _cache_add(t, dev, ino, pfn, order, index, initial, fr, files, scal, cnt, out):
    iid = file_id_of(dev, ino, files, scal)
    files.seen[iid] = 1
    if dev >> MINOR_BITS == 0 and ino >> MINOR_BITS:  # a block device's own cache
        scal[S_FILE_KEYS] += fph.put(ALIAS_DEV, ino, iid, files.file_dev, files.file_ino, files.file_id)
    n = 1 << order
    for phys in range(pfn, pfn + n):
        forget(slot_of(phys, fr, scal), fr, files, scal)
    fr.folio[known_slot(pfn, fr)] = order + 1
    for j in range(n):
        s = known_slot(pfn + j, fr)
        if current_state(s, ST_STABLE, initial, fr, scal) == ST_UNUSED:
            # A frame the converter holds free: its allocation is not in the
            # trace (e.g. lost by perf); allocate it here.
            fr.state[s] = ST_STABLE
            emit(t, s, OP_SET_STABLE, fr, scal, out)
            emit(t, s, OP_WRITE, fr, scal, out)
        scal[S_PAGE_KEYS] += fph.put(iid, index + j, s, files.page_file, files.page_index, files.page_slot)
        fr.cached[s] = 1
        fr.file[s] = iid
        fr.index[s] = index + j
        fr.state[s] = ST_VOLATILE
        emit(t, s, OP_SET_VOLATILE, fr, scal, out)
    pend = files.pend_index[iid]
    if index <= pend < index + n and t - files.pend_t[iid] <= FILL_WINDOW_NS:
        # The fault before this fill read the page: it reads it now.
        files.pend_index[iid] = -1
        cnt[C_FAULTS_FILLED] += 1
        _read_slot(t, known_slot(pfn + pend - index, fr), initial, fr, scal, cnt, out)


@nb.njit(cache=True, inline="always")
def _cache_delete(pfn, order, initial, fr, files, scal):
    for phys in range(pfn, pfn + (1 << order)):
        s = slot_of(phys, fr, scal)
        current_state(s, ST_VOLATILE, initial, fr, scal)
        forget(s, fr, files, scal)


@nb.njit(cache=True)
def _read_slot(t, s, initial, fr, scal, cnt, out):
    # A page-cache read: the guest pins a clean page while it copies it.
    cnt[C_PAGE_CACHE_READS] += 1
    _pinned_read(t, s, current_state(s, ST_VOLATILE, initial, fr, scal), fr, scal, out)


@nb.njit(cache=True)
def _pinned_read(t, s, st, fr, scal, out):
    # A READ of slot s in state st; a volatile page is pinned stable around it
    # (set stable if resident, read, back to its volatile state).
    if st == ST_VOLATILE or st == ST_POT_VOLATILE:
        emit(t, s, OP_SET_STABLE_IF_RESIDENT, fr, scal, out)
        emit(t, s, OP_READ, fr, scal, out)
        emit(t, s, OP_SET_VOLATILE if st == ST_VOLATILE else OP_SET_POT_VOLATILE, fr, scal, out)
    else:
        emit(t, s, OP_READ, fr, scal, out)


@nb.njit(cache=True)
def _read_page(t, dev, iid, index, initial, fr, files, scal, cnt, out):
    # A page the task certainly read: read it, or count it unresolved.
    s = fph.get(iid, index, files.page_file, files.page_index, files.page_slot)
    if s < 0:
        cnt[cause_of(dev, iid, files)] += 1
    else:
        _read_slot(t, s, initial, fr, scal, cnt, out)


@nb.njit(cache=True, inline="always")
def clamp_range(lo, hi, cnt):
    # A range longer than MAX_RANGE_PAGES is clamped (and counted).
    if hi - lo >= MAX_RANGE_PAGES:
        cnt[C_CLAMPED_RANGES] += 1
        return lo + MAX_RANGE_PAGES - 1
    return hi


@nb.njit(cache=True, inline="always")
def _get_pages(t, dev, ino, lo, last, initial, fr, files, scal, cnt, out):
    # One turn of a read() loop (see rules: mm_filemap_get_pages).
    hi = clamp_range(lo, last, cnt)
    iid = file_id_of(dev, ino, files, scal)
    if files.req_last[iid] == last and lo > files.req_start[iid]:
        # The next turn of the same read: the last one read up to here.
        upto = files.req_upto[iid]
        for index in range(upto, min(lo, upto + MAX_RANGE_PAGES)):
            _read_page(t, dev, iid, index, initial, fr, files, scal, cnt, out)
        index = max(upto, lo)
    else:
        _read_page(t, dev, iid, lo, initial, fr, files, scal, cnt, out)  # always read
        index = lo + 1
    while index <= hi:
        s = fph.get(iid, index, files.page_file, files.page_index, files.page_slot)
        if s < 0:
            break
        _read_slot(t, s, initial, fr, scal, cnt, out)
        index += 1
    cnt[C_GET_PAGES_UNREAD] += max(0, hi + 1 - index)
    files.req_last[iid] = last
    files.req_start[iid] = lo
    files.req_upto[iid] = index


@nb.njit(cache=True, inline="always")
def _map_pages(t, dev, ino, lo, last, initial, fr, files, scal, cnt, out):
    # Fault-around (see rules: mm_filemap_map_pages): one page read, the faulting one.
    hi = clamp_range(lo, last, cnt)
    iid = file_id_of(dev, ino, files, scal)
    fault = files.fault_index[iid]
    retry = lo <= fault <= hi and t - files.fault_t[iid] <= RETRY_WINDOW_NS
    if retry:  # the fault's retry: the fault read its page
        files.fault_index[iid] = -1
        cnt[C_FAULT_AROUND_RETRIES] += 1
    start = lo
    if files.win_lo[iid] <= lo <= files.win_hi[iid] < hi:
        start = files.win_hi[iid] + 1  # the last fault-around mapped the range's front
    files.win_lo[iid] = lo
    files.win_hi[iid] = hi
    first = -1
    mapped = 0
    unknown = 0
    for index in range(start, hi + 1):
        if retry and index == fault:
            continue
        s = fph.get(iid, index, files.page_file, files.page_index, files.page_slot)
        if s < 0:
            unknown += 1
        elif first < 0 and not retry:
            first = s
        else:
            mapped += 1
    if first >= 0:
        _read_slot(t, first, initial, fr, scal, cnt, out)
    elif not retry:  # the faulting page is one of them, none known
        cnt[cause_of(dev, iid, files)] += 1
        unknown -= 1
    cnt[C_FAULT_AROUND_MAPPED] += mapped
    cnt[C_FAULT_AROUND_UNKNOWN] += unknown


@nb.njit(cache=True, inline="always")
def _fault(t, dev, ino, index, initial, fr, files, scal, cnt, out):
    # A page fault reads its page; one not yet cached once its fill comes.
    iid = file_id_of(dev, ino, files, scal)
    files.fault_index[iid] = index
    files.fault_t[iid] = t
    s = fph.get(iid, index, files.page_file, files.page_index, files.page_slot)
    if s >= 0:
        _read_slot(t, s, initial, fr, scal, cnt, out)
        return
    if files.pend_index[iid] >= 0:
        cnt[files.pend_cause[iid]] += 1
    files.pend_index[iid] = index
    files.pend_t[iid] = t
    files.pend_cause[iid] = cause_of(dev, iid, files)


@nb.njit(cache=True, inline="always")
def _dirty_folio(t, dev, ino, index, initial, fr, files, q, scal, cnt, out):
    iid = writeback_file(dev, ino, files)
    if iid < 0:
        iid = file_id_of(dev, ino, files, scal)
    head = fph.get(iid, index, files.page_file, files.page_index, files.page_slot)
    if head < 0:
        cnt[C_UNRESOLVED_DIRTY] += 1
        return
    order = fr.folio[head] - 1 if fr.folio[head] > 0 else 0
    head_phys = fr.slot_phys[head]
    for phys in range(head_phys, head_phys + (1 << order)):
        s = known_slot(phys, fr)
        if s < 0 or fph.get(iid, index + phys - head_phys, files.page_file, files.page_index, files.page_slot) != s:
            continue
        st = current_state(s, ST_VOLATILE, initial, fr, scal)
        if st == ST_VOLATILE or st == ST_POT_VOLATILE:
            # As the guest does before writing a clean cached page: pin it
            # stable if still resident, then keep it stable.
            emit(t, s, OP_SET_STABLE_IF_RESIDENT, fr, scal, out)
            emit(t, s, OP_WRITE, fr, scal, out)
            emit(t, s, OP_SET_STABLE, fr, scal, out)
            fr.state[s] = ST_STABLE
        else:
            emit(t, s, OP_WRITE, fr, scal, out)
        if fr.dirty_t[s] == 0:
            dirty_append(s, iid, fr, files)
        fr.dirty_t[s] = t + 1
        h = scal[S_Q_LEN]
        q.t_ns[h] = t
        q.slot[h] = s
        q.file[h] = iid
        scal[S_Q_LEN] = h + 1


@nb.njit(cache=True, inline="always")
def _written_back(t, dev, ino, fr, files, scal, out):
    # The file's writeback wrote pages: its dirty pages are clean again.
    iid = writeback_file(dev, ino, files)
    if iid < 0:
        return
    s = files.dirty_head[iid]
    while s >= 0:
        nxt = fr.dnext[s]
        fr.dirty_t[s] = 0
        if fr.state[s] == ST_STABLE and fr.cached[s]:
            fr.state[s] = ST_VOLATILE
            emit(t, s, OP_SET_VOLATILE, fr, scal, out)
        s = nxt
    files.dirty_head[iid] = -1
    files.dirty_tail[iid] = -1


@nb.njit(cache=True, inline="always")
def _lru_activate(t, pfn, initial, fr, scal, cnt, out):
    s = slot_of(pfn, fr, scal)
    if current_state(s, ST_STABLE, initial, fr, scal) == ST_UNUSED:
        cnt[C_ACTIVATE_ON_FREE] += 1
        return
    emit(t, s, OP_READ, fr, scal, out)


@nb.njit(cache=True, inline="always")
def _sampled_access(t, pfn, initial, fr, scal, cnt, out):
    # A frame the sampler saw touched: read as a mapped page-cache page is (the
    # guest pins a clean page while it is used), any other frame READ.
    s = slot_of(pfn, fr, scal)
    st = current_state(s, ST_STABLE, initial, fr, scal)
    if st == ST_UNUSED:
        cnt[C_SAMPLED_ON_FREE] += 1
    else:
        _pinned_read(t, s, st, fr, scal, out)


@nb.njit(cache=True, nogil=True, _nrt=False)
def _map_events(i0, ev, initial, expire_ns, fr, files, q, scal, cnt, ev_counts, out):
    """Map events ``i0 ..``; returns where it stopped (``len(ev.code)``, or an event
    whose worst case no longer fits ``out`` or the expiry queue ``q``: grow, call again)."""
    # Frames are named by slot (see slot_of) from here on: the page table, the
    # dirty lists and the expiry queue hold slots; pfns only enter from events.
    for i in range(i0, ev.code.shape[0]):
        k = ev.code[i]
        a = ev.a[i]
        b = ev.b[i]
        if (
            scal[S_N_OUT] + (scal[S_Q_LEN] - scal[S_Q_HEAD]) + _worst_out(k, a, b, scal) > out.t_ns.shape[0]
            or scal[S_Q_LEN] + (1 << MAX_ORDER) > q.t_ns.shape[0]
        ):
            return i
        t = event_time(ev.t_ns[i], scal, cnt)
        ev_counts[k] += 1
        expire(t, expire_ns, fr, files, q, scal, cnt, out)
        if k == EV_PAGE_ALLOC:
            _page_alloc(t, a, b, initial, fr, files, scal, cnt, out)
        elif k == EV_PAGE_FREE:
            _page_free(t, a, b, initial, fr, files, scal, cnt, out)
        elif k == EV_PAGE_FREE_BATCHED:
            _page_free(t, a, 0, initial, fr, files, scal, cnt, out)
        elif k == EV_CACHE_ADD:
            _cache_add(
                t, dev_of(ev.c[i], ev.d[i]), ev.e[i], a, b, ev.f[i] >> PAGE_SHIFT, initial, fr, files, scal, cnt, out
            )
        elif k == EV_CACHE_DELETE:
            _cache_delete(a, b, initial, fr, files, scal)
        elif k == EV_GET_PAGES:  # a, b: first and last byte offset
            _get_pages(
                t,
                dev_of(ev.c[i], ev.d[i]),
                ev.e[i],
                a >> PAGE_SHIFT,
                b >> PAGE_SHIFT,
                initial,
                fr,
                files,
                scal,
                cnt,
                out,
            )
        elif k == EV_MAP_PAGES:
            _map_pages(
                t,
                dev_of(ev.c[i], ev.d[i]),
                ev.e[i],
                a >> PAGE_SHIFT,
                b >> PAGE_SHIFT,
                initial,
                fr,
                files,
                scal,
                cnt,
                out,
            )
        elif k == EV_FAULT:
            _fault(t, dev_of(ev.c[i], ev.d[i]), ev.e[i], a >> PAGE_SHIFT, initial, fr, files, scal, cnt, out)
        elif k == EV_DIRTY_FOLIO:
            _dirty_folio(t, dev_of(ev.c[i], ev.d[i]), ev.e[i], a, initial, fr, files, q, scal, cnt, out)
        elif k == EV_SINGLE_INODE or k == EV_EXT4_WRITEPAGES:  # a: pages written
            if a > 0:
                _written_back(t, dev_of(ev.c[i], ev.d[i]), ev.e[i], fr, files, scal, out)
        elif k == EV_LRU_ACTIVATE:
            _lru_activate(t, a, initial, fr, scal, cnt, out)
        elif k == EV_SAMPLED_ACCESS:
            _sampled_access(t, a, initial, fr, scal, cnt, out)
    return ev.code.shape[0]


@nb.njit(cache=True, nogil=True)
def _load_snapshot(rows, fr, files, scal, cnt):
    # Pages cached at capture start (major, minor, inode, index, pfn), their states left to
    # first sight as any frame's.
    for r in range(rows.shape[0]):
        iid = file_id_of(dev_of(rows[r, 0], rows[r, 1]), rows[r, 2], files, scal)
        files.seen[iid] = 1
        s = slot_of(rows[r, 4], fr, scal)
        scal[S_PAGE_KEYS] += fph.put(iid, rows[r, 3], s, files.page_file, files.page_index, files.page_slot)
        fr.cached[s] = 1
        fr.file[s] = iid
        fr.index[s] = rows[r, 3]
        cnt[C_SNAPSHOT_PAGES] += 1


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

    def __init__(
        self,
        initial: np.ndarray | None = None,
        dirty_expire_s: float = DIRTY_EXPIRE_S,
        initial_pages: np.ndarray | None = None,
    ):
        self.initial = np.zeros(0, np.uint8) if initial is None else np.ascontiguousarray(initial, np.uint8)
        self.expire_ns = clean_after_ns(dirty_expire_s)
        self.frames = Frames(**{name: np.zeros(0, dtype) for name, dtype in FRAME_DTYPES.items()})
        self._chunks = 0  # chunks of the pfn -> slot map handed out
        self._grow(_START_SIZE)
        self.files = Files(
            *fph.new_table(_START_PAGES),
            *fph.new_table(_START_FILES),
            *(np.empty(_START_FILES, np.int64) for _ in PER_FILE),
        )
        self.q = Queue(*(np.empty(_START_SIZE, np.int64) for _ in Queue._fields))
        self.scal = np.zeros(N_SCALARS, np.int64)
        self.cnt = np.zeros(N_COUNTERS, np.int64)
        self.ev_counts = np.zeros(len(EVENTS), np.int64)
        self.out = Ops(
            np.empty(_START_SIZE, np.int64), np.empty(_START_SIZE, np.uint32), np.empty(_START_SIZE, np.uint8)
        )
        if initial_pages is not None and len(initial_pages):
            rows = np.ascontiguousarray(np.asarray(initial_pages, np.int64).reshape(-1, 5))
            self._map_pfns(rows[:, 4], rows[:, 4])
            self._grow(int(self.scal[S_N_SLOTS]) + len(rows))
            self._reserve_files(len(rows), len(rows))
            _load_snapshot(rows, self.frames, self.files, self.scal, self.cnt)

    def _map_pfns(self, first: np.ndarray, last: np.ndarray) -> None:
        """Chunks of the pfn -> slot map (:func:`~cmmsim.tracer.linux.fast_state.pfn_cell`)
        for the frames ``first[i] .. last[i]`` (each run spans at most two chunks).

        Memory follows the chunks named, never a pfn's value: the parsers
        refuse frames at or past :data:`~cmmsim.tracer.linux.rules.MAX_PFN`,
        which bounds the directory (one int32 per chunk of 2^18 pfns: 16 MiB).
        """
        first = np.asarray(first, np.int64)
        last = np.asarray(last, np.int64)
        if not len(first):
            return
        if first.min() < 0 or last.max() >= MAX_PFN or (last - first).max() > PFN_CHUNK_MASK:
            raise ValueError("a frame past MAX_PFN reached the mapper (the parsers refuse those)")
        fr = self.frames
        chunks = np.unique(np.concatenate([first >> PFN_CHUNK_BITS, last >> PFN_CHUNK_BITS]))
        top = int(chunks[-1]) + 1
        if top > len(fr.slot_dir):
            size = min(max(top, 2 * len(fr.slot_dir)), MAX_PFN >> PFN_CHUNK_BITS)
            fr = fr._replace(slot_dir=_grown(fr.slot_dir, size))
        new = chunks[fr.slot_dir[chunks] == 0]
        if len(new):
            fr.slot_dir[new] = self._chunks + 1 + np.arange(len(new))
            self._chunks += len(new)
            cells = self._chunks << PFN_CHUNK_BITS
            if cells > len(fr.slot):
                fr = fr._replace(slot=_grown(fr.slot, max(cells, 2 * len(fr.slot))))
        self.frames = fr

    def _grow(self, slots: int) -> None:
        """Room for ``slots`` frames in all."""
        fr = self.frames
        if slots > len(fr.state):
            new = max(slots, 2 * len(fr.state))
            fr = Frames(
                *(
                    arr
                    if name in ("slot", "slot_dir")
                    else _grown(arr, new, np.empty if name in WRITTEN_BEFORE_READ else np.zeros)
                    for name, arr in zip(Frames._fields, fr, strict=True)
                )
            )
        self.frames = fr

    def _reserve_files(self, new_pages: int, new_files: int) -> None:
        """Room for ``new_pages`` more page-table keys and ``new_files`` more files (and aliases)."""
        f = self.files
        pages = fph.reserve(f[:3], int(self.scal[S_PAGE_KEYS]), new_pages)
        names = fph.reserve(f[3:6], int(self.scal[S_FILE_KEYS]), 2 * new_files)
        per_file = f[6:]
        if self.scal[S_N_FILES] + new_files > len(f.dirty_head):
            size = 2 * (int(self.scal[S_N_FILES]) + new_files)
            per_file = tuple(_grown(arr, size, np.empty) for arr in per_file)
        self.files = Files(*pages, *names, *per_file)

    def feed(self, ev: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Map one chunk's parsed events; returns the ops emitted (dense pfns)."""
        return self.feed_arrays(ev["code"].to_numpy(), ev["t_ns"].to_numpy(), [ev[c].to_numpy() for c in COLUMNS])

    def feed_arrays(
        self, code: np.ndarray, t_ns: np.ndarray, cols: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`feed` on columns: event kinds, times (ns) and the columns a ... f."""
        ev = Events(
            np.ascontiguousarray(code, np.uint8),
            np.ascontiguousarray(t_ns, np.int64),
            *(np.ascontiguousarray(col, np.int64) for col in cols),
        )
        pfn_events = np.isin(ev.code, PFN_EVENTS)
        new_pages = 0
        if pfn_events.any():
            frames = 1 << np.where(np.isin(ev.code[pfn_events], ORDER_EVENTS), ev.b[pfn_events], 0)
            self._map_pfns(ev.a[pfn_events], ev.a[pfn_events] + frames - 1)
            # At most one new slot per frame an event names.
            self._grow(int(self.scal[S_N_SLOTS]) + int(frames.sum()))
            new_pages = int(frames[ev.code[pfn_events] == EV_CACHE_ADD].sum())
        self._reserve_files(new_pages, int(np.isin(ev.code, FILE_EVENTS).sum()))
        self._compact_queue()
        i = 0
        while True:
            i = _map_events(
                i,
                ev,
                self.initial,
                self.expire_ns,
                self.frames,
                self.files,
                self.q,
                self.scal,
                self.cnt,
                self.ev_counts,
                self.out,
            )
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
        """Add the kernel's counters to ``c`` (at the end: faults whose fill never came are
        unresolved)."""
        n_files = int(self.scal[S_N_FILES])
        pending = self.files.pend_index[:n_files] >= 0
        causes = self.cnt[len(COUNTER_FIELDS) :] + np.bincount(
            self.files.pend_cause[:n_files][pending] - len(COUNTER_FIELDS), minlength=len(CAUSES)
        )
        for slot, name in enumerate(COUNTER_FIELDS):
            setattr(c, name, getattr(c, name) + int(self.cnt[slot]))
        for cause, n in zip(CAUSES, causes.tolist(), strict=True):
            if n:
                c.unresolved_causes[cause] += n
        c.unresolved_accesses += int(causes.sum())
        for code, name in enumerate(EVENTS):
            if self.ev_counts[code]:
                c.events[name] += int(self.ev_counts[code])

    def phys_of_dense(self) -> np.ndarray:
        return self.frames.dense_to_phys[: self.n_frames].astype(np.uint64)
