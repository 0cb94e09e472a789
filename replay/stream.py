"""Streaming replay: traces larger than memory, in bounded memory.

The engine kernel keeps its whole state per budget between chunks (page
state bytes, victim structures, counters; :class:`cmmsim.replay.engine.EngineState`),
so a trace can be fed to it a row group at a time (exact LRU in its time
slots: the marker replay reads its victims from the whole trace). Guest traces
are merged by time as they stream: each guest's batches are buffered; events
earlier than the *watermark* (the smallest last timestamp among guests not yet
exhausted) are final, since no guest can still produce an earlier event,
and are emitted in the same order as :func:`cmmsim.replay.scenario.from_arrays`
(by time, ties by guest index, then file order). Memory: the per-budget
state (under exact LRU and state-priority 5 bytes per guest page, a state
byte and a time slot, and about 17 per host frame: docs/model.md section 10)
plus the batches each guest has read ahead plus three chunks (the
one replayed, one merged ahead on a thread by :func:`read_ahead`, one being
merged; their arrays are written again through a :class:`ChunkPool`, with a
quarter to spare, and one cut's concatenated runs) (and, under exact LRU on two
threads, three victim buffers of at most 4 MiB: see
:func:`cmmsim.replay.engine.replay_pipelined`).

Only strategies that are one configuration of the engine kernel stream
(:attr:`cmmsim.replay.strategies.Strategy.streams`); the others need the whole
trace (the future, or their own kernels) and are refused with a clear error.
"""

from __future__ import annotations

import heapq
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from cmmsim.replay import engine
from cmmsim.replay.budgets import parse_budgets
from cmmsim.replay.costs import load_profile, price
from cmmsim.replay.frames import Replayed, check_vcpus, results_frame, states_frame
from cmmsim.replay.kernels.merge import merge_runs
from cmmsim.replay.result import EngineResult
from cmmsim.replay.scenario import expand_inputs, scenario_name, trace_name
from cmmsim.replay.strategies import get_strategy
from cmmsim.replay.times import check_shift, sample_times_between
from cmmsim.tracer.errors import ParamError, TraceError, show_path
from cmmsim.tracer.io import ROW_GROUP_ROWS, check_event_counts, iter_batches, read_meta, time_span
from cmmsim.tracer.schema import N_OPS, TraceMeta, validate_arrays

__all__ = [
    "ChunkPool",
    "StreamedScenario",
    "load_merge_kernel",
    "merged_batches",
    "read_ahead",
    "replay_stream",
    "stream_guests",
    "time_range",
]


@dataclass(frozen=True)
class StreamedScenario:
    """What the result frames need to know of a scenario that was never in memory.

    Same attribute names as :class:`cmmsim.replay.scenario.Scenario` for the ones
    :func:`cmmsim.replay.frames.results_frame` and :func:`cmmsim.replay.frames.states_frame` use.
    """

    name: str
    guest_names: tuple[str, ...]
    guest_pages: np.ndarray
    page_guest: np.ndarray
    n_events: int
    events_per_guest: np.ndarray
    sources: tuple[str, ...]
    duration_ns: int = 0
    guest_vcpus: np.ndarray | None = None

    @property
    def n_guests(self) -> int:
        return len(self.guest_names)

    @property
    def n_pages(self) -> int:
        return int(self.page_guest.shape[0])


@dataclass(frozen=True)
class _Guest:
    label: str
    path: str
    guest_pages: int
    offset: int
    shift_ns: int
    vcpus: int = 0  # from the trace's metadata, 0 when unknown
    meta: TraceMeta | None = None


