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

#: Small parameter sets so every workload fits a few thousand pages (a small
#: system too: the default boot alone needs about 60 MiB).
_SMALL_GUEST = ["guest_mib=16", "kernel_mib=2", "daemon_mib=2", "boot_cache_mib=2",
                "boot_transient_mib=1", "log_mib=1"]
SMALL = {
    "kernel-compile": _SMALL_GUEST + ["heap_mib=1", "sources=50", "headers=30", "headers_per_unit=10",
                                      "compiler_mib=1", "exec_mib=0.5", "unit_cpu_ms=100", "touch_us=200"],
    "web-serving": _SMALL_GUEST + ["directories=4", "workers=4", "worker_mib=0.25"],
    "awm": _SMALL_GUEST + ["pairs=1", "backend_gib=0.05", "app_mib=0.5"],
    "idle-after-boot": _SMALL_GUEST,
    "phased": _SMALL_GUEST + ["file_mib=0.25"],
    # Fleet guests take their workloads' defaults, which need 64 MiB (kernel-compile: 256).
    "fleet": ["guest_mib=64", "kernel_mib=2", "daemon_mib=2", "boot_cache_mib=2", "boot_transient_mib=1",
              "guests=4", "mix=web-serving:1,awm-server:1,phased:1,idle-after-boot:1",
              "boot_spread_s=2", "on_s=1", "off_s=1", "day_s=10"],
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
