"""Synthetic workloads: the guest model and its twin, determinism, the guest discipline,
steady state at the default lengths, fleets in bounded memory."""

from __future__ import annotations

import hashlib
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmmsim.replay.scenario import expand_inputs
from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.io import read_arrays, read_meta, validate_trace
from cmmsim.tracer.schema import Op
from cmmsim.tracer.synth import _rng, generate, plan, synthesize, workloads
from cmmsim.tracer.synth._plan import run_guest, state_fractions
from cmmsim.traces import df_final_guest_states
from tests.helpers import SMALL, small

NAMES = sorted(workloads())

#: The guest states (S, U, V, P) in which each op may come, and the state it leaves:
#: DESIGN.md section 2, "How Linux drives the states", as tracer/synth/_model.py emits it.
#: Accesses only to stable or potentially volatile pages (a volatile page is pinned
#: stable first), set-stable only on unused (allocation) or stable (dirtying) pages.
LEGAL = {
    Op.READ: "SP",
    Op.WRITE: "SP",
    Op.SET_STABLE: "US",
    Op.SET_UNUSED: "SVP",
    Op.SET_VOLATILE: "S",
    Op.SET_POT_VOLATILE: "SP",
    Op.SET_STABLE_IF_RESIDENT: "VP",
}
LEAVES = {
    Op.SET_STABLE: "S",
    Op.SET_UNUSED: "U",
    Op.SET_VOLATILE: "V",
    Op.SET_POT_VOLATILE: "P",
    Op.SET_STABLE_IF_RESIDENT: "S",
}


def check_guest_discipline(op, pfn, guest_pages) -> dict:
    """Replay a generated trace from the guest's side and assert the legal op sequences.

    Returns the largest number of in-use (non-U) pages seen and the final state counts.
    """
    legal = {int(o): set(s) for o, s in LEGAL.items()}
    leaves = {int(o): s for o, s in LEAVES.items()}
    state = ["U"] * guest_pages
    in_use = peak = 0
    for i, (o, p) in enumerate(zip(op.tolist(), pfn.tolist(), strict=True)):
        s = state[p]
        assert s in legal[o], f"event {i}: {Op(o).name} on a page in state {s} (pfn {p})"
        new = leaves.get(o, s)
        in_use += (new != "U") - (s != "U")
        state[p] = new
        peak = max(peak, in_use)
    assert 0 <= in_use <= peak <= guest_pages
    return {"peak_in_use": peak, "final": {k: state.count(k) for k in "SUVP"}}


def _collect(name, params, seed, events, twin, chunk):
    _, _, plans = plan(name, seed=seed, params=params)
    out = []
    for gp in plans:
        parts = []
        facts = run_guest(
            gp,
            lambda *cols, keep=parts: keep.append([c.copy() for c in cols]),
            events=events,
            twin=twin,
            chunk_events=chunk,
        )
        out.append(([np.concatenate(c) for c in zip(*parts, strict=True)], facts))
    return out


# -- the model and its twin ------------------------------------------------------------------------
@settings(max_examples=30)
@given(
    name=st.sampled_from(NAMES),
    seed=st.integers(0, 2**32 - 1),
    events=st.integers(2000, 30_000),
    chunk=st.integers(500, 20_000),
)
def test_twin_gives_the_same_events(name, seed, events, chunk):
    fast = _collect(name, SMALL[name], seed, events, False, chunk)
    twin = _collect(name, SMALL[name], seed, events, True, chunk)
    assert len(fast) == len(twin)
    for (cols, facts), (twin_cols, twin_facts) in zip(fast, twin, strict=True):
        for col, twin_col in zip(cols, twin_cols, strict=True):
            np.testing.assert_array_equal(col, twin_col)
        assert facts == twin_facts


@given(seed=st.integers(0, 2**64 - 1), stream=st.integers(0, 99))
def test_rng_twin_draws_the_same_numbers(seed, stream):
    cdf = _rng.zipf_cdf(57, 0.9)
    fast, twin = _rng.rng_state(seed, stream), _rng.rng_state(seed, stream)
    for _ in range(50):
        assert _rng.rng_u64(fast) == _rng.py_rng_u64(twin)
        assert _rng.rng_below(fast, 1000) == _rng.py_rng_below(twin, 1000)
        assert _rng.rng_exp(fast, 3.5e6) == _rng.py_rng_exp(twin, 3.5e6)
        assert _rng.rng_erlang(fast, 4, 10.0) == _rng.py_rng_erlang(twin, 4, 10.0)
        assert _rng.rng_pick(fast, cdf) == _rng.py_rng_pick(twin, cdf)
    np.testing.assert_array_equal(fast, twin)


