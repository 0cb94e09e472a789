"""One-pass budget sweep vs replays: 20 budgets of host-lru (exact LRU) on one trace.

Prints, measured in the same run on the same trace: one single-budget replay,
20 single-budget replays (what a sweep did before), the per-budget kernel doing
all 20 in parallel threads, and the one-pass stack algorithm. Target: the
20-budget one-pass costs at most 3x one single-budget replay.

    python benchmarks/bench_onepass.py [--events 20000000] [--pages 1000000]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import best_of, page_stream

from replay import engine
from replay import scenario as sc
from replay.onepass import run_lru_all
from replay.states import HONOUR_NONE, INITIAL_NO_HINTS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    scn = sc.from_arrays([("bench", page_stream(args.events, args.pages))], name="bench")
    budgets = np.linspace(args.pages // 40, args.pages // 2, 20).astype(np.int64)

    def per_budget(b):
        return engine.run(scn, b, honour=HONOUR_NONE, order=engine.ORDER_LRU,
                          initial=INITIAL_NO_HINTS)

    one = budgets[len(budgets) // 2: len(budgets) // 2 + 1]
    per_budget(one)
    run_lru_all(scn, one)  # compile both
    single = best_of(lambda: per_budget(one), args.repeat)
    serial = best_of(lambda: [per_budget(budgets[k:k + 1]) for k in range(len(budgets))], 1)
    threads = best_of(lambda: per_budget(budgets), 1)
    onepass = best_of(lambda: run_lru_all(scn, budgets), args.repeat)
    same = np.array_equal(run_lru_all(scn, budgets).counters, per_budget(budgets).counters)
    print(f"{scn.n_events:,} events over {args.pages:,} pages, {len(budgets)} budgets "
          f"({budgets[0]:,}-{budgets[-1]:,} frames); one-pass equals per-budget: {same}")
    print(f"{'run':<38}{'x one single-budget replay':>28}")
    for label, t in [("one single-budget replay", single),
                     ("20 single-budget replays, serial", serial),
                     ("20 budgets, per-budget kernel (threads)", threads),
                     ("20 budgets, one pass (stack algorithm)", onepass)]:
        print(f"{label:<38}{t / single:>28.2f}")


if __name__ == "__main__":
    main()
