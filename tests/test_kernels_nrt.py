"""The hot kernels run without numba's reference counting (see the comments at each).

numba increfs and decrefs every array argument of every helper call with
atomic operations and its pruning pass leaves them in loops; these kernels
allocate nothing and are compiled with ``_nrt=False``. This holds them to it:
the option is set and the compiled code calls no NRT refcount function.
"""

import numba as nb
import numpy as np
import pytest

from cmmsim.replay import class_marker, engine, lru_ahead, marker, planner
from cmmsim.replay import scenario as sc
from cmmsim.replay.kernels.guest_reclaim import guest_heaps
from cmmsim.replay.states import HONOUR_NONE, INITIAL_NO_HINTS, N_COUNTERS
from cmmsim.replay.strategies import balloon, opt, static
from cmmsim.tracer.linux import fast, rules, scan
from tests.helpers import make_arrays


def _run_all():
    scn = sc.from_arrays([("g", make_arrays([0, 1, 0, 1, 0, 3], [0, 1, 2, 3, 4, 0]))], name="t")
    for order in engine._KERNELS:
        # The time slots' kernels (exact LRU in memory takes the marker by default).
        engine.run(scn, [3], honour=HONOUR_NONE, order=order, initial=INITIAL_NO_HINTS, path=planner.PARALLEL)
    for order in (engine.ORDER_LRU, engine.ORDER_CLASS):
        engine.run(scn, [3], honour=HONOUR_NONE, order=order, initial=INITIAL_NO_HINTS, path=planner.MARKER)
    es = engine.alloc_state(scn.n_pages, 1, np.array([3]), engine.ORDER_LRU, INITIAL_NO_HINTS, 0)
    engine.replay_chunk(
        es,
        scn.t_ns,
        scn.page,
        scn.op,
        scn.guest,
        0,
        scn.page_guest,
        np.array([3]),
        HONOUR_NONE,
        engine.ORDER_LRU,
        np.zeros(0, np.int64),
        path=planner.PIPELINE,
        step=2,
    )
    for strat in (opt, static, balloon):
        strat.run(scn, [3], strat.Params())
    # A kernel only called from a cached one is not compiled here: call it too.
    target = np.array([3])
    static._static_replay(
        scn.page,
        scn.op,
        scn.guest,
        target,
        np.zeros(scn.n_pages, np.uint8),
        np.zeros(scn.n_pages, np.int64),
        np.zeros((1, N_COUNTERS), np.int64),
        np.zeros(2, np.int64),
        np.zeros(1, np.int64),
        np.zeros(1, np.int64),
        *guest_heaps(target),
        np.zeros(1, np.int64),
        0,
        0xFFFF,
    )
    buf = np.frombuffer(b"x 1 [000] 1.000001: kmem:mm_page_free: page=0x1 pfn=0x1 order=0\n", np.uint8)
    starts, ends = scan.line_bounds(buf)
    code, t, vals = scan.scan_lines(buf, starts, ends)
    assert code.tolist() == [rules.EV_PAGE_FREE]
    fast.FastMapper().feed_arrays(code, t, list(vals))


_HOT = [
    *(k for pair in engine._KERNELS.values() for k in pair),
    engine._replay_given_chunk,
    lru_ahead.walk_victims,
    marker.marker_budgets,
    class_marker.class_marker_budgets,
    opt._min_budgets,
    static._static_replay,
    fast._map_events,
    scan._scan,
]


@pytest.mark.parametrize("kernel", _HOT, ids=lambda k: k.__qualname__)
def test_kernel_is_compiled_without_reference_counting(kernel):
    assert kernel.targetoptions.get("_nrt") is False


@pytest.mark.slow  # a fresh compile of each kernel: minutes of CPU
@pytest.mark.parametrize("kernel", _HOT, ids=lambda k: k.__qualname__)
def test_kernel_has_no_reference_counting(kernel):
    _run_all()
    assert kernel.targetoptions.get("_nrt") is False
    assert kernel.signatures
    # numba cannot show the machine code of cached kernels: compile a fresh
    # copy (same options, no cache) for the signatures the runs above used.
    options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
    fresh = nb.njit(**options, cache=False)(kernel.py_func)
    for sig in kernel.signatures:
        fresh.compile(sig)
        asm = fresh.inspect_asm(sig)
        assert kernel.py_func.__name__ in asm and len(asm) > 1000
        assert "NRT_incref" not in asm and "NRT_decref" not in asm


def test_engine_refuses_a_host_resident_initial_state():
    scn = sc.from_arrays([("g", make_arrays([0], [0]))], name="t")
    with pytest.raises(ValueError, match="host-resident"):
        engine.run(scn, [1], honour=HONOUR_NONE, order=engine.ORDER_LRU, initial=0)
