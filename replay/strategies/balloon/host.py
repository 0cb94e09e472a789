"""The balloons' host: its frames, its victim order and the guests' free frames it backs.

One budget's host is a :class:`Host` bundle. Its victim order is one of
three (``ORDER_*``, the ``replacement`` parameter):

* ``ORDER_LRU``: exact LRU, one list (:mod:`cmmsim.replay.kernels.lru_list`);
* ``ORDER_TWO_LIST``: Linux's active and inactive lists
  (:mod:`cmmsim.replay.kernels.two_list`);
* ``ORDER_CLASS``: ``state-priority`` as ``cmm`` runs it (DESIGN.md section 2:
  the least recently used page of the cheapest class, U, then V and clean P,
  then the rest), in time slots (:mod:`cmmsim.replay.kernels.slots`). A
  resident page's class follows its state byte: every change of a resident
  page's state goes through :func:`restate`, which moves it between classes at
  its place in time.

Frames leave the host three ways: as a victim (:func:`host_in`), when the
guest's balloon takes a free frame the host backs (:func:`drop_free`), or
not at all (hints change a resident page's state, not its residency).
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from cmmsim.replay.kernels import slots, two_list
from cmmsim.replay.kernels import tier as host_tier
from cmmsim.replay.kernels.lru_list import evict_lru, init_list, push_mru, touch, unlink
from cmmsim.replay.kernels.resident import peak, resident_delta
from cmmsim.replay.kernels.state_machine import hint, is_resident, reclaim_class, with_states
from cmmsim.replay.states import (
    C_DISCARDS,
    C_DISCARDS_RELEASED,
    C_HINTS,
    CHANGED,
    COPY,
    DIRTY,
    G_S,
    G_U,
    H_Z,
    N_COUNTERS,
    ON_FREE_LIST,
)

__all__ = [
    "ORDER_CLASS",
    "ORDER_LRU",
    "ORDER_TWO_LIST",
    "ORDERS",
    "Host",
    "drop_free",
    "free_frame",
    "host_in",
    "implicit_hint",
    "new_host",
    "restate",
]

ORDER_LRU, ORDER_TWO_LIST, ORDER_CLASS = 0, 1, 2
#: The ``replacement`` parameter's values, by order.
ORDERS = {"lru": ORDER_LRU, "two-list": ORDER_TWO_LIST, "state-priority": ORDER_CLASS}


class Host(NamedTuple):
    """The host side of one budget.

    ``state``: the engine's state byte per page; ``links``: the host's LRU list
    (sentinel ``n_pages``), or its two lists (``ORDER_TWO_LIST``), empty for
    ``ORDER_CLASS``; ``slot``, ``slot_page``, ``bits``, ``levels``: the time
    slots of ``ORDER_CLASS`` (:mod:`cmmsim.replay.kernels.slots`; a token size
    for the other orders); ``flinks``: per-guest lists of the guest-free frames
    the host backs, oldest freed first (sentinel ``n_pages + g``); ``tot``:
    resident frames, their peak and the next free time slot; ``frames``: the
    budget's frames; ``honour``: the hints it acts on (``1 << op``); ``tier``:
    its fast swap tier (:mod:`cmmsim.replay.kernels.tier`, capacity 0: none);
    ``ends``: one past each guest's last page (whose guest a spilled page is);
    ``order``: ``ORDER_*``.
    """

    state: np.ndarray
    links: np.ndarray
    slot: np.ndarray
    slot_page: np.ndarray
    bits: np.ndarray
    levels: np.ndarray
    flinks: np.ndarray
    cnt: np.ndarray
    res_g: np.ndarray
    mark: np.ndarray
    tot: np.ndarray
    page_guest: np.ndarray
    frames: np.int64
    honour: np.int64
    tier: np.ndarray
    ends: np.ndarray
    order: np.int64


@nb.njit(cache=True)
def new_host(page_guest, n_guests, frames, honour, initial, tier_pages, ends, order):
    """An empty host of ``frames`` frames over ``page_guest``'s pages, in victim order ``order``."""
    n_pages = page_guest.shape[0]
    if order == ORDER_TWO_LIST:
        links = np.empty(two_list.size(n_pages), np.int32)
        two_list.init(links)
    elif order == ORDER_LRU:
        links = np.empty(2 * (n_pages + 1), np.int32)
        init_list(links, n_pages)
    else:
        links = np.empty(0, np.int32)
    # Slots for the class order only: the other orders never touch them.
    slot, slot_page, bits, levels = (
        slots.alloc(n_pages, frames, slots.MAX_CLASSES) if order == ORDER_CLASS else slots.alloc(0, 0, 1)
    )
    flinks = np.empty(2 * (n_pages + n_guests), np.int32)
    for g in range(n_guests):
        init_list(flinks, n_pages + g)
    return Host(
        np.full(n_pages, initial, np.uint8),
        links,
        slot,
        slot_page,
        bits,
        levels,
        flinks,
        np.zeros((n_guests, N_COUNTERS), np.int64),
        np.zeros(n_guests, np.int64),
        np.zeros(n_guests, np.int64),
        np.zeros(3, np.int64),
        page_guest,
        frames,
        honour,
        host_tier.alloc(n_pages, tier_pages),
        ends,
        order,
    )


