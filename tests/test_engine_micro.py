"""Hand-made micro traces, one per rule of DESIGN.md section 2, counters written out.

Each case also runs the reference twin (run_both asserts they agree). The state
machine's tables also meet the twin's rules state by state, every legal pair and flag.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cmmsim.replay import reference
from cmmsim.replay.kernels import state_machine
from cmmsim.replay.states import C_DISCARDS, C_HOST_WRITES, COUNTERS, N_COUNTERS, PAIRS
from cmmsim.tracer.schema import Op
from tests.helpers import final_states, host_counters, make_arrays, run_both, scenario_of

R, W = Op.READ, Op.WRITE
SS, SU, SV, SP, SIR = (Op.SET_STABLE, Op.SET_UNUSED, Op.SET_VOLATILE, Op.SET_POT_VOLATILE, Op.SET_STABLE_IF_RESIDENT)
ZERO = dict(
    accesses=0,
    hints=0,
    host_reads=0,
    host_writes=0,
    zero_fills=0,
    discards=0,
    discard_faults=0,
    guest_reads=0,
    guest_writes=0,
    repairs=0,
    content_lost=0,
    dual_paging=0,
    balloon_inflated_pages=0,
    balloon_deflated_pages=0,
    host_reads_tier=0,
    host_writes_tier=0,
    host_spills_tier=0,
    discards_by_guest=0,
    discards_released=0,
    balloon_initial_pages=0,
)


def case(strategy, events, budget, expect, finals, params=None, pages=None):
    ops = [o for o, _ in events]
    pfns = [p for _, p in events]
    scn = scenario_of(make_arrays(ops, pfns, guest_pages=pages))
    res = run_both(strategy, params or {}, scn, budget)
    assert host_counters(res) == ZERO | expect
    assert final_states(res) == finals
    return res


ALLOC0 = [(SS, 0), (W, 0)]
ALLOC1 = [(SS, 1), (W, 1)]


def test_sr_reclaim_writes_and_sp_access_reads():
    case(
        "cmm",
        ALLOC0 + ALLOC1 + [(R, 0)],
        1,
        dict(accesses=3, hints=2, zero_fills=2, host_writes=2, host_reads=1),
        ["Sr+dirty+copy", "Sp+dirty+copy"],
    )


def test_unchanged_page_with_valid_copy_is_dropped_without_write():
    # p1 paged in from its copy and not written: reclaiming it again costs nothing.
    case(
        "host-lru",
        ALLOC0 + ALLOC1 + [(R, 0), (R, 1), (R, 0)],
        1,
        dict(accesses=5, zero_fills=2, host_writes=2, host_reads=3, discards=2),
        ["Sr+dirty+copy", "Sp+dirty+copy"],
    )


def test_zero_page_access_is_a_zero_fill_and_never_written_zero_page_costs_nothing():
    case(
        "cmm", [(SS, 0), (R, 0), (SS, 1), (R, 1)], 1, dict(accesses=2, hints=2, zero_fills=2, discards=1), ["Sz", "Sr"]
    )


def test_discarded_volatile_page_access_is_a_discard_fault_and_guest_read():
    case(
        "cmm",
        ALLOC0 + [(SV, 0)] + ALLOC1 + [(R, 0)],
        1,
        dict(accesses=3, hints=3, zero_fills=2, discards=1, host_writes=1, discard_faults=1, guest_reads=1),
        ["Vr+changed", "Sp+dirty+copy"],
    )


def test_set_unused_on_sp_frees_the_copy_and_reuse_is_a_zero_fill():
    events = ALLOC0 + ALLOC1 + [(SU, 0), (SS, 0), (W, 0)]
    case(
        "cmm", events, 1, dict(accesses=3, hints=4, zero_fills=3, host_writes=2), ["Sr+dirty+changed", "Sp+dirty+copy"]
    )
    # The same trace under host paging: the freed page is read back (and was
    # written out for nothing).
    case(
        "host-lru",
        events,
        1,
        dict(accesses=3, zero_fills=2, host_writes=2, host_reads=1),
        ["Sr+dirty+changed+copy", "Sp+dirty+copy"],
    )


def test_set_volatile_on_sp_frees_the_copy():
    case(
        "cmm",
        ALLOC0 + ALLOC1 + [(SV, 0)],
        1,
        dict(accesses=2, hints=3, zero_fills=2, host_writes=1),
        ["Vz", "Sr+dirty+changed"],
    )


def test_access_to_unused_page_is_repaired_and_counted():
    case("cmm", ALLOC0 + [(SU, 0), (R, 0)], 1, dict(accesses=2, hints=2, zero_fills=1, repairs=1), ["Sr+changed"])
    # Never allocated at all: repaired, then zero-filled.
    case("cmm", [(W, 0)], 1, dict(accesses=1, zero_fills=1, repairs=1), ["Sr+dirty+changed"])


def test_dirty_p_is_written_out_as_sp_and_clean_p_is_discarded_to_vz():
    events = ALLOC0 + [(SP, 0), (W, 0)] + ALLOC1 + [(SP, 1)] + [(SS, 2), (W, 2)]
    case(
        "cmm",
        events,
        1,
        dict(accesses=4, hints=5, zero_fills=3, host_writes=1, discards=1),
        ["Sp+dirty+copy", "Vz", "Sr+dirty+changed"],
        pages=3,
    )


def test_set_stable_if_resident():
    # On Vr: the page becomes Sr. On Vz: it stays Vz ("discarded").
    events = ALLOC0 + [(SV, 0), (SIR, 0)] + ALLOC1 + [(SV, 1)] + [(SS, 2), (W, 2), (SIR, 1)]
    case(
        "cmm",
        events,
        1,
        dict(accesses=3, hints=7, zero_fills=3, host_writes=1, discards=1),
        ["Sp+copy", "Vz", "Sr+dirty+changed"],
        pages=3,
    )


def test_set_stable_on_discarded_volatile_page_loses_its_content():
    case(
        "cmm",
        ALLOC0 + [(SV, 0)] + ALLOC1 + [(SS, 0)],
        1,
        dict(accesses=2, hints=4, zero_fills=2, discards=1, content_lost=1),
        ["Sz", "Sr+dirty+changed"],
    )


def test_host_lru_ignores_hints_and_cmm_light_ignores_volatile():
    events = ALLOC0 + [(SU, 0)] + ALLOC1
    case("host-lru", events, 1, dict(accesses=2, zero_fills=2, host_writes=1), ["Sp+dirty+copy", "Sr+dirty+changed"])
    case("cmm-light", events, 1, dict(accesses=2, hints=3, zero_fills=2, discards=1), ["Uz", "Sr+dirty+changed"])
    events = ALLOC0 + [(SV, 0)] + ALLOC1
    case(
        "cmm-light",
        events,
        1,
        dict(accesses=2, hints=2, zero_fills=2, host_writes=1),
        ["Sp+dirty+copy", "Sr+dirty+changed"],
    )
    case("cmm", events, 1, dict(accesses=2, hints=3, zero_fills=2, discards=1), ["Vz", "Sr+dirty+changed"])


def test_state_priority_takes_the_cheap_page_first():
    events = ALLOC0 + ALLOC1 + [(SV, 1), (SS, 2), (W, 2)]
    case(
        "cmm",
        events,
        2,
        dict(accesses=3, hints=4, zero_fills=3, host_writes=1),
        ["Sp+dirty+copy", "Vr+changed", "Sr+dirty+changed"],
        params={"reclaim_order": "lru"},
    )
    case(
        "cmm",
        events,
        2,
        dict(accesses=3, hints=4, zero_fills=3, discards=1),
        ["Sr+dirty+changed", "Vz", "Sr+dirty+changed"],
        params={"reclaim_order": "state-priority"},
    )


def test_clock_gives_a_second_chance_where_lru_does_not():
    events = [(W, 0), (W, 1), (R, 1), (R, 0), (W, 2)]
    lru = case(
        "host-lru",
        events,
        2,
        dict(accesses=5, zero_fills=3, host_writes=1),
        ["Sr+dirty+changed", "Sp+dirty+copy", "Sr+dirty+changed"],
    )
    clock = case(
        "host-lru",
        events,
        2,
        dict(accesses=5, zero_fills=3, host_writes=1),
        ["Sp+dirty+copy", "Sr+dirty+changed", "Sr+dirty+changed"],
        params={"replacement": "clock"},
    )
    assert lru.host_peak[0] == clock.host_peak[0] == 2


def test_counters_go_to_the_guest_that_owns_the_page():
    a = make_arrays([SS, W], [0, 0], t_ns=[0, 10])
    b = make_arrays([SS, W], [0, 0], t_ns=[5, 15])
    res = run_both("cmm", {}, scenario_of(a, b), 1)
    by_guest = res.counters[0]
    from cmmsim.replay.states import C

    assert by_guest[0, C["host_writes"]] == 1 and by_guest[1, C["host_writes"]] == 0
    assert by_guest[0, C["zero_fills"]] == 1 and by_guest[1, C["zero_fills"]] == 1


@pytest.mark.parametrize("strategy", ["host-lru", "cmm", "cmm-light"])
def test_empty_trace(strategy):
    scn = scenario_of(make_arrays([], [], guest_pages=4))
    res = run_both(strategy, {}, scn, 2)
    assert host_counters(res) == ZERO


def test_transition_tables_follow_the_rules_for_every_state_byte():
    # The kernels evict and page in through tables built from evict and
    # page_in_rule; each must give what its rule gives, counters included.
    for st in range(256):
        state = np.array([st], np.uint8)
        cnt = np.zeros((1, N_COUNTERS), np.int64)
        state_machine.reclaim(0, 0, state, cnt)
        new, wrote = state_machine.evict(np.uint8(st))
        expect = np.zeros(N_COUNTERS, np.int64)
        expect[C_HOST_WRITES if wrote else C_DISCARDS] = 1
        assert state[0] == new and cnt[0].tolist() == expect.tolist()

        cnt = np.zeros((1, N_COUNTERS), np.int64)
        got = state_machine.page_in(np.uint8(st), 0, cnt)
        new, first, second = state_machine.page_in_rule(np.uint8(st))
        expect = np.zeros(N_COUNTERS, np.int64)
        expect[first] += 1
        if second >= 0:
            expect[second] += 1
        assert got == new and cnt[0].tolist() == expect.tolist()


def _twin_host(pair: str, dirty: bool, changed: bool, copy: bool) -> reference.ReferenceHost:
    """The twin's host with one page of one guest, in ``pair`` with these flags."""
    host = reference.ReferenceHost(np.zeros(1, np.uint16), 1, reference.HINTS_ALL, "lru")
    host.pages[0] = reference.Page(pair[0], pair[1], dirty, changed, copy)
    return host


