"""Shared fixtures and the hypothesis profile (helpers to import: ``tests/helpers.py``)."""

from __future__ import annotations

import fcntl
import tempfile
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
        # One process: a pool's spawned workers cost more than these small traces.
        synthesize(name, dest, seed=7, events=20_000, params=SMALL.get(name, []), jobs=1)
        paths[name] = dest
    return paths


@pytest.fixture
def live_kernel_lock():
    """Hold a lock shared by every pytest worker while a test records the live kernel."""
    with open(Path(tempfile.gettempdir()) / "cmmsim-tests-live-kernel.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
