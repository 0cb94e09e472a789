"""Conformance: hand-derived known answers for small traces, strategy by strategy.

The kernels and their plain-Python twins were written together, so the twin
tests cannot catch a misreading of the specification both share. Every test
here replays a trace of a few events through the public library
(``cmmsim.api.replay``) and compares every result counter with a count worked
out by hand from DESIGN.md section 2 and docs/model.md, the derivation written
beside the trace, event by event.

Notation in the derivations: ``R0`` READ of page 0, ``W0`` WRITE, ``S0`` set
stable, ``U0`` set unused, ``V0`` set volatile, ``P0`` set potentially
volatile, ``SI0`` set stable if resident. States as DESIGN.md (``Sr`` stable
resident, ``Vz`` volatile discarded, ...). ``res [a,b]`` lists the resident
pages from least to most recently used; ``zf``, ``hr``, ``hw`` ... are the
running counts.
"""

from __future__ import annotations

import numpy as np
import pytest

from cmmsim import api
from cmmsim.replay import scenario as sc
from cmmsim.tracer.io import TraceArrays
from cmmsim.tracer.schema import TraceMeta, count_ops

R, W, S, U, V, P, SI = 0, 1, 2, 3, 4, 5, 6

#: Every integer counter of a result row; a test names the ones it expects
#: non-zero and every other must be 0.
COUNTERS = (
    "accesses",
    "hints",
    "host_reads",
    "host_writes",
    "zero_fills",
    "discards",
    "discard_faults",
    "guest_reads",
    "guest_writes",
    "repairs",
    "content_lost",
    "peak_resident_pages",
    "dual_paging",
    "balloon_inflated_pages",
    "balloon_deflated_pages",
    "host_reads_tier",
    "host_writes_tier",
    "host_spills_tier",
    "discards_by_guest",
    "discards_released",
    "balloon_initial_pages",
    "total_io",
)


def guest(events, pages, t0=0):
    """A guest trace from ``(op, pfn)`` pairs, or ``(t_ns, op, pfn)`` triples."""
    if events and len(events[0]) == 3:
        t, op, pfn = zip(*events, strict=True)
    else:
        op, pfn = zip(*events, strict=True)
        t = range(t0, t0 + len(op))
    op = np.asarray(op, np.uint8)
    meta = TraceMeta(guest_pages=pages, source="test", event_counts=count_ops(op))
    return TraceArrays(np.asarray(t, np.int64), np.asarray(pfn, np.uint32), op, meta)


def run(strategy, guests, budget, params=None, tier_pages=0):
    """Replay; per row its counters: ``{None: host, 0: guest 0, ...}``."""
    scn = sc.from_arrays([(f"g{i}", g) for i, g in enumerate(guests)], name="conformance")
    df = api.replay(scn, strategy, [budget], params, tier_pages=tier_pages)
    return {row["guest"]: row for row in df.iter_rows(named=True)}


def check(rows, host, *per_guest):
    """Every counter of the host row and of each guest's row, exactly.

    ``host`` and each of ``per_guest`` name the non-zero counters; the rest
    must be 0. With one guest its row must equal the host's.
    """
    if not per_guest:
        per_guest = (host,)
    want = {None: host, **dict(enumerate(per_guest))}
    assert set(rows) == set(want), f"rows {sorted(rows, key=str)}"
    for g, exp in want.items():
        got = {c: rows[g][c] for c in COUNTERS}
        assert got == {c: exp.get(c, 0) for c in COUNTERS}, f"guest {g}"


# ---------------------------------------------------------------- host-lru


def test_host_lru_pageout_pagein_and_free_reclaims():
    # host-lru: every page starts Sz (model.md 9), hints are never sent.
    # 4 pages, budget 2.
    trace = [
        (W, 0),  # 1 Sz: zf1, ch0. res [0]
        (R, 1),  # 2 Sz: zf2 (never written: logically zero). res [0,1]
        (R, 2),  # 3 zf3; victim 0 Sr changed: hw1 -> Sp. res [1,2]
        (R, 0),  # 4 Sp: hr1, Sr unchanged (copy kept); victim 1 still zero: free, discards1 -> Sz. res [2,0]
        (R, 1),  # 5 zf4; victim 2 zero: discards2. res [0,1]
        (R, 2),  # 6 zf5; victim 0 unchanged, copy valid: no write, discards3 -> Sp. res [1,2]
        (R, 0),  # 7 hr2; victim 1 zero: discards4. res [2,0]
        (W, 0),  # 8 hit, ch0. res [2,0]
        (R, 3),  # 9 zf6; victim 2 zero: discards5. res [0,3]
        (R, 2),  # 10 zf7; victim 0 changed again: hw2. res [3,2]
        (U, 3),  # 11 ignored: 3 stays Sr
        (R, 3),  # 12 hit
    ]
    rows = run("host-lru", [guest(trace, 4)], 2)
    check(
        rows,
        dict(
            accesses=11,
            host_reads=2,
            host_writes=2,
            zero_fills=7,
            discards=5,
            peak_resident_pages=2,
            total_io=4,
        ),
    )
    # Resident frames after each event: 1, then 2 for the other 11 events.
    assert round(rows[None]["mean_resident_pages"] * 12) == 23


# ---------------------------------------------------------------- cmm


def test_cmm_lru_hints_discard_faults_content_lost_repairs():
    # cmm, reclaim_order=lru: every page starts Uz, every hint is honoured and
    # counted. 5 pages, budget 2.
    trace = [
        (S, 0),  # 1 h1 Uz -> Sz
        (W, 0),  # 2 zf1 Sr ch. res [0]
        (S, 1),  # 3 h2
        (W, 1),  # 4 zf2. res [0,1]
        (V, 1),  # 5 h3 Sr -> Vr
        (S, 2),  # 6 h4
        (W, 2),  # 7 zf3; victim 0 Sr changed: hw1 -> Sp. res [1,2]
        (R, 0),  # 8 hr1 (copy kept); victim 1 Vr -> Vz: discards1. res [2,0]
        (R, 1),  # 9 Vz: discard fault df1, gr1 -> Vr (ch set); victim 2 changed: hw2. res [0,1]
        (U, 2),  # 10 h5 Sp -> Uz, slot freed, no I/O
        (S, 2),  # 11 h6 Uz -> Sz
        (R, 2),  # 12 zf4; victim 0 unchanged, copy: discards2 -> Sp. res [1,2]
        (V, 0),  # 13 h7 Sp -> Vz, slot freed
        (R, 0),  # 14 df2 gr2 -> Vr; victim 1 Vr -> Vz: discards3. res [2,0]
        (S, 1),  # 15 h8 Vz -> Sz: content_lost1
        (R, 1),  # 16 zf5; victim 2 never written since its zero fill: discards4 -> Sz. res [0,1]
        (SI, 2),  # 17 h9 Sz unchanged
        (U, 1),  # 18 h10 Sr -> Ur (still resident)
        (R, 3),  # 19 Uz: repair1 -> Sz, zf6; victim 0 Vr -> Vz: discards5. res [1,3]
        (R, 1),  # 20 Ur: repair2 -> Sr, a hit. res [3,1]
        (SI, 0),  # 21 h11 Vz stays Vz ("discarded")
        (R, 0),  # 22 df3 gr3 -> Vr; victim 3 zero page: discards6. res [1,0]
    ]
    check(
        run("cmm", [guest(trace, 5)], 2),
        dict(
            accesses=11,
            hints=11,
            host_reads=1,
            host_writes=2,
            zero_fills=6,
            discards=6,
            discard_faults=3,
            guest_reads=3,
            repairs=2,
            content_lost=1,
            peak_resident_pages=2,
            total_io=6,
        ),
    )


