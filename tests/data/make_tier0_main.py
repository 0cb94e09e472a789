"""Make ``tier0_main.npz``: golden integers of the replay before the host swap tier.

Run once, from the repository root, on the code *before* the tier existed
(``python tests/data/make_tier0_main.py``): it replays the cases of
:func:`cases` (every strategy that pages on the host, and ``static``, at
three budgets, on the shipped sample traces cut short and on seeded random
traces) and stores each case's counters, host peak, frame-event sum and a
CRC-32 of the final state bytes. ``tests/test_tier.py`` replays the same
cases with a tier of capacity 0 and demands the same integers, bit for bit.

Three later changes the tier did not make were re-recorded into it (at capacity
0): set unused leaving a resident page's frame as its only copy (docs/model.md
section 9: the ``random*`` cases of ``cmm`` and ``cmm-light``; the sample traces
never meet it), a balloon guest making room before the host backs its page
(section 5, "Balloons": every ``balloon`` and ``balloon+cmm`` case of
``awm-96m`` and the ``random*`` traces), and the sampling estimator counting
accesses only, not allocations (the ``random*`` cases with ``estimator=sampling``;
the sample traces, cut short, give the same integers). The other cases are the
original recording.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "tier0_main.npz"
ROOT = HERE.parent.parent
#: Events per guest kept of each sample trace (small: the test must be fast).
SAMPLE_EVENTS = 4000
SAMPLES = ("idle-after-boot.parquet", "kernel-compile.parquet", "awm-96m")
#: (strategy, params) replayed on every trace.
STRATEGIES = (
    ("host-lru", {"replacement": "lru"}),
    ("host-lru", {"replacement": "clock"}),
    ("cmm", {"reclaim_order": "lru"}),
    ("cmm", {"reclaim_order": "state-priority"}),
    ("cmm-light", {}),
    ("balloon", {"estimator": "sampling", "period_ns": 50_000_000}),
    ("balloon+cmm", {"estimator": "fault-rate", "period_ns": 50_000_000}),
    ("free-page-reporting", {"order": 2, "delay_ns": 10_000_000}),
    ("static", {}),
    # Added with the tier of the balloons and free page reporting (recorded on the code
    # before it, as the cases above: the other estimators and reports at once).
    ("balloon", {"estimator": "oracle", "period_ns": 50_000_000}),
    ("balloon+cmm", {"estimator": "sampling", "period_ns": 50_000_000}),
    ("free-page-reporting", {"order": 0, "delay_ns": 0}),
)
#: Budgets as fractions of the pages a trace touches.
FRACTIONS = (0.2, 0.5, 0.8)


def random_scenario(seed: int):
    """Three guests of 40-80 pages, 3,000 events of every op, seeded."""
    from cmmsim.replay import scenario as sc
    from cmmsim.tracer.io import TraceArrays
    from cmmsim.tracer.schema import TraceMeta, count_ops

    rng = np.random.default_rng(seed)
    guests = []
    for g in range(3):
        pages = int(rng.integers(40, 81))
        n = 3000
        # Accesses twice as likely as each hint, and a hot set of a quarter of the pages.
        op = rng.choice(np.array([0, 0, 1, 1, 2, 3, 4, 5, 6], np.uint8), n)
        hot = rng.random(n) < 0.7
        pfn = np.where(hot, rng.integers(0, max(1, pages // 4), n), rng.integers(0, pages, n))
        t = np.cumsum(rng.integers(0, 2_000_000, n)).astype(np.int64)
        meta = TraceMeta(guest_pages=pages, source="test", event_counts=count_ops(op))
        guests.append((f"g{g}", TraceArrays(t, pfn.astype(np.uint32), op, meta)))
    return sc.from_arrays(guests, name=f"random{seed}")


def scenarios():
    """(name, scenario) of every trace the cases replay."""
    sys.path.insert(0, str(ROOT))
    from tests.helpers import SAMPLE_DIR, sample_trace_scenarios

    wanted = {name for name in SAMPLES if (SAMPLE_DIR / name).exists()}
    out = [(name, scn) for name, scn in sample_trace_scenarios(SAMPLE_EVENTS) if name in wanted]
    out += [(f"random{s}", random_scenario(s)) for s in (1, 2, 3)]
    return out


def budgets_of(scn) -> np.ndarray:
    touched = len(np.unique(scn.page[scn.op <= 1]))
    return np.array(sorted({max(scn.n_guests, int(touched * f)) for f in FRACTIONS}), np.int64)


def cases():
    """(key, strategy, params, scenario, budgets) of every golden case."""
    out = []
    for name, scn in scenarios():
        b = budgets_of(scn)
        for strategy, params in STRATEGIES:
            key = f"{name}|{strategy}|{sorted(params.items())}"
            out.append((key, strategy, params, scn, b))
    return out


def replay(strategy: str, params: dict, scn, budgets, **kw) -> dict[str, np.ndarray]:
    """The integers a case is held to (``kw``: extra run options, e.g. ``tier_pages``)."""
    from cmmsim.replay.strategies import get_strategy

    strat = get_strategy(strategy)
    res = strat.run(scn, budgets, strat.parse_params(params), keep_final=True, **kw)
    crc = np.array([zlib.crc32(np.ascontiguousarray(f & 0x7F).tobytes()) for f in res.final_states], np.int64)
    # The counters of the code before the tier (new counters are appended after them).
    return {
        "counters": res.counters[:, :, :16].copy(),
        "host_peak": res.host_peak,
        "host_sum": res.host_sum_resident,
        "final_crc": crc,
    }


def main() -> None:
    arrays = {}
    for key, strategy, params, scn, b in cases():
        for field, value in replay(strategy, params, scn, b).items():
            arrays[f"{key}|{field}"] = value
        arrays[f"{key}|budgets"] = b
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays)")


if __name__ == "__main__":
    main()
