"""The cmmsim trace schema, defined once.

A trace is one Parquet file per guest. Each row is one page event of that
guest: ``t_ns`` (int64, nanoseconds, non-decreasing), ``pfn`` (uint32, guest
page frame number, ``< guest_pages``) and ``op`` (uint8, an :class:`Op`).
A scenario (several guests sharing one host) is a folder of such files with
a manifest named :data:`MANIFEST_NAME` listing them.

File-level metadata lives in the Arrow schema metadata under the keys in
:data:`META_KEYS`; :mod:`cmmsim.tracer.io` turns it into a :class:`TraceMeta`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from cmmsim.tracer.errors import TraceError

#: Bumped whenever a column, an op code or a metadata key changes meaning.
SCHEMA_VERSION = 1
PAGE_SIZE_BYTES = 4096
#: Most pages one guest may have: the replay's global page index is int32
#: (:mod:`cmmsim.replay.scenario`), so a larger guest could be written but never
#: replayed; writers and readers refuse it alike.
MAX_GUEST_PAGES = (1 << 31) - 1
#: The most memory one guest may have, bytes.
MAX_GUEST_BYTES = MAX_GUEST_PAGES * PAGE_SIZE_BYTES
#: Most virtual CPUs of one guest: far past any hypervisor's, and small enough that
#: a host row's sum over guests, and its vCPU time, stay within int64.
MAX_VCPUS = 1 << 16


class Op(enum.IntEnum):
    """Page event codes.

    READ and WRITE are guest accesses. The SET_* codes are guest page hints
    with the meaning of the z/Architecture ESSA operations (docs/model.md,
    section 1): stable (1), unused (2), volatile (3), potentially volatile (4)
    and "set stable if resident" (6).
    """

    READ = 0
    WRITE = 1
    SET_STABLE = 2
    SET_UNUSED = 3
    SET_VOLATILE = 4
    SET_POT_VOLATILE = 5
    SET_STABLE_IF_RESIDENT = 6


N_OPS = len(Op)
ACCESS_OPS = (Op.READ, Op.WRITE)

#: Column name -> numpy dtype, in file order.
COLUMNS: dict[str, np.dtype] = {
    "t_ns": np.dtype(np.int64),
    "pfn": np.dtype(np.uint32),
    "op": np.dtype(np.uint8),
}

#: The manifest of a scenario folder: JSON with ``guests``, a list of
#: ``{"name": ..., "trace": <file name in the folder>}``, plus the workload,
#: seed and parameters that made it.
MANIFEST_NAME = "scenario.json"

ARROW_SCHEMA = pa.schema([(name, pa.from_numpy_dtype(dt)) for name, dt in COLUMNS.items()])

_PREFIX = "cmmsim."
META_KEYS = {
    "schema_version": _PREFIX + "schema_version",
    "page_size": _PREFIX + "page_size",
    "guest_pages": _PREFIX + "guest_pages",
    "source": _PREFIX + "source",
    "params": _PREFIX + "params",
    "seed": _PREFIX + "seed",
    "event_counts": _PREFIX + "event_counts",
    "converter": _PREFIX + "converter",
}
#: Metadata keys a file may lack (written only when known; older files have none).
OPTIONAL_META_KEYS = {
    "vcpus": _PREFIX + "vcpus",
}


@dataclass(frozen=True)
class TraceMeta:
    """File-level facts about one guest trace.

    Attributes
    ----------
    guest_pages : int
        Guest memory in pages; every ``pfn`` is below it.
    source : str
        ``synthetic:<workload>`` or ``linux:<tracer>``.
    page_size : int
        Bytes per page (4096).
    params : dict
        Workload parameters (synthetic) or capture facts (Linux).
    seed : int or None
        Generator seed for synthetic traces.
    event_counts : dict
        Events per op name.
    converter : dict
        Converter counters (lines read, skipped by reason, repaired, ...).
    schema_version : int
        Version the file was written with.
    vcpus : int or None
        Virtual CPUs of the guest, when the trace's maker knew them (the CPU
        share of memory management in :mod:`cmmsim.replay.costs` is taken of
        ``vcpus`` x the trace's duration); None when unknown.
    """

    guest_pages: int
    source: str
    page_size: int = PAGE_SIZE_BYTES
    params: dict = field(default_factory=dict)
    seed: int | None = None
    event_counts: dict = field(default_factory=dict)
    converter: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    vcpus: int | None = None

    @property
    def n_events(self) -> int:
        return int(sum(self.event_counts.values()))


def count_ops(op: np.ndarray) -> dict[str, int]:
    """Events per op name, every op listed (zero included)."""
    counts = np.bincount(op, minlength=N_OPS)
    return {o.name: int(counts[o]) for o in Op}


def validate_arrays(
    t_ns: np.ndarray, pfn: np.ndarray, op: np.ndarray, guest_pages: int, *, where: str = "trace"
) -> None:
    """Check one trace's columns and raise :class:`TraceError` at the first bad row.

    Parameters
    ----------
    t_ns, pfn, op : numpy.ndarray
        The trace columns (int64 ns, uint32 frames, uint8 op codes).
    guest_pages : int
        Guest memory in pages.
    where : str
        Name used in the message (usually the file path).
    """
    for name, arr in (("t_ns", t_ns), ("pfn", pfn), ("op", op)):
        if arr.dtype != COLUMNS[name]:
            raise TraceError(f"{where}: column {name!r} has dtype {arr.dtype}, expected {COLUMNS[name]}")
    if not (len(t_ns) == len(pfn) == len(op)):
        raise TraceError(f"{where}: columns have different lengths")
    if not 0 < guest_pages <= MAX_GUEST_PAGES:
        raise TraceError(f"{where}: guest_pages must be 1..{MAX_GUEST_PAGES:,} (8 TiB), got {guest_pages:,}")
    if len(t_ns) == 0:
        return
    if t_ns[0] < 0:
        raise TraceError(f"{where}: row 0: negative timestamp t_ns={int(t_ns[0])}")
    back = np.flatnonzero(np.diff(t_ns) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise TraceError(f"{where}: row {i}: timestamp decreases (t_ns={int(t_ns[i])} after {int(t_ns[i - 1])})")
    big = np.flatnonzero(pfn >= guest_pages)
    if big.size:
        i = int(big[0])
        raise TraceError(f"{where}: row {i}: pfn {int(pfn[i])} >= guest_pages {guest_pages}")
    bad = np.flatnonzero(op >= N_OPS)
    if bad.size:
        i = int(bad[0])
        raise TraceError(f"{where}: row {i}: unknown op code {int(op[i])} (known 0-{N_OPS - 1})")