def test_cmm_potentially_volatile_copies_and_volatile_writes():
    # cmm, lru, 2 pages, budget 1 (every fault evicts the other page).
    trace = [
        (S, 0),  # 1 h1
        (W, 0),  # 2 zf1, dirty, ch
        (P, 0),  # 3 h2 Sr -> Pr, dirty cleared (ch stays)
        (S, 1),  # 4 h3
        (W, 1),  # 5 zf2; victim 0 clean Pr -> Vz: discards1 (no I/O though changed)
        (R, 0),  # 6 Vz: df1 gr1 -> Vr; victim 1 changed: hw1 -> Sp
        (P, 0),  # 7 h4 Vr -> Pr clean
        (W, 0),  # 8 Pr hit: dirty
        (R, 1),  # 9 hr1 (copy kept); victim 0 dirty Pr -> Sp: hw2
        (R, 0),  # 10 hr2 -> Sr; victim 1 unchanged, copy: discards2 -> Sp
        (V, 0),  # 11 h5 Sr -> Vr: the host's copy survives (model.md 9)
        (S, 0),  # 12 h6 Vr -> Sr, copy still valid, unchanged
        (R, 1),  # 13 hr3; victim 0 unchanged with copy: discards3
        (R, 0),  # 14 hr4; victim 1 unchanged with copy: discards4
        (U, 0),  # 15 h7 Sr -> Ur: the copy is dropped (content garbage)
        (S, 0),  # 16 h8 Ur -> Sr: no copy anywhere now
        (R, 1),  # 17 hr5; victim 0 has no preserved copy: hw3 -> Sp
        (R, 0),  # 18 hr6; victim 1 unchanged with copy: discards5
        (V, 0),  # 19 h9 Sr -> Vr
        (W, 0),  # 20 write to a volatile page: hit, stays Vr (model.md 9)
        (R, 1),  # 21 hr7; victim 0 Vr -> Vz: discards6 (no I/O)
        (R, 0),  # 22 df2 gr2 -> Vr; victim 1 unchanged with copy: discards7
    ]
    check(
        run("cmm", [guest(trace, 2)], 1),
        dict(
            accesses=13,
            hints=9,
            host_reads=7,
            host_writes=3,
            zero_fills=2,
            discards=7,
            discard_faults=2,
            guest_reads=2,
            peak_resident_pages=1,
            total_io=12,
        ),
    )


# One trace, three hosts: what each honours. 3 pages, budget 1.
LIGHT_TRACE = [(S, 0), (W, 0), (V, 0), (S, 1), (W, 1), (P, 1), (SI, 0), (R, 0), (U, 1), (R, 1), (U, 1), (R, 2)]


def test_cmm_light_honours_stable_unused_only():
    # 1 S0 h1; 2 W0 zf1; 3 V0 not sent; 4 S1 h2; 5 W1 zf2, victim 0 Sr ch: hw1;
    # 6 P1, 7 SI0 not sent (0 stays Sp); 8 R0 hr1, victim 1 ch: hw2;
    # 9 U1 h3 Sp -> Uz, slot freed; 10 R1 Uz: repair1 -> Sz, zf3, victim 0
    # unchanged with copy: discards1; 11 U1 h4 Sr -> Ur; 12 R2 Uz: repair2, zf4,
    # victim 1 Ur -> Uz: discards2.
    check(
        run("cmm-light", [guest(LIGHT_TRACE, 3)], 1),
        dict(
            accesses=5,
            hints=4,
            host_reads=1,
            host_writes=2,
            zero_fills=4,
            discards=2,
            repairs=2,
            peak_resident_pages=1,
            total_io=3,
        ),
    )


def test_cmm_same_trace_all_hints():
    # 1 S0 h1; 2 W0 zf1; 3 V0 h2 Vr; 4 S1 h3; 5 W1 zf2, victim 0 Vr -> Vz: discards1;
    # 6 P1 h4 Pr clean; 7 SI0 h5 Vz stays; 8 R0 df1 gr1 -> Vr, victim 1 clean Pr
    # -> Vz: discards2; 9 U1 h6 Vz -> Uz; 10 R1 repair1, zf3, victim 0 Vr:
    # discards3; 11 U1 h7 Ur; 12 R2 repair2, zf4, victim 1 Ur: discards4.
    check(
        run("cmm", [guest(LIGHT_TRACE, 3)], 1),
        dict(
            accesses=5,
            hints=7,
            zero_fills=4,
            discards=4,
            discard_faults=1,
            guest_reads=1,
            repairs=2,
            peak_resident_pages=1,
            total_io=1,
        ),
    )


def test_host_lru_same_trace_no_hints():
    # All Sz, hints ignored. 2 W0 zf1; 5 W1 zf2, victim 0: hw1; 8 R0 hr1, victim
    # 1: hw2; 10 R1 Sp: hr2, victim 0 unchanged with copy: discards1; 12 R2 zf3,
    # victim 1 unchanged with copy: discards2.
    check(
        run("host-lru", [guest(LIGHT_TRACE, 3)], 1),
        dict(
            accesses=5,
            host_reads=2,
            host_writes=2,
            zero_fills=3,
            discards=2,
            peak_resident_pages=1,
            total_io=4,
        ),
    )


# 4 pages, budget 3: classes decide the victims under state-priority.
PRIORITY_TRACE = [
    (S, 0), (W, 0), (S, 1), (W, 1), (S, 2), (W, 2),  # 1-6: zf1-3, res [0,1,2] all Sr changed
    (V, 2),  # 7
    (P, 1),  # 8 clean Pr
    (S, 3),  # 9
    (W, 3),  # 10
    (U, 3),  # 11
    (R, 1),  # 12
    (W, 1),  # 13
    (S, 3),  # 14
    (W, 3),  # 15
    (R, 2),  # 16
    (P, 2),  # 17
    (W, 2),  # 18
    (R, 1),  # 19
    (R, 0),  # 20
]  # fmt: skip


def test_cmm_state_priority_victims_by_class():
    # 7 V2 h Vr; 8 P1 h clean Pr; 9 S3 h; 10 W3 zf4: no U page, the V/clean-P
    # class {1 (used at 4), 2 (at 6)}: victim 1 clean Pr -> Vz, discards1 (lru
    # order would take 0 and write it). 11 U3 h Ur. 12 R1 Vz: df1 gr1 -> Vr;
    # victim the U class: 3 -> Uz, discards2. res {0,2,1}. 13 W1 write to Vr:
    # stays Vr (class V). 14 S3 h; 15 W3 Sz: zf5; V class {2 (6), 1 (13)}:
    # victim 2 -> Vz, discards3. 16 R2 df2 gr2 -> Vr; V class {1}: discards4.
    # 17 P2 h clean Pr; 18 W2 dirty Pr (the rest). 19 R1 df3 gr3; no U, no V or
    # clean P: the rest {0 (2), 3 (15), 2 (18)}: victim 0 changed: hw1 -> Sp.
    # 20 R0 hr1; V class {1}: discards5.
    check(
        run("cmm", [guest(PRIORITY_TRACE, 4)], 3, {"reclaim_order": "state-priority"}),
        dict(
            accesses=11,
            hints=9,
            host_reads=1,
            host_writes=1,
            zero_fills=5,
            discards=5,
            discard_faults=3,
            guest_reads=3,
            peak_resident_pages=3,
            total_io=5,
        ),
    )


def test_cmm_lru_order_same_trace():
    # res [0,1,2]; 7 V2, 8 P1; 10 W3 zf4, victim 0 Sr changed: hw1. res [1,2,3].
    # 11 U3 Ur; 12 R1 clean Pr hit; 13 W1 dirty Pr; 14 S3 Ur -> Sr; 15 W3 hit;
    # 16 R2 Vr hit; 17 P2, 18 W2 dirty; 19 R1 hit. res [3,2,1]. 20 R0 Sp: hr1;
    # victim 3 Sr changed: hw2.
    check(
        run("cmm", [guest(PRIORITY_TRACE, 4)], 3),
        dict(
            accesses=11,
            hints=9,
            host_reads=1,
            host_writes=2,
            zero_fills=4,
            peak_resident_pages=3,
            total_io=3,
        ),
    )


def test_cmm_two_guests_counters_per_guest():
    # Two guests of 2 pages share 2 frames under global LRU (cmm); a counter
    # goes to the guest whose page it concerns. a = guest 0, b = guest 1.
    g0 = guest([(0, S, 0), (1, W, 0), (5, R, 0), (7, U, 0), (9, S, 1), (10, W, 1)], 2)
    g1 = guest([(2, S, 0), (3, W, 0), (4, S, 1), (6, W, 1), (8, R, 0)], 2)
    # t0 a.S0 (a h1); t1 a.W0 a zf1, res [a0]; t2 b.S0 (b h1); t3 b.W0 b zf1,
    # res [a0,b0]; t4 b.S1 (b h2); t5 a.R0 hit, res [b0,a0]; t6 b.W1 b zf2,
    # victim b0 changed: b hw1, res [a0,b1]; t7 a.U0 (a h2) Ur; t8 b.R0 Sp: b hr1,
    # victim a0 Ur -> Uz: a discards1, res [b1,b0]; t9 a.S1 (a h3); t10 a.W1
    # a zf2, victim b1 changed: b hw2, res [b0,a1].
    # Peaks per guest: a holds at most 1 frame; b 2 (after t8).
    check(
        run("cmm", [g0, g1], 2),
        dict(
            accesses=6,
            hints=5,
            host_reads=1,
            host_writes=2,
            zero_fills=4,
            discards=1,
            peak_resident_pages=2,
            total_io=3,
        ),
        dict(accesses=3, hints=3, zero_fills=2, discards=1, peak_resident_pages=1),
        dict(accesses=3, hints=2, host_reads=1, host_writes=2, zero_fills=2, peak_resident_pages=2, total_io=3),
    )


# ---------------------------------------------------------------- tier


