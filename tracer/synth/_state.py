"""What one guest of the model is made of, and how Linux sizes its parts.

A :class:`Guest` is a namedtuple of arrays: per-frame kind, flags, key and
free-block order; the ``prev``/``next`` links of every page list (the LRU
lists, the per-CPU free list and one buddy free list per order share them:
list ``L``'s sentinel is node ``pages + L``); the scalars ``sc`` (counters,
device clocks, the event buffer's position, indexed by the ``S_*`` names);
and the event buffer. :class:`Config` holds its integer settings, sized here
as Linux sizes them (:func:`watermarks`, :func:`pcp_sizes`). The operations
on a guest are the ``njit`` functions of :mod:`cmmsim.tracer.synth._model`
(which builds one: :func:`cmmsim.tracer.synth._model.new_guest`); this
module is their layout, and the Python side that reads a guest back
(:func:`facts`, :func:`drain`, :func:`set_limit`).
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

MAX_ORDER = 10
NO_PAGE = -1
SWAPPED = -2

# Page kinds.
K_FREE, K_KERNEL, K_ANON, K_CLEAN, K_DIRTY = 0, 1, 2, 3, 4
# Page flags: mapped writable (P rather than V when clean), referenced, on the active list.
F_MAPPED, F_REF, F_ACTIVE = 1, 2, 4
# Lists: circular, doubly linked, the sentinel of list L is node ``pages + L``.
L_INACTIVE, L_ACTIVE, L_DIRTY, L_ANON, L_PCP, L_FREE0 = 0, 1, 2, 3, 4, 5
N_LISTS = L_FREE0 + MAX_ORDER + 1

# Scalars in ``Guest.sc``.
(
    S_POS,
    S_LIMIT,
    S_LAST_T,
    S_FREE,
    S_INACTIVE,
    S_ACTIVE,
    S_DIRTY,
    S_ANON,
    S_KERNEL,
    S_NEXT_FLUSH,
    S_DISK_FREE,
    S_NIC_FREE,
    S_SWAPPED,
    S_MAPPED_CLEAN,
    S_MAPPED_DIRTY,
    S_HITS,
    S_MISSES,
    S_RECLAIMED,
    S_WRITTEN_BACK,
    S_SWAP_OUTS,
    S_SWAP_INS,
    S_PCP,
    N_SC,
) = range(23)

#: Counters reported by :func:`facts`, by name.
FACTS = {
    "free_pages": S_FREE,
    "inactive_pages": S_INACTIVE,
    "active_pages": S_ACTIVE,
    "dirty_pages": S_DIRTY,
    "anon_pages": S_ANON,
    "kernel_pages": S_KERNEL,
    "swapped_pages": S_SWAPPED,
    "mapped_clean_pages": S_MAPPED_CLEAN,
    "mapped_dirty_pages": S_MAPPED_DIRTY,
    "cache_hits": S_HITS,
    "cache_misses": S_MISSES,
    "reclaimed_pages": S_RECLAIMED,
    "written_back_pages": S_WRITTEN_BACK,
    "swap_outs": S_SWAP_OUTS,
    "swap_ins": S_SWAP_INS,
}


#: Integer settings of one guest (all ns or pages).
Config = namedtuple(
    "Config",
    [
        "pages",
        "reserved",
        "wmark_low",
        "wmark_high",
        "copy_ns",
        "zero_ns",
        "disk_read_ns",
        "disk_write_ns",
        "net_ns",
        "sndbuf_ns",
        "expire_ns",
        "wb_interval_ns",
        "bg_dirty_pages",
        "wb_batch",
        "pcp_batch",
        "pcp_high",
    ],
)

Guest = namedtuple(
    "Guest",
    [
        "sc",
        "cpu_free",
        "kind",
        "flags",
        "key",
        "forder",
        "dirtied",
        "prev",
        "next",
        "where",
        "out_t",
        "out_pfn",
        "out_op",
        "cfg",
    ],
)

#: Pages the flusher writes back per operation at most (it goes on at the next one).
WB_BATCH = 32


def watermarks(pages: int) -> tuple[int, int]:
    """(low, high) free-page watermarks of a guest, as Linux sets them.

    ``min_free_kbytes = sqrt(16 * memory in KiB)`` (128 KiB to 256 MiB); the
    low and high marks add one and two times ``max(min / 4, 0.1 % of memory)``
    (``watermark_scale_factor`` 10).
    """
    min_kb = min(max(int(math.sqrt(pages * 4 * 16)), 128), 262_144)
    min_pages = min_kb // 4
    gap = max(min_pages // 4, pages * 10 // 10_000)
    return min_pages + gap, min_pages + 2 * gap


def pcp_sizes(pages: int, cpus: int, wmark_low: int) -> tuple[int, int]:
    """(batch, high) of the per-CPU free lists, as Linux sizes them (one list per guest here).

    ``zone_batchsize``: a quarter of memory/1024 pages (at most 1 MiB), plus
    half, rounded down to a power of two, minus one; ``zone_highsize``: the
    low watermark shared by the CPUs, at least four batches each.
    """
    quarter = min(pages >> 10, 256) // 4
    batch = max(1, (1 << ((quarter + quarter // 2).bit_length() - 1)) - 1) if quarter else 1
    return batch, max(wmark_low, 4 * batch * cpus)


def headroom_events(cfg: Config, step_events: int) -> int:
    """Events one workload step may emit at most, reclaim and writeback included."""
    return 6 * (cfg.wmark_high + (1 << MAX_ORDER)) + 64 * 2 * cfg.wb_batch + step_events


def facts(g: Guest) -> dict[str, int]:
    """The guest's counters now (pages by kind, cache hits, reclaim, swap), by name."""
    out = {name: int(g.sc[i]) for name, i in FACTS.items()}
    out["guest_pages"] = g.cfg.pages
    return out


def drain(g: Guest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The events emitted since the last drain (views of the buffer), and a reset position."""
    n = int(g.sc[S_POS])
    g.sc[S_POS] = 0
    return g.out_t[:n], g.out_pfn[:n], g.out_op[:n]


def set_limit(g: Guest, events: int) -> None:
    """Stop the next run after the step that brings the chunk to ``events`` events."""
    g.sc[S_LIMIT] = min(events, g.out_t.size)
