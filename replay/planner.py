"""Which way a replay runs: one stack pass, the marker, the two-thread pipeline, or budgets side by side.

Every way gives the same integers (and, but for the stack pass, the same final
page states); ``PIPELINE`` and ``PARALLEL`` also leave the same engine state, so
a stream can switch between them from chunk to chunk. The choice is speed
alone, and it is made here, from what is asked, whether the trace is in memory
and numba's thread count, for the strategies and the engine both:

``ONE_PASS``
    every budget of exact-LRU ``host-lru`` in one stack pass
    (:mod:`cmmsim.replay.onepass`); only when no page state is asked for;
``PIPELINE``
    exact LRU, each budget in turn on two threads: one walks the LRU order
    (the time slots) ahead (:mod:`cmmsim.replay.lru_ahead`), the other runs the
    state machine a step behind it (:func:`cmmsim.replay.engine.replay_pipelined`);
``PARALLEL``
    the engine kernel with one budget per thread;
``MARKER``
    exact LRU or state-priority reclaim with every event in memory: the victim is
    the page of the event at a marker (:mod:`cmmsim.replay.marker`; one per class,
    :mod:`cmmsim.replay.class_marker`), one budget per thread.

See ``docs/performance.md`` for the measurements behind the thresholds.
"""

from __future__ import annotations

import numba as nb

ONE_PASS, PIPELINE, PARALLEL, MARKER = "one-pass", "pipeline", "parallel", "marker"
PATHS = (ONE_PASS, PIPELINE, PARALLEL, MARKER)

#: Events per step of the two-thread replay (victims of one step are computed
#: while the state machine runs the previous one): about an eighth of the
#: chunk, within these bounds (a hand-over costs tens of microseconds).
PIPELINE_STEP_MIN, PIPELINE_STEP_MAX = 1 << 16, 1 << 20


def pipeline_step(n_events: int) -> int:
    """Events per step of the two-thread replay of a chunk of ``n_events``."""
    return min(PIPELINE_STEP_MAX, max(PIPELINE_STEP_MIN, n_events // 8))


def choose(
    *,
    exact_lru: bool,
    n_budgets: int,
    n_events: int,
    one_pass: bool = False,
    in_memory: bool = False,
    state_priority: bool = False,
    step: int | None = None,
    threads: int | None = None,
) -> str:
    """The way to replay a chunk of events.

    Parameters
    ----------
    exact_lru : bool
        Victims in exact LRU order (the pipeline's condition).
    n_budgets : int
        Budgets asked for.
    n_events : int
        Events of the chunk.
    one_pass : bool
        The stack pass would give the answer (exact-LRU ``host-lru``, no
        page states asked for).
    in_memory : bool
        Every event of the trace is in memory (not a stream): the marker
        replay can read its victims from it.
    state_priority : bool
        Victims in ``state-priority`` order (a marker replay of its own).
    step : int, optional
        The pipeline's step (default :func:`pipeline_step`).
    threads : int, optional
        Numba's thread count (default: the current one).

    Returns
    -------
    str
        ``ONE_PASS``, ``PIPELINE``, ``PARALLEL`` or ``MARKER``.
    """
    if threads is None:
        threads = nb.get_num_threads()
    if step is None:
        step = pipeline_step(n_events)
    # The stack pass of 20 budgets costs about 1-2.5 single-budget replays, so it
    # wins from two budgets on; at one budget it took 0.8x the marker replay
    # (docs/perf-log.md, "Replay").
    if one_pass:
        return ONE_PASS
    # The marker replay on one thread took 0.5-0.7x the time of the two-thread
    # replay of the same budget, so it is the way whenever it can be.
    if exact_lru and in_memory:
        return MARKER
    # The same for state-priority: its markers took about 0.8x the time slots' CPU
    # time on one thread (docs/perf-log.md, "Replay", session 33).
    if state_priority and in_memory:
        return MARKER
    # On two cores, each budget on both threads beats two budgets side by side
    # (0.46 s per budget against 0.70 s on the bench stream): the two loops are
    # leaner apart than fused. With more threads the budgets run side by side,
    # unless there is only one.
    if exact_lru and n_events >= 2 * step and (threads == 2 or (threads > 2 and n_budgets == 1)):
        return PIPELINE
    return PARALLEL
