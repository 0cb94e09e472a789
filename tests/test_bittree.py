"""The bit-tree integer set of cmmsim.replay.kernels.bittree against a Python set."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cmmsim.replay.kernels import bittree


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 70_000), st.lists(st.tuples(st.booleans(), st.integers(0, 10**9)), max_size=200))
def test_bit_tree_behaves_as_a_set(n, ops):
    offsets = bittree.level_offsets(n)
    words = np.zeros(offsets[-1], np.uint64)
    ref: set[int] = set()
    for insert, x in ops:
        x %= n
        if insert and x not in ref:
            bittree.add(words, offsets, x)
            ref.add(x)
        elif not insert and x in ref:
            bittree.remove(words, offsets, x)
            ref.discard(x)
        assert bittree.maximum(words, offsets) == max(ref, default=-1)
        assert bittree.contains(words, x) == (x in ref)
    assert [x for x in range(n) if bittree.contains(words, x)] == sorted(ref)
    for x in sorted(ref, reverse=True):  # drain from the top
        assert bittree.maximum(words, offsets) == x
        bittree.remove(words, offsets, x)
    assert bittree.maximum(words, offsets) == -1 and not words.any()


def test_levels_reach_one_word():
    assert bittree.level_offsets(1).tolist() == [0, 1]
    assert bittree.level_offsets(64).tolist() == [0, 1]
    assert bittree.level_offsets(65).tolist() == [0, 2, 3]
    assert bittree.level_offsets(64**3 + 1).tolist() == [0, 4097, 4162, 4164, 4165]
