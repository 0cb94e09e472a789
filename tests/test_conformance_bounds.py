"""Conformance, continued: the offline bounds (``opt``, ``opt-schedule``), a trace
written from the documented file format alone, and streamed replays.

Same notation and helpers as ``tests/test_conformance.py`` (its docstring).
"""

from __future__ import annotations

import pytest

from tests.test_conformance import (
    LIGHT_TRACE,
    PRIORITY_TRACE,
    TWO_LIST_TRACE,
    R,
    S,
    U,
    V,
    W,
    api,
    check,
    guest,
    run,
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


def test_opt_schedule_drops_a_clean_page_first():
    # 3 pages, budget 2. At 6 neither 0 nor 1 is used again: the schedule takes the
    # one that leaves without a write, 1 (read only since its zero fill): discards1.
    trace = [(S, 0), (W, 0), (S, 1), (R, 1), (S, 2), (W, 2)]
    check(
        run("opt-schedule", [guest(trace, 3)], 2),
        dict(accesses=3, hints=3, zero_fills=3, discards=1, peak_resident_pages=2),
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
