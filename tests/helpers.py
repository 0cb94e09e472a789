"""Test helpers for the whole suite: small traces, random traces, kernel against twin.

Fixtures and the hypothesis profile live in ``conftest.py``; everything a test
module imports lives here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

from cmmsim.replay import reference
from cmmsim.replay import scenario as sc
from cmmsim.replay import states as S
from cmmsim.replay.strategies import get_strategy, strategies
from cmmsim.tracer.io import TraceArrays, read_arrays
from cmmsim.tracer.schema import TraceMeta, count_ops

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "sample_traces"

#: Tests that record the live kernel: they drop the page cache and trace the
#: whole system, so under ``pytest -n`` they run one at a time (a file lock,
#: the ``live_kernel_lock`` fixture: xdist's groups do not hold on pytest 9).
LIVE_KERNEL = pytest.mark.usefixtures("live_kernel_lock")

#: Small parameter sets so every workload fits a few thousand pages (a small
#: system too: the default boot alone needs about 60 MiB).
_SMALL_GUEST = ["guest_mib=16", "kernel_mib=2", "daemon_mib=2", "boot_cache_mib=2", "boot_transient_mib=1", "log_mib=1"]
SMALL = {
    "kernel-compile": _SMALL_GUEST
    + [
        "heap_mib=1",
        "sources=50",
        "headers=30",
        "headers_per_unit=10",
        "compiler_mib=1",
        "exec_mib=0.5",
        "unit_cpu_ms=100",
        "touch_us=200",
    ],
    "web-serving": _SMALL_GUEST + ["directories=4", "workers=4", "worker_mib=0.25"],
    "awm": _SMALL_GUEST + ["pairs=1", "backend_gib=0.05", "app_mib=0.5"],
    "idle-after-boot": _SMALL_GUEST,
    "phased": _SMALL_GUEST + ["file_mib=0.25"],
    # Fleet guests take their workloads' defaults, which need 64 MiB (kernel-compile: 256).
    "fleet": [
        "guest_mib=64",
        "kernel_mib=2",
        "daemon_mib=2",
        "boot_cache_mib=2",
        "boot_transient_mib=1",
        "guests=4",
        "mix=web-serving:1,awm-server:1,phased:1,idle-after-boot:1",
        "boot_spread_s=2",
        "on_s=1",
        "off_s=1",
        "day_s=10",
    ],
}


def small(name: str, *overrides: str) -> list[str]:
    """``SMALL[name]`` with ``key=value`` overrides in place of its own values (a key
    given twice is refused)."""
    keys = {o.split("=", 1)[0] for o in overrides}
    return [p for p in SMALL[name] if p.split("=", 1)[0] not in keys] + list(overrides)


STATE_BITS = 0x7F  # everything but the CLOCK reference / scratch bit
#: The legal (guest, host) pairs as state bytes without flags.
LEGAL = {S.pack(S.GUEST_NAMES.index(p[0]), S.HOST_NAMES.index(p[1])) for p in S.PAIRS}


def make_arrays(ops, pfns, guest_pages=None, t_ns=None) -> TraceArrays:
    """A TraceArrays from plain lists (times default to 0, 1, 2, ...)."""
    op = np.asarray(ops, dtype=np.uint8)
    pfn = np.asarray(pfns, dtype=np.uint32)
    t = np.arange(len(op), dtype=np.int64) if t_ns is None else np.asarray(t_ns, np.int64)
    gp = guest_pages if guest_pages is not None else int(pfn.max(initial=0)) + 1
    meta = TraceMeta(guest_pages=gp, source="test", event_counts=count_ops(op))
    return TraceArrays(t, pfn, op, meta)


def scenario_of(*guests) -> sc.Scenario:
    """A scenario from TraceArrays (one per guest)."""
    return sc.from_arrays([(f"g{i}", a) for i, a in enumerate(guests)], name="test")


#: The op codes :func:`guest_traces` draws from: accesses twice as likely as each
#: hint, as in real traces.
RANDOM_OPS = (0, 0, 1, 1, 2, 3, 4, 5, 6)


@st.composite
def guest_traces(draw):
    """1-3 guests, each a random op sequence over a few pages, times interleaved."""
    n_guests = draw(st.integers(1, 3))
    guests = []
    for _ in range(n_guests):
        pages = draw(st.integers(1, 10))
        n = draw(st.integers(0, 120))
        ops = draw(st.lists(st.sampled_from(RANDOM_OPS), min_size=n, max_size=n))
        pfns = draw(st.lists(st.integers(0, pages - 1), min_size=n, max_size=n))
        gaps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
        guests.append(make_arrays(ops, pfns, guest_pages=pages, t_ns=np.cumsum(gaps)))
    return scenario_of(*guests)


def sample_trace_scenarios(limit):
    """(name, scenario) of every committed sample trace, each guest cut to ``limit`` events."""
    for path in (
        sorted(SAMPLE_DIR.glob("*.parquet")) + sorted(p for p in SAMPLE_DIR.iterdir() if p.is_dir())
        if SAMPLE_DIR.exists()
        else []
    ):
        files = sc.expand_inputs([path])
        traces = []
        for f in files:
            a = read_arrays(f)
            cut = slice(0, limit) if limit else slice(None)
            traces.append((f.stem, type(a)(a.t_ns[cut], a.pfn[cut], a.op[cut], a.meta)))
        yield path.name, sc.from_arrays(traces, name=path.name)


def sample_trace_budgets(limit):
    """(scenario, budgets) of every committed sample trace (:func:`sample_trace_scenarios`),
    the budgets a tenth, a third and all of its distinct pages (at least 1 page each)."""
    for _, scn in sample_trace_scenarios(limit):
        distinct = max(1, len(np.unique(scn.page)))
        yield scn, [max(1, distinct // 10), max(1, distinct // 3), distinct]


def twin_samples(scn, sample_at, twin) -> np.ndarray:
    """The state samples a replay writes, from a twin: (samples, guests, pairs of ``S.PAIRS``).

    Every sample but the last is taken before the first event at or after its
    time (:func:`cmmsim.replay.kernels.steps.samples_due`), so it holds the
    pages as the events before that time left them: the twin's final states on
    the trace cut there. The last sample holds the final states of the whole trace.

    Parameters
    ----------
    scn : Scenario
        The replayed trace.
    sample_at : ndarray[int64]
        Sample times, ns, non-decreasing.
    twin : callable
        ``twin(scenario) -> ReferenceResult`` at the replay's budget and parameters.
    """
    out = np.zeros((len(sample_at), scn.n_guests, len(S.PAIRS)), np.int64)
    for s, at in enumerate(sample_at):
        n = scn.n_events if s == len(sample_at) - 1 else int(np.searchsorted(scn.t_ns, at, side="left"))
        cut = dataclasses.replace(scn, t_ns=scn.t_ns[:n], page=scn.page[:n], op=scn.op[:n], guest=scn.guest[:n])
        for p, b in enumerate(twin(cut).final_states.tolist()):
            pair = S.GUEST_NAMES[b & S.GUEST_MASK] + S.HOST_NAMES[(b & S.HOST_MASK) >> S.HOST_SHIFT]
            out[s, scn.page_guest[p], S.PAIRS.index(pair)] += 1  # an illegal pair raises here
    return out


def assert_equals_twin(scn, res, budgets, honoured: set, victims: str, tier_pages: int = 0, sample_at=None) -> None:
    """Each budget of an engine result against the pure-Python twin.

    Parameters
    ----------
    scn : Scenario
        What ``res`` replayed.
    res : EngineResult
        One row per budget, in the order of ``budgets``; kept final states.
    budgets : list of int
        Frames per budget.
    honoured, victims, tier_pages
        The twin's hints, victim order and tier (pages), as
        :func:`cmmsim.replay.reference.replay_reference` takes them.
    sample_at : ndarray[int64], optional
        The sample times ``res`` was replayed with: its state samples are held
        to the twin's too (:func:`twin_samples`).
    """
    for k, b in enumerate(budgets):
        twin = reference.replay_reference(scn, b, honoured, victims, tier_pages)
        np.testing.assert_array_equal(twin.counters, res.counters[k], err_msg=f"budget {b}: counters")
        host = (int(res.host_peak[k]), int(res.host_sum_resident[k]))
        assert (twin.host_peak, twin.host_sum_resident) == host, f"budget {b}: host peak, sum"
        # The state bytes' flag bit is the kernel's scratch: the twin has none.
        np.testing.assert_array_equal(
            twin.final_states, res.final_states[k] & STATE_BITS, err_msg=f"budget {b}: final states"
        )
        if sample_at is not None:
            want = twin_samples(
                scn, sample_at, lambda cut, b=b: reference.replay_reference(cut, b, honoured, victims, tier_pages)
            )
            np.testing.assert_array_equal(want, res.samples[k], err_msg=f"budget {b}: state samples")


def examples(
    *, streams: bool | None = None, online: bool | None = None, samples_states: bool | None = None
) -> list[tuple[str, dict]]:
    """(strategy, params) for every registered strategy's declared examples, filtered
    by what it can do (``online``: not an offline floor)."""
    return [
        (s.name, dict(p))
        for s in strategies().values()
        if (streams is None or s.streams == streams)
        and (online is None or (not s.offline) == online)
        and (samples_states is None or s.samples_states == samples_states)
        for p in s.examples
    ]


def run_both(strategy: str, params: dict, scn: sc.Scenario, budget: int, sample_at=None):
    """Kernel and twin on one scenario at one budget; asserts they agree exactly.

    Returns the kernel's EngineResult (one budget).
    """
    strat = get_strategy(strategy)
    p = strat.parse_params(params)
    res = strat.run(scn, np.array([budget]), p, sample_at=sample_at, keep_final=True)
    ref = strat.reference(scn, budget, p)
    assert np.array_equal(res.counters[0], ref.counters), (
        f"{strategy} {params} budget {budget}: counters differ\n"
        f"kernel {dict(zip(S.COUNTERS, res.counters[0].sum(0).tolist(), strict=True))}\n"
        f"twin   {dict(zip(S.COUNTERS, ref.counters.sum(0).tolist(), strict=True))}"
    )
    assert int(res.host_peak[0]) == ref.host_peak
    assert int(res.host_sum_resident[0]) == ref.host_sum_resident
    check_kinds(res.counters[0])
    if res.final_states.shape[0]:
        np.testing.assert_array_equal(res.final_states[0] & STATE_BITS, ref.final_states)
    else:  # a strategy without page states (opt)
        assert ref.final_states.size == 0
    if res.series is not None:
        np.testing.assert_array_equal(res.series[0], ref.series)
    return res


def check_kinds(counters: np.ndarray) -> None:
    """The counters that split others (per guest, ``counters`` of shape (guests, counters))
    never count more than what they split: the discards the guest chose or gave up,
    the balloons' first sizing."""
    c = counters
    assert (c[:, S.C_DISCARDS_GUEST] >= 0).all() and (c[:, S.C_DISCARDS_RELEASED] >= 0).all()
    assert (c[:, S.C_DISCARDS_GUEST] + c[:, S.C_DISCARDS_RELEASED] <= c[:, S.C_DISCARDS]).all()
    assert (0 <= c[:, S.C_INFLATED_INITIAL]).all() and (c[:, S.C_INFLATED_INITIAL] <= c[:, S.C_INFLATED]).all()