# -- determinism and the discipline ----------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes_whatever_the_parallelism(tmp_path, name):
    multi = workloads()[name].multi_guest
    digests = []
    for run, seed, jobs in (("a", 3, 1), ("b", 3, 2), ("c", 4, 2)):
        dest = tmp_path / (run if multi else f"{run}.parquet")
        paths = synthesize(name, dest, seed=seed, events=8000, params=SMALL[name], jobs=jobs)
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in paths])
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


@pytest.mark.parametrize("name", NAMES)
def test_small_traces_validate_and_follow_the_rules(small_traces, name):
    for path in expand_inputs([small_traces[name]]):
        meta = validate_trace(path)
        arr = read_arrays(path)
        assert meta.source == f"synthetic:{name}" and meta.seed == 7
        facts = check_guest_discipline(arr.op, arr.pfn, meta.guest_pages)
        assert 0 < facts["peak_in_use"] <= meta.guest_pages


@given(seed=st.integers(0, 2**32 - 1), events=st.integers(500, 6000), name=st.sampled_from(NAMES))
def test_generated_traces_obey_the_guest_rules(tmp_path_factory, seed, events, name):
    dest = tmp_path_factory.mktemp("h") / ("s" if workloads()[name].multi_guest else "s.parquet")
    paths = synthesize(name, dest, seed=seed, events=events, params=SMALL[name], jobs=1)
    total = 0
    for path in paths:
        arr = read_arrays(path)
        total += len(arr)
        check_guest_discipline(arr.op, arr.pfn, arr.meta.guest_pages)
    assert total == events  # split exactly among the guests


@pytest.mark.parametrize("name", ["kernel-compile", "web-serving", "phased", "idle-after-boot"])
def test_the_models_counters_are_the_traces_final_states(tmp_path, name):
    # A run bounded by its duration is the model's whole history: its final page
    # counts by kind are the trace's final guest states, page for page.
    (res,) = generate(name, tmp_path / "t.parquet", seed=5, params=small(name, "duration_s=4"))
    states = dict(
        zip(*df_final_guest_states(res.path).select("state", "pages").to_dict(as_series=False).values(), strict=True)
    )
    want = {k: round(v * res.facts["guest_pages"]) for k, v in state_fractions(res.facts).items()}
    assert states == want
    assert res.facts["events"] == read_meta(res.path).n_events


def test_tight_memory_forces_guest_reclaim_but_never_overflows(tmp_path):
    # A 20 MiB file set in a 16 MiB guest: the cache fills memory and is recycled.
    (res,) = generate("web-serving", tmp_path / "w.parquet", seed=1, events=150_000, params=SMALL["web-serving"])
    arr = read_arrays(res.path)
    facts = check_guest_discipline(arr.op, arr.pfn, arr.meta.guest_pages)
    assert facts["peak_in_use"] >= 0.95 * arr.meta.guest_pages  # memory filled up ...
    assert res.facts["reclaimed_pages"] > 1000  # ... and cache pages were freed to make room
    assert res.facts["swap_outs"] == 0  # clean cache goes first


# -- guest size, steady state and rates ----------------------------------------------------------
@pytest.mark.parametrize("name", ["kernel-compile", "web-serving", "phased"])
def test_default_lengths_reach_steady_state(name):
    # Memory filled (most of it in use at the end) and page cache recycled
    # (reclaimed several times over a tenth of memory) at the default length.
    (res,) = generate(name, None, seed=1)
    f = res.facts
    in_use = 1 - f["free_pages"] / f["guest_pages"]
    assert in_use >= 0.6, f
    assert f["reclaimed_pages"] >= 0.1 * f["guest_pages"], f


@pytest.mark.parametrize("guest_mib", [1536, 96])
def test_awm_servers_fill_their_memory_at_the_default_length(guest_mib):
    results = generate("awm", None, seed=1, params=[f"guest_mib={guest_mib}"])
    servers = [r for r in results if r.name.startswith("server")]
    assert len(servers) == 4 and len(results) == 8
    for r in servers:
        assert 1 - r.facts["free_pages"] / r.facts["guest_pages"] >= 0.6, (r.name, r.facts)


def test_idle_in_use_share_follows_guest_size():
    # Nothing fills an idle guest: what the boot left in use is absolute, so a
    # guest four times larger has about a quarter of the share in use.
    share = {}
    for mib in (256, 1024):
        (res,) = generate("idle-after-boot", None, seed=2, params=[f"guest_mib={mib}"])
        share[mib] = 1 - res.facts["free_pages"] / res.facts["guest_pages"]
        assert res.facts["reclaimed_pages"] == 0
    assert 2.5 < share[256] / share[1024] < 4.0
    assert share[1024] < 0.15


def test_event_rates_follow_the_cpu_count():
    # The same build on twice the CPUs makes about twice the hints per second.
    rates = {}
    for cpus in (1, 2):
        params = ["guest_mib=128", "heap_mib=4", f"cpus={cpus}", "duration_s=30"]
        (res,) = generate("kernel-compile", None, seed=3, params=params)
        rates[cpus] = res.facts["events"] / (res.facts["last_t_ns"] * 1e-9)
    assert 1.6 < rates[2] / rates[1] < 2.2


