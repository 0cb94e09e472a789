"""One-pass budget sweep vs replays: 20 budgets of host-lru (exact LRU) on one trace.

Prints, measured in the same run on the same trace: one single-budget replay
(on two threads, as ``engine.run`` does it: the LRU walk runs ahead of the state
machine), 20 single-budget replays (what a sweep did before), the per-budget
kernel given all 20 in one call (``engine.run``: on two threads, budget after
budget, each on both threads), and the one-pass stack algorithm (its
budgets dealt to two threads). Target: the
20-budget one-pass costs at most 3x one single-budget replay.

    python benchmarks/bench_onepass.py [--events 20000000] [--pages 1000000]
    python benchmarks/bench_onepass.py --trace sample_traces/*.parquet

The synthetic stream gets 20 budgets from 2.5 % to 50 % of its pages; a trace
gets 20 budgets from 5 % to 100 % of its footprint, and the single-budget
replay is at the middle one. The single replay and the one pass alternate
``--repeat`` times and the ratio is the median of the rounds' ratios: the
machines are shared and their speed drifts within a run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import page_stream

from replay import engine
from replay import scenario as sc
from replay.onepass import run_lru_all
from replay.states import HONOUR_NONE, INITIAL_NO_HINTS


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(scn, budgets: np.ndarray, repeat: int) -> dict[str, float]:
    """Times relative to one single-budget replay (at the middle budget)."""
    def per_budget(b):
        return engine.run(scn, b, honour=HONOUR_NONE, order=engine.ORDER_LRU,
                          initial=INITIAL_NO_HINTS)

    one = budgets[len(budgets) // 2: len(budgets) // 2 + 1]
    per_budget(one)
    per_budget(budgets)
    run_lru_all(scn, budgets)  # compile (or load) every kernel before timing
    rounds = []
    for _ in range(repeat):
        single = _timed(lambda: per_budget(one))
        rounds.append(_timed(lambda: run_lru_all(scn, budgets)) / single)
    single = _timed(lambda: per_budget(one))
    serial = _timed(lambda: [per_budget(budgets[k:k + 1]) for k in range(len(budgets))]) / single
    single = _timed(lambda: per_budget(one))
    one_call = _timed(lambda: per_budget(budgets)) / single
    same = np.array_equal(run_lru_all(scn, budgets).counters, per_budget(budgets).counters)
    return {"onepass": statistics.median(rounds), "serial": serial, "one_call": one_call,
            "same": same}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--trace", nargs="+", help="sample traces instead of the synthetic stream")
    args = ap.parse_args()
    if args.trace:
        print(f"{'trace':<40}{'events':>11}{'one pass':>10}{'serial':>9}{'one call':>9}  exact")
        for path in args.trace:
            scn = sc.load([path])
            footprint = int(np.unique(scn.page).size)
            budgets = np.unique(np.linspace(max(1, footprint // 20), footprint, 20)
                                .astype(np.int64))
            r = measure(scn, budgets, args.repeat)
            print(f"{path:<40}{scn.n_events:>11,}{r['onepass']:>9.2f}x{r['serial']:>8.2f}x"
                  f"{r['one_call']:>8.2f}x  {r['same']}")
        return
    scn = sc.from_arrays([("bench", page_stream(args.events, args.pages))], name="bench")
    budgets = np.linspace(args.pages // 40, args.pages // 2, 20).astype(np.int64)
    r = measure(scn, budgets, args.repeat)
    print(f"{scn.n_events:,} events over {args.pages:,} pages, {len(budgets)} budgets "
          f"({budgets[0]:,}-{budgets[-1]:,} frames); one-pass equals per-budget: {r['same']}")
    print(f"{'run':<38}{'x one single-budget replay':>28}")
    for label, key in [("20 single-budget replays, serial", "serial"),
                       ("20 budgets, one engine call", "one_call"),
                       ("20 budgets, one pass (stack algorithm)", "onepass")]:
        print(f"{label:<38}{r[key]:>28.2f}")


if __name__ == "__main__":
    main()
