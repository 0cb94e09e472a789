"""The state-priority marker replay (a marker, a bitmap and a heap per class, the victim
read from the trace) against the time slots' kernel and the twin: the same integers,
samples and final states, in one call or chunked, with and without a tier, on one guest
or several; and its heap, which holds the slots hints move behind a marker."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cmmsim.replay import class_marker, engine, planner, reference
from cmmsim.replay.marker import live_words
from cmmsim.replay.states import HONOUR_ALL, INITIAL_HINTING
from cmmsim.tracer.schema import Op
from tests import naive
from tests.helpers import assert_equals_twin, guest_traces, make_arrays, sample_trace_budgets, scenario_of
from tests.test_marker import CONFIGS, TWIN_HINTS, _same, _samples

KW = dict(honour=HONOUR_ALL, order=engine.ORDER_CLASS, initial=INITIAL_HINTING, keep_final=True)


def _check(scn, budgets, tier: int, chunk: int) -> None:
    at = _samples(scn, 4)
    kw = KW | dict(sample_at=at, tier_pages=tier)
    slots = engine.run(scn, budgets, path=planner.PARALLEL, **kw)
    got = engine.run(scn, budgets, path=planner.MARKER, **kw)
    _same(slots, got)
    chunked = engine.run(scn, budgets, path=planner.MARKER, on_events=lambda _: None, chunk_events=chunk, **kw)
    _same(got, chunked)
    assert_equals_twin(scn, got, budgets, reference.HINTS_ALL, "state-priority", tier, sample_at=at)


@settings(max_examples=200, deadline=None)
@given(scn=guest_traces(), tier=st.integers(0, 3), data=st.data())
def test_class_marker_equals_time_slots_and_twin(scn, tier, data):
    budgets = sorted(set(data.draw(st.lists(st.integers(1, max(1, scn.n_pages)), min_size=1, max_size=3))))
    _check(scn, budgets, tier, data.draw(st.integers(1, max(1, scn.n_events))))


def _flips(n_pages: int, budget: int, rounds: int):
    """Fill ``budget`` frames with stable pages and keep the newest in the cheap class,
    then move older ones into the cheap class (below its marker: a heap entry each)
    and out again, over and over, so the heap fills with stale entries; then fault
    the rest in."""
    ops = [Op.WRITE] * budget + [Op.SET_VOLATILE]
    pfns = list(range(budget)) + [budget - 1]
    for r in range(rounds):
        for p in range(budget // 2):
            # Every third round leaves its pages in the cheap class.
            ops += [Op.SET_VOLATILE, Op.SET_STABLE] if r % 3 else [Op.SET_VOLATILE]
            pfns += [p, p] if r % 3 else [p]
    ops += [Op.READ] * (n_pages - budget)
    pfns += list(range(budget, n_pages))
    return make_arrays(ops, pfns, guest_pages=n_pages)


def test_hints_behind_the_marker_fill_and_compact_the_heap():
    budget = 40  # a heap of 2 * 40 + 64 = 144 entries: the flips push thousands
    scn = scenario_of(_flips(n_pages=120, budget=budget, rounds=60))
    pushes = 60 * budget // 2
    assert pushes > 4 * class_marker.heap_entries(budget)
    for tier in (0, 5):
        _check(scn, [budget, budget + 7], tier, chunk=97)


def _fill(heap, entries, bits, marker):
    size = 0
    for slot, page in entries:
        size, marker = class_marker._push(heap, size, (slot << 32) | page, bits, marker)
    return size, marker


def _set(bits, slots):
    for slot in slots:
        bits[slot >> 6] |= np.uint64(1) << np.uint64(slot & 63)


def test_a_full_heap_keeps_one_entry_per_slot_still_in_the_class():
    bits = np.zeros(2, np.uint64)
    heap = np.zeros(6, np.int64)
    entries = [(5, 50), (3, 30), (5, 50), (9, 90), (70, 700), (3, 30)]  # slots 5 and 3 twice
    size, marker = _fill(heap, entries, bits, marker=100)
    _set(bits, (3, 5, 70))  # 9 left the class
    size, marker = class_marker._push(heap, size, (1 << 32) | 10, bits, marker)
    kept = sorted(int(x) for x in heap[:size])
    assert kept == sorted((s << 32) | p for s, p in [(1, 10), (3, 30), (5, 50), (70, 700)])
    assert heap[0] == (1 << 32) | 10  # still a heap: the least slot on top
    assert marker == 100
    assert [int(b) for b in bits] == [(1 << 3) | (1 << 5), 1 << (70 - 64)]  # the marks undone


def test_a_heap_mostly_still_in_the_class_hands_its_slots_back_to_the_scan():
    bits = np.zeros(2, np.uint64)
    heap = np.zeros(4, np.int64)
    size, marker = _fill(heap, [(40, 4), (12, 1), (30, 3), (20, 2)], bits, marker=100)
    _set(bits, (12, 20, 30, 40))  # all four still in the class: no room after compacting
    assert class_marker._push(heap, size, (7 << 32) | 9, bits, marker) == (0, 7)
    assert class_marker._push(heap, size, (50 << 32) | 9, bits, marker) == (0, 12)
    assert [int(b) for b in bits] == [(1 << 12) | (1 << 20) | (1 << 30) | (1 << 40), 0]


def test_class_marker_on_sample_traces_equals_time_slots():
    found = 0
    for scn, budgets in sample_trace_budgets(limit=20_000):
        found += 1
        kw = KW | dict(sample_at=_samples(scn, 5))
        _same(engine.run(scn, budgets, path=planner.PARALLEL, **kw), engine.run(scn, budgets, **kw))
    assert found >= 3


def test_the_planner_takes_the_class_marker_in_memory_and_not_for_streams():
    kw = dict(exact_lru=False, state_priority=True, n_budgets=1, n_events=10**7, threads=2)
    assert planner.choose(in_memory=True, **kw) == planner.MARKER
    assert planner.choose(**kw) == planner.PARALLEL


def test_each_budget_fills_only_its_own_heap(monkeypatch):
    """A budget's heap compacts at its own size (:func:`class_marker.heap_entries` of its
    frames), not the largest budget's: a curve of many budgets would otherwise touch
    each heap up to the largest's size (48 bytes per frame of the largest budget, each)."""
    made = []

    def marked_heaps(n_budgets, frames):
        heaps = np.full((n_budgets, class_marker.N_CLASSES, class_marker.heap_entries(frames)), -7, np.int64)
        made.append(heaps)
        return heaps

    monkeypatch.setattr(engine, "new_heaps", marked_heaps)
    small, large = 4, 400
    # Hints move the small budget's pages behind its marker hundreds of times.
    scn = scenario_of(_flips(n_pages=large, budget=small, rounds=600))
    engine.run(scn, [small, large], path=planner.MARKER, **KW)
    touched = (made[0][0] != -7).sum(axis=1)
    assert touched.max() > class_marker.heap_entries(small) // 2  # the heap did fill
    assert touched.max() <= class_marker.heap_entries(small)