def stream_guests(paths, copies: int, stagger_ns: int) -> list[_Guest]:
    """The guests of a streamed scenario (files, labels, page offsets, time shifts), in order."""
    if copies < 1:
        raise ParamError(f"copies must be >= 1, got {copies}")
    if stagger_ns < 0:
        raise ParamError(f"stagger must be >= 0, got {stagger_ns}")
    files = expand_inputs(list(paths))
    if copies * len(files) > np.iinfo(np.uint16).max:
        raise ParamError(f"too many guests ({copies * len(files):,}); at most 65535")
    stems = [trace_name(f) for f in files]
    if len(set(stems)) != len(stems):
        stems = [f"{n}@{i}" for i, n in enumerate(stems)]
    metas = [read_meta(f) for f in files]
    if copies > 1:
        for f in files:
            span = time_span(f)
            if span is not None:
                check_shift(span[1], (copies - 1) * stagger_ns, show_path(f))
    out: list[_Guest] = []
    offset = 0
    for j in range(copies):
        for f, stem, meta in zip(files, stems, metas, strict=True):
            out.append(
                _Guest(
                    stem if copies == 1 else f"{stem}#{j}",
                    str(f),
                    meta.guest_pages,
                    offset,
                    j * stagger_ns,
                    meta.vcpus or 0,
                    meta,
                )
            )
            offset += meta.guest_pages
    if len(out) > np.iinfo(np.uint16).max:
        raise ParamError(f"too many guests ({len(out)}); at most 65535")
    if offset > np.iinfo(np.int32).max:
        raise ParamError("scenario has more than 2^31 guest pages")
    return out


def _batches(g: _Guest, batch_rows: int):
    """One guest's validated batches as (t_ns shifted, pfn, op)."""
    row = 0
    last_t = None
    counts = np.zeros(N_OPS, np.int64)
    for t, pfn, op in iter_batches(g.path, batch_rows):
        validate_arrays(t, pfn, op, g.guest_pages, where=f"{g.path} (rows from {row})")
        if len(t) and last_t is not None and t[0] < last_t:
            raise TraceError(f"{g.path}: row {row}: timestamp decreases (t_ns={int(t[0])} after {last_t})")
        if len(t):
            last_t = int(t[-1])
            counts += np.bincount(op, minlength=N_OPS)
        row += len(t)
        yield (t + g.shift_ns if g.shift_ns else t, pfn, op)
    # Known only once the guest's rows are all read: a replay that gets here
    # before its last event still raises before any result is written.
    if g.meta is not None:
        check_event_counts(g.meta, counts, g.path)


#: The merged chunk's columns: time (ns), global page, op, guest index.
_CHUNK_DTYPES = (np.int64, np.int32, np.uint8, np.uint16)


def _new_chunk(n: int) -> tuple[np.ndarray, ...]:
    """Fresh arrays for a merged chunk of ``n`` events."""
    return tuple(np.empty(n, dt) for dt in _CHUNK_DTYPES)


