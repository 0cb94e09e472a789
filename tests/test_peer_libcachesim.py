"""Cross-check against a peer implementation: libCacheSim's LRU.

On the READ/WRITE stream of a trace, every access to a non-resident page
under ``host-lru`` is a miss (a host read or a zero fill): the count must
equal libCacheSim's LRU misses for objects of size 1 and the same capacity.
"""

from __future__ import annotations

import numpy as np
import pytest

from cmmsim.replay import scenario as sc
from cmmsim.replay.states import C
from cmmsim.tracer.schema import Op
from tests.helpers import make_arrays, scenario_of

lcs = pytest.importorskip("libcachesim", reason="libcachesim (dev extra) is not installed")


def lcs_lru_misses(keys: np.ndarray, capacity: int) -> int:
    cache = lcs.LRU(cache_size=capacity)
    req = lcs.Request()
    req.obj_size = 1
    misses = 0
    for k in keys.tolist():
        req.obj_id = k
        if not cache.get(req):
            misses += 1
    return misses


def host_lru_misses(scn: sc.Scenario, capacity: int) -> int:
    from cmmsim.replay.strategies import get_strategy

    strat = get_strategy("host-lru")
    res = strat.run(scn, np.array([capacity]), strat.parse_params({}))
    total = res.counters[0].sum(axis=0)
    return int(total[C["host_reads"]] + total[C["zero_fills"]])


@pytest.mark.parametrize("capacity", [1, 3, 17, 200])
def test_host_lru_faults_equal_libcachesim_lru_misses_on_random_stream(capacity):
    rng = np.random.default_rng(capacity)
    # A skewed stream over 400 pages, with a hot set, so every capacity matters.
    pfn = np.where(rng.random(20_000) < 0.7, rng.integers(0, 40, 20_000), rng.integers(0, 400, 20_000))
    op = rng.integers(0, 2, 20_000)
    scn = scenario_of(make_arrays(op, pfn, guest_pages=400))
    assert host_lru_misses(scn, capacity) == lcs_lru_misses(scn.page, capacity)


def test_host_lru_faults_equal_libcachesim_lru_misses_on_workload_traces(small_traces):
    for name, path in sorted(small_traces.items()):
        scn = sc.load([path])
        accesses = scn.page[scn.op <= Op.WRITE]
        for frac in (0.02, 0.2):
            capacity = max(1, int(frac * scn.n_pages))
            assert host_lru_misses(scn, capacity) == lcs_lru_misses(accesses, capacity), name
