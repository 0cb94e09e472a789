"""Page-state constants shared by the numba kernels and plain Python, and every byte layout.

The kernels keep a page's state in one byte; each kernel family lays that
byte out as below (the layouts are disjoint: no kernel mixes two).

**The engine's state byte** (``cmmsim.replay.engine``, the host side of
``free-page-reporting`` and of the balloons):

====  =========================================================
bits  meaning
====  =========================================================
0-1   guest state: S stable, U unused, V volatile, P potentially volatile
2-3   host state: r resident, p preserved (paged out), z logically zero
4     DIRTY: guest view, page differs from its guest backing
5     CHANGED: host change bit, frame differs from the host's preserved copy
6     COPY: the host holds a valid preserved copy (a swap slot)
7     REF: CLOCK reference bit / two-list: on the active list
====  =========================================================

Legal (guest, host) pairs: Sr Sp Sz Ur Uz Vr Vz Pr (DESIGN.md section 2).

**The guest byte** (the guest's own view of its pages: ``static`` and the
guest side of the balloons, :mod:`cmmsim.replay.kernels.guest_reclaim`):

====  =========================================================
bits  meaning
====  =========================================================
0-1   guest state S/U/V/P, as in the engine's byte
2     OUT: the guest reclaimed the page: not in its memory, content in its backing
3     SWAPPED: with OUT, the content is in guest swap (else in its file)
4     DIRTY, as in the engine's byte
6     ON_FREE_LIST (balloons only): guest-free and backed by the host, so on
      its guest's list of free frames the host may drop
7     REF: scratch mark of the heap compaction
====  =========================================================

**The guest's reclaim heap key** (a lazy min-heap of int64 keys,
:mod:`cmmsim.replay.kernels.lazy_heap`): ``class << CLASS_SHIFT | stamp``, where
``stamp`` is the event index of the page's last use (below 2**56) and
``class`` its reclaim class, cheapest first: ``GUEST_CLASS_CLEAN``/``GUEST_CLASS_DIRTY``.
Least key first is least recently used of the cheapest class. (The host's
state-priority classes, ``CLASS_UNUSED``/``CLASS_CHEAP``/``CLASS_REST``, rank
time slots instead: :mod:`cmmsim.replay.kernels.slots`.)
"""

from __future__ import annotations

import numpy as np

from cmmsim.tracer.schema import Op

G_S, G_U, G_V, G_P = 0, 1, 2, 3
H_R, H_P, H_Z = 0, 1, 2
GUEST_MASK = 0x03
HOST_SHIFT = 2
HOST_MASK = 0x0C
DIRTY = 0x10
CHANGED = 0x20
COPY = 0x40
REF = 0x80

# The guest byte (see the module docstring).
OUT = 0x04
SWAPPED = 0x08
ON_FREE_LIST = 0x40

GUEST_NAMES = "SUVP"
HOST_NAMES = "rpz"


def pack(guest: int, host: int, dirty: bool = False, changed: bool = False, copy: bool = False) -> int:
    """The state byte of a page."""
    return guest | (host << HOST_SHIFT) | (DIRTY if dirty else 0) | (CHANGED if changed else 0) | (COPY if copy else 0)


#: Initial state of every page: under hinting a guest's free memory is
#: unused and the host has never backed it (Uz); a host that ignores hints
#: sees every page as stable and logically zero (Sz).
INITIAL_HINTING = pack(G_U, H_Z)
INITIAL_NO_HINTS = pack(G_S, H_Z)

#: The legal (guest, host) pairs, in the order of state-distribution columns.
PAIRS = ("Sr", "Sp", "Sz", "Ur", "Uz", "Vr", "Vz", "Pr")
N_HOST_STATES = len(HOST_NAMES)
#: ``PAIR_OF[guest * N_HOST_STATES + host]`` -> index into PAIRS, -1 for an illegal pair.
PAIR_OF = np.full(len(GUEST_NAMES) * N_HOST_STATES, -1, dtype=np.int8)
for _i, _name in enumerate(PAIRS):
    PAIR_OF[GUEST_NAMES.index(_name[0]) * N_HOST_STATES + HOST_NAMES.index(_name[1])] = _i

