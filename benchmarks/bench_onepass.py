"""One-pass budget sweep vs replays: 20 budgets of host-lru (exact LRU) on one trace.

Prints, measured in the same run on the same trace: one single-budget replay
(``engine.run``'s way: the marker replay, :mod:`cmmsim.replay.marker`), 20
single-budget replays (what a sweep did before), the per-budget kernel given all
20 in one call (``engine.run``: one budget per thread), and the one-pass stack
algorithm (its budgets dealt to two threads). Target: the
20-budget one-pass costs at most 3x one single-budget replay.

    python benchmarks/bench_onepass.py [--events 20000000] [--pages 1000000]
    python benchmarks/bench_onepass.py --trace sample_traces/*.parquet

The synthetic stream gets 20 budgets from 2.5 % to 50 % of its pages; a trace
gets 20 budgets from 5 % to 100 % of its footprint, and the single-budget
replay is at the middle one. On the synthetic stream the same 20 budgets of
``cmm`` with ``state-priority`` reclaim (no stack pass exists for it) are timed
in one call against one such replay (issue 21, target 3: at most 5x), and so
are their SHARDS estimates (``cmmsim.replay.shards.sampled_curve``, 8 salts, at
``--rates``), with the largest error of the miss ratio against the exact replays,
absolute and in the estimate's standard errors. The
single replay and the one pass (or call) alternate ``--repeat`` times and the
ratio is the median of the rounds' ratios: the machines are shared and their
speed drifts within a run. The figures go to
``benchmarks/results/onepass.json`` (``onepass-traces.json`` with
``--trace``), or ``--json PATH``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import page_stream, timed  # noqa: E402
from benchmarks.figures import Column, Table, add_json_argument, emit  # noqa: E402
from cmmsim.replay import engine  # noqa: E402
from cmmsim.replay import scenario as sc  # noqa: E402
from cmmsim.replay.onepass import run_lru_all  # noqa: E402
from cmmsim.replay.shards import df_sampled_curve, sampled_curve  # noqa: E402
from cmmsim.replay.states import HONOUR_NONE, INITIAL_NO_HINTS, C  # noqa: E402
from cmmsim.replay.strategies import get_strategy  # noqa: E402


def measure(scn, budgets: np.ndarray, repeat: int) -> dict[str, float]:
    """Times relative to one single-budget replay (at the middle budget)."""

    def per_budget(b):
        return engine.run(scn, b, honour=HONOUR_NONE, order=engine.ORDER_LRU, initial=INITIAL_NO_HINTS)

    one = budgets[len(budgets) // 2 : len(budgets) // 2 + 1]
    per_budget(one)
    per_budget(budgets)
    run_lru_all(scn, budgets)  # compile (or load) every kernel before timing
    rounds = []
    for _ in range(repeat):
        single = timed(lambda: per_budget(one))
        rounds.append(timed(lambda: run_lru_all(scn, budgets)) / single)
    single = timed(lambda: per_budget(one))
    serial = timed(lambda: [per_budget(budgets[k : k + 1]) for k in range(len(budgets))]) / single
    single = timed(lambda: per_budget(one))
    one_call = timed(lambda: per_budget(budgets)) / single
    same = np.array_equal(run_lru_all(scn, budgets).counters, per_budget(budgets).counters)
    return {"onepass": statistics.median(rounds), "serial": serial, "one_call": one_call, "same": same}


def measure_state_priority(scn, budgets: np.ndarray, repeat: int, rates: list[float]) -> tuple[float, list[dict]]:
    """``cmm`` with state-priority reclaim: every budget in one call, relative to one
    replay at the middle budget (median of rounds). No stack pass exists for it
    (replay/onepass.py), so this is the engine's budgets side by side. Then its
    SHARDS estimate at each of ``rates``: the same ratio, and its errors against the
    exact miss ratios."""
    cmm = get_strategy("cmm")
    params = cmm.parse_params({"reclaim_order": "state-priority"})
    one = budgets[len(budgets) // 2 : len(budgets) // 2 + 1]
    cmm.run(scn, one, params)
    exact = cmm.run(scn, budgets, params).counters.sum(axis=1)
    accesses = int((scn.op <= 1).sum())
    miss = (exact[:, C["host_reads"]] + exact[:, C["zero_fills"]]) / accesses
    rounds = []
    for _ in range(repeat):
        single = timed(lambda: cmm.run(scn, one, params))
        rounds.append(timed(lambda: cmm.run(scn, budgets, params)) / single)
    sampled = []
    for rate in rates:

        def estimate(rate=rate):
            return sampled_curve(scn, budgets, rate, order="state-priority", salts=8)

        df = df_sampled_curve(estimate())  # compiles the sampler on the first rate
        ratios = []
        for _ in range(repeat):
            single = timed(lambda: cmm.run(scn, one, params))
            ratios.append(timed(estimate) / single)
        err = np.abs(df["miss_ratio_est"].to_numpy() - miss)
        se = df["miss_ratio_se"].to_numpy()
        sampled.append(
            {
                "rate": rate,
                "x_single": statistics.median(ratios),
                "max_err": float(err.max()),
                "max_z": float((err / se).max()),
                "min_pages": int(df["min_sampled_pages"].min()),
            }
        )
    return statistics.median(rounds), sampled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rates", type=float, nargs="+", default=[0.01, 0.1], help="SHARDS rates (synthetic stream)")
    ap.add_argument("--trace", nargs="+", help="sample traces instead of the synthetic stream")
    add_json_argument(ap)
    args = ap.parse_args()
    if args.trace:
        table = Table(
            "",
            [
                Column("trace", "trace"),
                Column("events", "events", ","),
                Column("onepass", "one pass", ".2f", "x"),
                Column("serial", "serial", ".2f", "x"),
                Column("one_call", "one call", ".2f", "x"),
                Column("same", "exact"),
            ],
        )
        for path in args.trace:
            scn = sc.load([path])
            footprint = int(np.unique(scn.page).size)
            budgets = np.unique(np.linspace(max(1, footprint // 20), footprint, 20).astype(np.int64))
            r = measure(scn, budgets, args.repeat)
            table.add(trace=path, events=scn.n_events, **r)
        emit("onepass-traces", [table], args)
        return
    scn = sc.from_arrays([("bench", page_stream(args.events, args.pages))], name="bench")
    budgets = np.linspace(args.pages // 40, args.pages // 2, 20).astype(np.int64)
    r = measure(scn, budgets, args.repeat)
    r["state_priority"], sampled = measure_state_priority(scn, budgets, args.repeat, args.rates)
    table = Table(
        f"{scn.n_events:,} events over {args.pages:,} pages, {len(budgets)} budgets "
        f"({budgets[0]:,}-{budgets[-1]:,} frames); one-pass equals per-budget: {r['same']}",
        [Column("run", "run"), Column("x_single", "x one single-budget replay", ".2f")],
    )
    for label, key in [
        (f"{len(budgets)} single-budget replays, serial", "serial"),
        (f"{len(budgets)} budgets, one engine call", "one_call"),
        (f"{len(budgets)} budgets, one pass (stack algorithm)", "onepass"),
        (f"{len(budgets)} budgets of cmm state-priority, one call (x one such replay)", "state_priority"),
    ]:
        table.add(run=label, x_single=r[key])
    shards = Table(
        f"SHARDS estimates of cmm state-priority at the same {len(budgets)} budgets (8 salts), "
        "against its exact replays: largest error of the miss ratio, absolute and in standard errors",
        [
            Column("rate", "rate", "g"),
            Column("x_single", "x one exact replay", ".2f"),
            Column("max_err", "largest error", ".4f"),
            Column("max_z", "in standard errors", ".1f"),
            Column("min_pages", "smallest sample, pages", ","),
        ],
    )
    for row in sampled:
        shards.add(**row)
    emit("onepass", [table, shards], args)


if __name__ == "__main__":
    main()