def test_host_lru_tier_spills_and_exclusive_loads():
    # host-lru, 4 pages, budget 1, a tier of 1 page.
    trace = [
        (W, 0),  # 1 zf1
        (W, 1),  # 2 zf2; victim 0 changed -> tier: hwt1. tier [0]
        (W, 2),  # 3 zf3; victim 1 -> tier full: spill 0 (spills1, hw1); hwt2. tier [1]
        (R, 0),  # 4 disk: hr1; victim 2 -> spill 1 (spills2, hw2); hwt3. tier [2]
        (R, 2),  # 5 tier: hrt1, tier [] (exclusive: 2 changed again); victim 0 copy on disk: discards1
        (R, 0),  # 6 hr2; victim 2 changed: hwt4. tier [2]
        (R, 1),  # 7 hr3 (spilled to disk); victim 0 disk copy: discards2
        (R, 2),  # 8 hrt2, tier []; victim 1 disk copy: discards3
        (W, 2),  # 9 hit
        (R, 3),  # 10 zf4; victim 2 changed: hwt5. tier [2]
    ]
    rows = run("host-lru", [guest(trace, 4)], 1, tier_pages=1)
    check(
        rows,
        dict(
            accesses=10,
            host_reads=3,
            host_writes=2,
            zero_fills=4,
            discards=3,
            peak_resident_pages=1,
            host_reads_tier=2,
            host_writes_tier=5,
            host_spills_tier=2,
            total_io=5,
        ),
    )
    assert rows[None]["tier_pages"] == 1


def test_cmm_tier_hint_frees_a_tier_copy():
    # cmm, 3 pages, budget 1, tier 1.
    trace = [
        (S, 0),  # 1 h1
        (W, 0),  # 2 zf1
        (S, 1),  # 3 h2
        (W, 1),  # 4 zf2; victim 0 -> tier: hwt1. tier [0]
        (V, 0),  # 5 h3 Sp -> Vz: its tier place freed, no I/O. tier []
        (S, 2),  # 6 h4
        (W, 2),  # 7 zf3; victim 1 -> tier (room): hwt2. tier [1]
        (R, 0),  # 8 df1 gr1 -> Vr; victim 2 -> spill 1 (spills1, hw1); hwt3. tier [2]
        (R, 1),  # 9 disk: hr1; victim 0 Vr -> Vz: discards1
        (U, 2),  # 10 h5 Sp -> Uz: tier place freed
    ]
    check(
        run("cmm", [guest(trace, 3)], 1, tier_pages=1),
        dict(
            accesses=5,
            hints=5,
            host_reads=1,
            host_writes=1,
            zero_fills=3,
            discards=1,
            discard_faults=1,
            guest_reads=1,
            peak_resident_pages=1,
            host_writes_tier=3,
            host_spills_tier=1,
            total_io=3,
        ),
    )


# ---------------------------------------------------------------- two-list

TWO_LIST_TRACE = [(W, 0), (R, 1), (R, 0), (R, 2), (R, 3), (R, 2), (R, 4), (R, 3), (R, 0)]


def test_host_lru_two_list():
    # Budget 3 (< 1 GiB: inactive is low while inactive < active). Lists head first.
    # 1 W0 zf1 I=[0]; 2 R1 zf2 I=[1,0]; 3 R0 inactive use: activate, I=[1] A=[0];
    # 4 R2 zf3 I=[2,1]; 5 R3 zf4: 2 < 1 no; victim inactive tail 1 (zero): discards1,
    # I=[3,2] A=[0]; 6 R2 activate: I=[3] A=[2,0]; 7 R4 zf5: 1 < 2 low: A's tail 0
    # to I's head, I=[0,3] A=[2]; victim 3: discards2, I=[4,0]; 8 R3 zf6: victim 0
    # changed: hw1, I=[3,4]; 9 R0 Sp: hr1, victim 4: discards3, I=[0,3].
    check(
        run("host-lru", [guest(TWO_LIST_TRACE, 5)], 3, {"replacement": "two-list"}),
        dict(
            accesses=9,
            host_reads=1,
            host_writes=1,
            zero_fills=6,
            discards=3,
            peak_resident_pages=3,
            total_io=2,
        ),
    )


def test_host_lru_same_trace_lru():
    # 1 W0 [0]; 2 R1 [0,1]; 3 R0 [1,0]; 4 R2 [1,0,2]; 5 R3 victim 1: discards1
    # [0,2,3]; 6 R2 [0,3,2]; 7 R4 victim 0 changed: hw1 [3,2,4]; 8 R3 hit;
    # 9 R0 hr1, victim 2: discards2.
    check(
        run("host-lru", [guest(TWO_LIST_TRACE, 5)], 3),
        dict(
            accesses=9,
            host_reads=1,
            host_writes=1,
            zero_fills=5,
            discards=2,
            peak_resident_pages=3,
            total_io=2,
        ),
    )


# ---------------------------------------------------------------- offline bounds


def test_opt_floor_cyclic():
    # 3 pages written in a cycle, budget 2. MIN: 3 W2 evicts 1 (next use 5, 0's is
    # 4); 5 W1 must read its written content: 1 costly refault; evicts 0 (no next
    # use). First accesses: 3.
    trace = [(W, 0), (W, 1), (W, 2), (W, 0), (W, 1), (W, 2)]
    check(
        run("opt", [guest(trace, 3)], 2),
        dict(accesses=6, host_reads=1, zero_fills=3, peak_resident_pages=2, total_io=1),
    )


def test_opt_schedule_cyclic_with_writes():
    # cmm's rules with MIN's victims, 3 pages, budget 2: 1-4 S0 W0 S1 W1 zf2;
    # 5 S2 6 W2 zf3, victim 1 (next use 8 > 7): changed, hw1; 7 W0 hit; 8 W1 hr1,
    # victim 0 (no next use): changed, hw2; 9 W2 hit.
    trace = [(S, 0), (W, 0), (S, 1), (W, 1), (S, 2), (W, 2), (W, 0), (W, 1), (W, 2)]
    check(
        run("opt-schedule", [guest(trace, 3)], 2),
        dict(accesses=6, hints=3, host_reads=1, host_writes=2, zero_fills=3, peak_resident_pages=2, total_io=3),
    )


def test_opt_free_gap_renames():
    # 2 pages, budget 1. U0 then S0 (7) ends page 0's content: W0 at 7 is a new
    # page (a first access), so evicting 0 at 4 costs nothing; 1 is written at 4
    # and read at 8: one costly refault. The floor is no host: it reads the 4
    # hints to rename pages but honours none, so its `hints` is 0 (model.md,
    # "The floor"; I first expected 4, as `opt-schedule` counts them).
    trace = [(S, 0), (W, 0), (S, 1), (W, 1), (U, 0), (S, 0), (W, 0), (R, 1)]
    check(
        run("opt", [guest(trace, 2)], 1),
        dict(accesses=4, host_reads=1, zero_fills=3, peak_resident_pages=1, total_io=1),
    )
    # opt-schedule on the same trace: cmm's rules, MIN's victims. 4 W1 zf2, victim
    # 0 (its next use is a new page): changed, hw1; 7 W0 zf3 (Sp -> Uz at 5, Sz at 6),
    # victim 1 changed: hw2; 8 R1 hr1, victim 0: hw3. Every hint counted.
    check(
        run("opt-schedule", [guest(trace, 2)], 1),
        dict(accesses=4, hints=4, host_reads=1, host_writes=3, zero_fills=3, peak_resident_pages=1, total_io=4),
    )


@pytest.mark.parametrize("strategy", ["cmm", "cmm-light", "opt-schedule"])
def test_unused_then_stable_unwritten_keeps_its_content(strategy):
    # Set unused drops a resident page's preserved copy; taken back stable and not
    # written, the frame holds the only copy: its reclaim is a write and the next
    # access a host read (DESIGN.md section 2: "Sr -> Sp with one host write, none if
    # an unchanged preserved copy still exists"; model.md 9). Before the fix it was
    # taken for a never-written zero page: no write, then a zero fill.
    # 2 pages, budget 1 (opt-schedule has one choice of victim too).
    trace = [
        (S, 0),  # 1 h1
        (W, 0),  # 2 zf1
        (S, 1),  # 3 h2
        (W, 1),  # 4 zf2; victim 0 changed: hw1 -> Sp
        (R, 0),  # 5 hr1, unchanged with copy; victim 1 changed: hw2
        (U, 0),  # 6 h3 Sr -> Ur: copy dropped, the frame holds the content: changed
        (S, 0),  # 7 h4 Ur -> Sr, changed, no copy
        (R, 1),  # 8 hr2; victim 0: no copy, hw3 -> Sp
        (R, 0),  # 9 hr3 (not a zero fill); victim 1 unchanged with copy: discards1
    ]
    check(
        run(strategy, [guest(trace, 2)], 1),
        dict(
            accesses=5,
            hints=4,
            host_reads=3,
            host_writes=3,
            zero_fills=2,
            discards=1,
            peak_resident_pages=1,
            total_io=6,
        ),
    )
    # The same through a repair: 7 R0 on Ur is repaired to Sr (changed), a hit.
    trace[6] = (R, 0)
    check(
        run(strategy, [guest(trace, 2)], 1),
        dict(
            accesses=6,
            hints=3,
            host_reads=3,
            host_writes=3,
            zero_fills=2,
            discards=1,
            repairs=1,
            peak_resident_pages=1,
            total_io=6,
        ),
    )


