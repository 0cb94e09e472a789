"""Executors a sweep's jobs run on, and the set-up of its local workers.

:func:`cmmsim.replay.sweep.run_sweep` takes any ``concurrent.futures``
executor factory ``make_executor(max_workers)``; the two given here are a
local process pool (:func:`local_executor`) whose workers are made by
:func:`warm_up`, and executors on an existing Dask cluster
(:func:`dask_executor_factory`), whose workers run :func:`warm_up` as a task
first (:func:`warm_dask_workers`). Local workers end when the sweep's process
ends, however it ends (a SIGKILL included).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Executor

from cmmsim.replay.strategies import strategies
from cmmsim.tracer._numba_cache import compiling_alone
from cmmsim.tracer.children import die_with_parent
from cmmsim.tracer.errors import ParamError

__all__ = ["dask_executor_factory", "local_executor", "placement", "warm_dask_workers", "warm_up"]


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _large_arrays_from_the_heap() -> None:
    """Undo, in a Dask worker, what its nanny's ``MALLOC_TRIM_THRESHOLD_`` does to glibc.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``
    (``distributed.nanny.pre-spawn-environ``) so they hand freed memory back to
    the system. Setting it also freezes glibc's mmap threshold at 128 KiB: every
    array of a few MiB (a streamed chunk, the merge's runs) is then a fresh
    mapping whose pages the kernel zeroes at first touch, where a pool worker
    reuses its heap. Here the mmap threshold is set to the ceiling glibc's
    dynamic one grows to (32 MiB) and the trim threshold above it (128 MiB); a
    process without that variable is left alone.
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    mallopt(_M_TRIM_THRESHOLD, 128 << 20)


def warm_up(parent_pid: int | None = None) -> None:
    """Worker initializer: end with the sweep's process, and load every strategy's kernels once.

    Parameters
    ----------
    parent_pid : int, optional
        The sweep's process: when it ends (SIGKILL included), this worker
        ends too (:func:`die_with_parent`).
    """
    if parent_pid is not None:
        die_with_parent(parent_pid)
    _large_arrays_from_the_heap()
    import numpy as np

    from cmmsim.replay.scenario import from_arrays
    from cmmsim.replay.stream import load_merge_kernel
    from cmmsim.tracer.io import TraceArrays
    from cmmsim.tracer.schema import TraceMeta

    arr = TraceArrays(
        np.arange(4, dtype=np.int64),
        np.array([0, 1, 0, 1], np.uint32),
        np.array([2, 1, 3, 0], np.uint8),
        TraceMeta(guest_pages=2, source="warm-up"),
    )
    scn = from_arrays([("warm", arr)], name="warm")
    import numba

    # One job per worker process: the kernels' own threads would only fight
    # the other workers for the cores.
    numba.set_num_threads(1)
    # One worker at a time: with a cold cache the first compiles, the others load.
    with compiling_alone("warm-up"):
        for strat in strategies().values():
            strat.run(scn, np.array([1]), strat.parse_params({}))
        # And what a streamed job uses besides (cmmsim sweep --stream).
        load_merge_kernel()


def placement() -> dict:
    """Where the calling task runs: the Dask worker's address (None outside a Dask
    worker), the process id, and numba's thread count for the calling thread.

    For recording where a sweep's jobs ran (``benchmarks/bench_fleet.py``): two
    streamed jobs on one worker while the other idles would take twice as long.
    """
    import numba

    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):  # no Dask, or not inside a Dask task
        worker = None
    return {"worker": worker, "pid": os.getpid(), "numba_threads": numba.get_num_threads()}


def local_executor(max_workers: int) -> Executor:
    """A process pool whose workers load the kernels once, at start."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # spawn: numba's threading layer and forked children do not mix well.
    return ProcessPoolExecutor(
        max_workers=max_workers, mp_context=mp.get_context("spawn"), initializer=warm_up, initargs=(os.getpid(),)
    )


def warm_dask_workers(client) -> None:
    """Load every strategy's kernels on each worker of ``client``'s cluster, before any job.

    What :func:`local_executor`'s initializer does for the pool's workers: as a
    task on each worker in turn (a task runs where the jobs will, in the
    worker's process), so no job pays the loading and a sweep's time on Dask
    compares with the pool's. Workers that join later load what their first
    job uses, inside it.
    """
    workers = list(client.scheduler_info()["workers"])
    client.gather([client.submit(warm_up, workers=[w], allow_other_workers=False, pure=False) for w in workers])


def dask_executor_factory(address: str) -> Callable[[int], Executor]:
    """Executors on an existing Dask cluster (``tcp://host:8786``)."""
    try:
        from distributed import Client
    except ImportError:
        raise ParamError("--cluster needs Dask: pip install 'cmmsim[dask]'") from None
    try:
        client = Client(address, timeout="10s")
    except OSError as exc:
        raise ParamError(f"cannot reach the Dask scheduler at {address} ({exc})") from None

    warm_dask_workers(client)

    def make(_max_workers: int) -> Executor:
        return client.get_executor(pure=False)

    return make
