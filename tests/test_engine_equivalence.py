"""Kernels against their reference twins, and the engine's invariants.

Hypothesis makes random op sequences over small pfn ranges (several guests,
random budgets); every sample trace runs too. Kernel and twin must give the
same integers and the same final states.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay import scenario as sc
from replay import states as S
from tests.conftest import SAMPLE_DIR, make_arrays
from tests.engine_helpers import run_both, scenario_of
from tracer.io import read_arrays
from tracer.schema import N_OPS, Op

CONFIGS = [
    ("host-lru", {"replacement": "lru"}),
    ("host-lru", {"replacement": "clock"}),
    ("cmm", {"reclaim_order": "lru"}),
    ("cmm", {"reclaim_order": "state-priority"}),
    ("cmm-light", {}),
]
LEGAL = {S.pack(S.GUEST_NAMES.index(p[0]), S.HOST_NAMES.index(p[1])) for p in S.PAIRS}


@st.composite
def guest_traces(draw):
    """1-3 guests, each a random op sequence over a few pages, times interleaved."""
    n_guests = draw(st.integers(1, 3))
    guests = []
    for _ in range(n_guests):
        pages = draw(st.integers(1, 10))
        n = draw(st.integers(0, 120))
        # Accesses twice as likely as each hint, as in real traces.
        ops = draw(st.lists(st.sampled_from([0, 0, 1, 1, 2, 3, 4, 5, 6]), min_size=n, max_size=n))
        pfns = draw(st.lists(st.integers(0, pages - 1), min_size=n, max_size=n))
        gaps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
        guests.append(make_arrays(ops, pfns, guest_pages=pages, t_ns=np.cumsum(gaps)))
    return scenario_of(*guests)


def check_invariants(scn, res, budget):
    cnt = res.counters[0]
    assert (cnt >= 0).all()
    # Peak resident is the maximum over every moment: resident <= budget always.
    assert res.host_peak[0] <= min(budget, scn.n_pages)
    assert (cnt[:, S.C_PEAK] <= res.host_peak[0]).all()
    # A sample before every event: each counts only legal pairs, so a page in
    # an illegal state (or a lost page) would make the sum fall short.
    samples = res.samples[0]
    per_guest = samples.sum(axis=2)
    assert (per_guest == scn.guest_pages[None, :]).all()
    resident_pairs = [S.PAIRS.index(p) for p in S.PAIRS if p[1] == "r"]
    assert (samples[:, :, resident_pairs].sum(axis=(1, 2)) <= budget).all()
    finals = {(int(b) & (S.GUEST_MASK | S.HOST_MASK)) for b in res.final_states[0]}
    assert finals <= LEGAL


@pytest.mark.parametrize("strategy, params", CONFIGS)
@given(scn=guest_traces(), data=st.data())
def test_kernel_equals_twin_on_random_traces(strategy, params, scn, data):
    budget = data.draw(st.integers(1, scn.n_pages + 2))
    at = np.unique(scn.t_ns) if scn.n_events else None
    res = run_both(strategy, params, scn, budget, sample_at=at)
    if at is not None:
        check_invariants(scn, res, budget)


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
    assert N_OPS == 7  # guest_traces draws op codes 0-6


@pytest.mark.parametrize("strategy, params", CONFIGS)
def test_kernel_equals_twin_on_small_workload_traces(small_traces, strategy, params):
    for _, path in sorted(small_traces.items()):
        scn = sc.load([path])
        for frac in (0.05, 0.3):
            budget = max(1, int(frac * scn.n_pages))
            run_both(strategy, params, scn, budget)


def _sample_trace_scenarios(limit):
    for path in sorted(SAMPLE_DIR.glob("*.parquet")) + sorted(
            p for p in SAMPLE_DIR.iterdir() if p.is_dir()) if SAMPLE_DIR.exists() else []:
        files = sc.expand_inputs([path])
        traces = []
        for f in files:
            a = read_arrays(f)
            cut = slice(0, limit) if limit else slice(None)
            traces.append((f.stem, type(a)(a.t_ns[cut], a.pfn[cut], a.op[cut], a.meta)))
        yield path.name, sc.from_arrays(traces, name=path.name)


@pytest.mark.parametrize("strategy, params", CONFIGS)
def test_kernel_equals_twin_on_sample_trace_prefixes(strategy, params):
    found = 0
    for _, scn in _sample_trace_scenarios(limit=6_000):
        found += 1
        run_both(strategy, params, scn, max(1, scn.n_pages // 50))
    assert found > 0, "no sample traces found in sample_traces/"


@pytest.mark.slow
@pytest.mark.parametrize("strategy, params", CONFIGS)
def test_kernel_equals_twin_on_long_sample_trace_prefixes(strategy, params):
    # The synthetic samples whole; the multi-million-event real captures up to
    # 300 K events each (the pure-Python twin runs at ~100 K events/s).
    for _, scn in _sample_trace_scenarios(limit=300_000):
        run_both(strategy, params, scn, max(1, scn.n_pages // 50))
