"""The guest/host page state machine (DESIGN.md section 2) as numba functions of the state byte.

The rules are the definition: :func:`hint`, :func:`evict` (the host reclaims
a frame) and :func:`page_in_rule` (the host gives a page a frame). The kernels
evict and page in through tables built from the rules (:data:`EVICT_STATE`
...): the victims' states come in no order a branch predictor can learn, so
an index beats a branch (a test holds the tables to the rules). The byte
layout is :mod:`cmmsim.replay.states`; :class:`cmmsim.replay.reference.ReferenceHost` is the
twin, a page at a time.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from cmmsim.replay.states import (
    C_DISCARD_FAULTS,
    C_DISCARDS,
    C_GUEST_READS,
    C_HOST_READS,
    C_HOST_WRITES,
    C_ZERO_FILLS,
    CHANGED,
    CLASS_CHEAP,
    CLASS_REST,
    CLASS_UNUSED,
    COPY,
    DIRTY,
    G_P,
    G_S,
    G_U,
    G_V,
    GUEST_MASK,
    H_P,
    H_R,
    H_Z,
    HOST_MASK,
    HOST_SHIFT,
    OP_SET_POT_VOLATILE,
    OP_SET_STABLE,
    OP_SET_STABLE_IF_RESIDENT,
    OP_SET_UNUSED,
    OP_SET_VOLATILE,
    REF,
)
from cmmsim.tracer.schema import N_OPS

_NOT_GUEST_NOR_HOST = 0xFF ^ GUEST_MASK ^ HOST_MASK


@nb.njit(cache=True, inline="always")
def with_states(st, guest, host):
    """State byte ``st`` with its guest and host states replaced (flags kept)."""
    return (st & _NOT_GUEST_NOR_HOST) | guest | (host << HOST_SHIFT)


@nb.njit(cache=True, inline="always")
def host_state(st):
    """The host state (``H_R``, ``H_P`` or ``H_Z``) of a state byte."""
    return (st & HOST_MASK) >> HOST_SHIFT


@nb.njit(cache=True, inline="always")
def is_resident(st):
    return host_state(st) == H_R


@nb.njit(cache=True, inline="always")
def repaired(st):
    """An access to an unused page is a protocol violation, repaired by an
    implicit set stable (Ur -> Sr, Uz -> Sz); other states are unchanged."""
    if (st & GUEST_MASK) == G_U:
        return with_states(st, G_S, host_state(st))
    return st


@nb.njit(cache=True)
def hint(st, o):
    """State after hint ``o``; second value 1 when volatile content was lost."""
    g = st & GUEST_MASK
    h = host_state(st)
    if o == OP_SET_STABLE:
        if g == G_S:
            return st, 0
        lost = 1 if (g == G_V and h == H_Z) else 0
        return with_states(st, G_S, h), lost
    if o == OP_SET_UNUSED:
        if g == G_U:
            return st, 0
        # The content is garbage now: the host may drop it and its swap slot.
        # A resident page losing its copy keeps its content in its frame only,
        # so it is changed: taken back stable unwritten, its reclaim writes
        # (no preserved copy, DESIGN.md section 2); it is no zero page.
        if h == H_R and (st & COPY):
            st = st | CHANGED
        st = st & ~(DIRTY | COPY)
        return with_states(st, G_U, H_R if h == H_R else H_Z), 0
    if o == OP_SET_VOLATILE or o == OP_SET_POT_VOLATILE:
        # The guest only marks pages in sync with their backing: dirty clears.
        st = st & ~DIRTY
        if h == H_R:
            if o == OP_SET_VOLATILE:
                return with_states(st, G_V, H_R), 0
            return with_states(st, G_P, H_R), 0
        # Not resident: the preserved copy (if any) is freed, the page is Vz.
        return with_states(st & ~COPY, G_V, H_Z), 0
    if o == OP_SET_STABLE_IF_RESIDENT:
        if h == H_R:
            return with_states(st, G_S, H_R), 0
        return st, 0
    return st, 0


@nb.njit(cache=True)
def evict(st):
    """State after the host reclaims the frame; second value 1 if it cost a host write."""
    g = st & GUEST_MASK
    st = st & ~REF
    if g == G_P:
        if st & DIRTY:
            g = G_S
        else:
            return with_states(st & ~(CHANGED | COPY), G_V, H_Z), 0
    if g == G_S:
        if st & CHANGED:
            return with_states((st & ~CHANGED) | COPY, G_S, H_P), 1
        if st & COPY:
            return with_states(st, G_S, H_P), 0
        return with_states(st, G_S, H_Z), 0
    return with_states(st & ~(CHANGED | COPY), g, H_Z), 0


@nb.njit(cache=True)
def page_in_rule(st):
    """State of a non-resident page after the host gives it a frame, and the
    counters that pays (the second -1 when none)."""
    gs = st & GUEST_MASK
    h = host_state(st)
    if h == H_P:
        return with_states(st & ~CHANGED, G_S, H_R), C_HOST_READS, -1
    if gs == G_V:
        # Discard fault: the guest recreates the page from its own backing
        # (one guest read) and keeps it volatile.
        return with_states(st | CHANGED, G_V, H_R), C_DISCARD_FAULTS, C_GUEST_READS
    return with_states(st & ~(CHANGED | COPY), gs, H_R), C_ZERO_FILLS, -1


@nb.njit(cache=True, inline="always")
def reclaim_class(st):
    """The engine's state-priority class of a page: U, then V and clean P, then the rest."""
    g = st & GUEST_MASK
    if g == G_U:
        return CLASS_UNUSED
    if g == G_V or (g == G_P and not (st & DIRTY)):
        return CLASS_CHEAP
    return CLASS_REST