# -- scenarios -------------------------------------------------------------------------------------
def test_awm_writes_a_manifest_with_every_guest(tmp_path):
    synthesize("awm", tmp_path / "awm", seed=0, events=4000, params=small("awm", "pairs=2"))
    files = expand_inputs([tmp_path / "awm"])
    assert [f.name for f in files] == ["server0.parquet", "server1.parquet", "client0.parquet", "client1.parquet"]


def _fleet_peak_bytes(tmp_path, duration_s):
    tracemalloc.start()
    try:
        results = generate(
            "fleet",
            tmp_path / f"f{duration_s}",
            seed=9,
            jobs=1,
            chunk_events=1 << 14,
            params=small("fleet", "guests=6", f"duration_s={duration_s}"),
        )
        return tracemalloc.get_traced_memory()[1], results
    finally:
        tracemalloc.stop()


def test_a_small_fleet_streams_in_bounded_memory(tmp_path):
    short_peak, short = _fleet_peak_bytes(tmp_path, 10)
    long_peak, long = _fleet_peak_bytes(tmp_path, 40)
    events = [sum(r.facts["events"] for r in rs) for rs in (short, long)]
    assert events[1] > 3 * events[0]
    # Chunks go to the files as they are made (in this process, jobs=1): the peak
    # does not grow with the length.
    assert long_peak < 1.2 * short_peak + (2 << 20)
    boots = []
    for r in long:
        meta = read_meta(r.path)
        assert meta.params["guest"] == r.name and r.name.endswith(meta.params["workload"])
        arr = read_arrays(r.path)
        check_guest_discipline(arr.op, arr.pfn, meta.guest_pages)
        boots.append(int(arr.t_ns[0]))
        assert abs(arr.t_ns[0] - meta.params["boot_s"] * 1e9) < 1e6  # the trace starts at boot
    assert len(set(boots)) == len(boots) and max(boots) < 2e9  # staggered within boot_spread_s


def test_progress_reports_every_event_and_guest_second_once_and_changes_no_byte(tmp_path):
    # A fleet: guests boot at staggered times, so each one's time counts from its boot.
    params = small("fleet", "duration_s=4")
    calls: list[tuple[int, int]] = []
    kw = dict(seed=5, chunk_events=1 << 14, params=params)
    watched = generate("fleet", tmp_path / "w", jobs=2, on_chunk=lambda n, ns: calls.append((n, ns)), **kw)
    plain = generate("fleet", tmp_path / "p", jobs=1, **kw)
    assert sum(n for n, _ in calls) == sum(r.facts["events"] for r in plain)
    plans = plan("fleet", seed=5, params=params)[2]
    assert sum(ns for _, ns in calls) == sum(int(gp.params.duration_s * 1e9) for gp in plans)
    assert len(calls) > 2 * len(plans) and all(ns >= 0 for _, ns in calls)  # chunk by chunk
    for a, b in zip(watched, plain, strict=True):
        assert a.path.read_bytes() == b.path.read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (("nope", {}), "unknown workload 'nope'"),
        (("phased", {"bogus": 1}), "unknown parameter 'bogus'"),
        (("phased", {"phases": "0.2,2"}), "phases must be"),
        (("kernel-compile", {"cpus": 0}), "cpus must be >= 1"),
        (("web-serving", {"guest_mib": "many"}), "expected an integer"),
        (("idle-after-boot", {"guest_mib": 32}), "must fit in 90 % of guest_mib"),
        (("fleet", {"mix": "web-serving:1,nope:2"}), "mix must be"),
        (("fleet", {"guest_mib": 128}), "kernel-compile guests of the fleet"),
    ],
)
def test_bad_workload_requests(tmp_path, args, message):
    name, params = args
    with pytest.raises(ParamError, match=message):
        synthesize(name, tmp_path / "x.parquet", params=params)
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("name, cpus", [("kernel-compile", 3), ("awm", 2), ("fleet", None)])
def test_traces_carry_the_guests_cpu_count(tmp_path, name, cpus):
    # The generator knows each guest's CPUs (its `cpus`): the trace says so, and the
    # replay's overhead_pct divides by it (docs/costs.md), not by a default of 1.
    multi = workloads()[name].multi_guest
    params = small(name, *([f"cpus={cpus}"] if cpus else []))
    dest = tmp_path / ("t" if multi else "t.parquet")
    paths = synthesize(name, dest, seed=1, events=4000, params=params, jobs=1)
    want = {gp.name: gp.params.cpus for gp in plan(name, seed=1, params=params)[2]}
    got = {read_meta(path).params["guest"]: read_meta(path).vcpus for path in paths}
    assert got == want and all(v >= 1 for v in got.values())
    if cpus:
        assert set(got.values()) == {cpus}
