"""Durations as a user writes them, and the state-sampling times of a replay."""

from __future__ import annotations

import re

import numpy as np

from tracer.errors import ParamError

#: Most state samples one replay takes.
MAX_SAMPLES = 100_000

_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s|m|h)?\s*$")
_DURATION_NS = {None: 1, "ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9,
                "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration_ns(spec: str | int) -> int:
    """``"1s"``, ``"250ms"``, ``"10us"`` or plain nanoseconds -> int ns (>= 0)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        value = spec
    else:
        m = _DURATION_RE.match(str(spec))
        if not m:
            raise ParamError(f"duration {spec!r}: expected a number with ns, us, ms, s, m or h")
        value = int(round(float(m.group(1)) * _DURATION_NS[m.group(2)]))
    if value < 0:
        raise ParamError(f"duration {spec!r}: must not be negative")
    return value


def sample_times(scenario, interval_ns: int) -> np.ndarray:
    """State-sample times from the first event to past the last, every ``interval_ns``."""
    span = (int(scenario.t_ns[0]), int(scenario.t_ns[-1])) if scenario.n_events else None
    return sample_times_between(span, interval_ns)


def sample_times_between(span: tuple[int, int] | None, interval_ns: int) -> np.ndarray:
    """Sample times from ``span[0]`` to past ``span[1]`` (ns), every ``interval_ns``; [0] if None."""
    if interval_ns <= 0:
        raise ParamError(f"state sampling interval must be positive, got {interval_ns}")
    if span is None:
        return np.zeros(1, np.int64)
    t0, t1 = span
    n = (t1 - t0) // interval_ns + 2
    if n > MAX_SAMPLES:
        raise ParamError(f"state sampling interval {interval_ns} ns gives {n} samples; "
                         f"at most {MAX_SAMPLES}")
    return t0 + interval_ns * np.arange(n, dtype=np.int64)
