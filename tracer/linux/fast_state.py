"""State of the fast mapper (:mod:`cmmsim.tracer.linux.fast`): its arrays and their numba helpers.

Per-frame state lives in flat arrays indexed by a compact slot per frame
(:class:`Frames`; only the slot itself is indexed by physical pfn), per-file
state in arrays indexed by a small file id and two hash tables
(:mod:`cmmsim.tracer.linux.filepage_hash`, in :class:`Files`): (dev, inode) -> file
id, and (file id, page index) -> slot. The helpers here are what every event
handler shares: slots and dense ids, emitting ops, first-sight states, page
identities, dirty lists, event times and the dirty-expiry queue.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from cmmsim.tracer.linux import filepage_hash as fph
from cmmsim.tracer.linux.counters import CAUSES
from cmmsim.tracer.linux.rules import (
    MINOR_BITS,
    OP_SET_VOLATILE,
    POT_VOLATILE,
    STABLE,
    UNUSED,
    VOLATILE,
)

#: The file table's device of the block-device aliases (no real dev_t is this large).
ALIAS_DEV = 1 << 40

#: Counter slots of the kernel, named as the :class:`Counters` fields they add to,
#: then one per cause of unresolved accesses (``counters.CAUSES``).
COUNTER_FIELDS = (
    "unresolved_dirty",
    "duplicate_frees",
    "failed_allocations",
    "activate_on_free",
    "expired_clean",
    "reordered",
    "clamped_ranges",
    "page_cache_reads",
    "fault_around_mapped",
    "fault_around_unknown",
    "fault_around_retries",
    "get_pages_unread",
    "faults_filled",
    "snapshot_pages",
    "sampled_on_free",
)
(
    C_UNRESOLVED_DIRTY,
    C_DUPLICATE_FREES,
    C_FAILED_ALLOCATIONS,
    C_ACTIVATE_ON_FREE,
    C_EXPIRED_CLEAN,
    C_REORDERED,
    C_CLAMPED_RANGES,
    C_PAGE_CACHE_READS,
    C_FAULT_AROUND_MAPPED,
    C_FAULT_AROUND_UNKNOWN,
    C_FAULT_AROUND_RETRIES,
    C_GET_PAGES_UNREAD,
    C_FAULTS_FILLED,
    C_SNAPSHOT_PAGES,
    C_SAMPLED_ON_FREE,
) = range(len(COUNTER_FIELDS))
C_CAUSE_FILE, C_CAUSE_PAGE, C_CAUSE_PSEUDO = range(len(COUNTER_FIELDS), len(COUNTER_FIELDS) + 3)
N_COUNTERS = len(COUNTER_FIELDS) + len(CAUSES)
# Scalars: t0 set?, t0, last t, dense ids given, expiry queue head, ops out, slots used,
# page-table keys, files named, expiry queue length, file-table keys.
N_SCALARS = 11
(S_HAVE_T0, S_T0, S_LAST_T, S_N_DENSE, S_Q_HEAD, S_N_OUT, S_N_SLOTS, S_PAGE_KEYS, S_N_FILES, S_Q_LEN, S_FILE_KEYS) = (
    range(N_SCALARS)
)

# Page states of the mapper: the rules' states plus one. Every per-frame
# array uses 0 for "nothing yet" (states, dense ids and folio orders are
# stored plus one, dirty times too), so the arrays come from np.zeros /
# np.empty and only the pages the trace touches are ever written: a 24 GiB
# guest's pfn range costs no up-front fill.
ST_UNSEEN = 0
ST_UNUSED, ST_STABLE, ST_VOLATILE, ST_POT_VOLATILE = UNUSED + 1, STABLE + 1, VOLATILE + 1, POT_VOLATILE + 1


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

    slot: np.ndarray  # int32 [pfn_cell]: slot + 1, 0 for a frame not seen
    slot_dir: np.ndarray  # int32 [pfn >> PFN_CHUNK_BITS]: chunk of ``slot`` + 1, 0: none yet
    slot_phys: np.ndarray  # int64 [slot]: its pfn
    state: np.ndarray  # uint8 [slot]: guest state + 1 (ST_UNSEEN: not yet known)
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


#: Cells per chunk of the pfn -> slot map (:func:`pfn_cell`), as a shift and a mask.
PFN_CHUNK_BITS = 18
PFN_CHUNK_MASK = (1 << PFN_CHUNK_BITS) - 1
#: Frames arrays read only where written (slots and dense ids in use, links
#: of dirty pages): grown with np.empty.
WRITTEN_BEFORE_READ = ("slot_phys", "dense_to_phys", "dprev", "dnext")
FRAME_DTYPES = {
    "slot": np.int32,
    "slot_dir": np.int32,
    "slot_phys": np.int64,
    "state": np.uint8,
    "first": np.uint8,
    "dense": np.int64,
    "dense_to_phys": np.int64,
    "cached": np.uint8,
    "file": np.int64,
    "index": np.int64,
    "folio": np.int8,
    "dirty_t": np.int64,
    "dprev": np.int64,
    "dnext": np.int64,
}


class Files(NamedTuple):
    """Per-file state: the two hash tables, then arrays by file id."""

    page_file: np.ndarray  # (file id, page index) -> slot: see filepage_hash
    page_index: np.ndarray
    page_slot: np.ndarray
    file_dev: np.ndarray  # (dev, inode) -> file id; (ALIAS_DEV, inode) -> a block device's
    file_ino: np.ndarray
    file_id: np.ndarray
    dirty_head: np.ndarray  # int64: first and last slot of its dirty list (-1: none)
    dirty_tail: np.ndarray
    seen: np.ndarray  # int64: 1 once a page of it was known
    req_last: np.ndarray  # int64: its last read (get_pages): last index (-1: none),
    req_start: np.ndarray  # the last turn's first index,
    req_upto: np.ndarray  # the first index it did not read yet
    pend_index: np.ndarray  # int64: a fault before its fill: page index (-1: none),
    pend_t: np.ndarray  # its time (ns),
    pend_cause: np.ndarray  # and the cause counter it goes to if the fill never comes
    fault_index: np.ndarray  # int64: its last fault's page index (-1: none)
    fault_t: np.ndarray  # and time (ns)
    win_lo: np.ndarray  # int64: its last fault-around range (-1: none)
    win_hi: np.ndarray


#: Files arrays indexed by file id (grown with the files).
PER_FILE = Files._fields[6:]


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
def dev_of(major, minor):
    return (major << MINOR_BITS) | minor


@nb.njit(cache=True, inline="always")
def cause_of(dev, iid, files):
    # Why a page of file iid (-1: no id) of device dev could not be resolved (counters.CAUSES).
    if dev >> MINOR_BITS == 0:
        return C_CAUSE_PSEUDO
    if iid >= 0 and files.seen[iid]:
        return C_CAUSE_PAGE
    return C_CAUSE_FILE


@nb.njit(cache=True, inline="always")
def id_of(key, ids, back, value, scal, counter):
    # ids[key] holds key's id + 1 (0: none yet); new ids are handed out in
    # order of first sight, counted in scal[counter], and back[id] = value.
    i = ids[key] - 1
    if i < 0:
        i = scal[counter]
        ids[key] = i + 1
        back[i] = value
        scal[counter] = i + 1
    return i


@nb.njit(cache=True, inline="always")
def pfn_cell(phys, fr):
    # Where ``fr.slot`` holds phys's slot. The pfn -> slot map is paged: a
    # chunk of 2^PFN_CHUNK_BITS cells exists once a pfn in it was named (the
    # mapper adds the chunks of a batch's pfns before the batch runs), so its
    # memory follows the frames a trace names, not how large their pfns are.
    return ((np.int64(fr.slot_dir[phys >> PFN_CHUNK_BITS]) - 1) << PFN_CHUNK_BITS) | (phys & PFN_CHUNK_MASK)


@nb.njit(cache=True)
def slot_of(phys, fr, scal):
    # Frames get compact slots in the order first seen: per-frame state lives
    # in slot-indexed arrays (a capture touches few of a large guest's frames;
    # 64 K of 4 M on the benchmark's), and only the paged map spans the pfns.
    return id_of(pfn_cell(phys, fr), fr.slot, fr.slot_phys, phys, scal, S_N_SLOTS)


@nb.njit(cache=True, inline="always")
def known_slot(phys, fr):
    # The slot of a frame whose chunk exists, -1 if the frame has none yet.
    return fr.slot[pfn_cell(phys, fr)] - 1


@nb.njit(cache=True)
def dense_id(s, fr, scal):
    # Dense ids in the order frames first appear in the output (the reference's numbering).
    return id_of(s, fr.dense, fr.dense_to_phys, fr.slot_phys[s], scal, S_N_DENSE)


@nb.njit(cache=True)
def emit(t, s, op, fr, scal, out):
    d = dense_id(s, fr, scal)
    n = scal[S_N_OUT]
    out.t_ns[n] = t
    out.pfn[n] = d
    out.op[n] = op
    scal[S_N_OUT] = n + 1


@nb.njit(cache=True)
def current_state(s, implied, initial, fr, scal):
    # The frame's state; on first sight, the implied (or snapshot) initial state.
    st = fr.state[s]
    if st == ST_UNSEEN:
        phys = fr.slot_phys[s]
        if initial.shape[0] > 0 and phys < initial.shape[0]:
            st = initial[phys] + 1  # the snapshot holds the rules' states
        else:
            st = implied
        fr.state[s] = st
        fr.first[dense_id(s, fr, scal)] = st
    return st


@nb.njit(cache=True)
def dirty_unlink(s, fr, files):
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
def dirty_append(s, iid, fr, files):
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
def forget(s, fr, files, scal):
    # The frame's page-cache identity goes (and its place in a dirty list).
    if fr.cached[s]:
        p = fph.find(fr.file[s], fr.index[s], files.page_file, files.page_index)
        if p >= 0 and files.page_slot[p] == s:
            fph.remove_at(p, files.page_file, files.page_index, files.page_slot)
            scal[S_PAGE_KEYS] -= 1
        if fr.dirty_t[s] > 0:
            dirty_unlink(s, fr, files)
        fr.cached[s] = 0
    fr.folio[s] = 0


@nb.njit(cache=True)
def file_id_of(dev, ino, files, scal):
    # Files (dev, ino) get small ids: the page table's key and the dirty lists' index.
    p = fph.find(dev, ino, files.file_dev, files.file_ino)
    if p >= 0:
        return files.file_id[p]
    iid = scal[S_N_FILES]
    scal[S_N_FILES] = iid + 1
    scal[S_FILE_KEYS] += fph.put(dev, ino, iid, files.file_dev, files.file_ino, files.file_id)
    files.dirty_head[iid] = -1
    files.dirty_tail[iid] = -1
    files.seen[iid] = 0
    files.req_last[iid] = -1
    files.pend_index[iid] = -1
    files.fault_index[iid] = -1
    files.win_lo[iid] = -1
    files.win_hi[iid] = -1
    return iid


@nb.njit(cache=True, inline="always")
def writeback_file(dev, ino, files):
    # The file id of a writeback event's (bdi, inode): a block device's own
    # inode (its number is the device's dev_t) is the file filemap names it by.
    if ino == dev:
        p = fph.find(ALIAS_DEV, ino, files.file_dev, files.file_ino)
        if p >= 0:
            return files.file_id[p]
    p = fph.find(dev, ino, files.file_dev, files.file_ino)
    return files.file_id[p] if p >= 0 else -1


@nb.njit(cache=True, inline="always")
def event_time(t_in, scal, cnt):
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
def expire(t, expire_ns, fr, files, q, scal, cnt, out):
    # Dirty pages past expiry are taken as written back (before the event at t).
    while scal[S_Q_HEAD] < scal[S_Q_LEN] and t - q.t_ns[scal[S_Q_HEAD]] > expire_ns:
        h = scal[S_Q_HEAD]
        scal[S_Q_HEAD] = h + 1
        when = q.t_ns[h]
        s = q.slot[h]
        if fr.dirty_t[s] == when + 1 and fr.cached[s] and fr.file[s] == q.file[h]:
            dirty_unlink(s, fr, files)
            if fr.state[s] == ST_STABLE:
                fr.state[s] = ST_VOLATILE
                emit(when + expire_ns, s, OP_SET_VOLATILE, fr, scal, out)
                cnt[C_EXPIRED_CLEAN] += 1
