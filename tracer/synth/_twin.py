"""Run a workload's numba code as plain Python against the twin guest model.

A workload is written once, as ``njit`` functions that call the guest model
(:mod:`cmmsim.tracer.synth._model`) and the generator (:mod:`cmmsim.tracer.synth._rng`)
by name. :func:`python_twin` rebuilds such a function from its Python source
with every name the model or generator defines bound to its pure-Python twin
(:class:`cmmsim.tracer.synth._guest.GuestSim`'s methods, ``_rng``'s ``py_*``
functions), and every other ``njit`` function it calls rebuilt the same way.
The workload logic then runs in the interpreter on the twin model: a second
implementation of the model (Python structures instead of linked arrays) and
the interpreter's arithmetic instead of compiled code. Functions must call
what they use by a plain global name (``file_read(g, ...)``, not
``_model.file_read``), which is how the workloads are written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import FunctionType

from numba.core.dispatcher import Dispatcher

from cmmsim.tracer.synth import _guest, _rng


@functools.cache
def _overrides() -> dict[int, Callable]:
    return {id(k): v for k, v in (_guest.TWINS | _rng.TWINS).items()}


def python_twin(fn: Dispatcher) -> Callable:
    """The pure-Python twin of the ``njit`` function ``fn`` (see the module docstring)."""
    return _rebuild(fn, _overrides(), {})


def _rebuild(fn: Dispatcher, overrides: dict[int, Callable], done: dict[int, Callable]) -> Callable:
    if id(fn) in overrides:
        return overrides[id(fn)]
    if id(fn) in done:
        return done[id(fn)]
    py = fn.py_func
    namespace: dict = {}
    twin = FunctionType(py.__code__, namespace, py.__name__, py.__defaults__, py.__closure__)
    done[id(fn)] = twin
    for name, value in py.__globals__.items():
        namespace[name] = _rebuild(value, overrides, done) if isinstance(value, Dispatcher) else value
    return twin
