"""Shared fixtures and the hypothesis profile (helpers to import: ``tests/helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from cmmsim.tracer.synth import synthesize, workloads
from tests.helpers import SMALL

settings.register_profile("cmmsim", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
settings.load_profile("cmmsim")


@pytest.fixture(scope="session")
def small_traces(tmp_path_factory) -> dict[str, Path]:
    """One small trace (or scenario folder) per registered workload."""
    out = tmp_path_factory.mktemp("small")
    paths = {}
    for name, wl in workloads().items():
        dest = out / (name if wl.multi_guest else f"{name}.parquet")
        synthesize(name, dest, seed=7, events=20_000, params=SMALL.get(name, []))
        paths[name] = dest
    return paths