def _twin_counts(host: reference.ReferenceHost) -> list[int]:
    # The twin's resident statistics are its host's business, not the rule's.
    return [0 if k == "peak_resident_pages" else host.counters[0][k] for k in COUNTERS]


@pytest.mark.parametrize("pair", PAIRS)
def test_state_machine_equals_the_twin_on_every_legal_pair_and_flags(pair):
    # The kernels' hint, reclaim and page-in tables against the twin's rules
    # (reference.ReferenceHost), one page at a time, every flag combination: a
    # resident page reclaimed, a non-resident one paged in, every hint on either.
    for dirty, changed, copy in itertools.product((False, True), repeat=3):
        st = np.uint8(reference.Page(pair[0], pair[1], dirty, changed, copy).byte())
        for op in sorted(reference.HINTS_ALL):
            host = _twin_host(pair, dirty, changed, copy)
            host.hint(0, Op(op))
            new, lost = state_machine.hint_by_table(st, int(op))
            assert (int(new), int(lost)) == (host.pages[0].byte(), host.counters[0]["content_lost"]), (st, op)
        host = _twin_host(pair, dirty, changed, copy)
        cnt = np.zeros((1, N_COUNTERS), np.int64)
        if pair[1] == "r":
            host.resident_of_guest[0] = 1
            host.evict(0)
            state = np.array([st], np.uint8)
            state_machine.reclaim(0, 0, state, cnt)
            new = state[0]
        else:
            host.touch(0, False)
            new = state_machine.page_in(st, 0, cnt)
        assert int(new) == host.pages[0].byte(), st
        assert cnt[0].tolist() == _twin_counts(host), st
