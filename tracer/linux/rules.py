"""The converter's rules: which lines it reads and how events become guest ops.

A Linux VM is itself a hosted guest, so its own page events are real guest
traces. :mod:`cmmsim.tracer.linux` streams tracepoint text in bounded memory and
maps the events to the guest page hints and accesses of DESIGN.md section 2.
Every rule below names the kernel behaviour it stands for (Linux 6.x,
``include/trace/events/{kmem,filemap,writeback,pagemap}.h``); this module
holds them as the constants and patterns both mappers (the reference
:class:`cmmsim.tracer.linux.reference.Mapper` and the fast path) share.

Line shapes (auto-detected per line; ``--format`` restricts to one):

* ``perf script`` default (``comm tid [cpu] time: sys:event: fields``) and
  every ``-F`` selection of comm, pid, tid and cpu (perf prints them in this
  order whatever order -F names them; any may be missing, pid and tid show as
  ``pid/tid``); task names may hold spaces, runs of spaces may be collapsed.
* ``trace-cmd report`` (``comm-pid [cpu] time: event: fields``).
* raw ftrace ``trace_pipe`` (``comm-pid [cpu] flags time: event: fields``);
  its ``CPU:N [LOST M EVENTS]`` marks are counted (``lost_events``).

Mapping rules:

``kmem:mm_page_alloc pfn order``
    The page allocator hands out 2^order frames: each becomes SET_STABLE then
    WRITE (its new owner fills it). ``pfn=0x0`` is a failed allocation:
    counted, nothing emitted.
``kmem:mm_page_free pfn order`` / ``kmem:mm_page_free_batched pfn``
    Each frame returns to the buddy allocator: SET_UNUSED, and its page-cache
    identity is forgotten (pfns are reused within milliseconds). Since Linux
    6.x every batched free is also reported by mm_page_free just before it:
    a free of a frame already free is counted (``duplicate_frees``) and
    dropped, which also handles older kernels that report only the batch.
``filemap:mm_filemap_add_to_page_cache dev ino pfn ofs order``
    A folio enters the page cache; its frames are remembered under (dev,
    ino, page index). The folio is clean once its read completes and it is
    unlocked: SET_VOLATILE per frame (the kernel gives no completion event;
    the read follows within microseconds).
``filemap:mm_filemap_delete_from_page_cache``
    The identity is forgotten; the free that follows emits SET_UNUSED.
Page-cache reads, by file offset. A page read is, for a clean (volatile)
page, SET_STABLE_IF_RESIDENT, READ, SET_VOLATILE (the guest pins it while it
copies it), for a dirty one READ (``page_cache_reads`` counts them). A page
the task certainly read but the converter cannot place is counted
(``unresolved_accesses``, by cause in ``unresolved_causes``: ``file not
seen``, no page of its file known, cached before the capture or on a file
system without page-cache events; ``page not seen``, its file known but not
this page, cached before the capture; ``pseudo file system``, device 0:N),
never guessed.

``filemap:mm_filemap_get_pages dev ino ofs=first-last``
    One turn of a read() loop (``filemap_get_pages``): the event names the
    rest of the *whole* request at every turn (``index..last_index-1``), so a
    20 MB read shows as a run of events with the same end and an advancing
    start. One turn reads from its start up to the next turn's start. The
    converter reads a turn's pages as the turn comes: its first page
    always, then the pages after it while they are cached (the kernel's batch
    is the run of cached pages from the start); when the next turn of the
    same read (same file, same end, a later start) shows the last one read
    further, the pages between are read then (or counted unresolved), and a
    page is read once per read. The offsets a turn does not read
    (``get_pages_unread``) are the rest of the request, which the next turn
    reports again, or past the end of the file: no access at all.
``filemap:mm_filemap_map_pages dev ino ofs=first-last``
    Fault-around maps the cached pages of the range into the faulting task
    without the task touching them; only the faulting page is an access, and
    the event does not say which it is. The window is aligned on the
    faulting address, so a task running forward faults on the first page its
    last window did not map: when the file's last fault-around range covers
    this range's front, the pages there were mapped already and are skipped.
    The converter reads the first cached page of the rest and counts the
    other cached pages apart (``fault_around_mapped``, mapped, not read) and
    the offsets with no page known (``fault_around_unknown``: not cached, or
    cached before the capture); none known at all: the faulting page is
    unresolved. A fault-around covering the page of the file's last fault
    (``mm_filemap_fault``) within ``RETRY_WINDOW_NS`` is that fault retried
    after its page was read in (``fault_around_retries``): the fault read the
    page, the range is only mapped. (The last fault and range are kept per
    file, not per task: tasks faulting on one file at once blur the choice of
    page, not the count of reads.)
``filemap:mm_filemap_fault dev ino ofs``
    A page fault reads its page. The event comes before the page is looked
    up: for a page not yet cached, the fault's read-in adds it microseconds
    later, and the converter reads it then (``faults_filled``) if its
    ``add_to_page_cache`` comes within ``FILL_WINDOW_NS``; otherwise, or if
    another fault on the file comes first, it is unresolved.
``writeback:writeback_dirty_folio bdi ino(decimal) index``
    A folio is dirtied: per clean frame SET_STABLE_IF_RESIDENT, WRITE,
    SET_STABLE (the guest pins a volatile page before writing it; if the host
    had discarded it the write takes the discard fault); a frame already
    dirty is just written. The folio is found
    through the page-cache map (the inode number is decimal here, hex in
    filemap). A block device's own page cache (file system metadata) shows
    in filemap on the pseudo device (``dev 0:3 ino fe00000``, the inode
    number being the disk's dev_t) and here under the disk's bdi with that
    inode number (``bdi 254:0: ino=266338304``): an inode number equal to its
    bdi's dev_t names the block device's file. A folio not found is counted
    (``unresolved_dirty``).
``writeback:writeback_single_inode (wrote > 0)``, ``ext4:ext4_writepages_result (pages_written > 0)``
    There is no per-folio "writeback done" tracepoint: when an inode's
    writeback wrote pages, its dirty pages are clean again: SET_VOLATILE.
    Pages still dirty ``dirty_expire_s`` (30 s, the kernel's
    ``dirty_expire_centisecs``) plus one writeback period (5 s) after being
    dirtied are taken as written back then (``expired_clean``).
``pagemap:mm_lru_activate pfn``
    The page was referenced again: a READ (the only access event that names
    anonymous pages). On a frame the converter holds free it is counted
    (``activate_on_free``) and dropped.
``cmmsim:cmmsim_sampled_access pfn`` (not a kernel tracepoint)
    A line ``trace record --sample-period`` adds: the access sampler
    (:mod:`cmmsim.tracer.linux.sampling`) found the frame mapped by the
    recorded command and counted it as touched since its last sample. It is
    read as a page-cache read of a mapped page is: a clean (volatile) frame
    SET_STABLE_IF_RESIDENT, READ, SET_VOLATILE, any other READ (the sampler
    cannot tell reads from writes). On a frame the converter holds free (the
    frame was freed between the sampler's pagemap read and its time stamp)
    it is counted (``sampled_on_free``) and dropped.

Pages cached before the capture: ``trace record --drop-caches`` drops the
clean unmapped ones first, and a start snapshot (rows of major, minor, inode,
page index, pfn: :func:`cmmsim.tracer.linux.snapshot.mapped_file_pages`, the file
pages processes map) names the frames of the rest (``snapshot_pages``).

Initial states: a frame whose first event implies an earlier state (freed,
read from the page cache, activated, deleted before being seen allocated)
gets that state at time 0: stable (SET_STABLE, WRITE) or volatile page cache
(SET_STABLE, WRITE, SET_VOLATILE). With a ``/proc/kpageflags`` snapshot
taken at capture start the snapshot decides instead: buddy pages unused,
clean file LRU pages volatile, dirty or anonymous pages stable.

Physical pfns are renumbered densely in order of first appearance; the map
goes to a side file ``<out stem>.pfnmap.pq`` (Parquet: ``pfn``, ``phys_pfn``; not named
``.parquet`` so that globs for traces do not pick it up).
Timestamps are made relative to the first event; a timestamp earlier than
the one before (per-CPU buffers of trace_pipe) is raised to it and counted
(``reordered``).
"""

