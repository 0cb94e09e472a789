"""The replay engine: scenarios, strategies, budgets and results."""

from cmmsim.tracer._numba_cache import configure as _configure_numba_cache

_configure_numba_cache()
