"""Numba's thread count for one block of code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba as nb


@contextmanager
def numba_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` numba threads, then restore the count.

    Numba keeps the count per calling thread, so this changes nothing for
    other threads. ``n`` must lie in ``[1, numba.config.NUMBA_NUM_THREADS]``.
    """
    saved = nb.get_num_threads()
    nb.set_num_threads(n)
    try:
        yield
    finally:
        nb.set_num_threads(saved)