@settings(max_examples=1000, deadline=None)
@given(
    frames=st.integers(1, 12),
    spare=st.integers(1, 12),
    mix=st.sampled_from(["nnjjdtt", "jjjdddt", "jjjjddddt", "nnjjjjddddt"]),
    n_steps=st.integers(0, 1500),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_class_gives_its_least_slot_against_a_sorted_set(frames, spare, mix, n_steps, seed):
    """One class's bitmap, marker and heap (heap as small as it may be: ``frames + spare``
    entries, so it compacts often) against a set of slots: new slots (``n``), older
    slots joining by a hint (``j``, mostly below the marker), slots leaving (``d``) and
    victims taken (``t``: the least slot and its page). The mixes heavy in ``j`` and
    ``d`` fill the heap with stale entries between victims; the engine-level tests
    seldom do (their heaps drain at each victim)."""
    rng = np.random.default_rng(seed)
    ops = rng.choice(list(mix), n_steps)
    picks = rng.integers(0, 1 << 30, n_steps)
    n = n_steps + 2
    live = np.zeros((class_marker.N_CLASSES, live_words(n)), np.uint64)
    cls = class_marker.new_classes(1)[0]
    heaps = np.empty((class_marker.N_CLASSES, frames + spare), np.int64)
    page_of = np.arange(n, dtype=np.int32) + 1000  # the trace's page at each slot
    c = 1
    members: set[int] = set()
    outside: list[int] = []  # slots that left the class (their pages still resident)
    for i, (op, r) in enumerate(zip(ops, picks, strict=True)):
        if op == "n" and len(members) < frames:
            class_marker._put_newest(live, cls, c, i)
            members.add(i)
        elif op == "j" and len(members) < frames and outside:
            x = outside.pop(r % len(outside))
            class_marker._put(live, cls, heaps, c, x, i, x + 1000)
            members.add(x)
        elif op == "d" and members:
            x = sorted(members)[r % len(members)]
            class_marker._drop(live, cls, c, x)
            members.discard(x)
            outside.append(x)
        elif op == "t" and members:
            least = min(members)
            assert class_marker._take(live, cls, heaps, c, page_of) == (least, least + 1000)
            members.discard(least)
        assert cls[class_marker.N_CLASSES + c] == len(members)


def _flipping(seed: int, n_guests: int, n_flip: int, n_hot: int, n: int, hint_share: float, mix):
    """Each guest writes its ``n_flip`` flip pages once, then reads and writes ``n_hot``
    hot pages (more than the frames: victims) while random hints (``mix``: the chances of ops 2-6) move the older flip
    pages between classes behind the markers; now and then a flip page is used."""
    rng = np.random.default_rng(seed)
    guests = []
    for _ in range(n_guests):
        hint = rng.random(n) < hint_share
        flip = hint | (rng.random(n) < 0.02)
        ops = np.where(hint, rng.choice(np.arange(2, 7), size=n, p=mix), rng.integers(0, 2, n))
        pfns = np.where(flip, rng.integers(0, n_flip, n), n_flip + rng.integers(0, max(1, n_hot), n))
        pfns = np.minimum(pfns, n_flip + n_hot - 1)
        ops, pfns = np.concatenate([np.ones(n_flip, int), ops]), np.concatenate([np.arange(n_flip), pfns])
        t_ns = np.cumsum(rng.integers(0, 3, len(ops)))
        guests.append(make_arrays(ops, pfns, guest_pages=n_flip + n_hot, t_ns=t_ns))
    return scenario_of(*guests)


def _least_heaps(n_budgets: int, frames: int) -> np.ndarray:
    # The least a heap may be: a compaction keeps at most ``frames`` slots.
    return np.empty((n_budgets, class_marker.N_CLASSES, frames + 1), np.int64)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 3), st.integers(1, 40), st.integers(0, 30), st.integers(0, 400)),
    hint_share=st.sampled_from([0.3, 0.6, 0.9]),
    weights=st.lists(st.integers(0, 4), min_size=5, max_size=5),
    config=st.sampled_from(CONFIGS),
    tier=st.integers(0, 6),
    data=st.data(),
)
def test_hints_flipping_old_pages_in_every_config(seed, shape, hint_share, weights, config, tier, data):
    """Flip pages older than the markers between classes (:func:`_flipping`), with every
    honour mask of the marker tests, at budgets from 1 frame to every page, in one call,
    chunked, and with the least heaps (compacted often): the time slots' and the twin's
    integers."""
    mix = np.array(weights, float) + 0.01
    scn = _flipping(seed, *shape, hint_share, mix / mix.sum())
    n_p = max(1, scn.n_pages)
    # Mostly between the extremes: victims while the heaps hold entries.
    sizes = st.one_of(st.integers(1, n_p), st.integers(1, n_p), st.just(1), st.just(n_p))
    budgets = sorted(set(data.draw(st.lists(sizes, min_size=1, max_size=3))))
    honour, initial = config
    kw = dict(
        honour=honour,
        order=engine.ORDER_CLASS,
        initial=initial,
        keep_final=True,
        sample_at=_samples(scn, 4),
        tier_pages=tier,
    )
    got = engine.run(scn, budgets, path=planner.MARKER, **kw)
    _same(engine.run(scn, budgets, path=planner.PARALLEL, **kw), got)
    # Chunks of a sixteenth and more: a chunk of one event is a call per event.
    chunk = data.draw(st.integers(max(1, scn.n_events // 16), max(1, scn.n_events)))
    with mock.patch.object(engine, "new_heaps", _least_heaps):
        _same(got, engine.run(scn, budgets, path=planner.MARKER, on_events=lambda _: None, chunk_events=chunk, **kw))
    assert_equals_twin(scn, got, budgets, TWIN_HINTS[honour], "state-priority", tier, sample_at=kw["sample_at"])


@settings(max_examples=100, deadline=None)
@given(scn=guest_traces(), data=st.data())
def test_the_walk_gives_each_events_previous_access_in_any_steps(scn, data):
    from cmmsim.replay.kernels.steps import walk_prev

    want = naive.previous_accesses(scn.page, scn.op)
    last = np.full(scn.n_pages, -1, np.int32)
    got = np.empty(scn.n_events, np.int32)
    step = data.draw(st.integers(1, max(1, scn.n_events)))
    for s in range(0, scn.n_events, step):
        walk_prev(scn.page[s : s + step], scn.op[s : s + step], last, np.int64(s), got[s : s + step])
    assert got.tolist() == want


@settings(max_examples=60, deadline=None)
@given(
    scn=guest_traces(),
    tier=st.integers(0, 3),
    mode=st.sampled_from([class_marker.WALK_OWN, class_marker.WALK_SHARED, class_marker.WALK_AHEAD]),
    data=st.data(),
)
def test_every_walk_mode_and_step_gives_the_same_integers(scn, tier, mode, data):
    """The previous accesses kept per budget, walked once before each step, or walked a
    step ahead on a thread of its own: the time slots' and the twin's integers, in one
    call or chunked, at steps from one event up."""
    budgets = sorted(set(data.draw(st.lists(st.integers(1, max(1, scn.n_pages)), min_size=1, max_size=3))))
    step = data.draw(st.integers(1, max(1, scn.n_events)))
    chunk = data.draw(st.integers(1, max(1, scn.n_events)))
    with (
        mock.patch.object(engine, "walk_mode", lambda n, t, e: mode),
        mock.patch.object(engine, "walk_step", lambda n: step),
    ):
        _check(scn, budgets, tier, chunk)


def test_walk_mode_keeps_a_thread_for_the_walk_or_shares_it():
    big = class_marker.WALK_MIN_EVENTS
    assert class_marker.walk_mode(1, 2, big) == class_marker.WALK_AHEAD
    assert class_marker.walk_mode(1, 2, big - 1) == class_marker.WALK_OWN
    assert class_marker.walk_mode(3, 4, big) == class_marker.WALK_OWN
    assert class_marker.walk_mode(1, 1, big) == class_marker.WALK_OWN
    assert class_marker.walk_mode(2, 2, big) == class_marker.WALK_OWN
    assert class_marker.walk_mode(6, 2, big) == class_marker.WALK_SHARED
    assert class_marker.walk_mode(3, 1, big) == class_marker.WALK_SHARED
    assert class_marker.walk_mode(30, 2, 1000) == class_marker.WALK_OWN
    assert class_marker.walk_step(10**9) == class_marker.WALK_STEP_MAX
    assert class_marker.walk_step(1000) == class_marker.WALK_STEP_MIN
