"""Shared bits of the benchmark scripts: synthetic streams, timing, peer traces."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from cmmsim.tracer.io import TraceArrays
from cmmsim.tracer.schema import Op, TraceMeta, count_ops


def timed(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds ``fn()`` took by ``clock`` (wall time; ``time.process_time``: this
    process's CPU time)."""
    t0 = clock()
    fn()
    return clock() - t0


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls, seconds (the least disturbed run)."""
    return min(timed(fn) for _ in range(repeat))


def page_stream(
    n_events: int, n_pages: int, seed: int = 0, hint_fraction: float = 0.2, hot_fraction: float = 0.05
) -> TraceArrays:
    """A seeded page-event stream: 70 % of accesses to a hot set, hints mixed in.

    Hints follow the guest discipline loosely (free then re-allocate), enough to
    exercise every branch of the kernels at realistic proportions.
    """
    rng = np.random.default_rng(seed)
    hot = max(1, int(hot_fraction * n_pages))
    pfn = np.where(
        rng.random(n_events) < 0.7, rng.integers(0, hot, n_events), rng.integers(0, n_pages, n_events)
    ).astype(np.uint32)
    op = np.where(rng.random(n_events) < 0.35, Op.WRITE, Op.READ).astype(np.uint8)
    is_hint = rng.random(n_events) < hint_fraction
    hints = rng.choice(
        np.array(
            [Op.SET_STABLE, Op.SET_UNUSED, Op.SET_VOLATILE, Op.SET_POT_VOLATILE, Op.SET_STABLE_IF_RESIDENT], np.uint8
        ),
        size=n_events,
        p=[0.35, 0.3, 0.2, 0.05, 0.1],
    )
    op = np.where(is_hint, hints, op).astype(np.uint8)
    t = np.cumsum(rng.integers(1, 40_000, n_events)).astype(np.int64)
    meta = TraceMeta(guest_pages=n_pages, source="synthetic:bench", seed=seed, event_counts=count_ops(op))
    return TraceArrays(t, pfn, op, meta)


def write_oracle_general(path: str, keys: np.ndarray) -> None:
    """libCacheSim's oracleGeneral binary trace: (u32 time, u64 id, u32 size, i64 next)."""
    n = len(keys)
    rec = np.zeros(n, dtype=np.dtype([("ts", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")]))
    rec["ts"] = np.arange(n) // 1000
    rec["id"] = keys.astype(np.uint64) + 1
    rec["size"] = 1
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    same = ks[1:] == ks[:-1]
    nxt = np.full(n, -1, np.int64)
    nxt[order[:-1][same]] = order[1:][same]
    rec["next"] = nxt
    rec.tofile(path)