def transition_tables():
    """:func:`evict` and :func:`page_in_rule` for every state byte, as tables:
    (evict state, evict counter, page-in state, page-in counters, second's increment)."""
    # Counter indices unsigned: no negative-index fix-up (see cmmsim.replay.kernels.lru_list).
    evict_state = np.empty(256, np.uint8)
    evict_counter = np.empty(256, np.uint64)
    in_state = np.empty(256, np.uint8)
    in_counter = np.empty((256, 2), np.uint64)
    in_second = np.empty(256, np.int64)
    for st in range(256):
        new, wrote = evict(np.uint8(st))
        evict_state[st] = new
        evict_counter[st] = C_HOST_WRITES if wrote else C_DISCARDS
        new, first, second = page_in_rule(np.uint8(st))
        in_state[st] = new
        in_counter[st] = first, max(second, 0)
        in_second[st] = second >= 0  # the second counter's increment
    return evict_state, evict_counter, in_state, in_counter, in_second


EVICT_STATE, EVICT_COUNTER, PAGE_IN_STATE, PAGE_IN_COUNTER, PAGE_IN_SECOND = transition_tables()


def hint_tables():
    """:func:`hint` for every op and state byte, as tables ``[op << 8 | st]``:
    (state after, content lost)."""
    # Which hint comes next, and what it finds, are what a branch predictor cannot learn.
    after = np.empty(N_OPS << 8, np.uint8)
    lost = np.zeros(N_OPS << 8, np.int64)
    for o in range(N_OPS):
        for st in range(256):
            after[o << 8 | st], lost[o << 8 | st] = hint(np.uint8(st), o)
    return after, lost


HINT_STATE, HINT_LOST = hint_tables()


@nb.njit(cache=True, inline="always")
def hint_by_table(st, o):
    """:func:`hint` from its tables: (state after hint ``o``, 1 when volatile content was lost)."""
    k = (np.uint64(o) << np.uint64(8)) | np.uint64(st)
    return HINT_STATE[k], HINT_LOST[k]


@nb.njit(cache=True)
def reclaim(v, gv, state, cnt):
    """The host reclaims frame v (of guest gv): a write or a no-I/O discard, by its state."""
    v = np.uint64(v)
    sv = state[v]
    state[v] = EVICT_STATE[sv]
    cnt[gv, EVICT_COUNTER[sv]] += 1


@nb.njit(cache=True)
def page_in(st, g, cnt):
    """State of a non-resident page after the host gives it a frame, with what it
    cost to guest g (:func:`page_in_rule`, from its table)."""
    cnt[g, PAGE_IN_COUNTER[st, 0]] += 1
    cnt[g, PAGE_IN_COUNTER[st, 1]] += PAGE_IN_SECOND[st]
    return PAGE_IN_STATE[st]
