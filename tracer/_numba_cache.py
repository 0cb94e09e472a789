"""Where numba keeps compiled kernels: one folder per version of this code.

numba's own cache (``cache=True``) is checked against the source file of
each function only. A kernel that reads a constant from another module
(``cmmsim.replay.states.N_COUNTERS``, the op codes) would then run, after that
other module changed, with the old constant baked in: a crash at best, a
wrong answer at worst. So every top-level package points numba at a cache
folder named by a hash of all of this project's sources (before numba is
imported): changed code, fresh kernels. The checkout's path is hashed too:
numba files each kernel under a hash of its source file's folder, so a second
checkout of the same sources (a git worktree) compiles its own kernels anyway,
and a shared folder would only hide that from the cold-cache notice.
``NUMBA_CACHE_DIR`` set by the user
wins; a home that cannot be written falls back to the temp folder (and one
that neither can leaves numba's default).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_PACKAGES = ("tracer", "replay")


def configure() -> None:
    """Set ``NUMBA_CACHE_DIR`` for this version of the sources in this checkout, unless it is set."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(str(root).encode())
    for pkg in _PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            digest.update(f.relative_to(root).as_posix().encode())
            digest.update(f.read_bytes())
    name = digest.hexdigest()[:16]
    for base in (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"), Path(tempfile.gettempdir())):
        folder = base / "cmmsim" / "numba" / name
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue  # a read-only home (some cluster workers): the temp folder then
        if os.access(folder, os.W_OK):
            os.environ["NUMBA_CACHE_DIR"] = str(folder)
            return


@contextmanager
def compiling_alone(name: str) -> Iterator[None]:
    """Hold the inter-process lock ``name`` of numba's cache folder for the block.

    Processes that would compile the same kernels at once (a sweep's workers
    loading every strategy's kernels at start) take turns: with a cold cache the
    first compiles and fills the cache, the others then load from it instead of
    compiling the same kernels again beside it. With a warm cache the turns are
    a few seconds of loading each. The lock is ``flock`` on a file of the cache
    folder, released when the block ends or its process dies; where there is no
    such folder or no ``flock`` (Windows, some network file systems) the block
    runs unlocked, as it would without this.
    """
    fd = None
    folder = os.environ.get("NUMBA_CACHE_DIR")
    if folder:
        try:
            import fcntl

            os.makedirs(folder, exist_ok=True)
            fd = os.open(os.path.join(folder, f".{name}.lock"), os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except (ImportError, OSError):
            if fd is not None:
                os.close(fd)
            fd = None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock
