"""Typed ``key=value`` parameters for workloads and strategies.

Workload and strategy parameters are frozen dataclasses whose fields carry a
``help`` string in their metadata. This module parses ``k=v`` strings into
them (with the field's type) and describes them for ``--help``-style listings.

Every number is bounded here, once, before a generator or a kernel sees it
(:func:`bounds`): a field's metadata may give ``min`` and ``max``; an integer
always fits a signed 64-bit word (kernels take them as such, and a wider
number would wrap there); a count of pages (a name ending ``_pages``) is at
most a guest's pages and a size in MiB (``_mib``) at most a guest's memory
(:data:`cmmsim.tracer.schema.MAX_GUEST_PAGES`), a size in KiB (``_kib``) too; a
time (``_s``, ``_ms``, ``_us``, not a rate such as ``_mib_s``) is at most
:data:`MAX_TIME_NS`; a float is finite.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections import Counter
from typing import Any, Literal, get_args, get_origin

from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.schema import MAX_GUEST_BYTES, MAX_GUEST_PAGES

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
#: Bounds by the unit a name ends with (units are in names: house rule).
_UNIT_MAX = {
    "_pages": MAX_GUEST_PAGES,
    "_mib": MAX_GUEST_BYTES >> 20,
    "_kib": MAX_GUEST_BYTES >> 10,
}
#: The longest time a parameter may give, ns (2^56, about 2.3 years): the
#: generators add a few such times to clocks held in int64 ns, and those sums
#: must not wrap.
MAX_TIME_NS = 1 << 56
#: Time units a name may end with, in ns; names ending in a rate are not times.
_TIME_UNITS = {"_s": 10**9, "_ms": 10**6, "_us": 10**3}
_RATE_ENDINGS = ("_per_s", "_mib_s", "_mbit_s")


def bounds(f: dataclasses.Field, tp: Any) -> tuple[Any, Any]:
    """``(lowest, highest)`` a numeric field accepts (None: unbounded on that side)."""
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if tp not in (int, float):
        return lo, hi
    unit = next((m for s, m in _UNIT_MAX.items() if f.name.endswith(s)), None)
    if not f.name.endswith(_RATE_ENDINGS):
        scale = next((ns for s, ns in _TIME_UNITS.items() if f.name.endswith(s)), None)
        if scale is not None:
            unit = MAX_TIME_NS // scale
    if tp is int:
        unit = INT64_MAX if unit is None else unit
        lo = INT64_MIN if lo is None else max(lo, INT64_MIN)
    if unit is not None:
        hi = min(unit if hi is None else hi, unit, INT64_MAX)
    return lo, hi


def _check_bounds(f: dataclasses.Field, tp: Any, value: Any) -> None:
    if tp not in (int, float) or isinstance(value, bool):
        return
    if tp is float and not math.isfinite(value):
        raise ParamError(f"parameter {f.name}={value!r}: must be a finite number")
    lo, hi = bounds(f, tp)
    if lo is not None and value < lo:
        raise ParamError(f"parameter {f.name}={value:,}: must be at least {lo:,}")
    if hi is not None and value > hi:
        raise ParamError(f"parameter {f.name}={value:,}: must be at most {hi:,}")


def describe(cls: type) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, help)`` for each field of a params dataclass."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        out.append((f.name, _type_name(hints[f.name]), f.default, f.metadata.get("help", "")))
    return out


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "|".join(str(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(name: str, tp: Any, raw: str) -> Any:
    if get_origin(tp) is Literal:
        choices = get_args(tp)
        if raw not in choices:
            raise ParamError(f"parameter {name}={raw!r}: must be one of {', '.join(choices)}")
        return raw
    if tp is bool:
        low = raw.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ParamError(f"parameter {name}={raw!r}: expected true or false")
    if tp is int:
        try:
            return int(raw.replace("_", ""), 0)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = None
            if value is not None and math.isfinite(value) and value.is_integer():
                return int(value)
            raise ParamError(f"parameter {name}={raw!r}: expected an integer") from None
    if tp is float:
        try:
            return float(raw)
        except (ValueError, OverflowError):
            raise ParamError(f"parameter {name}={raw!r}: expected a number") from None
    if tp is str:
        return raw
    raise ParamError(f"parameter {name}: unsupported type {tp}")


def parse(cls: type, pairs: list[str] | dict[str, Any] | None, *, what: str) -> Any:
    """Build ``cls`` from ``["k=v", ...]`` or a dict; unknown keys are refused.

    Parameters
    ----------
    cls : type
        A frozen dataclass whose ``__post_init__`` may raise ParamError.
    pairs : list of str or dict
        ``k=v`` strings (from the command line) or already-typed values.
    what : str
        Name used in messages ("strategy cmm", "workload phased").
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    items: list[tuple[str, Any]]
    if pairs is None:
        items = []
    elif isinstance(pairs, dict):
        items = list(pairs.items())
    else:
        items = []
        for pair in pairs:
            if "=" not in pair:
                raise ParamError(f"{what}: parameter {pair!r} is not of the form key=value")
            k, v = pair.split("=", 1)
            items.append((k.strip().replace("-", "_"), v.strip()))
        # A key given twice is a slip, not an order: neither value is silently dropped.
        if twice := next((k for k, n in Counter(k for k, _ in items).items() if n > 1), None):
            raise ParamError(f"{what}: parameter {twice!r} given more than once")
    try:
        for key, raw in items:
            if key not in fields:
                valid = ", ".join(fields) or "none"
                raise ParamError(f"unknown parameter {key!r} (valid: {valid})")
            tp = hints[key]
            values[key] = _coerce(key, tp, raw) if isinstance(raw, str) else _check_typed(key, tp, raw)
        # The class's own checks first (their messages are the more specific),
        # then the bounds every number shares.
        obj = cls(**values)
        for key, value in values.items():
            _check_bounds(fields[key], hints[key], value)
        return obj
    except ParamError as exc:
        raise ParamError(f"{what}: {exc}") from None


def _check_typed(name: str, tp: Any, value: Any) -> Any:
    if get_origin(tp) is Literal:
        return _coerce(name, tp, str(value))
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    raise ParamError(f"parameter {name}={value!r}: expected {_type_name(tp)}")


def as_dict(params: Any) -> dict[str, Any]:
    """The parameters as a plain dict (for metadata and result rows)."""
    return dataclasses.asdict(params)


def need(cond: bool, message: str) -> None:
    """Raise ParamError(message) unless ``cond``; for ``__post_init__`` checks."""
    if not cond:
        raise ParamError(message)