def event_per_time(scn) -> sc.Scenario:
    """``scn`` with its events at times 0, 1, 2, ... (the same events in the same order),
    so that samples at those times fall before every event: random traces share times,
    and a sample is taken only before the first event at or after its time."""
    return dataclasses.replace(scn, t_ns=np.arange(scn.n_events, dtype=np.int64))


def check_invariants(scn, res, budget):
    """A replay sampled before every event keeps resident <= budget, legal state
    pairs and every page in exactly one pair."""
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


def host_counters(res) -> dict[str, int]:
    """Counters summed over guests, first budget, without the resident statistics."""
    total = res.counters[0].sum(axis=0)
    return {
        k: int(v)
        for k, v in zip(S.COUNTERS, total, strict=True)
        if k not in ("peak_resident_pages", "sum_resident_pages")
    }


def final_states(res) -> list[str]:
    return [S.describe(int(b) & STATE_BITS) for b in res.final_states[0]]


def total_io(res, b=0) -> int:
    """Host and guest reads and writes of budget ``b``, summed over guests."""
    tot = res.counters[b].sum(axis=0)
    return int(tot[S.C["host_reads"]] + tot[S.C["host_writes"]] + tot[S.C["guest_reads"]] + tot[S.C["guest_writes"]])


def write_small_trace(path, *, seed: int = 0, events: int = 3000, guest_pages: int = 256) -> Path:
    """A seeded hand-made guest trace: reads and writes over a skewed set of
    pages, with unused and volatile hints, written to ``path``; returns ``path``."""
    from cmmsim.tracer.io import write_trace
    from cmmsim.tracer.schema import Op

    rng = np.random.default_rng(seed)
    # A hot third of the pages takes most accesses, so small budgets page and large ones do not.
    hot = rng.integers(0, guest_pages // 3, events)
    cold = rng.integers(0, guest_pages, events)
    pfn = np.where(rng.random(events) < 0.7, hot, cold).astype(np.uint32)
    op = rng.choice([Op.READ, Op.WRITE, Op.SET_UNUSED, Op.SET_VOLATILE], events, p=[0.6, 0.3, 0.05, 0.05]).astype(
        np.uint8
    )
    t = np.arange(events, dtype=np.int64) * 1000
    write_trace(path, t, pfn, op, TraceMeta(guest_pages=guest_pages, source="test"))
    return Path(path)
