"""Initial page states from a ``/proc/kpageflags`` snapshot taken at capture start."""

from __future__ import annotations

import numpy as np

from tracer.linux.rules import STABLE, UNUSED, VOLATILE

# Bit numbers of include/uapi/linux/kernel-page-flags.h.
KPF_DIRTY, KPF_LRU, KPF_BUDDY, KPF_ANON = 4, 5, 10, 12


def read_kpageflags_states(path: str = "/proc/kpageflags") -> np.ndarray:
    """Initial guest state per physical pfn from a kpageflags snapshot (uint8: 0 U 1 S 2 V)."""
    flags = np.fromfile(path, dtype=np.uint64)
    return kpageflags_to_states(flags)


def kpageflags_to_states(flags: np.ndarray) -> np.ndarray:
    """Buddy pages unused; clean, unmapped-anon file LRU pages volatile; the rest stable."""
    bit = lambda n: (flags >> np.uint64(n)) & np.uint64(1)  # noqa: E731
    dirty, lru, buddy, anon = bit(KPF_DIRTY), bit(KPF_LRU), bit(KPF_BUDDY), bit(KPF_ANON)
    states = np.full(flags.shape, STABLE, np.uint8)
    states[(lru == 1) & (anon == 0) & (dirty == 0)] = VOLATILE
    states[buddy == 1] = UNUSED
    return states
