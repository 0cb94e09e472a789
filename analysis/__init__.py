"""Reports, plots and the command line over cmmsim traces and replay results.

The library's front door is :mod:`cmmsim.api`; its functions are also
attributes of this package, imported on first use so that ``import cmmsim``
loads neither numba nor polars. ``replay`` is the exception: ``cmmsim.replay``
is the engine's package, so the function is ``cmmsim.api.replay``.
"""

import importlib

from cmmsim.tracer._numba_cache import configure as _configure_numba_cache

_configure_numba_cache()

#: Front-door names served lazily from :mod:`cmmsim.api` (``replay`` is the subpackage).
_API_NAMES = (
    "convert",
    "load",
    "miss_curve",
    "read_results",
    "report",
    "strategies",
    "sweep",
    "synthesize",
    "workloads",
)


def __getattr__(name: str):
    if name in _API_NAMES or name == "api":
        # import_module, not ``from cmmsim import api``: that asks this function
        # for ``api`` again before the submodule is loaded.
        api = importlib.import_module("cmmsim.api")
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module 'cmmsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API_NAMES, "api"})
