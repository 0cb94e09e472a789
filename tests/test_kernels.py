"""The shared kernel building blocks (cmmsim.replay.kernels) against their twins in tests/naive.py."""

from __future__ import annotations

import numba as nb
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cmmsim.replay.kernels import lazy_heap, lru_list
from cmmsim.replay.kernels.guest_ranges import guest_ends_of, guest_of
from cmmsim.replay.kernels.merge import merge_runs
from cmmsim.replay.kernels.reclaim_classes import RULE_GUEST
from cmmsim.replay.states import G_S, G_U, G_V
from tests import naive

PUSH, TOUCH, UNLINK, EVICT = range(4)


@nb.njit
def _drive_list(kinds, pages, n_pages):
    links = np.full(2 * (n_pages + 1), -1, np.int32)
    lru_list.init_list(links, n_pages)
    out = np.full(kinds.shape[0], -2, np.int64)
    for j in range(kinds.shape[0]):
        k = kinds[j]
        p = pages[j]
        if k == PUSH:
            lru_list.push_mru(links, n_pages, p)
        elif k == TOUCH:
            lru_list.touch(links, n_pages, p)
        elif k == UNLINK:
            lru_list.unlink(links, p)
        else:
            out[j] = lru_list.least_recent(links, n_pages)
            if lru_list.evict_lru(links, n_pages) != out[j] or links[2 * out[j] + 1] != -1:
                out[j] = -3
    return out


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 7)), max_size=120))
def test_lru_list_equals_twin(ops):
    twin = naive.LruList()
    kinds, pages, want = [], [], []
    for kind, p in ops:
        listed = p in twin.order
        if kind == PUSH and not listed:
            twin.push_mru(p)
        elif kind in (TOUCH, UNLINK) and listed:
            twin.touch(p) if kind == TOUCH else twin.unlink(p)
        elif kind == EVICT and twin.order:
            p = twin.evict_lru()
        else:
            continue
        kinds.append(kind)
        pages.append(p)
        want.append(p if kind == EVICT else -2)
    got = _drive_list(np.array(kinds, np.int64), np.array(pages, np.int64), 8)
    assert got.tolist() == want


@nb.njit
def _drive_heap(pages, states, avoids, n_pages, cap):
    """Row j: page ``pages[j]`` takes guest byte ``states[j]`` at event j; then, when
    ``avoids[j] >= -1``, the least page other than it is popped and freed."""
    state = np.full(n_pages, G_U, np.uint8)
    stamp = np.zeros(n_pages, np.int64)
    keys = np.empty(cap, np.int64)
    hpages = np.empty(cap, np.int32)
    size = 0
    out = np.full(pages.shape[0], -2, np.int64)
    for j in range(pages.shape[0]):
        p = pages[j]
        old = state[p]
        state[p] = states[j]
        stamp[p] = j
        # A page joins, or a hint lowers its class: a new entry (uses only raise keys).
        if states[j] != G_U and (old == G_U or (states[j] == G_V and old == G_S)):
            size = lazy_heap.push_page(keys, hpages, size, p, state, stamp, RULE_GUEST)
        if avoids[j] >= -1:
            v, size = lazy_heap.pop_current(keys, hpages, size, state, stamp, RULE_GUEST, avoids[j])
            out[j] = v
            state[v] = G_U
    return out


@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.sampled_from([G_U, G_S, G_V]), st.booleans(), st.integers(-1, 9)), max_size=150
    )
)
def test_lazy_heap_pops_the_least_current_key(events):
    n_pages = 10
    state = [G_U] * n_pages
    twin = naive.ClassLru(lambda q: None if state[q] == G_U else (0 if state[q] == G_V else 1))
    pages, states, avoids, want = [], [], [], []
    for j, (p, new, pop, avoid) in enumerate(events):
        state[p] = new
        twin.use(p, j)
        with_class = [q for q in range(n_pages) if state[q] != G_U and q != avoid]
        pages.append(p)
        states.append(new)
        if pop and with_class:
            v = twin.least(avoid)
            state[v] = G_U
            avoids.append(avoid)
            want.append(v)
        else:
            avoids.append(-2)
            want.append(-2)
    # A capacity of one entry per page (plus the one pushed) makes it compact often.
    got = _drive_heap(
        np.array(pages, np.int64), np.array(states, np.uint8), np.array(avoids, np.int64), n_pages, n_pages + 1
    )
    assert got.tolist() == want


@given(
    guest_pages=st.lists(st.integers(0, 70), min_size=1, max_size=9),
    dtype=st.sampled_from([np.uint16, np.int64, np.uint8]),
)
def test_guest_of_matches_the_twin(guest_pages, dtype):
    # opt and the engine find a victim's guest from the guests' page ranges;
    # scenarios hold the table as uint16.
    table = np.repeat(np.arange(len(guest_pages), dtype=dtype), guest_pages)
    ends = guest_ends_of(table, len(guest_pages))
    assert ends.tolist() == np.cumsum(guest_pages).tolist()
    assert (
        [guest_of(p, ends) for p in range(len(table))]
        == [naive.guest_of(p, guest_pages) for p in range(len(table))]
        == table.tolist()
    )


def test_guest_ends_with_more_guests_than_the_table_dtype_holds():
    # Guests past the dtype's range hold no page here; their keys must not wrap.
    assert guest_ends_of(np.zeros(3, np.uint8), 300).tolist() == [3] * 300


def _check_merge(runs, seed, scale=1, base=0):
    rng = np.random.default_rng(seed)
    t = np.concatenate([np.sort(np.array(r, np.int64)) for r in runs]) * np.int64(scale) + np.int64(base)
    starts = np.concatenate([[0], np.cumsum([len(r) for r in runs])]).astype(np.int64)
    pfn = rng.integers(0, 1000, len(t)).astype(np.uint32)
    op = rng.integers(0, 6, len(t)).astype(np.uint8)
    run_guest = np.sort(rng.integers(0, 4, len(runs))).astype(np.uint16)  # a guest may have several runs
    run_offset = (run_guest.astype(np.int32) * 1000).astype(np.int32)
    got = (
        np.empty(len(t), np.int64),
        np.empty(len(t), np.int32),
        np.empty(len(t), np.uint8),
        np.empty(len(t), np.uint16),
    )
    merge_runs(t, pfn, op, starts, run_guest, run_offset, *got)
    want = naive.merge_runs(t, pfn, op, starts, run_guest, run_offset)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@given(
    runs=st.lists(st.lists(st.integers(0, 12), max_size=30), min_size=1, max_size=9),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1, 1 << 50, 1 << 58]),
    base=st.sampled_from([0, -(1 << 62), 1 << 40]),
)
def test_merge_runs_matches_the_twin(runs, seed, scale, base):
    # The stream's k-way merge: by time, ties by run (guest, then file order);
    # coarse times so that ties within and across runs are common. Spans of
    # 12 << 58 ns are too wide for the loser tree's key and take the heap;
    # negative times check the key's offset.
    _check_merge(runs, seed, scale, base)


def test_merge_runs_pads_the_tree_past_a_power_of_two():
    # 300 runs (some empty): a tree of 512 leaves, most of the padding exhausted.
    rng = np.random.default_rng(7)
    runs = [rng.integers(0, 40, rng.integers(0, 20)).tolist() for _ in range(300)]
    _check_merge(runs, 11)
    _check_merge(runs, 12, scale=1 << 56)  # the heap, same runs