@nb.njit(cache=True, inline="always")
def restate(p, new, host):
    """Resident or not, page p's state byte becomes ``new``; a resident page under the
    class order keeps its place in time and moves to its new class."""
    old = host.state[p]
    host.state[p] = new
    if host.order == ORDER_CLASS and is_resident(new):
        a = reclaim_class(old)
        c = reclaim_class(new)
        if c != a:
            slots.reclass(host.slot, host.bits, host.levels, p, a, c)


@nb.njit(cache=True, inline="always")
def host_in(p, g, i, host, gs_state):
    """Give page p a host frame if it has none (a victim first); else record the use
    (LRU: most recent; two-list: activated; class order: the next time slot).
    ``gs_state``: the guests' bytes, whose free-list bit a victim loses."""
    head = host.page_guest.shape[0]
    st = host.state[p]
    if is_resident(st):
        if host.order == ORDER_TWO_LIST:
            host.state[p] = two_list.activate_or_keep(host.links, p, st)
        elif host.order == ORDER_LRU:
            touch(host.links, head, p)
        else:
            c = reclaim_class(st)
            host.tot[2] = slots.move(host.slot, host.slot_page, host.bits, host.levels, host.tot[2], p, c, c)
        return
    # A page in the tier leaves it before any victim is written: its place is free.
    from_tier = host_tier.take_paged_out(host.tier, p, st)
    if host.tot[0] >= host.frames:
        if host.order == ORDER_TWO_LIST:
            v = two_list.victim(host.links, host.state)
        elif host.order == ORDER_LRU:
            v = evict_lru(host.links, head)
        else:
            v, _ = slots.evict_least(host.slot, host.slot_page, host.bits, host.levels)
        if gs_state[v] & ON_FREE_LIST:
            gs_state[v] &= ~ON_FREE_LIST
            unlink(host.flinks, v)
        gv = host.page_guest[v]
        host_tier.evict(v, gv, host.state, host.cnt, host.tier, host.ends)
        resident_delta(host.cnt, host.res_g, host.mark, gv, i, -1)
        host.tot[0] -= 1
    host.state[p] = host_tier.page_in_from(from_tier, st, g, host.cnt)
    resident_delta(host.cnt, host.res_g, host.mark, g, i, 1)
    peak(host.cnt, host.res_g, g)
    host.tot[0] += 1
    if host.tot[0] > host.tot[1]:
        host.tot[1] = host.tot[0]
    if host.order == ORDER_TWO_LIST:
        two_list.admit(host.links, p)
    elif host.order == ORDER_LRU:
        push_mru(host.links, head, p)
    else:
        cls = reclaim_class(host.state[p])
        host.tot[2] = slots.place(host.slot, host.slot_page, host.bits, host.levels, host.tot[2], p, cls)


@nb.njit(cache=True, inline="always")
def free_frame(p, g, host, gs_state):
    """p just became guest-free: if the host backs it, it joins the guest's free list."""
    if is_resident(host.state[p]) and not (gs_state[p] & ON_FREE_LIST):
        gs_state[p] |= ON_FREE_LIST
        push_mru(host.flinks, host.page_guest.shape[0] + g, p)


@nb.njit(cache=True, inline="always")
def implicit_hint(v, g, o, host):
    """The guest's own reclaim tells the host (``balloon+cmm``); nothing counts as
    content lost: the page is re-read or garbage anyway."""
    if (host.honour >> o) & 1:
        host.cnt[g, C_HINTS] += 1
        old = host.state[v]
        restate(v, hint(old, o)[0], host)
        host_tier.leave_after_hint(host.tier, v, old, host.state[v])


@nb.njit(cache=True, inline="always")
def drop_free(q, g, i, host, gs_state):
    """The balloon takes guest g's free frame q, which the host backs: the host drops it
    (no I/O: the guest holds nothing there; in ``discards`` and ``discards_released``)."""
    unlink(host.flinks, q)
    gs_state[q] &= ~ON_FREE_LIST
    st = host.state[q]
    if host.order == ORDER_TWO_LIST:
        st = two_list.remove(host.links, q, st)
    elif host.order == ORDER_LRU:
        unlink(host.links, q)
    else:
        slots.remove(host.slot, host.bits, host.levels, q, reclaim_class(st))
    unused = G_U if host.honour else G_S
    host.state[q] = with_states(st & ~(CHANGED | COPY | DIRTY), unused, H_Z)
    host.cnt[g, C_DISCARDS] += 1
    host.cnt[g, C_DISCARDS_RELEASED] += 1  # the guest gave it up: the host chose nothing
    resident_delta(host.cnt, host.res_g, host.mark, g, i, -1)
    host.tot[0] -= 1