from __future__ import annotations

import re

from cmmsim.tracer.schema import Op

FORMATS = ("auto", "perf", "trace-cmd", "ftrace")

#: The end of each shape's head: what precedes the time, and the time (``\d+\.\d+``).
#: perf's comm, pid (or tid, or pid/tid) and [cpu] are all optional: ``perf
#: script -F`` prints the fields it is given in this order, whatever order
#: they are named in; the converter needs only the time, the event and its
#: fields. Anchored at the end, these decide where a line's head ends.
SHAPE_HEADS = {
    "perf": r"(?:^|\s)(?P<ts>[0-9]+\.[0-9]+)",
    "ftrace": (
        r"-(?P<pid>[0-9]+)\s+(?:\(\s*[0-9-]+\)\s+)?\[(?P<cpu>[0-9]+)\]\s+"
        r"(?P<flags>[^\s\[\]]{4,6})\s+(?P<ts>[0-9]+\.[0-9]+)"
    ),
    "trace-cmd": r"-(?P<pid>[0-9]+)\s+\[(?P<cpu>[0-9]+)\]\s+(?P<ts>[0-9]+\.[0-9]+)",
}
#: Line shapes, tried in this order under ``--format auto``.
LINE_SHAPES = {
    # The head before the time (any of comm, pid, pid/tid, [cpu]) is anything
    # ending in whitespace: the converter reads none of it, and this form fails fast.
    "perf": re.compile(r"^(?:.*?\s)??(?P<ts>[0-9]+\.[0-9]+):\s+(?P<sys>\w+):(?P<ev>\w+):\s?(?P<body>.*)$"),
    "ftrace": re.compile(r"^\s*(?P<task>.*?)" + SHAPE_HEADS["ftrace"] + r":\s+(?P<ev>\w+):\s?(?P<body>.*)$"),
    "trace-cmd": re.compile(r"^\s*(?P<task>.*?)" + SHAPE_HEADS["trace-cmd"] + r":\s+(?P<ev>\w+):\s?(?P<body>.*)$"),
}
#: Lines that are no events at all: comments, trace-cmd's header, perf's notes.
NOISE = re.compile(r"^\s*(#|$|cpus=|version\s*=|CPU\s*\d+\s+is empty|\[\s*perf)")
#: ftrace's mark of events its ring buffer dropped (``trace`` and
#: ``trace_pipe``: ``CPU:%d [LOST %lu EVENTS]``): no event, but a gap the
#: converter counts (``lost_events``), never a malformed line.
LOST = re.compile(r"^\s*CPU:\s*[0-9]+\s+\[LOST ([0-9]+) EVENTS\]\s*$")

