"""Synthetic workloads: determinism and the Linux-like page discipline."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.traces import df_final_guest_states
from replay.scenario import expand_inputs
from tests.helpers import SMALL
from tracer.errors import ParamError
from tracer.io import read_arrays, validate_trace
from tracer.schema import Op
from tracer.synth import synthesize, workloads

NAMES = sorted(workloads())


def check_guest_discipline(op, pfn, guest_pages) -> dict:
    """Replay a generated trace from the guest's side and assert DESIGN.md's rules.

    Returns the largest number of in-use (non-U) pages seen.
    """
    state = ["U"] * guest_pages
    in_use = 0
    peak = 0
    for i, (o, p) in enumerate(zip(op.tolist(), pfn.tolist(), strict=True)):
        s = state[p]
        if o in (Op.READ, Op.WRITE):
            assert s != "U", f"event {i}: access to unused page {p}"
            assert not (o == Op.WRITE and s == "V"), f"event {i}: write to volatile page {p}"
        elif o == Op.SET_STABLE:
            if s == "U":
                in_use += 1
            state[p] = "S"
        elif o == Op.SET_UNUSED:
            assert s != "U", f"event {i}: page {p} freed twice"
            in_use -= 1
            state[p] = "U"
        elif o in (Op.SET_VOLATILE, Op.SET_POT_VOLATILE):
            assert s != "U", f"event {i}: unused page {p} marked volatile"
            state[p] = "V" if o == Op.SET_VOLATILE else "P"
        elif o == Op.SET_STABLE_IF_RESIDENT:
            assert s in ("V", "P"), f"event {i}: set-stable-if-resident on {s} page {p}"
            state[p] = "S"
        peak = max(peak, in_use)
    assert 0 <= in_use <= guest_pages
    return {"peak_in_use": peak}


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes(tmp_path, name):
    multi = workloads()[name].multi_guest
    digests = []
    for run in ("a", "b", "c"):
        seed = 3 if run != "c" else 4
        dest = tmp_path / (run if multi else f"{run}.parquet")
        paths = synthesize(name, dest, seed=seed, events=6000, params=SMALL[name])
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


@given(seed=st.integers(0, 2**32 - 1), events=st.integers(500, 6000),
       name=st.sampled_from(NAMES))
def test_generated_traces_obey_the_guest_rules(tmp_path_factory, seed, events, name):
    dest = tmp_path_factory.mktemp("h") / ("s" if workloads()[name].multi_guest else "s.parquet")
    paths = synthesize(name, dest, seed=seed, events=events, params=SMALL[name])
    total = 0
    for path in paths:
        arr = read_arrays(path)
        total += len(arr)
        check_guest_discipline(arr.op, arr.pfn, arr.meta.guest_pages)
    # Single-guest workloads hit the target exactly; awm splits it among guests.
    assert total == events or (workloads()[name].multi_guest and total <= events)


def test_tight_memory_forces_guest_reclaim_but_never_overflows(tmp_path):
    # A file set much larger than a 16 MiB guest: the guest must reclaim its cache.
    synthesize("web-serving", tmp_path / "w.parquet", seed=1, events=120_000,
               params=["guest_mib=16", "file_set_ratio=4", "workers=2", "worker_anon_pages=8"])
    arr = read_arrays(tmp_path / "w.parquet")
    facts = check_guest_discipline(arr.op, arr.pfn, arr.meta.guest_pages)
    assert facts["peak_in_use"] >= 0.99 * arr.meta.guest_pages  # memory filled up ...
    assert (arr.op == Op.SET_UNUSED).sum() > 1000  # ... and cache pages were freed


def test_idle_after_boot_is_mostly_unused(tmp_path):
    synthesize("idle-after-boot", tmp_path / "i.parquet", seed=0, events=80_000,
               params=["guest_mib=64"])
    states = dict(zip(*df_final_guest_states(tmp_path / "i.parquet")
                      .select("state", "fraction").to_dict(as_series=False).values(), strict=True))
    assert 0.85 <= states["U"] <= 0.95
    assert states["S"] > 0.02


def test_awm_writes_a_manifest_with_every_guest(tmp_path):
    synthesize("awm", tmp_path / "awm", seed=0, events=4000, params=SMALL["awm"] + ["pairs=2"])
    files = expand_inputs([tmp_path / "awm"])
    assert [f.name for f in files] == ["server0.parquet", "server1.parquet",
                                       "client0.parquet", "client1.parquet"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("nope", {}), "unknown workload 'nope'"),
        (("phased", {"bogus": 1}), "unknown parameter 'bogus'"),
        (("phased", {"phases": "0.2,2"}), "phases must be"),
        (("kernel-compile", {"cpus": 0}), "cpus must be >= 1"),
        (("web-serving", {"guest_mib": "many"}), "expected an integer"),
    ],
)
def test_bad_workload_requests(tmp_path, args, message):
    name, params = args
    with pytest.raises(ParamError, match=message):
        synthesize(name, tmp_path / "x.parquet", params=params)
    assert not (tmp_path / "x.parquet").exists()
