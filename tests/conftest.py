"""Shared fixtures: small traces made on the fly (never written into the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from tracer.io import TraceArrays
from tracer.schema import TraceMeta, count_ops
from tracer.synth import synthesize, workloads

settings.register_profile(
    "cmmsim", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60
)
settings.load_profile("cmmsim")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "sample_traces"

#: Small parameter sets so every workload fits a few thousand pages.
SMALL = {
    "kernel-compile": ["guest_mib=16", "anon_pages=200", "sources=50", "headers=30",
                       "headers_per_unit=10"],
    "web-serving": ["guest_mib=16", "workers=4", "worker_anon_pages=16"],
    "awm": ["pairs=1", "guest_mib=16", "backend_gib=0.05", "app_pages=64"],
    "idle-after-boot": ["guest_mib=16"],
    "phased": ["guest_mib=16", "file_pages=64"],
}


def make_arrays(ops, pfns, guest_pages=None, t_ns=None) -> TraceArrays:
    """A TraceArrays from plain lists (times default to 0, 1, 2, ...)."""
    op = np.asarray(ops, dtype=np.uint8)
    pfn = np.asarray(pfns, dtype=np.uint32)
    t = np.arange(len(op), dtype=np.int64) if t_ns is None else np.asarray(t_ns, np.int64)
    gp = guest_pages if guest_pages is not None else int(pfn.max(initial=0)) + 1
    meta = TraceMeta(guest_pages=gp, source="test", event_counts=count_ops(op))
    return TraceArrays(t, pfn, op, meta)


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
