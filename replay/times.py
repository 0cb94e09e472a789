"""Durations as a user writes them, time shifts, and the state-sampling times of a replay.

Times are int64 nanoseconds. Arithmetic that could pass 2^63 - 1 (a copy's
shift added to a trace near the end of time, a sample past the last event)
is checked here in Python integers: a time never wraps around.
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np

from cmmsim.tracer.errors import ParamError

__all__ = ["MAX_SAMPLES", "T_MAX_NS", "check_shift", "parse_duration_ns", "sample_times", "sample_times_between"]

#: Most state samples one replay takes.
MAX_SAMPLES = 100_000
#: The latest time an int64 holds, ns (about year 2262 after 1970).
T_MAX_NS = (1 << 63) - 1

_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s|m|h)?\s*$")
_DURATION_NS = {
    None: 1,
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def parse_duration_ns(spec: str | int, *, what: str = "duration", positive: bool = False) -> int:
    """``"1s"``, ``"250ms"``, ``"10us"`` or plain nanoseconds -> int ns (>= 0).

    ``what`` names the value in an error (a file and key, say); ``positive``
    refuses 0 too (an interval).
    """
    if isinstance(spec, int) and not isinstance(spec, bool):
        value = spec
    else:
        m = _DURATION_RE.match(str(spec))
        if not m:
            raise ParamError(f"{what} {spec!r}: expected a number with ns, us, ms, s, m or h")
        # Exact decimal arithmetic: "9223372036854775807" is that many ns, not a float near it.
        value = round(Fraction(m.group(1)) * _DURATION_NS[m.group(2)])
    if value < 0 or positive and value == 0:
        raise ParamError(f"{what} {spec!r}: must {'be more than 0' if positive else 'not be negative'}")
    if value > T_MAX_NS:
        raise ParamError(f"{what} {spec!r}: more than {T_MAX_NS:,} ns (2^63 - 1)")
    return value


def check_shift(last_t_ns: int, shift_ns: int, where: str) -> None:
    """Refuse a time shift that would carry ``last_t_ns`` past :data:`T_MAX_NS`.

    Parameters
    ----------
    last_t_ns : int
        The latest time to be shifted, ns.
    shift_ns : int
        The shift (``copies - 1`` times the stagger for the last copy), ns.
    where : str
        What is shifted, for the message (a file).
    """
    if int(last_t_ns) + int(shift_ns) > T_MAX_NS:
        raise ParamError(
            f"{where}: shifting its last time {int(last_t_ns):,} ns by "
            f"{int(shift_ns):,} ns passes 2^63 - 1 ns; use a smaller "
            "--stagger or fewer --copies"
        )


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
    t0, t1 = int(span[0]), int(span[1])
    n = (t1 - t0) // interval_ns + 2
    if n > MAX_SAMPLES:
        raise ParamError(f"state sampling interval {interval_ns:,} ns gives {n:,} samples; at most {MAX_SAMPLES:,}")
    at = [t0 + interval_ns * k for k in range(n)]
    # The last sample is past the last event; at the end of time it is the
    # last time there is (a sample at the last event's time or later is the
    # final state either way).
    at[-1] = min(at[-1], T_MAX_NS)
    return np.array(at, dtype=np.int64)
