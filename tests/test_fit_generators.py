"""benchmarks/fit_generators.py: its score, and a generator checked against its own trace."""

from __future__ import annotations

import polars as pl
import pytest

from benchmarks import fit_generators as fit
from cmmsim.compare import df_distances, trace_profile
from cmmsim.tracer.synth import generate
from tests.helpers import SMALL


def test_score_of_a_trace_against_itself_is_zero(small_traces):
    p = trace_profile(small_traces["web-serving"])
    assert fit.score(df_distances(p, p)) == 0.0


def test_score_scales_the_reuse_distance_by_the_two_means():
    d = pl.DataFrame(
        {
            "measure": ["reuse distance (pages, mean)", "op mix"],
            "a": [30.0, None],
            "b": [10.0, None],
            "distance": [20.0, 0.5],
        }
    )
    assert fit.score(d) == pytest.approx((20 / 40 + 0.5) / 2)


def test_check_at_the_captures_size_and_length_is_seeded(tmp_path):
    # The same generator, parameters, length and seed as the "capture": every distance 0.
    params = dict(kv.split("=") for kv in SMALL["web-serving"])
    capture = tmp_path / "capture.parquet"
    generate("web-serving", capture, seed=1, params=params | {"duration_s": 1.0}, jobs=1)
    real = trace_profile(capture)
    pinned = fit.pinned_for(real)
    assert pinned["guest_mib"] == 16
    df = fit.check("web-serving", [str(capture)], params | {"duration_s": 1.0}, [1])
    assert df.height == 1 and df["score"][0] == 0.0
