"""The balloons' parameters and what kernel and twin both derive from them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from cmmsim.replay.states import OP_WRITE
from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.params import need

#: Columns of the per-period series, per guest (the kernel's last axis, in order).
SERIES = ("estimate_pages", "target_pages", "balloon_pages", "in_use_pages", "resident_pages")
S_ESTIMATE, S_TARGET, S_BALLOON, S_IN_USE, S_RESIDENT = range(len(SERIES))
#: Estimators, as the kernel knows them.
EST_SAMPLING, EST_FAULT_RATE, EST_ORACLE = 0, 1, 2
ESTIMATORS = {"sampling": EST_SAMPLING, "fault-rate": EST_FAULT_RATE, "oracle": EST_ORACLE}
MAX_PERIODS = 100_000
#: Help of ``slack``, shared by ``balloon`` and ``balloon+cmm`` (their defaults differ).
SLACK_HELP = (
    "fraction of the budget left unassigned [0,1): while the balloons hold their targets, at least that many "
    "frames stay unused by construction"
)
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Params:
    estimator: Literal["sampling", "fault-rate", "oracle"] = field(
        default="sampling",
        metadata={
            "help": "working-set estimator (oracle: the next period's distinct pages, known in advance: "
            "a bound by construction, not a policy)"
        },
    )
    period_ns: int = field(
        default=1_000_000_000,
        metadata={
            "help": "target period, ns (sampling: with sample_pages it sets the pages sampled, so the "
            "estimator's priced CPU, by construction)"
        },
    )
    slack: float = field(default=0.05, metadata={"help": SLACK_HELP})
    min_fraction: float = field(
        default=0.05,
        metadata={
            "help": "smallest target, fraction of guest memory: every guest keeps at least this by "
            "construction, and where the guests' minimums add up to more than the budget the balloons "
            "are pinned there and the host pages"
        },
    )
    rate_pages_per_s: int = field(
        default=32768, metadata={"help": "most balloon change per guest, pages/s (caps how fast a target is reached)"}
    )
    sample_pages: int = field(
        default=100,
        metadata={
            "help": "sampling: pages sampled per period (at most 1,048,576; with period_ns it sets the "
            "pages sampled, so the estimator's priced CPU, by construction)",
            "max": 1 << 20,
        },
    )
    fast_alpha: float = field(default=0.5, metadata={"help": "sampling: weight of the fast average (0,1]"})
    slow_alpha: float = field(default=0.1, metadata={"help": "sampling: weight of the slow average (0,1]"})
    fault_threshold: int = field(default=64, metadata={"help": "fault-rate: refaults per period that grow"})
    grow: float = field(default=0.1, metadata={"help": "fault-rate: growth, fraction of guest memory"})
    shrink: float = field(default=0.02, metadata={"help": "fault-rate: shrink, fraction of guest memory"})
    seed: int = field(default=1, metadata={"help": "sampling: random seed"})
    replacement: Literal["lru", "two-list"] = field(
        default="lru",
        metadata={"help": "victim choice: exact LRU or two-list (Linux's active/inactive lists, docs/model.md)"},
    )

    def __post_init__(self):
        need(self.period_ns > 0, f"period_ns must be positive, got {self.period_ns}")
        need(0 <= self.slack < 1, f"slack must be in [0,1), got {self.slack}")
        need(0 <= self.min_fraction <= 1, f"min_fraction must be in [0,1], got {self.min_fraction}")
        need(self.rate_pages_per_s >= 1, f"rate_pages_per_s must be >= 1, got {self.rate_pages_per_s}")
        need(
            self.rate_pages_per_s * self.period_ns < 1 << 62,
            "rate_pages_per_s x period_ns too large for 64-bit arithmetic",
        )
        need(self.sample_pages >= 1, f"sample_pages must be >= 1, got {self.sample_pages}")
        need(0 < self.fast_alpha <= 1, f"fast_alpha must be in (0,1], got {self.fast_alpha}")
        need(0 < self.slow_alpha <= 1, f"slow_alpha must be in (0,1], got {self.slow_alpha}")
        need(self.fault_threshold >= 0, f"fault_threshold must be >= 0, got {self.fault_threshold}")
        need(0 < self.grow <= 1, f"grow must be in (0,1], got {self.grow}")
        need(0 < self.shrink <= 1, f"shrink must be in (0,1], got {self.shrink}")
        need(self.seed >= 0, f"seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class Setup:
    """Everything derived from a scenario and params that both kernel and twin use."""

    estimator: int
    n_periods: int
    min_pages: np.ndarray  # per guest
    grow_pages: np.ndarray
    shrink_pages: np.ndarray
    oracle: np.ndarray  # (n_periods, n_guests) distinct pages accessed per period


def setup(scenario, params: Params) -> Setup:
    """Per-guest bounds and steps in pages, the period count and the oracle's counts."""
    gp = scenario.guest_pages.astype(np.int64)
    n_periods = 0
    if scenario.n_events:
        n_periods = int(scenario.t_ns[-1] - scenario.t_ns[0]) // params.period_ns + 1
        if n_periods > MAX_PERIODS:
            raise ParamError(f"period_ns={params.period_ns} gives {n_periods} periods; at most {MAX_PERIODS}")
    oracle = np.zeros((n_periods, scenario.n_guests), np.int64)
    if params.estimator == "oracle" and n_periods:
        acc = scenario.op <= OP_WRITE
        per = (scenario.t_ns[acc] - scenario.t_ns[0]) // params.period_ns
        pairs = np.unique(per * scenario.n_pages + scenario.page[acc].astype(np.int64))
        k = pairs // scenario.n_pages
        g = scenario.page_guest[pairs % scenario.n_pages].astype(np.int64)
        np.add.at(oracle, (k, g), 1)
    ceil = np.vectorize(lambda x: int(math.ceil(x)), otypes=[np.int64])
    return Setup(
        ESTIMATORS[params.estimator],
        n_periods,
        np.maximum(1, ceil(params.min_fraction * gp)),
        np.maximum(1, ceil(params.grow * gp)),
        np.maximum(1, ceil(params.shrink * gp)),
        oracle,
    )


def available(budget: int, slack: float) -> int:
    """Frames the targets share: the budget less the slack."""
    return int(budget * (1.0 - slack))


def period_ends(scenario, params: Params, n_periods: int) -> np.ndarray:
    """End time of each period, ns (the last: the last event's)."""
    if not n_periods:
        return np.zeros(0, np.int64)
    t_end = scenario.t_ns[0] + params.period_ns * (1 + np.arange(n_periods, dtype=np.int64))
    t_end[-1] = scenario.t_ns[-1]
    return t_end
