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