class ChunkPool:
    """Merged chunks' arrays handed back by their consumer, for the merge to write again.

    Fresh arrays of several MiB are fresh pages, which the kernel zeroes at
    first touch: for every merged chunk, the same bytes again. A consumer that
    is done with a chunk (:func:`replay_stream`, once the engine has replayed
    it) gives it back; the merge (:func:`merged_batches`, possibly on the
    read-ahead thread) takes a set at least as large, or makes one. A chunk
    never given back is never written again, so a consumer that keeps its
    chunks passes no pool.
    """

    def __init__(self) -> None:
        self._free: deque[tuple[np.ndarray, ...]] = deque()  # append/pop are atomic
        self._scratch: dict[int, np.ndarray] = {}

    def scratch(self, col: int, n: int, dtype) -> np.ndarray:
        """``n`` elements to concatenate a cut's runs of column ``col`` into, written
        again at the next cut (the merge's own, on the thread that merges)."""
        a = self._scratch.get(col)
        if a is None or a.shape[0] < n or a.dtype != dtype:
            a = self._scratch[col] = np.empty(n + n // 4, dtype)
        return a[:n]

    def take(self, n: int) -> tuple[np.ndarray, ...]:
        """Four arrays of ``n`` events (views of a set given back, or new)."""
        while True:
            try:
                cols = self._free.pop()
            except IndexError:
                # A quarter more: cuts vary in size, and a set too small is dropped.
                return tuple(c[:n] for c in _new_chunk(n + n // 4))
            if cols[0].shape[0] >= n:
                return tuple(c[:n] for c in cols)
            # Too small for this chunk: dropped, a larger one replaces it.

    def give(self, chunk: Sequence[np.ndarray]) -> None:
        """``chunk`` (as :meth:`take` or :func:`merged_batches` returned it) may be written again."""
        self._free.append(tuple(c if c.base is None else c.base for c in chunk))


def merged_batches(
    guests: Sequence[_Guest],
    batch_rows: int = ROW_GROUP_ROWS,
    events_per_guest: np.ndarray | None = None,
    pool: ChunkPool | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Every guest's events merged by time, as chunks of about ``batch_rows`` events:
    (t_ns, global page int32, op, guest index uint16).

    ``events_per_guest`` (int64, one per guest), when given, has each guest's
    events added to it as they are merged: from the runs' lengths, where a
    ``np.bincount`` of each chunk's guests would cast them to int64 first.
    With a ``pool``, chunks are written into the arrays given back to it
    (:class:`ChunkPool`).
    """
    n = len(guests)
    its = [_batches(g, batch_rows) for g in guests]
    # Per guest: its batches not yet merged, oldest first, and how many events of
    # the oldest are; the last time it has read (the watermark's candidates).
    unmerged: list[deque] = [deque() for _ in range(n)]
    head = [0] * n
    last = [0] * n
    done = [False] * n
    offsets = np.array([g.offset for g in guests], np.int32)
    out: list[tuple[np.ndarray, ...]] = []
    out_rows = 0

    def pull(k):
        nxt = next(its[k], None)
        if nxt is None:
            done[k] = True
        elif len(nxt[0]):
            unmerged[k].append(nxt)
            last[k] = int(nxt[0][-1])

    while True:
        for k in range(n):
            while not done[k] and not unmerged[k]:
                pull(k)
        live = [k for k in range(n) if not done[k]]
        mark = min(last[k] for k in live) if live else None
        # Every guest's events before the watermark, as runs in guest order (a
        # guest's batches in file order): views, no copy yet.
        runs: list[tuple[np.ndarray, ...]] = []
        run_guest: list[int] = []
        for k in range(n):
            q = unmerged[k]
            while q:
                batch = q[0]
                h = head[k]
                t = batch[0]
                if mark is None or t[-1] < mark:
                    cut = len(t)
                else:
                    cut = h + int(np.searchsorted(t[h:], mark, "left"))
                if cut > h:
                    runs.append(tuple(c[h:cut] for c in batch))
                    run_guest.append(k)
                if cut < len(t):
                    head[k] = cut
                    break
                q.popleft()
                head[k] = 0
        if runs:
            out.append(_merge(runs, run_guest, offsets, pool))
            if events_per_guest is not None:
                np.add.at(events_per_guest, run_guest, [len(r[0]) for r in runs])
            out_rows += len(out[-1][0])
        if out and (out_rows >= batch_rows or mark is None):
            if len(out) == 1:
                yield out[0]
            else:
                joined = pool.take(out_rows) if pool is not None else _new_chunk(out_rows)
                for c, j in zip(zip(*out, strict=True), joined, strict=True):
                    np.concatenate(c, out=j)
                if pool is not None:
                    for part in out:
                        pool.give(part)
                yield joined
            out, out_rows = [], 0
        if mark is None:
            return
        # Those holding the watermark read on: the next cut can then pass it.
        for k in live:
            if last[k] == mark:
                pull(k)
        # Then whichever guest's buffer ends first, again and again, up to a
        # quarter of the live guests in all before the next cut: each cut
        # visits every guest, and with hundreds of guests cutting after every
        # single read was most of the merge's time (docs/perf-log.md, Fleet
        # scale). The next cut still takes only what every live guest has read past.
        ahead = [(last[j], j) for j in live if not done[j]]
        heapq.heapify(ahead)
        for _ in range(len(live) // 4):
            if not ahead:
                break
            _, k = heapq.heappop(ahead)
            pull(k)
            if not done[k]:
                heapq.heappush(ahead, (last[k], k))


def _merge(runs, run_guest, offsets, pool: ChunkPool | None = None) -> tuple[np.ndarray, ...]:
    """The runs (views of guests' batches, in guest then file order) merged by time
    (:func:`cmmsim.replay.kernels.merge.merge_runs`): one copy of each column,
    into arrays from ``pool`` when given."""
    cols = []
    for i, c in enumerate(zip(*runs, strict=True)):
        if len(c) == 1:
            cols.append(_readonly(c[0]))
        elif pool is None:
            cols.append(_readonly(np.concatenate(c)))
        else:
            n_col = sum(len(a) for a in c)
            cols.append(_readonly(np.concatenate(c, out=pool.scratch(i, n_col, c[0].dtype))))
    starts = np.zeros(len(runs) + 1, np.int64)
    np.cumsum([len(r[0]) for r in runs], out=starts[1:])
    guest = np.array(run_guest, np.uint16)
    n = int(starts[-1])
    merged = pool.take(n) if pool is not None else _new_chunk(n)
    merge_runs(*cols, starts, guest, offsets[guest], *merged)
    return merged


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view: the merge kernel then sees one type whether a run is a
    batch as decoded (Parquet's buffers are read-only) or a concatenation, and
    is compiled once."""
    v = a.view()
    v.flags.writeable = False
    return v


def load_merge_kernel() -> None:
    """Compile (or load from the cache) the merge kernel for the streams' column types."""
    t = np.zeros(1, np.int64)
    _merge([(t, np.zeros(1, np.uint32), np.zeros(1, np.uint8))], [0], np.zeros(1, np.int32))


def read_ahead(items: Iterator, depth: int = 1) -> Iterator:
    """``items`` produced on a thread of their own, up to ``depth`` ahead of the consumer.

    A streamed replay reads and merges the next chunk (Parquet decoding, the
    merge kernel: both release the GIL) while the engine replays this one.
    An error raised by ``items`` is raised here, at the item it stopped at;
    closing this generator stops the producer at its next item.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    end = object()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((end, None))
        except BaseException as exc:  # handed to the consumer, raised there
            q.put((end, exc))

    thread = threading.Thread(target=produce, name="cmmsim-merge", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is end:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()


def _engine_tables(gp, n_pages, budgets, order, initial, n_samples, tier_pages):
    """The page-to-guest table (uint16, one per global page) and the engine's fresh state."""
    page_guest = np.repeat(np.arange(len(gp), dtype=np.uint16), gp)
    return page_guest, engine.alloc_state(n_pages, len(gp), budgets, order, initial, n_samples, tier_pages)


def time_range(paths, copies: int = 1, stagger_ns: int = 0) -> tuple[int, int] | None:
    """First and last event time of the merged scenario (from each file's first and last rows)."""
    lo = hi = None
    for g in stream_guests(paths, copies, stagger_ns):
        span = time_span(g.path)
        if span is None:
            continue
        a, b = span
        lo = a + g.shift_ns if lo is None else min(lo, a + g.shift_ns)
        hi = b + g.shift_ns if hi is None else max(hi, b + g.shift_ns)
    return None if lo is None else (int(lo), int(hi))


def replay_stream(
    paths: Sequence[str | os.PathLike],
    strategy: str,
    budgets: Sequence[str | int],
    params: list[str] | dict | None = None,
    *,
    copies: int = 1,
    stagger_ns: int = 0,
    batch_rows: int = ROW_GROUP_ROWS,
    states_interval_ns: int | None = None,
    name: str | None = None,
    series: bool = False,
    costs=None,
    vcpus: int | None = None,
    tier_pages: int = 0,
    on_events: Callable[[int], None] | None = None,
):
    """Replay traces in bounded memory; same integers as :func:`cmmsim.replay.api.replay_full`.

    Parameters
    ----------
    paths : sequence of path
        Guest traces or scenario folders sharing one host.
    strategy : str
        A strategy that streams (:attr:`cmmsim.replay.strategies.Strategy.streams`).
    budgets : sequence of str or int
        Host budgets (see :func:`cmmsim.replay.budgets.parse_budget`).
    params : list of ``k=v`` or dict, optional
        Strategy parameters.
    copies, stagger_ns : int
        Replicate the guests, copy ``j`` shifted by ``j * stagger_ns`` ns.
    batch_rows : int
        Events per chunk (and per batch read from each guest).
    states_interval_ns : int, optional
        Sample the state distribution every this many ns.
    name : str, optional
        Scenario name (default: from the paths).
    series : bool
        A per-period series is asked for: refused, a streamed replay writes none.
    costs, vcpus
        Pricing, as in :func:`cmmsim.replay.api.replay_full`.
    tier_pages : int
        The host's fast swap tier, pages, as in :func:`cmmsim.replay.api.replay_full`.
    on_events : callable, optional
        Called with the events of each chunk replayed (progress).

    Returns
    -------
    cmmsim.replay.frames.Replayed
        Results, states (if asked) and no per-period series.
    """
    strat = get_strategy(strategy)
    strat.check_streams()
    strat.check_tier(tier_pages)
    if states_interval_ns:
        strat.check_states()
    if series:
        strat.check_series()
        raise ParamError(f"strategy {strategy}: a streamed replay writes no per-period series")
    if batch_rows < 1:
        raise ParamError(f"batch_rows must be >= 1, got {batch_rows}")
    p = strat.parse_params(params)
    profile = load_profile(costs)
    if vcpus is not None:  # a bad vCPU count fails before the replay, as a bad profile does
        check_vcpus(vcpus)
    honour, order, initial = strat.engine(p)
    guests = stream_guests(paths, copies, stagger_ns)
    gp = np.array([g.guest_pages for g in guests], np.int64)
    n_pages, ng = int(gp.sum()), len(guests)
    b = parse_budgets(budgets, n_pages)
    at = np.zeros(0, np.int64)
    if states_interval_ns:
        sample_times_between(None, states_interval_ns)  # a bad interval fails before any reading
        at = sample_times_between(time_range(paths, copies, stagger_ns), states_interval_ns)
    i0 = 0
    per_guest = np.zeros(ng, np.int64)
    t_first = t_last = None
    pool = ChunkPool()
    with ThreadPoolExecutor(1, thread_name_prefix="cmmsim-alloc") as alloc:
        # The engine's state and the page-to-guest table are written in full
        # (hundreds of MiB of fresh pages for a fleet): on a thread of their
        # own, while the first chunk is read and merged.
        ready = alloc.submit(_engine_tables, gp, n_pages, b, order, initial, len(at), tier_pages)
        page_guest = es = None
        for t, page, op, guest in read_ahead(merged_batches(guests, batch_rows, per_guest, pool)):
            if es is None:
                page_guest, es = ready.result()
            engine.replay_chunk(es, t, page, op, guest, i0, page_guest, b, honour, order, at)
            i0 += len(t)
            if on_events is not None:
                on_events(len(t))
            if len(t):
                t_first = int(t[0]) if t_first is None else t_first
                t_last = int(t[-1])
            pool.give((t, page, op, guest))  # the engine keeps no reference to a chunk
            del t, page, op, guest
        if es is None:  # no events
            page_guest, es = ready.result()
    engine.replay_finish(es, page_guest, i0)
    scn = StreamedScenario(
        name or scenario_name(list(paths)),
        tuple(g.label for g in guests),
        gp,
        page_guest,
        i0,
        per_guest,
        tuple(g.path for g in guests),
        (t_last - t_first) if t_first is not None else 0,
        np.array([g.vcpus for g in guests], np.int64),
    )
    res = EngineResult(
        b,
        es.cnt,
        es.host[:, 0].copy(),
        es.host[:, 1].copy(),
        np.zeros((0, n_pages), np.uint8),
        es.samples,
        tier_pages=tier_pages,
    )
    results = price(results_frame(scn, strategy, p, res, vcpus=vcpus), profile)
    states = states_frame(scn, strategy, p, res, at) if states_interval_ns else None
    return Replayed(results, states, None)
