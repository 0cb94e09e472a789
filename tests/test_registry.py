"""Every registered strategy, read from the registry: what it declares, kernel against
twin, the engine's invariants, and the offline floor under all of them.

A new strategy module is tested here with nothing to edit: its declared example
parameters are the cases.
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmmsim.replay import states as S
from cmmsim.replay.api import replay_full
from cmmsim.replay.strategies import get_strategy, names, strategies
from cmmsim.tracer.errors import ParamError
from tests.helpers import (
    LEGAL,
    check_invariants,
    event_per_time,
    examples,
    guest_traces,
    make_arrays,
    run_both,
    scenario_of,
    total_io,
    twin_samples,
)

ALL = examples()
#: The contenders the offline floor bounds.
ONLINE = examples(online=True)
#: The strategies that sample page states.
SAMPLING = examples(samples_states=True)
FLOORS = [name for name, s in strategies().items() if s.offline and not s.upper_bound]
#: Offline schedules: they bound the optimum from above, the floors from below it.
SCHEDULES = [name for name, s in strategies().items() if s.upper_bound]


def _choices(params_type) -> dict[str, set]:
    """The values of every choice (Literal) parameter."""
    hints = typing.get_type_hints(params_type)
    return {
        f: set(typing.get_args(hints[f]))
        for f in (x.name for x in dataclasses.fields(params_type))
        if typing.get_origin(hints[f]) is typing.Literal
    }


@pytest.mark.parametrize("name", list(strategies()))
def test_examples_take_every_choice_value_and_parse(name):
    strat = get_strategy(name)
    assert strat.examples, name
    parsed = [strat.parse_params(p) for p in strat.examples]
    for field, values in _choices(strat.params).items():
        assert {getattr(p, field) for p in parsed} == values, (name, field)


def test_the_registry_knows_every_kind():
    assert FLOORS and ONLINE and SCHEDULES
    assert all(get_strategy(name).offline for name in SCHEDULES)
    assert names(streams=True) and names(samples_states=True) and names(has_series=True)
    for strat in strategies().values():
        assert not strat.streams or strat.samples_states, strat.name
        assert strat.reference is not None and strat.summary


@pytest.mark.parametrize("strategy, params", ALL)
@given(scn=guest_traces(), data=st.data())
def test_kernel_equals_twin_on_random_traces(strategy, params, scn, data):
    strat = get_strategy(strategy)
    low = scn.n_guests if strat.frame_per_guest else 1
    budget = data.draw(st.integers(low, scn.n_pages + 2))
    at = None
    if scn.n_events and strat.samples_states:
        # A sample before every event, ties or not: the engine's strategies ignore time
        # but for the samples (their ties are held to the twin below).
        scn = event_per_time(scn)
        at = scn.t_ns
    res = run_both(strategy, params, scn, budget, sample_at=at)
    cnt = res.counters[0]
    assert (cnt >= 0).all()
    assert res.host_peak[0] <= budget
    assert (cnt[:, S.C_PEAK] <= res.host_peak[0]).all()
    if at is not None:
        check_invariants(scn, res, budget)
    elif res.final_states.shape[0] and strat.host_tier:
        # Without samples, the final states at least: legal pairs only (run_both holds
        # them equal to the twin's, which nothing else holds legal). A strategy with a
        # host keeps the engine's byte; static keeps the guest's (states.py).
        assert {int(b) & (S.GUEST_MASK | S.HOST_MASK) for b in res.final_states[0]} <= LEGAL


@pytest.mark.parametrize("strategy, params", SAMPLING)
@given(scn=guest_traces(), data=st.data())
def test_state_samples_equal_the_twin(strategy, params, scn, data):
    # The twin keeps no samples: a sample must count the pages as the twin leaves them
    # on the trace cut at its time (tests/helpers.py twin_samples). Times from before
    # the first event to past the last, ties with events and with each other.
    strat = get_strategy(strategy)
    p = strat.parse_params(params)
    budget = data.draw(st.integers(1, scn.n_pages + 2))
    t0, t1 = (int(scn.t_ns[0]), int(scn.t_ns[-1])) if scn.n_events else (0, 0)
    at = np.sort(np.array(data.draw(st.lists(st.integers(t0 - 1, t1 + 1), min_size=1, max_size=5)), np.int64))
    res = strat.run(scn, np.array([budget]), p, sample_at=at)
    want = twin_samples(scn, at, lambda cut: strat.reference(cut, budget, p))
    np.testing.assert_array_equal(res.samples[0], want)


@given(scn=guest_traces(), data=st.data())
def test_offline_floor_bounds_every_strategy(scn, data):
    budget = data.draw(st.integers(1, scn.n_pages + 1))
    for floor_name in FLOORS:
        floor = total_io(run_both(floor_name, {}, scn, budget))
        for name, params in ONLINE:
            strat = get_strategy(name)
            if strat.frame_per_guest and budget < scn.n_guests:
                continue  # a partition needs a frame per guest
            res = strat.run(scn, np.array([budget]), strat.parse_params(params))
            assert floor <= total_io(res), (floor_name, name, params, budget)


@given(scn=guest_traces(), data=st.data())
def test_every_floor_is_below_every_offline_schedule(scn, data):
    budget = data.draw(st.integers(1, scn.n_pages + 1))
    for schedule in SCHEDULES:
        bound = run_both(schedule, {}, scn, budget)
        for floor_name in FLOORS:
            strat = get_strategy(floor_name)
            floor = strat.run(scn, np.array([budget]), strat.parse_params({}))
            assert total_io(floor) <= total_io(bound), (floor_name, schedule, budget)


@pytest.mark.parametrize("name", names(samples_states=False))
def test_asking_for_states_without_page_states_is_an_error(name):
    scn = scenario_of(make_arrays([2, 1, 0], [0, 0, 0], guest_pages=2))
    with pytest.raises(ParamError, match="keeps no page states") as err:
        replay_full(scn, name, [2], states_interval_ns=1)
    assert "\n" not in str(err.value)
    strat = get_strategy(name)
    with pytest.raises(ParamError, match="keeps no page states"):
        strat.run(scn, [2], strat.parse_params({}), sample_at=np.zeros(1, np.int64))


@pytest.mark.parametrize("name", names(has_series=False))
def test_asking_for_a_series_without_one_is_an_error(name):
    scn = scenario_of(make_arrays([2, 1, 0], [0, 0, 0], guest_pages=2))
    with pytest.raises(ParamError, match="writes no per-period series"):
        replay_full(scn, name, [2], series=True)
    assert replay_full(scn, name, [2]).series is None


@pytest.mark.parametrize("name", names(has_series=True))
def test_a_series_has_the_declared_columns(name):
    scn = scenario_of(make_arrays([2, 1, 0, 1], [0, 0, 1, 1], guest_pages=4, t_ns=[0, 1, 2, 3]))
    strat = get_strategy(name)
    out = replay_full(scn, name, [2, 3], strat.examples[0])
    assert set(strat.series.columns) <= set(out.series.columns)
    assert replay_full(scn, name, [2], strat.examples[0], series=False).series is None
