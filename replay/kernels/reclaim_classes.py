"""The class rules of the lazy heaps: a page's reclaim class from its state byte.

A rule gives a page that has a place in its heap its class (cheapest first),
and ``NO_CLASS`` to one that has none. Each rule has an id, which is what
:mod:`cmmsim.replay.kernels.lazy_heap` takes (a numba function passed from call to
call is kept as the address of a Python object, and a kernel holding one
cannot be cached): ``RULE_GUEST`` for a guest's own reclaim. A new heap adds a
rule here. (The engine's state-priority order keeps its classes in time slots,
:mod:`cmmsim.replay.kernels.slots`, by :func:`cmmsim.replay.kernels.state_machine.reclaim_class`.)
"""

from __future__ import annotations

import numba as nb

from cmmsim.replay.states import (
    DIRTY,
    G_P,
    G_U,
    G_V,
    GUEST_CLASS_CLEAN,
    GUEST_CLASS_DIRTY,
    GUEST_MASK,
    NO_CLASS,
    OUT,
)

RULE_GUEST = 1


@nb.njit(cache=True, inline="always")
def clean_or_dirty(st):
    """``GUEST_CLASS_CLEAN`` for clean page cache (V, clean P) in the guest byte, else
    ``GUEST_CLASS_DIRTY``."""
    g = st & GUEST_MASK
    if g == G_V or (g == G_P and not (st & DIRTY)):
        return GUEST_CLASS_CLEAN
    return GUEST_CLASS_DIRTY


@nb.njit(cache=True, inline="always")
def in_use(st):
    """Whether the guest holds the page in its memory (not unused, not reclaimed)."""
    return (st & GUEST_MASK) != G_U and not (st & OUT)


@nb.njit(cache=True, inline="always")
def guest_class(st):
    """A guest's rule: an in-use page's class, ``NO_CLASS`` otherwise."""
    if in_use(st):
        return clean_or_dirty(st)
    return NO_CLASS


@nb.njit(cache=True, inline="always")
def class_by(rule, st):
    """The class of state byte ``st`` under rule ``rule`` (one rule so far: ``RULE_GUEST``)."""
    return guest_class(st)
