"""Reports, plots and the command line over cmmsim traces and replay results."""

from cmmsim.tracer._numba_cache import configure as _configure_numba_cache

_configure_numba_cache()
