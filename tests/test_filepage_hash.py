"""The mapper's page table against a Python dict (cmmsim.tracer.linux.filepage_hash)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from cmmsim.tracer.linux import filepage_hash as fph

# Few files and indices: keys collide and probe chains wrap around the table.
_KEY = st.tuples(st.integers(0, 3), st.integers(0, 40))
_OPS = st.lists(st.tuples(st.sampled_from(["put", "del", "get"]), _KEY, st.integers(0, 10**6)), max_size=300)


@settings(max_examples=150, deadline=None)
@given(_OPS, st.integers(1, 8))
def test_table_behaves_as_a_dict(ops, first_capacity):
    table = fph.new_table(first_capacity)
    ref: dict[tuple[int, int], int] = {}
    for what, (f, idx), value in ops:
        if what == "put":
            table = fph.reserve(table, len(ref), 1)
            assert fph.put(f, idx, value, *table) == (0 if (f, idx) in ref else 1)
            ref[(f, idx)] = value
        elif what == "del":
            p = fph.find(f, idx, *table[:2])
            assert (p >= 0) == ((f, idx) in ref)
            if p >= 0:
                fph.remove_at(p, *table)
                del ref[(f, idx)]
        assert fph.get(f, idx, *table) == ref.get((f, idx), -1)
        hf = table[0]
        assert int((hf != fph.EMPTY).sum()) == len(ref)
        assert 2 * len(ref) <= len(hf)
    for (f, idx), value in ref.items():
        assert fph.get(f, idx, *table) == value


def test_reserve_keeps_every_key_and_halves_the_load():
    table = fph.new_table(4)
    for k in range(100):
        table = fph.reserve(table, k, 1)
        fph.put(k % 7, k, k, *table)
    assert len(table[0]) >= 200
    assert [fph.get(k % 7, k, *table) for k in range(100)] == list(range(100))