# ---------------------------------------------------------------- static


def test_static_guest_reclaim_inside_equal_shares():
    # Budget 4, two guests of 4 pages: shares of 2 each. The host never pages;
    # every cost is the guest's own I/O; resident = in-use pages. The "zf" below
    # are first touches of fresh pages: the guest's own memory, no frame the host
    # zero-fills, so `zero_fills` stays 0 (model.md 6; I first expected 6).
    g0 = guest(
        [
            (S, 0),  # 1 in use {0}
            (W, 0),  # 2 zf1
            (S, 1),  # 3 {0,1}
            (W, 1),  # 4 zf2
            (V, 1),  # 5 clean page cache
            (S, 2),  # 6 allocation: 3 > 2, reclaim: LRU clean cache 1 dropped: discards1 (by guest)
            (W, 2),  # 7 zf3
            (R, 1),  # 8 re-read: df1 gr1 -> in use; reclaim: no clean cache, LRU stable 0 swapped: gw1
            (R, 0),  # 9 swap-in gr2; reclaim: clean cache 1 (V) dropped: discards2
            (U, 2),  # 10 freed: {0}
            (R, 1),  # 11 re-read df2 gr3; {0,1} fits
        ],
        4,
    )
    g1 = guest(
        [
            (S, 0),  # 1
            (W, 0),  # 2 zf1
            (S, 1),  # 3
            (W, 1),  # 4 zf2
            (S, 2),  # 5 reclaim: LRU stable 0 swapped: gw1
            (W, 2),  # 6 zf3
            (R, 0),  # 7 swap-in gr1; reclaim LRU stable 1 (4) before 2 (6): gw2
        ],
        4,
        t0=100,
    )
    check(
        run("static", [g0, g1], 4),
        dict(
            accesses=10,
            discards=2,
            discards_by_guest=2,
            discard_faults=2,
            guest_reads=4,
            guest_writes=3,
            peak_resident_pages=4,
            total_io=7,
        ),
        dict(
            accesses=6,
            discards=2,
            discards_by_guest=2,
            discard_faults=2,
            guest_reads=3,
            guest_writes=1,
            peak_resident_pages=2,
            total_io=4,
        ),
        dict(accesses=4, guest_reads=1, guest_writes=2, peak_resident_pages=2, total_io=3),
    )


# ---------------------------------------------------------------- free page reporting


def test_free_page_reporting_drops_a_reported_block():
    # order 1 (blocks of 2 pages), delay 10 ns, one block per report; 4 pages,
    # budget 2. The host pages by LRU and knows only the reports.
    trace = [
        (0, S, 0),
        (1, W, 0),  # zf1. res [0]
        (2, S, 1),
        (3, W, 1),  # zf2. res [0,1]
        (4, S, 2),
        (5, W, 2),  # zf3; victim 0 changed: hw1 -> Sp. res [1,2]
        (6, U, 0),
        (7, U, 1),  # block {0,1} free: queued, its report runs at 17
        (8, R, 2),  # hit. res [1,2]
        (20, S, 3),  # the report ran (17): 0 loses its copy, 1's frame dropped:
        #             discards1 (released), 2 pages reported. res [2]
        (21, W, 3),  # zf4. res [2,3]
        (22, S, 0),
        (23, W, 0),  # reported: zf5 (not a read); victim 2 changed: hw2. res [3,0]
    ]
    check(
        run("free-page-reporting", [guest(trace, 4)], 2, {"order": 1, "delay_ns": 10, "capacity": 1}),
        dict(
            accesses=6,
            hints=2,
            host_writes=2,
            zero_fills=5,
            discards=1,
            discards_released=1,
            peak_resident_pages=2,
            total_io=2,
        ),
    )


# ---------------------------------------------------------------- balloons

#: Oracle targets, no slack, balloons that move at once (10**12 pages/s: 1,000 pages
#: a nanosecond), periods of 100 ns from the first event; a floor of 1 page.
BALLOON_PARAMS = {
    "estimator": "oracle",
    "period_ns": 100,
    "slack": 0.0,
    "min_fraction": 0.25,
    "rate_pages_per_s": 10**12,
}


def balloon_guests():
    # Two guests of 4 pages, budget 6.
    # Period 1 [0, 100): g0 touches {0,1}, g1 {0,1,2,3}: oracle estimates 2 and 4, so
    # targets 6 x 2/6 = 2 and 6 x 4/6 = 4: g0's balloon 2 at the first event, at once
    # (inflated 2, initial 2), from its free pages (no cost); g1's 0. Host frames:
    # g0 {0,1} + g1 {0,1,2,3} = 6, the budget: no host reclaim. zf: 2 + 4.
    # g1 frees 2 and 3 at 12, 13 (the host still backs them).
    # Period 2 [100, 200): g0 touches {0,1,2,3} (estimate 4), g1 {0,1} (2): targets
    # 4 and 2. At 101 g0's balloon deflates 2 (deflated 2) and g1's inflates 2
    # (inflated 2): it takes g1's free pages 2 and 3, whose frames the host backs,
    # so g1's host frames (4) + balloon (2) > 4 pages: the host drops both frames,
    # oldest-freed first, no I/O (discards 2, released 2). g0 then takes 2 and 3
    # into use: host frames 4 + 2 = 6, no host reclaim; zf 2 more.
    # Accesses: g0 W0 W1 R0 R1 W2 W3 (6), g1 W0-W3 R0 R1 (6).
    g0 = guest(
        [
            (0, S, 0), (1, W, 0), (2, S, 1), (3, W, 1),
            (101, R, 0), (102, R, 1), (103, S, 2), (104, W, 2), (105, S, 3), (106, W, 3),
        ],
        4,
    )  # fmt: skip
    g1 = guest(
        [
            (4, S, 0), (5, W, 0), (6, S, 1), (7, W, 1), (8, S, 2), (9, W, 2), (10, S, 3), (11, W, 3),
            (12, U, 2), (13, U, 3),
            (101, R, 0), (102, R, 1),
        ],
        4,
    )  # fmt: skip
    return [g0, g1]


@pytest.mark.parametrize(("strategy", "hints"), [("balloon", (0, 0)), ("balloon+cmm", (4, 6))])
def test_balloon_oracle_inflate_deflate(strategy, hints):
    # balloon's host ignores hints (0); balloon+cmm's honours and counts them: g0
    # S0 S1 S2 S3, g1 S0..S3 U2 U3 (no reclaim by a guest, so no implicit hint).
    h0, h1 = hints
    check(
        run(strategy, balloon_guests(), 6, BALLOON_PARAMS),
        dict(
            accesses=12,
            hints=h0 + h1,
            zero_fills=8,
            discards=2,
            discards_released=2,
            balloon_inflated_pages=4,
            balloon_initial_pages=2,
            balloon_deflated_pages=2,
            peak_resident_pages=6,
        ),
        dict(
            accesses=6,
            hints=h0,
            zero_fills=4,
            balloon_inflated_pages=2,
            balloon_initial_pages=2,
            balloon_deflated_pages=2,
            peak_resident_pages=4,
        ),
        dict(
            accesses=6,
            hints=h1,
            zero_fills=4,
            discards=2,
            discards_released=2,
            balloon_inflated_pages=2,
            peak_resident_pages=4,
        ),
    )


