"""The engine strategies (those that stream) against their reference twin on real traces.

Hypothesis traces for every strategy are in ``test_registry.py``; here the
engine's configurations (every declared example of a strategy that is one
configuration of the engine kernel) run on workload and sample traces, and
with enough memory to need no reclaim. Kernel and twin must give the same
integers and the same final states.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from cmmsim.replay import engine
from cmmsim.replay import scenario as sc
from cmmsim.replay import states as S
from cmmsim.replay.strategies import get_strategy
from cmmsim.tracer.schema import N_OPS, Op
from tests.helpers import RANDOM_OPS, examples, guest_traces, run_both, sample_trace_scenarios

#: Every declared example of the strategies that are one engine configuration.
CONFIGS = examples(streams=True)


def test_configs_cover_the_engine_orders():
    # Every victim order of the engine's kernels, and hints ignored, stable/unused
    # only and all honoured: the configurations the tests here replay.
    used = [get_strategy(name).engine(get_strategy(name).parse_params(p)) for name, p in CONFIGS]
    assert {order for _, order, _ in used} == set(engine.ORDERS.values()) == set(engine._KERNELS)
    assert {honour for honour, _, _ in used} == {S.HONOUR_NONE, S.HONOUR_STABLE_UNUSED, S.HONOUR_ALL}


@pytest.mark.parametrize("strategy, params", CONFIGS)
@given(scn=guest_traces())
def test_enough_memory_costs_only_cold_faults(strategy, params, scn):
    res = run_both(strategy, params, scn, scn.n_pages)
    total = res.counters[0].sum(axis=0)
    for name in ("host_reads", "host_writes", "guest_writes", "discards"):
        assert total[S.C[name]] == 0, name
    accessed = len(np.unique(scn.page[scn.op <= Op.WRITE]))
    # Every accessed page faults exactly once: a zero fill, or a discard fault
    # when the guest marked it volatile before it was ever resident.
    assert total[S.C_ZERO_FILLS] + total[S.C_DISCARD_FAULTS] == accessed
    assert total[S.C_GUEST_READS] == total[S.C_DISCARD_FAULTS]


def test_random_ops_cover_every_op():
    # What guest_traces draws, against the schema: an op added there must be drawn too.
    assert set(RANDOM_OPS) == set(range(N_OPS)) == {int(o) for o in Op}


@pytest.mark.parametrize("strategy, params", CONFIGS)
def test_kernel_equals_twin_on_small_workload_traces(small_traces, strategy, params):
    for _, path in sorted(small_traces.items()):
        scn = sc.load([path])
        for frac in (0.05, 0.3):
            budget = max(1, int(frac * scn.n_pages))
            run_both(strategy, params, scn, budget)


@pytest.mark.slow  # the long prefixes below cover it in the slow run
@pytest.mark.parametrize("strategy, params", CONFIGS)
def test_kernel_equals_twin_on_sample_trace_prefixes(strategy, params):
    found = 0
    for _, scn in sample_trace_scenarios(limit=6_000):
        found += 1
        run_both(strategy, params, scn, max(1, scn.n_pages // 50))
    assert found > 0, "no sample traces found in sample_traces/"


@pytest.mark.slow
@pytest.mark.parametrize("strategy, params", CONFIGS)
def test_kernel_equals_twin_on_long_sample_trace_prefixes(strategy, params):
    # The synthetic samples whole; the multi-million-event real captures up to
    # 300 K events each (the pure-Python twin runs at ~100 K events/s).
    for _, scn in sample_trace_scenarios(limit=300_000):
        run_both(strategy, params, scn, max(1, scn.n_pages // 50))