_HEX = r"0x([0-9a-fA-F]+)"
#: The events the converter maps, with the pattern of their fields; an
#: event's position here is its kind code (``EV_*`` below).
FIELDS = {
    "mm_page_alloc": re.compile(rf"pfn={_HEX} order=([0-9]+)"),
    "mm_page_free": re.compile(rf"pfn={_HEX} order=([0-9]+)"),
    "mm_page_free_batched": re.compile(rf"pfn={_HEX}"),
    "mm_filemap_add_to_page_cache": re.compile(
        rf"dev ([0-9]+):([0-9]+) ino ([0-9a-fA-F]+) pfn={_HEX} ofs=([0-9]+) order=([0-9]+)"
    ),
    "mm_filemap_delete_from_page_cache": re.compile(
        rf"dev ([0-9]+):([0-9]+) ino ([0-9a-fA-F]+) pfn={_HEX} ofs=([0-9]+) order=([0-9]+)"
    ),
    "mm_filemap_get_pages": re.compile(r"dev=([0-9]+):([0-9]+) ino=([0-9a-fA-F]+) ofs=([0-9]+)-([0-9]+)"),
    "mm_filemap_map_pages": re.compile(r"dev=([0-9]+):([0-9]+) ino=([0-9a-fA-F]+) ofs=([0-9]+)-([0-9]+)"),
    "mm_filemap_fault": re.compile(r"dev=([0-9]+):([0-9]+) ino=([0-9a-fA-F]+) ofs=([0-9]+)"),
    "writeback_dirty_folio": re.compile(r"bdi ([0-9]+):([0-9]+): ino=([0-9]+) index=([0-9]+)"),
    "writeback_single_inode": re.compile(r"bdi ([0-9]+):([0-9]+): ino=([0-9]+) .*\bwrote=([0-9]+)"),
    "ext4_writepages_result": re.compile(r"dev ([0-9]+),([0-9]+) ino ([0-9]+) ret -?[0-9]+ pages_written ([0-9]+)"),
    "mm_lru_activate": re.compile(rf"pfn={_HEX}"),
    "cmmsim_sampled_access": re.compile(rf"pfn={_HEX}"),
}
EVENTS = tuple(FIELDS)
(
    EV_PAGE_ALLOC,
    EV_PAGE_FREE,
    EV_PAGE_FREE_BATCHED,
    EV_CACHE_ADD,
    EV_CACHE_DELETE,
    EV_GET_PAGES,
    EV_MAP_PAGES,
    EV_FAULT,
    EV_DIRTY_FOLIO,
    EV_SINGLE_INODE,
    EV_EXT4_WRITEPAGES,
    EV_LRU_ACTIVATE,
    EV_SAMPLED_ACCESS,
) = range(len(EVENTS))
#: Event name -> kind code.
EVENT_CODE = {name: code for code, name in enumerate(EVENTS)}
#: Events whose bdi is not a block device ("(unknown)", "fuse", ...) are well
#: formed: the bdi field then simply does not resolve to a page-cache device.
BDI_ANY = re.compile(r"bdi ([^:]+): ino=[0-9]+")
#: Regex group holding the folio order, for the events that have one.
ORDER_GROUP = {
    "mm_page_alloc": 2,
    "mm_page_free": 2,
    "mm_filemap_add_to_page_cache": 6,
    "mm_filemap_delete_from_page_cache": 6,
}
#: Kind codes of the events that name a folio by its order (2^order frames).
ORDER_EVENTS = tuple(EVENT_CODE[name] for name in ORDER_GROUP)
#: Events whose column a is a physical pfn.
PFN_NAMES = (
    "mm_page_alloc",
    "mm_page_free",
    "mm_page_free_batched",
    "mm_filemap_add_to_page_cache",
    "mm_filemap_delete_from_page_cache",
    "mm_lru_activate",
    "cmmsim_sampled_access",
)