def test_balloon_minimums_force_host_paging_and_dual_paging():
    # Two guests of 4 pages, budget 4, no slack, minimum 0.75 x 4 = 3 pages each.
    # Oracle estimates of the only period: g0 {0,1,2,3} 4, g1 {0,1} 2: shares 2.7
    # and 1.3, both under the minimum: both pinned at 3, targets summing to 6 > 4,
    # so the host pages. Balloons 1 and 1 at the first event (initial 2).
    g0 = guest([(0, S, 0), (1, W, 0), (2, S, 1), (3, W, 1), (8, S, 2), (9, W, 2), (10, S, 3), (11, W, 3)], 4)
    g1 = guest([(4, S, 0), (5, W, 0), (6, S, 1), (7, W, 1)], 4)
    # t1 a0 zf, t3 a1 zf, t5 b0 zf, t7 b1 zf: host [a0,a1,b0,b1] full.
    # t8 S2: g0 in use 3 <= 4 - 1. t9 W2 zf; host victim a0 changed: hw1 (g0).
    # t10 S3: g0 in use would be 4 > 3: its reclaim, no clean cache, swaps its LRU
    # stable page 0, which the host paged out: the host reads it back first (hr1,
    # dual_paging 1), evicting a1 (changed: hw2, g0); the guest writes it (gw1).
    # a0 stays backed (g0's frames {0,2} + balloon 1 <= 4). Host [b0,b1,a2,a0].
    # t11 W3 zf; host victim b0 changed: hw3 (g1).
    # g0's frames: 1, 2, 2 (t9), 2 (t10), 3 (t11): peak 3.
    check(
        run("balloon", [g0, g1], 4, {**BALLOON_PARAMS, "period_ns": 1000, "min_fraction": 0.75}),
        dict(
            accesses=6,
            host_reads=1,
            host_writes=3,
            zero_fills=6,
            guest_writes=1,
            dual_paging=1,
            balloon_inflated_pages=2,
            balloon_initial_pages=2,
            peak_resident_pages=4,
            total_io=5,
        ),
        dict(
            accesses=4,
            host_reads=1,
            host_writes=2,
            zero_fills=4,
            guest_writes=1,
            dual_paging=1,
            balloon_inflated_pages=1,
            balloon_initial_pages=1,
            peak_resident_pages=3,
            total_io=4,
        ),
        dict(
            accesses=2,
            host_writes=1,
            zero_fills=2,
            balloon_inflated_pages=1,
            balloon_initial_pages=1,
            peak_resident_pages=2,
            total_io=1,
        ),
    )


# ---------------------------------------------------------------- more rules


def test_host_lru_clock_second_chance():
    # host-lru, replacement=clock, 4 pages, budget 3. A frame table and a hand;
    # a faulted page enters with its reference bit clear (model.md 9), a use sets it.
    # 1 W0 zf1 f0; 2 R0 ref0; 3 R1 zf2 f1; 4 R2 zf3 f2, hand at f0; 5 R3 zf4: f0's
    # page 0 referenced: clear, on; f1's page 1 not: victim (zero): discards1,
    # f1 = 3; 6 R0 hit. (Exact LRU would evict 0 at 5: hw1, then hr1 at 6.)
    trace = [(W, 0), (R, 0), (R, 1), (R, 2), (R, 3), (R, 0)]
    check(
        run("host-lru", [guest(trace, 4)], 3, {"replacement": "clock"}),
        dict(accesses=6, zero_fills=4, discards=1, peak_resident_pages=3),
    )
    check(
        run("host-lru", [guest(trace, 4)], 3),
        dict(accesses=6, host_reads=1, host_writes=1, zero_fills=4, discards=1, peak_resident_pages=3, total_io=2),
    )


def test_cmm_volatile_from_zero_and_preserved():
    # cmm, 3 pages, budget 1: set volatile or potentially volatile on a page with
    # no frame (Sz, Uz, Sp) makes it Vz (DESIGN.md's table); touching it is a
    # discard fault even if it was never written.
    trace = [
        (S, 0),  # 1 h1 Uz -> Sz
        (V, 0),  # 2 h2 Sz -> Vz
        (R, 0),  # 3 df1 gr1 -> Vr (changed)
        (S, 1),  # 4 h3
        (W, 1),  # 5 zf1; victim 0 Vr -> Vz: discards1
        (P, 2),  # 6 h4 Uz -> Vz
        (R, 2),  # 7 df2 gr2 -> Vr; victim 1 changed: hw1 -> Sp
        (P, 1),  # 8 h5 Sp -> Vz, slot freed
        (R, 1),  # 9 df3 gr3 -> Vr; victim 2 Vr: discards2
        (SI, 1),  # 10 h6 Vr -> Sr (changed: the re-read wrote the frame, model.md 9)
        (S, 2),  # 11 h7 Vz -> Sz: content_lost1
        (R, 2),  # 12 zf2; victim 1 Sr changed: hw2
    ]
    check(
        run("cmm", [guest(trace, 3)], 1),
        dict(
            accesses=5,
            hints=7,
            host_writes=2,
            zero_fills=2,
            discards=2,
            discard_faults=3,
            guest_reads=3,
            content_lost=1,
            peak_resident_pages=1,
            total_io=5,
        ),
    )


def test_tier_spill_counts_to_the_spilled_pages_guest():
    # host-lru, guests of 2 and 1 pages, budget 1, tier 1. t0 a0 zf; t1 b0 zf, victim
    # a0 -> tier (hwt, a); t2 a1 zf, victim b0 -> tier full: spill a0 to the disk
    # (spill and hw to a), b0 in (hwt, b).
    g0 = guest([(0, W, 0), (2, W, 1)], 2)
    g1 = guest([(1, W, 0)], 1)
    check(
        run("host-lru", [g0, g1], 1, tier_pages=1),
        dict(
            accesses=3,
            host_writes=1,
            zero_fills=3,
            host_writes_tier=2,
            host_spills_tier=1,
            peak_resident_pages=1,
            total_io=1,
        ),
        dict(
            accesses=2,
            host_writes=1,
            zero_fills=2,
            host_writes_tier=1,
            host_spills_tier=1,
            peak_resident_pages=1,
            total_io=1,
        ),
        dict(accesses=1, zero_fills=1, host_writes_tier=1, peak_resident_pages=1),
    )


def test_free_page_reporting_capacity_and_reuse():
    # order 0 (single pages), delay 10 ns, one block per report; 3 pages, budget 2.
    trace = [
        (0, S, 0),
        (1, W, 0),  # zf1
        (2, S, 1),
        (3, W, 1),  # zf2. res [0,1]
        (4, U, 0),  # queued: a report at 14
        (5, U, 1),  # queued: over capacity, into the next report (24)
        (15, S, 2),  # the report at 14 ran: page 0 dropped (discards1, released1, h1). res [1]
        (16, W, 2),  # zf3. res [1,2]
        (18, S, 1),  # page 1 in use again: not free when its report runs at 24
        (19, W, 1),  # hit (the host never dropped it). res [2,1]
        (30, S, 0),
        (31, W, 0),  # reported: zf4, not a read; victim 2 changed: hw1
    ]
    check(
        run("free-page-reporting", [guest(trace, 3)], 2, {"order": 0, "delay_ns": 10, "capacity": 1}),
        dict(
            accesses=5,
            hints=1,
            host_writes=1,
            zero_fills=4,
            discards=1,
            discards_released=1,
            peak_resident_pages=2,
            total_io=1,
        ),
    )


@pytest.mark.parametrize(
    ("strategy", "params", "g0_hints", "g1_hints", "host_writes", "host_discards"),
    [
        ("balloon", {}, 0, 0, 2, 0),
        ("balloon+cmm", {}, 6, 2, 1, 1),
        ("balloon+cmm", {"replacement": "state-priority"}, 6, 2, 1, 1),
    ],
)
def test_balloon_guest_drops_clean_cache(strategy, params, g0_hints, g1_hints, host_writes, host_discards):
    # As the test above (minimums 3 of 4 pages pinned, budget 4, balloons 1 and 1),
    # but g0's page 1 is clean page cache (V1 at 4), so g0's reclaim at t11 drops it
    # (discards, discards_by_guest) instead of swapping.
    # balloon (hints ignored): t1 a0, t3 a1, t6 b0, t8 b1 zf; t10 W2 zf, host victim
    # a0 changed: hw1; t11 S3: g0 drops page 1, no I/O; t12 W3 zf, host victim a1,
    # which the host takes for stable and changed: hw2. g0's frames peak at 2.
    # balloon+cmm, LRU: V1 makes a1 Vr; t10 victim a0: hw1; t11 the guest's drop
    # tells the host set unused (a hint: g0's 6 = S0 S1 V1 S2 S3 + that one), a1
    # Ur; t12 victim a1 Ur: no I/O, discards (the host's choice).
    # balloon+cmm, state-priority: t10 victim a1 (class V): discards; t11 the guest
    # drops page 1 (Vz -> Uz by its set unused); t12 victim a0 (rest): hw1.
    g0 = guest(
        [(0, S, 0), (1, W, 0), (2, S, 1), (3, W, 1), (4, V, 1), (9, S, 2), (10, W, 2), (11, S, 3), (12, W, 3)], 4
    )
    g1 = guest([(5, S, 0), (6, W, 0), (7, S, 1), (8, W, 1)], 4)
    p = {**BALLOON_PARAMS, "period_ns": 1000, "min_fraction": 0.75, **params}
    check(
        run(strategy, [g0, g1], 4, p),
        dict(
            accesses=6,
            hints=g0_hints + g1_hints,
            host_writes=host_writes,
            zero_fills=6,
            discards=1 + host_discards,
            discards_by_guest=1,
            balloon_inflated_pages=2,
            balloon_initial_pages=2,
            peak_resident_pages=4,
            total_io=host_writes,
        ),
        dict(
            accesses=4,
            hints=g0_hints,
            host_writes=host_writes,
            zero_fills=4,
            discards=1 + host_discards,
            discards_by_guest=1,
            balloon_inflated_pages=1,
            balloon_initial_pages=1,
            peak_resident_pages=2,
            total_io=host_writes,
        ),
        dict(
            accesses=2,
            hints=g1_hints,
            zero_fills=2,
            balloon_inflated_pages=1,
            balloon_initial_pages=1,
            peak_resident_pages=2,
        ),
    )


