"""Replay speed: host-lru and cmm against libCacheSim on the same access stream.

Prints events/s for each and the ratios of wall times against libCacheSim's
LRU and Belady run in the same process on the same READ/WRITE stream (objects of
size 1, same capacity), through libCacheSim's own C trace reader (oracleGeneral
binary); the engines replay the hints as well, libCacheSim gets the accesses only.
host-lru at one budget takes its stack pass (:mod:`cmmsim.replay.onepass`), cmm and
cmm-light the marker replay (:mod:`cmmsim.replay.marker`; ``cmm state-priority`` its
classes' version, :mod:`cmmsim.replay.class_marker`); their "(1 thread)" rows are
the same call with numba limited to one thread. "cmm priced" is the ``cmm`` replay made
into result rows and priced (:func:`cmmsim.replay.costs.price`, ``kvm-2025``);
"cmm priced + tier" the same with a host swap tier of a quarter of the budget
(``--tier-fraction``): issue 18 asks it to cost at most 1.3x the plain ``cmm`` row.
The note line gives that ratio twice: the median over the shuffled rounds, and
the median of ``--tier-pairs`` pairs timed back to back (order drawn per pair),
on numba's threads (wall time) and on one thread (CPU time: what other jobs on
a shared machine make a run wait is left out); a pair shares its neighbours, so the
pairs leave out what the round's order does to one run (see :func:`_paired`).
Ratios, not absolute times, are the figures to quote: the machines are shared.
Every contender runs once per round, in turn (the order shuffled each round,
seeded); the medians over rounds are printed and written to
``benchmarks/results/replay.json`` (or ``--json PATH``).

    python benchmarks/bench_replay.py [--events 20000000] [--pages 1000000] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import best_of, page_stream, timed, write_oracle_general  # noqa: E402
from benchmarks.figures import Column, Table, add_json_argument, emit  # noqa: E402
from cmmsim.replay import scenario as sc  # noqa: E402
from cmmsim.replay.costs import load_profile, price  # noqa: E402
from cmmsim.replay.frames import results_frame  # noqa: E402
from cmmsim.replay.numba_threads import numba_threads  # noqa: E402
from cmmsim.replay.strategies import get_strategy  # noqa: E402
from cmmsim.tracer.schema import Op  # noqa: E402


def one_thread(fn, *args):
    """``fn(*args)`` with numba limited to one thread (no two-thread replay)."""
    with numba_threads(1):
        return fn(*args)


def _round(runs: dict, rng: np.random.Generator) -> dict[str, float]:
    """Each contender's wall time once, in an order shuffled for the round.

    A run's speed depends on the one before it: right after one of libCacheSim's
    multi-second single-threaded runs, a two-thread replay here ran markedly
    slower than back to back with itself (docs/perf-log.md has the figures).
    In a fixed order host-lru always sat behind Belady; shuffled (seeded), each
    contender gets that seat at random and the median over rounds leaves it out.
    """
    labels = list(runs)
    return {labels[k]: best_of(runs[labels[k]][0], 1) for k in rng.permutation(len(labels))}


def _paired(a, b, pairs: int, rng: np.random.Generator, clock=time.perf_counter) -> tuple[float, float, float]:
    """Time of ``b()`` over ``a()`` by ``clock`` (wall time; ``time.process_time`` for
    the CPU time of this process), each pair run back to back in a random order:
    (median, lower quartile, upper quartile) of the pairs' ratios.

    In the shuffled rounds a two-thread replay's time depends on what ran
    before it (see :func:`_round`), and the two rows of a ratio rarely sit
    together; a pair runs them next to each other, so both see the same state
    of a shared machine. On one thread the CPU time leaves out the waits
    other jobs on the machine cause.
    """
    ratios = []
    for _ in range(pairs):
        if rng.random() < 0.5:
            ta = timed(a, clock)
            tb = timed(b, clock)
        else:
            tb = timed(b, clock)
            ta = timed(a, clock)
        ratios.append(tb / ta)
    q = np.quantile(ratios, [0.5, 0.25, 0.75])
    return float(q[0]), float(q[1]), float(q[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--budget-fraction", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--tier-fraction", type=float, default=0.25, help="host swap tier of the tier rows, fraction of the budget"
    )
    ap.add_argument("--tier-pairs", type=int, default=15, help="back-to-back pairs for the tier ratio")
    add_json_argument(ap)
    args = ap.parse_args()

    trace = page_stream(args.events, args.pages)
    scn = sc.from_arrays([("bench", trace)], name="bench")
    budget = np.array([max(1, int(args.budget_fraction * args.pages))])
    n = scn.n_events
    accesses = scn.page[scn.op <= Op.WRITE]

    # Every contender runs once per round, in turn; ratios are taken within a
    # round and the median over rounds is printed (the machines are shared and
    # their speed drifts within a run).
    runs: dict[str, tuple[object, int]] = {}
    for label, name, params in [
        ("host-lru", "host-lru", {}),
        ("host-lru clock", "host-lru", {"replacement": "clock"}),
        ("host-lru two-list", "host-lru", {"replacement": "two-list"}),
        ("cmm", "cmm", {}),
        ("cmm state-priority", "cmm", {"reclaim_order": "state-priority"}),
        ("cmm two-list", "cmm", {"reclaim_order": "two-list"}),
        ("cmm-light", "cmm-light", {}),
        ("opt", "opt", {}),
    ]:
        strat = get_strategy(name)
        p = strat.parse_params(params)
        strat.run(scn, budget, p)  # compile / warm up
        runs[label] = (lambda s=strat, p=p: s.run(scn, budget, p)), n
        if label in ("host-lru", "cmm"):
            # The same call with numba on one thread: the single-core figure a sweep
            # worker gets.
            one_thread(strat.run, scn, budget, p)
            runs[f"{label} (1 thread)"] = (lambda s=strat, p=p: one_thread(s.run, scn, budget, p)), n
    # The replay with costs applied, without and with a tier (issue 18: <= 1.3x "cmm").
    cmm = get_strategy("cmm")
    cmm_p = cmm.parse_params({})
    profile = load_profile("kvm-2025")
    tier_pages = max(1, int(args.tier_fraction * int(budget[0])))

    def priced(tier: int):
        res = cmm.run(scn, budget, cmm_p, tier_pages=tier)
        return price(results_frame(scn, "cmm", cmm_p, res), profile)

    for label, tier in (("cmm priced", 0), ("cmm priced + tier", tier_pages)):
        priced(tier)  # compile / warm up
        runs[label] = (lambda t=tier: priced(t)), n

    try:
        import libcachesim as lcs
    except ImportError:
        lcs = None
    with tempfile.TemporaryDirectory() as tmp:
        if lcs is not None:
            path = str(Path(tmp) / "stream.oracleGeneral.bin")
            write_oracle_general(path, accesses)
            reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
            for label, cls in [("libcachesim LRU", lcs.LRU), ("libcachesim Belady", lcs.Belady)]:
                runs[label] = (lambda c=cls: c(cache_size=int(budget[0])).process_trace(reader), len(accesses))
        rng = np.random.default_rng(1)
        rounds = [_round(runs, rng) for _ in range(args.repeat)]
    # The tier's ratio again, in pairs (issue 18's line), on numba's threads and on one.
    plain = runs["cmm"][0]
    tiered_run = runs["cmm priced + tier"][0]
    pair_rng = np.random.default_rng(2)
    pairs_mt = _paired(plain, tiered_run, args.tier_pairs, pair_rng)
    pairs_1t = _paired(
        lambda: one_thread(plain), lambda: one_thread(tiered_run), args.tier_pairs, pair_rng, time.process_time
    )
    rates = {label: statistics.median(count / r[label] for r in rounds) for label, (_, count) in runs.items()}
    # Ratios of wall times for the whole stream: ours replay the hints too
    # (libCacheSim gets the accesses only), so this is the conservative figure.
    ratio = {}
    for ref in ("libcachesim LRU", "libcachesim Belady"):
        if ref in runs:
            for label in runs:
                ratio[label, ref] = statistics.median(r[ref] / r[label] for r in rounds)
    if lcs is not None:
        # The same LRU driven request by request from Python, as a library user would.
        sub = accesses[: min(len(accesses), 1_000_000)].tolist()

        def python_loop():
            cache = lcs.LRU(cache_size=int(budget[0]))
            req = lcs.Request()
            req.obj_size = 1
            for k in sub:
                req.obj_id = k
                cache.get(req)

        rates["libcachesim LRU (py loop)"] = len(sub) / best_of(python_loop, 1)

    py = rates.get("libcachesim LRU (py loop)")
    # Against the Python loop: accesses per second on both sides (the whole
    # stream's time spread over its accesses).
    per_access = {
        label: rate * (len(accesses) / n if label in runs and runs[label][1] == n else 1)
        for label, rate in rates.items()
    }
    nan = float("nan")
    table = Table(
        f"{n:,} events ({len(accesses):,} accesses) over {args.pages:,} pages, "
        f"budget {int(budget[0]):,} frames; median of {args.repeat} rounds",
        [
            Column("engine", "engine"),
            Column("m_events_per_s", "M events/s", ".2f"),
            Column("x_lcs_lru", "x lcs LRU", ".1f"),
            Column("x_lcs_belady", "x lcs Belady", ".1f"),
            Column("x_lcs_lru_py", "x lcs LRU py", ".1f"),
        ],
    )
    for label, rate in rates.items():
        table.add(
            engine=label,
            m_events_per_s=rate / 1e6,
            x_lcs_lru=ratio.get((label, "libcachesim LRU"), nan),
            x_lcs_belady=ratio.get((label, "libcachesim Belady"), nan),
            x_lcs_lru_py=per_access[label] / py if py else nan,
        )
    tiered = statistics.median(r["cmm priced + tier"] / r["cmm"] for r in rounds)
    emit(
        "replay",
        [table],
        args,
        [
            "engine state: a state byte and an int32 time slot per guest page (LRU, state-priority), "
            "about 16.5 bytes per host frame under LRU and 17.5 under state-priority (a window of "
            "4 slots per frame and its bit trees, cmmsim.replay.kernels.slots, which streams keep); "
            "the marker replays in memory use the slot and add a bit per event (exact LRU) or three "
            "and a heap per class (state-priority) instead",
            f"cmm priced + tier ({tier_pages:,} tier pages) / cmm (issue 18: at most 1.3x): "
            f"wall time {tiered:.2f}x by the shuffled rounds; in {args.tier_pairs} back-to-back pairs "
            f"{pairs_mt[0]:.2f}x (quartiles {pairs_mt[1]:.2f}-{pairs_mt[2]:.2f}), on one thread "
            f"by CPU time {pairs_1t[0]:.2f}x ({pairs_1t[1]:.2f}-{pairs_1t[2]:.2f}); "
            "a tier adds 8 bytes per guest page (its LRU links)",
        ],
    )


if __name__ == "__main__":
    main()
