"""Initial page states from a ``/proc/kpageflags`` snapshot taken at capture start."""

from __future__ import annotations

import numpy as np

from cmmsim.tracer.linux.rules import STABLE, UNUSED, VOLATILE

# Bit numbers of include/uapi/linux/kernel-page-flags.h.
KPF_DIRTY, KPF_LRU, KPF_BUDDY, KPF_ANON = 4, 5, 10, 12
KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL = 15, 16
#: Bytes per read of /proc/kpageflags (8 per pfn).
_CHUNK_BYTES = 8 << 20


def read_kpageflags(path: str = "/proc/kpageflags") -> np.ndarray:
    """The page flags of every physical pfn (uint64), as the kernel shows them now (root)."""
    # Read in chunks to the end: procfs files show a size of 0 (np.fromfile reads
    # nothing) and refuse reads past what a pfn range allows at once.
    chunks = []
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK_BYTES):
            chunks.append(chunk)
    data = b"".join(chunks)
    return np.frombuffer(data[: len(data) // 8 * 8], dtype=np.uint64)


def read_kpageflags_states(path: str = "/proc/kpageflags") -> np.ndarray:
    """Initial guest state per physical pfn from a kpageflags snapshot (uint8: 0 U 1 S 2 V)."""
    return kpageflags_to_states(read_kpageflags(path))


def kpageflags_to_states(flags: np.ndarray) -> np.ndarray:
    """Buddy pages unused; clean, unmapped-anon file LRU pages volatile; the rest stable."""
    bit = lambda n: (flags >> np.uint64(n)) & np.uint64(1)  # noqa: E731
    dirty, lru, buddy, anon = bit(KPF_DIRTY), bit(KPF_LRU), bit(KPF_BUDDY), bit(KPF_ANON)
    states = np.full(flags.shape, STABLE, np.uint8)
    states[(lru == 1) & (anon == 0) & (dirty == 0)] = VOLATILE
    states[buddy == 1] = UNUSED
    return states
