"""The time slots of cmmsim.replay.kernels.slots against a twin keeping (class, last use) per page."""

from __future__ import annotations

import numba as nb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cmmsim.replay.kernels import slots
from tests import naive

PLACE, MOVE, RECLASS, EVICT, REMOVE = range(5)


@nb.njit
def _drive(kinds, pages, classes, slot, slot_page, bits, levels):
    """Row j: page ``pages[j]`` is placed, used or reclassed into ``classes[j]``, or
    removed (REMOVE, a frame a balloon takes), or (EVICT) the victim is taken out;
    returns the victims (-2 elsewhere) and the next free slot."""
    nxt = 0
    out = np.full(kinds.shape[0], -2, np.int64)
    cls_of = np.full(slot.shape[0], -1, np.int64)
    for j in range(kinds.shape[0]):
        k = kinds[j]
        p = pages[j]
        if k == PLACE:
            nxt = slots.place(slot, slot_page, bits, levels, nxt, p, classes[j])
            cls_of[p] = classes[j]
        elif k == MOVE:
            nxt = slots.move(slot, slot_page, bits, levels, nxt, p, cls_of[p], classes[j])
            cls_of[p] = classes[j]
        elif k == RECLASS:
            slots.reclass(slot, bits, levels, p, cls_of[p], classes[j])
            cls_of[p] = classes[j]
        elif k == REMOVE:
            slots.remove(slot, bits, levels, p, cls_of[p])
            cls_of[p] = -1
        else:
            v, _ = slots.evict_least(slot, slot_page, bits, levels)
            out[j] = v
            cls_of[v] = -1
    return out, nxt


@settings(max_examples=300)
@given(
    frames=st.integers(1, 12),
    n_classes=st.sampled_from([1, slots.MAX_CLASSES]),
    ops=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 11), st.integers(0, 2)), min_size=80, max_size=600),
)
def test_victims_equal_the_twin(frames, n_classes, ops):
    # The window is 64 slots or more: a few hundred uses compact it several times.
    n_pages = 12
    cls = {}
    twin = naive.ClassLru(lambda q: cls.get(q))
    kinds, pages, classes, want = [], [], [], []
    for t, (kind, p, c) in enumerate(ops):
        c %= n_classes
        if kind == PLACE and p not in cls and len(cls) < frames:
            cls[p] = c
            twin.use(p, t)
        elif kind == MOVE and p in cls:
            cls[p] = c
            twin.use(p, t)
        elif kind == RECLASS and p in cls:
            cls[p] = c
        elif kind == EVICT and cls:
            p = twin.least()
            del cls[p]
            del twin.stamp[p]
        elif kind == REMOVE and p in cls:
            del cls[p]
            del twin.stamp[p]
        else:
            continue
        kinds.append(kind)
        pages.append(p)
        classes.append(c)
        want.append(p if kind == EVICT else -2)
    slot, slot_page, bits, levels = slots.new(n_pages, frames, n_classes)
    got, nxt = _drive(
        np.array(kinds, np.int64), np.array(pages, np.int64), np.array(classes, np.int64), slot, slot_page, bits, levels
    )
    assert got.tolist() == want
    # Every page with a frame holds a slot, in the order of its last use, below the next free one.
    held = sorted(cls, key=lambda q: twin.stamp[q])
    assert [q for q in range(n_pages) if slot[q] >= 0] == sorted(cls)
    assert sorted(held, key=lambda q: slot[q]) == held
    assert all(slot[q] < nxt and slot_page[slot[q]] == q for q in held)
    # Each class's tree holds exactly its pages' slots, its levels agreeing.
    for c in range(n_classes):
        mine = sorted(int(slot[q]) for q in cls if cls[q] == c)
        lowest = levels[1]
        words = bits[c, :lowest]
        assert [x for x in range(lowest * 64) if words[x >> 6] >> np.uint64(x & 63) & np.uint64(1)] == mine
        for k in range(1, len(levels) - 1):
            below = bits[c, levels[k - 1] : levels[k]]
            above = bits[c, levels[k] : levels[k + 1]]
            assert [bool(above[x >> 6] >> np.uint64(x & 63) & np.uint64(1)) for x in range(len(below))] == [
                bool(w) for w in below
            ]
        # The cursor never passes the class's lowest slot.
        assert not mine or bits[c, levels[-1]] <= mine[0]


def test_alloc_in_a_kernel_equals_new():
    for frames in (1, 64, 100, 5_000, 300_000):
        a, b = slots.alloc(10, frames, 3), slots.new(10, frames, 3)
        assert slots.levels_of(frames).tolist() == a[3].tolist() == b[3].tolist()
        assert [x.shape for x in a] == [x.shape for x in b]


def test_compaction_renumbers_in_order_by_hand():
    slot, slot_page, bits, levels = slots.new(8, 2, 3)
    nxt = 0
    for p, c in [(5, 2), (6, 1), (7, 0)]:
        nxt = slots.place(slot, slot_page, bits, levels, nxt, p, c)
    for _ in range(70):  # page 6 used over and over: its old slots die
        nxt = slots.move(slot, slot_page, bits, levels, nxt, 6, 1, 1)
        nxt = slots.move(slot, slot_page, bits, levels, nxt, 7, 0, 0)
    assert nxt < slots.window(2)  # compacted on the way
    assert slot[5] == 0 and slot[6] < slot[7]
    assert slots.evict_least(slot, slot_page, bits, levels)[0] == 7  # class 0 first
    assert slots.evict_least(slot, slot_page, bits, levels)[0] == 6
    assert slots.evict_least(slot, slot_page, bits, levels)[0] == 5
    assert (slot == -1).all()