#: Per-guest counters, in the order of the kernels' counter arrays. One list
#: for every strategy (the balloons' two included, zero elsewhere): result rows
#: of all strategies share one schema and concatenate into one frame.
COUNTERS = (
    "accesses",  # READ and WRITE events
    "hints",  # hint operations the host honoured (sent by the guest)
    "host_reads",  # host page-ins of preserved pages from the disk (host faults)
    "host_writes",  # host page-outs of changed pages to the disk (tier spills included)
    "zero_fills",  # faults on logically zero pages: a zeroed frame, no I/O
    "discards",  # host reclaims that needed no I/O
    "discard_faults",  # guest accesses to discarded volatile pages
    "guest_reads",  # guest I/O the strategy caused: re-reads after discards, swap-ins
    "guest_writes",  # guest I/O the strategy caused: swap-outs
    "repairs",  # accesses to unused pages (protocol violations), made stable
    "content_lost",  # set stable on a discarded volatile page: its content is gone
    "peak_resident_pages",
    "sum_resident_pages",  # sum over events of resident frames (for the mean)
    "dual_paging",  # host reads only to let the guest swap the page out (in host_reads or host_reads_tier)
    "balloon_inflated_pages",  # pages the balloon took from the guest
    "balloon_deflated_pages",  # pages the balloon gave back
    # The host's fast swap tier (cmmsim.replay.kernels.tier; 0 without one). Appended:
    # the indices above keep their meaning in stored arrays.
    "host_reads_tier",  # host page-ins from the tier (not in host_reads: those are the disk's)
    "host_writes_tier",  # host page-outs to the tier (not in host_writes)
    "host_spills_tier",  # pages moved from the full tier to the disk (each also in host_writes)
    # Who chose what was dropped (docs/costs.md prices each apart). Appended, as the tier's.
    "discards_by_guest",  # in discards: clean pages a guest's own reclaim dropped (static, balloons' guests)
    "discards_released",  # in discards: frames the guest gave up, dropped by the host without choosing
    # (a backed free frame a balloon takes, a resident page of a free page report)
    "balloon_initial_pages",  # in balloon_inflated_pages: the first sizing at the first event
)
C = {name: i for i, name in enumerate(COUNTERS)}
N_COUNTERS = len(COUNTERS)
C_ACCESSES = C["accesses"]
C_HINTS = C["hints"]
C_HOST_READS = C["host_reads"]
C_HOST_WRITES = C["host_writes"]
C_ZERO_FILLS = C["zero_fills"]
C_DISCARDS = C["discards"]
C_DISCARD_FAULTS = C["discard_faults"]
C_GUEST_READS = C["guest_reads"]
C_GUEST_WRITES = C["guest_writes"]
C_REPAIRS = C["repairs"]
C_CONTENT_LOST = C["content_lost"]
C_PEAK = C["peak_resident_pages"]
C_SUM = C["sum_resident_pages"]
C_DUAL = C["dual_paging"]
C_INFLATED = C["balloon_inflated_pages"]
C_DEFLATED = C["balloon_deflated_pages"]
C_HOST_READS_TIER = C["host_reads_tier"]
C_HOST_WRITES_TIER = C["host_writes_tier"]
C_SPILLS_TIER = C["host_spills_tier"]
C_DISCARDS_GUEST = C["discards_by_guest"]
C_DISCARDS_RELEASED = C["discards_released"]
C_INFLATED_INITIAL = C["balloon_initial_pages"]

OP_WRITE = int(Op.WRITE)
OP_SET_STABLE = int(Op.SET_STABLE)
OP_SET_UNUSED = int(Op.SET_UNUSED)
OP_SET_VOLATILE = int(Op.SET_VOLATILE)
OP_SET_POT_VOLATILE = int(Op.SET_POT_VOLATILE)
OP_SET_STABLE_IF_RESIDENT = int(Op.SET_STABLE_IF_RESIDENT)

#: Bit masks of the hint ops a host honours (bit ``1 << op``).
HONOUR_NONE = 0
HONOUR_STABLE_UNUSED = (1 << OP_SET_STABLE) | (1 << OP_SET_UNUSED)
HONOUR_ALL = (
    HONOUR_STABLE_UNUSED | (1 << OP_SET_VOLATILE) | (1 << OP_SET_POT_VOLATILE) | (1 << OP_SET_STABLE_IF_RESIDENT)
)

#: Reclaim classes of the engine's state-priority order: cheapest first.
CLASS_UNUSED, CLASS_CHEAP, CLASS_REST = 0, 1, 2
#: Reclaim classes of a guest's own reclaim: clean page cache first, then the rest.
GUEST_CLASS_CLEAN, GUEST_CLASS_DIRTY = 0, 1
#: A page's class sits above its 56-bit last-use stamp in a heap key.
CLASS_SHIFT = 56
#: Returned by a class rule for a page that has no place in the heap.
NO_CLASS = -1


def describe(st: int) -> str:
    """Human-readable state, e.g. ``'Sr+dirty+changed'``."""
    g = GUEST_NAMES[st & GUEST_MASK]
    h = HOST_NAMES[(st & HOST_MASK) >> HOST_SHIFT]
    flags = [n for n, b in (("dirty", DIRTY), ("changed", CHANGED), ("copy", COPY)) if st & b]
    return "+".join([g + h, *flags])
