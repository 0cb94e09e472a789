"""``balloon``: the host resizes its guests with balloons set by working-set estimates.

Every ``period_ns`` (counted from the first event) the host estimates each
guest's working set and sets **targets**: the host budget less a ``slack``
fraction, shared in proportion to the estimates, each target clamped to
``[min_fraction x guest memory (>= 1 page), guest memory]``: guests whose
share is above their memory are pinned there first, then (if none is)
guests below their minimum are pinned at it, and the rest share what is
left, again in proportion (equally if their estimates sum to 0), until no
share is out of bounds. A guest's balloon (``guest memory - target`` pages)
moves toward its target at most ``rate_pages_per_s`` pages per second
(integer arithmetic from the period's start, applied at event times); at
the first event the balloon is set to its first target at once. That first
sizing counts as inflation, and apart in ``balloon_initial_pages``: a trace
usually starts mid-life of its guests, so it is the replay's initial
condition, not work done during the trace, and is not priced (docs/costs.md).

Guest side (its own view of each page, as in ``static``): the guest keeps
its in-use pages within ``guest memory - balloon``. Inflating takes free
pages first (no cost); past those the guest reclaims its own pages like
Linux: the least recently used clean page cache page is dropped (the next
access is a guest read; in ``discards`` and ``discards_by_guest``), else the
least recently used stable page is swapped out (one guest write now, one
guest read on the next access).

Host side: exact LRU over host frames, as ``host-lru`` (hints ignored), or
as ``cmm`` with every hint honoured for ``balloon+cmm`` (then the guest's
own reclaim sends *set unused* for the frame it frees and *set stable*
when it takes a frame back); with ``replacement=two-list``, Linux's
two-list reclaim instead of LRU under either
(:mod:`cmmsim.replay.kernels.two_list`: a frame the balloon takes leaves its
list); with ``replacement=state-priority`` (``balloon+cmm`` only: without
hints every page is in one class), ``cmm``'s state-priority order
(:mod:`.host`). A balloon frame and a guest frame are
disjoint, so ``host-resident frames of a guest + its balloon <= guest
memory``: whenever that would break, the guest frame the balloon really
took is one of the guest's free frames the host still backs, and the host
drops it without I/O, oldest-freed first (``discards`` and
``discards_released``: the guest gave it up, the host chose nothing). When
an access (or a dual-paging read) would break it, the guest makes room first
(its own reclaim, then that drop) and the host backs the page after, in the
frame so freed: a full host evicts nothing for a frame the balloon holds.
**Dual paging**: when the guest swaps out a page the host has paged out, the
host must read it back first (``dual_paging``, also in ``host_reads``); it is
then resident (LRU most recent; two-list: on a list as any page faulted in)
until the host or the balloon takes it. With a host swap tier
(``tier_pages``, :mod:`cmmsim.replay.kernels.tier`) the host pages out to it
before its disk, by the engine's rules; a page read back for dual paging
comes from the tier when it is there.

Estimators (``estimator=``):

``sampling`` (VMware ESX)
    at each period start pick ``sample_pages`` random pages of the guest
    (seeded, with replacement); at its end ``current = touched x guest
    pages // sample_pages``, touched: read or written in the period (a hint
    is no touch); two moving averages (weights ``fast_alpha``,
    ``slow_alpha``, both started at the first measurement) and the estimate
    is ``max(current, fast, slow)``, each average rounded to the nearest page
    (a half up): it rises at once and falls slowly.
``fault-rate``
    starts at guest memory; after a period with more than
    ``fault_threshold`` guest refaults (``guest_reads``) it grows by
    ``grow`` x guest memory, else it shrinks by ``shrink`` x guest memory.
``oracle``
    the number of distinct pages the guest accesses in the next period: a
    bound on what estimation can do, not a real policy.

Result rows carry ``balloon_inflated_pages`` (with ``balloon_initial_pages``)
and ``balloon_deflated_pages``;
the per-period series (:attr:`cmmsim.replay.result.EngineResult.series`, columns
:data:`.params.SERIES`) holds each guest's estimate, target, balloon, in-use and
host-resident pages at the end of every period.

Package: :mod:`.params` (parameters, estimators, the series' columns),
:mod:`.host` (numba: the host's frames and victim orders), :mod:`.kernel`
(numba: ``_balloon_one``, one budget; ``_balloon_budgets``, prange;
``run_balloon``), :mod:`.twin` (the plain-Python twin).
"""

from __future__ import annotations

from cmmsim.replay.states import HONOUR_NONE, INITIAL_NO_HINTS
from cmmsim.replay.strategies import Series, Strategy
from cmmsim.replay.strategies.balloon.kernel import run_balloon
from cmmsim.replay.strategies.balloon.params import SERIES, Params
from cmmsim.replay.strategies.balloon.twin import reference_balloon

__all__ = ["BALLOON_SERIES", "SERIES", "STRATEGY", "Params", "reference", "run", "run_balloon"]


def _with_size(frame):
    import polars as pl

    return frame.with_columns(size_pages=pl.col("guest_pages") - pl.col("balloon_pages"))


#: The series every balloon strategy writes (also ``size_pages``: guest memory - balloon).
BALLOON_SERIES = Series(SERIES, _with_size)
#: Example parameters for the tests (nanosecond periods: the random test traces).
EXAMPLES = tuple(
    {"estimator": e, "period_ns": 5, "rate_pages_per_s": 10**9} for e in ("sampling", "fault-rate", "oracle")
) + ({"estimator": "fault-rate", "period_ns": 4, "rate_pages_per_s": 10**9, "replacement": "two-list"},)


def run(scenario, budgets, params, sample_at=None, keep_final=False, tier_pages=0, on_events=None):
    """``balloon``: hints ignored by the host."""
    return run_balloon(scenario, budgets, params, HONOUR_NONE, INITIAL_NO_HINTS, keep_final, tier_pages, on_events)


def reference(scenario, budget: int, params, tier_pages: int = 0):
    return reference_balloon(scenario, budget, params, honour_all=False, tier_pages=tier_pages)


STRATEGY = Strategy(
    name="balloon",
    params=Params,
    runner=run,
    reference=reference,
    summary="balloons sized every period from working-set estimates; host LRU or two-list underneath",
    series=BALLOON_SERIES,
    examples=EXAMPLES,
    host_tier=True,
)