#: The fast paths carry an event as its kind code, its time and six int64
#: columns; the column each regex group of an event goes to (a: pfn or first
#: offset or index or wrote; b: order or last offset; c/d: device major/minor;
#: e: inode; f: byte offset of a page-cache folio).
COLUMNS = "abcdef"
EVENT_COLUMNS = {
    "mm_page_alloc": "ab",
    "mm_page_free": "ab",
    "mm_page_free_batched": "a",
    "mm_filemap_add_to_page_cache": "cdeafb",
    "mm_filemap_delete_from_page_cache": "cdeafb",
    "mm_filemap_get_pages": "cdeab",
    "mm_filemap_map_pages": "cdeab",
    "mm_filemap_fault": "cdea",
    "writeback_dirty_folio": "cdea",
    "writeback_single_inode": "cdea",
    "ext4_writepages_result": "cdea",
    "mm_lru_activate": "a",
    "cmmsim_sampled_access": "a",
}
#: The columns written in hex, per event.
HEX_COLUMNS = {
    "mm_page_alloc": "a",
    "mm_page_free": "a",
    "mm_page_free_batched": "a",
    "mm_filemap_add_to_page_cache": "ae",
    "mm_filemap_delete_from_page_cache": "ae",
    "mm_filemap_get_pages": "e",
    "mm_filemap_map_pages": "e",
    "mm_filemap_fault": "e",
    "mm_lru_activate": "a",
    "cmmsim_sampled_access": "a",
}

