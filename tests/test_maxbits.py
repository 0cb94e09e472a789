"""The bit-tree integer set of replay.maxbits against a Python set."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from replay import maxbits


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 70_000), st.lists(st.tuples(st.booleans(), st.integers(0, 10**9)),
                                        max_size=200))
def test_bit_tree_behaves_as_a_set(n, ops):
    offsets = maxbits.level_offsets(n)
    words = np.zeros(offsets[-1], np.uint64)
    ref: set[int] = set()
    for insert, x in ops:
        x %= n
        if insert and x not in ref:
            maxbits.add(words, offsets, x)
            ref.add(x)
        elif not insert and x in ref:
            maxbits.remove(words, offsets, x)
            ref.discard(x)
        assert maxbits.maximum(words, offsets) == max(ref, default=-1)
        assert maxbits.contains(words, x) == (x in ref)
    assert [x for x in range(n) if maxbits.contains(words, x)] == sorted(ref)
    for x in sorted(ref, reverse=True):  # drain from the top
        assert maxbits.maximum(words, offsets) == x
        maxbits.remove(words, offsets, x)
    assert maxbits.maximum(words, offsets) == -1 and not words.any()


def test_levels_reach_one_word():
    assert maxbits.level_offsets(1).tolist() == [0, 1]
    assert maxbits.level_offsets(64).tolist() == [0, 1]
    assert maxbits.level_offsets(65).tolist() == [0, 2, 3]
    assert maxbits.level_offsets(64 ** 3 + 1).tolist() == [0, 4097, 4162, 4164, 4165]
