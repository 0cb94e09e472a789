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