def test_opt_volatile_content_costs_a_read_unless_set_stable():
    # 2 pages, budget 1. 0 is volatile when 1 takes the frame: its later read must
    # re-read it (a discard fault's guest read): the floor counts 1.
    trace = [(S, 0), (W, 0), (V, 0), (S, 1), (W, 1), (R, 0)]
    check(
        run("opt", [guest(trace, 2)], 1),
        dict(accesses=3, host_reads=1, zero_fills=2, peak_resident_pages=1, total_io=1),
    )
    # Marked volatile and then stable in the gap: its content need not survive
    # (model.md, "The floor"): the read is of a new page, a first access.
    trace = [(S, 0), (W, 0), (V, 0), (S, 1), (W, 1), (S, 0), (R, 0)]
    check(
        run("opt", [guest(trace, 2)], 1),
        dict(accesses=3, zero_fills=3, peak_resident_pages=1),
    )


# ---------------------------------------------------------------- the file format


@pytest.mark.parametrize(
    ("strategy", "want"),
    [
        # The derivations of the LIGHT_TRACE tests above.
        ("host-lru", dict(host_reads=2, host_writes=2, zero_fills=3, discards=2, total_io=4)),
        ("cmm-light", dict(hints=4, host_reads=1, host_writes=2, zero_fills=4, discards=2, repairs=2, total_io=3)),
        (
            "cmm",
            dict(hints=7, zero_fills=4, discards=4, discard_faults=1, guest_reads=1, repairs=2, total_io=1),
        ),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_a_parquet_file_written_from_the_documented_format(tmp_path, strategy, want, stream):
    # Written with pyarrow alone, as model.md section 2 describes a trace: columns
    # t_ns int64, pfn uint32, op uint8; cmmsim.* metadata, each value JSON.
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    op, pfn = zip(*LIGHT_TRACE, strict=True)
    table = pa.table(
        {
            "t_ns": pa.array(range(len(op)), pa.int64()),
            "pfn": pa.array(pfn, pa.uint32()),
            "op": pa.array(op, pa.uint8()),
        }
    )
    meta = {
        "schema_version": 1,
        "page_size": 4096,
        "guest_pages": 3,
        "source": "test",
        "params": {},
        "seed": None,
        "event_counts": {},
        "converter": {},
    }
    path = tmp_path / "light.parquet"
    pq.write_table(table.replace_schema_metadata({f"cmmsim.{k}": json.dumps(v) for k, v in meta.items()}), path)
    df = api.replay(path, strategy, [1], stream=stream)
    assert df.height == 2  # the host's row and the guest's
    rows = {row["guest"]: row for row in df.iter_rows(named=True)}
    check(rows, dict(accesses=5, peak_resident_pages=1, **want))


# ---------------------------------------------------------------- more strategies' options


def test_cmm_two_list_victims_pay_their_state():
    # cmm, reclaim_order=two-list, 4 pages, budget 2 (lists head first).
    trace = [
        (S, 0),  # 1 h1
        (W, 0),  # 2 zf1 I=[0]
        (S, 1),  # 3 h2
        (W, 1),  # 4 zf2 I=[1,0]
        (R, 0),  # 5 inactive use: activate, I=[1] A=[0]
        (V, 0),  # 6 h3 Vr (hints move no page between lists)
        (S, 2),  # 7 h4
        (W, 2),  # 8 zf3: 1 < 1 no; victim I's tail 1 changed: hw1. I=[2]
        (R, 1),  # 9 hr1: victim 2 changed: hw2. I=[1]
        (S, 3),  # 10 h5
        (W, 3),  # 11 zf4: victim 1 unchanged with copy: discards1. I=[3]
        (R, 3),  # 12 activate: A=[3,0] I=[]
        (R, 2),  # 13 hr2: 0 < 2 low: A's tail 0 to I, I=[0] A=[3]; victim 0 Vr: discards2
    ]
    check(
        run("cmm", [guest(trace, 4)], 2, {"reclaim_order": "two-list"}),
        dict(
            accesses=8,
            hints=5,
            host_reads=2,
            host_writes=2,
            zero_fills=4,
            discards=2,
            peak_resident_pages=2,
            total_io=4,
        ),
    )


def test_free_page_reporting_drops_a_tier_copy():
    # order 0, delay 10 ns; 3 pages, budget 1, tier 1. t3 W1: victim 0 -> tier
    # (hwt1). t4 U0 queues 0; its report at 14 drops 0's tier place, no I/O (h1; not
    # a discard: no frame). t21 W2 zf: victim 1 -> tier, room (hwt2). t23 W0 zf (a
    # reported page): victim 2 -> tier full: spill 1 (spills1, hw1), hwt3.
    trace = [(0, S, 0), (1, W, 0), (2, S, 1), (3, W, 1), (4, U, 0), (20, S, 2), (21, W, 2), (22, S, 0), (23, W, 0)]
    check(
        run("free-page-reporting", [guest(trace, 3)], 1, {"order": 0, "delay_ns": 10}, tier_pages=1),
        dict(
            accesses=4,
            hints=1,
            host_writes=1,
            zero_fills=4,
            host_writes_tier=3,
            host_spills_tier=1,
            peak_resident_pages=1,
            total_io=1,
        ),
    )


def test_balloon_dual_paging_reads_from_the_tier():
    # The dual-paging scenario above with a host tier of 1 page. t9 W2: victim a0
    # -> tier (hwt, g0). t10: g0 swaps page 0: the host reads it back from the tier
    # (hrt, dual_paging), evicting a1 -> tier, now empty (hwt, g0); gw1. t11 W3:
    # victim b0 -> tier full: spill a1 (spills, hw: g0), hwt (g1).
    g0 = guest([(0, S, 0), (1, W, 0), (2, S, 1), (3, W, 1), (8, S, 2), (9, W, 2), (10, S, 3), (11, W, 3)], 4)
    g1 = guest([(4, S, 0), (5, W, 0), (6, S, 1), (7, W, 1)], 4)
    p = {**BALLOON_PARAMS, "period_ns": 1000, "min_fraction": 0.75}
    check(
        run("balloon", [g0, g1], 4, p, tier_pages=1),
        dict(
            accesses=6,
            host_writes=1,
            zero_fills=6,
            guest_writes=1,
            dual_paging=1,
            host_reads_tier=1,
            host_writes_tier=3,
            host_spills_tier=1,
            balloon_inflated_pages=2,
            balloon_initial_pages=2,
            peak_resident_pages=4,
            total_io=2,
        ),
        dict(
            accesses=4,
            host_writes=1,
            zero_fills=4,
            guest_writes=1,
            dual_paging=1,
            host_reads_tier=1,
            host_writes_tier=2,
            host_spills_tier=1,
            balloon_inflated_pages=1,
            balloon_initial_pages=1,
            peak_resident_pages=3,
            total_io=2,
        ),
        dict(
            accesses=2,
            zero_fills=2,
            host_writes_tier=1,
            balloon_inflated_pages=1,
            balloon_initial_pages=1,
            peak_resident_pages=2,
        ),
    )


@pytest.mark.parametrize(
    ("partition", "g0", "g1", "host"),
    [
        # equal: shares 2 and 2. g0 fits. g1: S2 swaps 0 (gw1), S3 swaps 1 (gw2),
        # R0 swaps in (gr1) and out its LRU stable 2 (gw3).
        (
            "equal",
            dict(accesses=3, peak_resident_pages=2),
            dict(accesses=5, guest_reads=1, guest_writes=3, peak_resident_pages=2, total_io=4),
            dict(accesses=8, guest_reads=1, guest_writes=3, peak_resident_pages=4, total_io=4),
        ),
        # weighted by memory (2 and 6 pages of 8): one frame each, then the other 2
        # in proportion, rounded down: 1 + floor(2 x 2/8) = 1 and 1 + floor(2 x 6/8)
        # = 2; the fourth frame stays unassigned (model.md 5; I first expected the
        # plain proportion, 1 and 3). g0: S1 swaps 0 (gw1), R0 swaps it in (gr1) and
        # 1 out (gw2). g1 as under equal shares.
        (
            "weighted",
            dict(accesses=3, guest_reads=1, guest_writes=2, peak_resident_pages=1, total_io=3),
            dict(accesses=5, guest_reads=1, guest_writes=3, peak_resident_pages=2, total_io=4),
            dict(accesses=8, guest_reads=2, guest_writes=5, peak_resident_pages=3, total_io=7),
        ),
    ],
)
def test_static_partitions(partition, g0, g1, host):
    # Budget 4; g0 has 2 pages of memory, g1 6.
    a = guest([(S, 0), (W, 0), (S, 1), (W, 1), (R, 0)], 2)
    b = guest([(S, 0), (W, 0), (S, 1), (W, 1), (S, 2), (W, 2), (S, 3), (W, 3), (R, 0)], 6, t0=100)
    check(run("static", [a, b], 4, {"partition": partition}), host, g0, g1)


def test_opt_schedule_drops_a_clean_page_first():
    # 3 pages, budget 2. At 6 neither 0 nor 1 is used again: the schedule takes the
    # one that leaves without a write, 1 (read only since its zero fill): discards1.
    trace = [(S, 0), (W, 0), (S, 1), (R, 1), (S, 2), (W, 2)]
    check(
        run("opt-schedule", [guest(trace, 3)], 2),
        dict(accesses=3, hints=3, zero_fills=3, discards=1, peak_resident_pages=2),
    )


def test_balloon_fault_rate_estimator_grows_on_refaults():
    # fault-rate: every estimate starts at the guest's memory (4 and 4 pages): targets
    # 2 and 2 of budget 4, balloons 2 and 2 at the first event (initial 4). Threshold
    # 0 refaults, grow and shrink by half of memory (2 pages), periods of 100 ns.
    g0 = guest(
        [
            (0, S, 0),
            (1, W, 0),  # zf
            (2, S, 1),
            (3, W, 1),  # zf
            (4, V, 1),  # clean page cache
            (5, S, 2),  # in use 3 > 2: the guest drops 1 (discards, by guest)
            (6, W, 2),  # 2 would make g0's host frames {0,1,2} + balloon 2 > 4: the
            #             host first drops the backed free frame of 1 (discards,
            #             released), then backs 2: zf
            (7, R, 1),  # re-read: df1 gr1 (a refault); in use 3 > 2: 0 swapped (gw1);
            #             1 would make {0,2,1} + 2 > 4: 0's frame dropped (released); zf
            #             g0's frames never exceed 2, the host's 2 + 1 = 3
            (102, R, 0),  # swap-in gr2; in use 3 > 2 again: 1 (volatile after its
            #               re-read) dropped (by guest); 0 would make frames {2,1,0}
            #               + 2 > 4: 1's frame dropped first (released); 0's: zf.
        ],
        4,
    )
    g1 = guest([(8, S, 0), (9, W, 0), (101, R, 0)], 4)  # zf; then a hit
    # At 100: g0 refaulted once (> 0) and grows, but an estimate stays within guest
    # memory: 4; g1 did not: 4 - 2 = 2. Targets are whole pages, each share rounded
    # down: 4 x 4/6 -> 2 and 4 x 2/6 -> 1 (model.md 5; I first expected 6 and 2 for
    # the estimates, targets 3 and 1, a deflation of g0 and no second drop). So g0's
    # balloon stays 2 and g1's inflates 1 at 101, from its free pages (none backed).
    p = {**BALLOON_PARAMS, "estimator": "fault-rate", "fault_threshold": 0, "grow": 0.5, "shrink": 0.5}
    check(
        run("balloon", [g0, g1], 4, p),
        dict(
            accesses=7,
            zero_fills=6,
            discards=5,
            discards_by_guest=2,
            discards_released=3,
            discard_faults=1,
            guest_reads=2,
            guest_writes=1,
            balloon_inflated_pages=5,
            balloon_initial_pages=4,
            peak_resident_pages=3,
            total_io=3,
        ),
        dict(
            accesses=5,
            zero_fills=5,
            discards=5,
            discards_by_guest=2,
            discards_released=3,
            discard_faults=1,
            guest_reads=2,
            guest_writes=1,
            balloon_inflated_pages=2,
            balloon_initial_pages=2,
            peak_resident_pages=2,
            total_io=3,
        ),
        dict(
            accesses=2,
            zero_fills=1,
            balloon_inflated_pages=3,
            balloon_initial_pages=2,
            peak_resident_pages=1,
        ),
    )


@pytest.mark.parametrize(
    ("strategy", "replacement", "hints"),
    [
        ("balloon", "lru", 0),
        ("balloon", "two-list", 0),
        ("balloon+cmm", "lru", 5),
        ("balloon+cmm", "two-list", 5),
        ("balloon+cmm", "state-priority", 5),
    ],
)
def test_balloon_frees_a_frame_before_the_host_backs_a_page(strategy, replacement, hints):
    # One guest of 4 pages, budget 3: target 3, balloon 1. Its host frames and its
    # balloon never exceed its memory (model.md 5): when the guest takes page 3 into
    # use after freeing 2, the frame the balloon really took is 2's, which the host
    # still backs; the host drops it (no I/O) and backs 3 in its place. Before the fix
    # the host backed 3 first: full, it evicted page 0 with a write (LRU and
    # two-list), then had no frame of the guest's to drop.
    trace = [(S, 0), (W, 0), (S, 1), (W, 1), (S, 2), (W, 2), (U, 2), (S, 3), (W, 3)]
    # 2, 4, 6 zf; host [0,1,2] full; 7 U2 (balloon+cmm: Ur); 8 S3; 9 W3: 2's frame
    # dropped (discards1, released1), zf4.
    check(
        run(strategy, [guest(trace, 4)], 3, {**BALLOON_PARAMS, "replacement": replacement}),
        dict(
            accesses=4,
            hints=hints,
            zero_fills=4,
            discards=1,
            discards_released=1,
            balloon_inflated_pages=1,
            balloon_initial_pages=1,
            peak_resident_pages=3,
        ),
    )


def test_balloon_rate_limit_lags_the_target():
    # Two guests of 4 pages, budget 4, oracle, periods of 1000 ns, balloons moving at
    # most 10**6 pages/s: 1 page per 1000 ns, counted from the period's start, so no
    # move inside a period (t - start < 1000 at every event) and 1 page at its end.
    # Period 1: g0 touches {0} (1), g1 {0,1,2} (3): targets 1, 3; balloons 3 and 1 at
    # once (initial 4). g1 frees 1 and 2 at 8, 9 (backed).
    # Period 2: g0 touches {0,1,2} (3), g1 {0} (1): targets 3, 1, but the balloons
    # stay put until 2000, so g0 lives in 1 page:
    #   1100 S1: in use 2 > 1: 0 swapped (gw1). 1101 W1: 1's frame would break g0's
    #   bound: 0's dropped (released1); zf. 1200 S2: 1 swapped (gw2); 1201 W2: 1's
    #   dropped (released2); zf. 1300 R0: swap-in (gr1), 2 swapped (gw3), 2's dropped
    #   (released3); zf. g1: 1050 R0 hit.
    # At 2000 (reached by g1's event at 2001) each balloon moves 1 page: g0 deflates 1;
    # g1 inflates 1, taking a free page: its frames {0,1,2} + 2 > 4, so 1's frame
    # (the oldest freed) is dropped (released). Period 3's targets: no move by 2001.
    g0 = guest([(0, S, 0), (1, W, 0), (1100, S, 1), (1101, W, 1), (1200, S, 2), (1201, W, 2), (1300, R, 0)], 4)
    g1 = guest(
        [
            (2, S, 0),
            (3, W, 0),
            (4, S, 1),
            (5, W, 1),
            (6, S, 2),
            (7, W, 2),
            (8, U, 1),
            (9, U, 2),
            (1050, R, 0),
            (2001, R, 0),
        ],
        4,
    )
    p = {**BALLOON_PARAMS, "period_ns": 1000, "rate_pages_per_s": 10**6}
    check(
        run("balloon", [g0, g1], 4, p),
        dict(
            accesses=9,
            zero_fills=7,
            discards=4,
            discards_released=4,
            guest_reads=1,
            guest_writes=3,
            balloon_inflated_pages=5,
            balloon_initial_pages=4,
            balloon_deflated_pages=1,
            peak_resident_pages=4,
            total_io=4,
        ),
        dict(
            accesses=4,
            zero_fills=4,
            discards=3,
            discards_released=3,
            guest_reads=1,
            guest_writes=3,
            balloon_inflated_pages=3,
            balloon_initial_pages=3,
            balloon_deflated_pages=1,
            peak_resident_pages=1,
            total_io=4,
        ),
        dict(
            accesses=5,
            zero_fills=3,
            discards=1,
            discards_released=1,
            balloon_inflated_pages=2,
            balloon_initial_pages=1,
            peak_resident_pages=3,
        ),
    )


def test_offline_bounds_on_never_written_pages():
    # Pages only read are logically zero: refaulting them costs nothing. 2 pages,
    # budget 1: R0, R1 (victim 0), R0 (victim 1).
    trace = [(R, 0), (R, 1), (R, 0)]
    # opt: no costly refault; the third access needs no read either and counts as a
    # zero fill with the first accesses (model.md 6).
    check(run("opt", [guest(trace, 2)], 1), dict(accesses=3, zero_fills=3, peak_resident_pages=1))
    # opt-schedule: cmm's rules, pages start Uz: R0, R1 are repairs (Uz -> Sz, zf);
    # each victim is a never-written page: discards 2; R0 on Sz: zf3.
    check(
        run("opt-schedule", [guest(trace, 2)], 1),
        dict(accesses=3, zero_fills=3, discards=2, repairs=2, peak_resident_pages=1),
    )


def test_free_page_reporting_repairs_and_leftover_blocks():
    fp = {"order": 0, "delay_ns": 10, "capacity": 1}
    # Pages start free in the guest: touching one unallocated is a repair. Budget 1:
    # R0 repair, zf1; W1 repair, zf2, victim 0 (zero): discards1; R0 zf3 (never
    # written), victim 1 changed: hw1.
    check(
        run("free-page-reporting", [guest([(0, R, 0), (1, W, 1), (2, R, 0)], 2)], 1, fp),
        dict(accesses=3, host_writes=1, zero_fills=3, discards=1, repairs=2, peak_resident_pages=1, total_io=1),
    )
    # Two pages freed at 4 and 5 with room for one block per report: 0 goes at 14, 1 at
    # the next report (24): both frames dropped (discards 2, released 2, hints 2).
    trace = [(0, S, 0), (1, W, 0), (2, S, 1), (3, W, 1), (4, U, 0), (5, U, 1), (30, S, 2), (31, W, 2)]
    check(
        run("free-page-reporting", [guest(trace, 3)], 2, fp),
        dict(
            accesses=3,
            hints=2,
            zero_fills=3,
            discards=2,
            discards_released=2,
            peak_resident_pages=2,
        ),
    )
    # Two-list: a reported page leaves its list (0, active since its use at 4). Budget
    # 2: I=[1] A=[] after the report at 15; 21 W2 zf3, I=[2,1]; 23 W3 zf4: inactive not
    # low; victim its tail 1, changed: hw1.
    trace = [
        (0, S, 0),
        (1, W, 0),
        (2, S, 1),
        (3, W, 1),
        (4, R, 0),
        (5, U, 0),
        (20, S, 2),
        (21, W, 2),
        (22, S, 3),
        (23, W, 3),
    ]
    check(
        run("free-page-reporting", [guest(trace, 4)], 2, {**fp, "replacement": "two-list"}),
        dict(
            accesses=5,
            hints=1,
            host_writes=1,
            zero_fills=4,
            discards=1,
            discards_released=1,
            peak_resident_pages=2,
            total_io=1,
        ),
    )


def test_cmm_state_priority_with_a_tier():
    # PRIORITY_TRACE's derivation with a tier of 1 page: the one page-out (0 at 19) goes
    # to the tier (hwt1, not hw) and the read at 20 comes from it (hrt1, not hr); the
    # victims do not change (model.md 5: the tier changes where, never which).
    check(
        run("cmm", [guest(PRIORITY_TRACE, 4)], 3, {"reclaim_order": "state-priority"}, tier_pages=1),
        dict(
            accesses=11,
            hints=9,
            zero_fills=5,
            discards=5,
            discard_faults=3,
            guest_reads=3,
            host_reads_tier=1,
            host_writes_tier=1,
            peak_resident_pages=3,
            total_io=3,
        ),
    )


# ---------------------------------------------------------------- streamed replays


@pytest.mark.parametrize(
    ("strategy", "trace", "pages", "budget", "params", "tier", "want"),
    [
        # The derivations of test_cmm_state_priority_victims_by_class, ..._with_a_tier,
        # test_host_lru_two_list and test_cmm_two_list_victims_pay_their_state.
        (
            "cmm",
            PRIORITY_TRACE,
            4,
            3,
            {"reclaim_order": "state-priority"},
            0,
            dict(hints=9, host_reads=1, host_writes=1, zero_fills=5, discards=5, total_io=5),
        ),
        (
            "cmm",
            PRIORITY_TRACE,
            4,
            3,
            {"reclaim_order": "state-priority"},
            1,
            dict(hints=9, zero_fills=5, discards=5, host_reads_tier=1, host_writes_tier=1, total_io=3),
        ),
        ("cmm", PRIORITY_TRACE, 4, 3, {}, 0, dict(hints=9, host_reads=1, host_writes=2, zero_fills=4, total_io=3)),
        (
            "host-lru",
            TWO_LIST_TRACE,
            5,
            3,
            {"replacement": "two-list"},
            0,
            dict(host_reads=1, host_writes=1, zero_fills=6, discards=3, total_io=2),
        ),
    ],
)
def test_streamed_replays_give_the_hand_counts(tmp_path, strategy, trace, pages, budget, params, tier, want):
    # The streamed kernels (time slots, two threads) over row groups of 4 events.
    from cmmsim.tracer.io import write_trace

    g = guest(trace, pages)
    path = tmp_path / "g.parquet"
    write_trace(path, g.t_ns, g.pfn, g.op, g.meta, row_group_rows=4)
    df = api.replay(path, strategy, [budget], params, stream=True, tier_pages=tier)
    rows = {row["guest"]: row for row in df.iter_rows(named=True)}
    # The guest's discard faults and re-reads under cmm (3 each on PRIORITY_TRACE).
    refaults = 3 if trace is PRIORITY_TRACE and params.get("reclaim_order") == "state-priority" else 0
    want = dict(accesses=int((g.op <= W).sum()), peak_resident_pages=budget, **want)
    if refaults:
        want |= dict(discard_faults=refaults, guest_reads=refaults)
    check(rows, want)


def test_balloon_dual_paging_takes_a_backed_free_frame_first():
    # Two guests of 5 pages, budget 5, no slack, minimum 0.6 x 5 = 3: oracle shares
    # (5 x 5/8, 5 x 3/8) fall under it, so both are pinned at 3, balloons 2 and 2.
    g0 = guest(
        [
            (0, S, 0), (1, W, 0), (2, S, 1), (3, W, 1), (4, S, 2), (5, W, 2),  # zf 3: H [a0,a1,a2]
            (12, R, 1), (13, R, 2),  # H [b0,b1,b2,a1,a2] (a0 paged out at 11)
            (14, U, 2),  # 2 free, backed: g0's frames {1,2} + 2 <= 5
            (15, S, 3),
            (16, W, 3),  # zf; host full: victim b0 changed (hw, g1). H [b1,b2,a1,a2,a3]
            (17, S, 4),  # in use 4 > 3: g0 swaps its LRU stable page 0, which the host
            #              paged out: dual paging (hr1). Backing 0 again would make g0's
            #              frames {1,2,3,0} + 2 > 5: the backed free frame 2 is dropped
            #              first (released1) and 0 takes its place: no host eviction.
            #              gw1; 0 is then free and backed.
            (18, W, 4),  # 4 would break the bound: 0's frame dropped (released2); zf
        ],
        5,
    )  # fmt: skip
    # g1: t7 b0, t9 b1, t11 b2 zf; at 11 the host is full: victim a0 changed (hw, g0).
    g1 = guest([(6, S, 0), (7, W, 0), (8, S, 1), (9, W, 1), (10, S, 2), (11, W, 2)], 5)
    # Before the fix the host backed 0 first: full, it evicted b1 (a second write to
    # g1) and g0 held 4 frames + its balloon 2 > 5 for a moment.
    check(
        run("balloon", [g0, g1], 5, {**BALLOON_PARAMS, "period_ns": 1000, "min_fraction": 0.6}),
        dict(
            accesses=10,
            host_reads=1,
            host_writes=2,
            zero_fills=8,
            discards=2,
            discards_released=2,
            guest_writes=1,
            dual_paging=1,
            balloon_inflated_pages=4,
            balloon_initial_pages=4,
            peak_resident_pages=5,
            total_io=4,
        ),
        dict(
            accesses=7,
            host_reads=1,
            host_writes=1,
            zero_fills=5,
            discards=2,
            discards_released=2,
            guest_writes=1,
            dual_paging=1,
            balloon_inflated_pages=2,
            balloon_initial_pages=2,
            peak_resident_pages=3,
            total_io=3,
        ),
        dict(
            accesses=3,
            host_writes=1,
            zero_fills=3,
            balloon_inflated_pages=2,
            balloon_initial_pages=2,
            peak_resident_pages=3,
            total_io=1,
        ),
    )
