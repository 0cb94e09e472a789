"""Host budgets: parsed from what a user writes, and validated once for the kernels.

A budget is a number of host frames (4 KiB pages). :func:`parse_budgets` reads
the user's forms (pages, bytes with a unit, a percentage of guest memory);
:func:`validated` validates budgets given as numbers, which is what every
strategy's ``run`` receives (:meth:`cmmsim.replay.strategies.Strategy.run` calls it),
and clamps them to the pages there are: a host never holds more frames than
the scenario has pages, so the kernels are handed ``Budgets.frames`` and
never clamp again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.schema import PAGE_SIZE_BYTES

__all__ = ["Budgets", "MAX_BUDGET_PAGES", "checked", "parse_budget", "parse_budgets", "validated"]

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1000,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mb": 10**6,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gb": 10**9,
    "gib": 1 << 30,
    "t": 1 << 40,
    "tib": 1 << 40,
}
#: The largest budget, pages: result rows hold budgets as int64.
MAX_BUDGET_PAGES = (1 << 63) - 1
_BUDGET_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z%]*)\s*$")


def parse_budget(spec: str | int, total_pages: int) -> int:
    """A host budget in frames.

    Parameters
    ----------
    spec : str or int
        Pages (``"4096"``), bytes with a unit (``"256MiB"``, ``"1.5GiB"``) or
        a percentage of total guest memory (``"50%"``).
    total_pages : int
        Total guest memory of the scenario, pages.
    """
    if isinstance(spec, int | np.integer) and not isinstance(spec, bool):
        pages = int(spec)
    else:
        m = _BUDGET_RE.match(str(spec))
        if not m:
            raise ParamError(f"budget {spec!r}: expected pages, bytes with a unit (256MiB) or a percentage (50%)")
        num, unit = float(m.group(1)), m.group(2).lower()
        if not math.isfinite(num):
            raise ParamError(f"budget {spec!r}: too large")
        if unit == "%":
            pages = int(round(total_pages * num / 100))
        elif unit in ("", "p", "pages"):
            if not num.is_integer():
                raise ParamError(f"budget {spec!r}: a page count must be a whole number")
            pages = int(num)
        elif unit in _UNITS:
            pages = int(num * _UNITS[unit]) // PAGE_SIZE_BYTES
        else:
            raise ParamError(f"budget {spec!r}: unknown unit {m.group(2)!r}")
    if pages < 1:
        raise ParamError(f"budget {spec!r}: must be at least one page")
    if pages > MAX_BUDGET_PAGES:
        raise ParamError(f"budget {spec!r}: more than {MAX_BUDGET_PAGES:,} pages")
    return pages


def parse_budgets(specs: Sequence[str | int], total_pages: int) -> np.ndarray:
    """Several budgets (sorted, duplicates removed), frames."""
    if not specs:
        raise ParamError("no budget given")
    return np.array(sorted({parse_budget(s, total_pages) for s in specs}), dtype=np.int64)


def checked(budgets) -> np.ndarray:
    """Budgets as given (order and repeats kept) as int64 frames, each >= 1."""
    try:
        b = np.asarray(budgets, dtype=np.int64)
    except OverflowError:
        raise ParamError(f"budgets must be at most {MAX_BUDGET_PAGES:,} frames") from None
    if b.ndim != 1 or b.size == 0 or (b < 1).any():
        raise ParamError("budgets must be a non-empty list of positive frame counts")
    return b


@dataclass(frozen=True)
class Budgets:
    """Validated budgets of one replay.

    Attributes
    ----------
    pages : ndarray[int64]
        The budgets as asked, frames (>= 1; the result rows' ``budget_pages``).
    frames : ndarray[int64]
        Frames the host can hold at each: ``min(pages, n_pages)``.
    """

    pages: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return len(self.pages)


def validated(budgets, n_pages: int) -> Budgets:
    """Validate budgets (frames, any order, repeats allowed) for a scenario of ``n_pages`` pages."""
    if isinstance(budgets, Budgets):
        return budgets
    b = checked(budgets)
    return Budgets(b, np.minimum(b, max(int(n_pages), 0)))
