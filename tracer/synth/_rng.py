"""Seeded random numbers for the generators: xoshiro256** in numba, and its twin.

Every guest draws from its own 4-word state (a ``uint64[4]`` array seeded by
:func:`rng_state` from the scenario seed and the guest's stream numbers), so
guests are independent and can be generated in any order or in parallel.
The numba functions here and the pure-Python ones in :data:`TWINS` compute
the same integers and the same doubles (IEEE arithmetic and the C library's
``log`` and ``cos`` on both sides); the tests hold them to it.

Distributions are built from uniform doubles in [0, 1) with 53 random bits:
``rng_below`` (uniform integer), ``rng_exp`` (exponential), ``rng_erlang``
(a sum of exponentials: sizes with a mode), ``rng_pick`` (inverse CDF of a
table, e.g. a Zipf law made by :func:`zipf_cdf`).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

_M64 = (1 << 64) - 1
_U53 = 1.0 / 9007199254740992.0  # 2**-53


def rng_state(seed: int, *stream: int) -> np.ndarray:
    """A fresh generator state for one stream of one seed (``uint64[4]``)."""
    return np.random.SeedSequence([seed, *stream]).generate_state(4, np.uint64)


def zipf_cdf(n: int, alpha: float) -> np.ndarray:
    """The CDF of ranks ``0..n-1`` with weights ``1 / (rank + 1) ** alpha`` (last entry 1.0)."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** alpha
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return cdf


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@nb.njit(cache=True, nogil=True, _nrt=False)
def rng_u64(s):
    """The next 64 random bits (xoshiro256**); advances ``s`` in place."""
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3
    return result


@nb.njit(cache=True, nogil=True, _nrt=False)
def rng_uniform(s):
    """A double uniform in [0, 1) with 53 random bits."""
    return np.float64(rng_u64(s) >> np.uint64(11)) * _U53


@nb.njit(cache=True, nogil=True, _nrt=False)
def rng_below(s, n):
    """An integer uniform in ``0..n-1`` (``n >= 1``)."""
    return min(np.int64(rng_uniform(s) * n), n - 1)


@nb.njit(cache=True, nogil=True, _nrt=False)
def rng_exp(s, mean):
    """An exponential draw with the given mean (a double)."""
    return -math.log(1.0 - rng_uniform(s)) * mean


@nb.njit(cache=True, nogil=True, _nrt=False)
def rng_erlang(s, k, mean):
    """A sum of ``k`` exponentials with overall mean ``mean``: shape ``k``, mode below the mean."""
    total = 0.0
    for _ in range(k):
        total += rng_exp(s, mean / k)
    return total


@nb.njit(cache=True, nogil=True, _nrt=False)
def rng_pick(s, cdf):
    """An index drawn with the probabilities of the cumulative table ``cdf``."""
    i = np.int64(np.searchsorted(cdf, rng_uniform(s), side="right"))
    return min(i, cdf.size - 1)


# -- the pure-Python twin ---------------------------------------------------------------------------
def _py_rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & _M64


def py_rng_u64(s: np.ndarray) -> int:
    s0, s1, s2, s3 = (int(v) for v in s)
    result = (_py_rotl((s1 * 5) & _M64, 7) * 9) & _M64
    t = (s1 << 17) & _M64
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _py_rotl(s3, 45)
    s[:] = np.array([s0, s1, s2, s3], dtype=np.uint64)
    return result


def py_rng_uniform(s: np.ndarray) -> float:
    return float(py_rng_u64(s) >> 11) * _U53


def py_rng_below(s: np.ndarray, n: int) -> int:
    return min(int(py_rng_uniform(s) * n), int(n) - 1)


def py_rng_exp(s: np.ndarray, mean: float) -> float:
    return -math.log(1.0 - py_rng_uniform(s)) * mean


def py_rng_erlang(s: np.ndarray, k: int, mean: float) -> float:
    total = 0.0
    for _ in range(int(k)):
        total += py_rng_exp(s, mean / k)
    return total


def py_rng_pick(s: np.ndarray, cdf: np.ndarray) -> int:
    u = py_rng_uniform(s)
    lo, hi = 0, len(cdf)
    while lo < hi:  # bisect_right, written out so the twin owes nothing to numpy's search
        mid = (lo + hi) // 2
        if u < cdf[mid]:
            hi = mid
        else:
            lo = mid + 1
    return min(lo, len(cdf) - 1)


#: numba function -> its pure-Python twin (see :mod:`cmmsim.tracer.synth._twin`).
TWINS = {
    rng_u64: py_rng_u64,
    rng_uniform: py_rng_uniform,
    rng_below: py_rng_below,
    rng_exp: py_rng_exp,
    rng_erlang: py_rng_erlang,
    rng_pick: py_rng_pick,
}