#: The largest field value the converter reads (the fast paths hold fields in int64).
INT64_MAX = (1 << 63) - 1
#: read()/fault-around ranges longer than this many pages are clamped (and
#: counted): a range names offsets, not pages the cache holds.
MAX_RANGE_PAGES = 1 << 16
#: Byte offset -> page index.
PAGE_SHIFT = 12
#: A device number as the kernel's ``MKDEV``: major above 20 bits of minor.
MINOR_BITS = 20
#: A fault on a page not yet cached reads it once its fill (the page's
#: mm_filemap_add_to_page_cache) follows within this long (the fault's own
#: read-in adds it microseconds later).
FILL_WINDOW_NS = 10_000_000
#: A fault that waited for its page's read-in is retried from scratch: its
#: fault-around (covering the faulting page) follows once the read completed,
#: within this long.
RETRY_WINDOW_NS = 1_000_000_000
#: The largest folio order the page allocator hands out (a larger one is a malformed line).
MAX_ORDER = 10
#: Physical pfns end below this (52-bit physical addresses, the most x86-64 and
#: arm64 define, in 4 KiB pages): a line naming frames past it is malformed.
MAX_PFN = 1 << 40
#: The latest time a line may carry, seconds (its nanoseconds fit int64).
MAX_TIME_S = INT64_MAX // 1_000_000_000 - 1


def frames_in_range(pfn: int, order: int) -> bool:
    """Whether the 2^order frames from ``pfn`` lie below :data:`MAX_PFN`."""
    return 0 <= pfn and pfn + (1 << order) <= MAX_PFN


#: The kernel's ``dirty_expire_centisecs`` and ``dirty_writeback_centisecs``, in seconds.
DIRTY_EXPIRE_S = 30.0
WRITEBACK_PERIOD_S = 5.0

#: Guest page states as the mappers and a kpageflags snapshot hold them.
UNUSED, STABLE, VOLATILE, POT_VOLATILE = range(4)
STATE_NAMES = "USVP"

OP_READ, OP_WRITE = int(Op.READ), int(Op.WRITE)
OP_SET_STABLE, OP_SET_UNUSED = int(Op.SET_STABLE), int(Op.SET_UNUSED)
OP_SET_VOLATILE, OP_SET_POT_VOLATILE = int(Op.SET_VOLATILE), int(Op.SET_POT_VOLATILE)
OP_SET_STABLE_IF_RESIDENT = int(Op.SET_STABLE_IF_RESIDENT)
#: The ops at t=0 that put a frame into its inferred initial state.
INITIAL_OPS = {
    UNUSED: (),
    STABLE: (OP_SET_STABLE, OP_WRITE),
    VOLATILE: (OP_SET_STABLE, OP_WRITE, OP_SET_VOLATILE),
    POT_VOLATILE: (OP_SET_STABLE, OP_WRITE, OP_SET_POT_VOLATILE),
}


def clean_after_ns(dirty_expire_s: float = DIRTY_EXPIRE_S) -> int:
    """How long (ns) after being dirtied a page still dirty is taken as written back."""
    return int((dirty_expire_s + WRITEBACK_PERIOD_S) * 1e9)
