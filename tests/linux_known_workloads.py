"""Workloads whose page behaviour is known exactly, for the converter's known-answer tests.

    python -m tests.linux_known_workloads setup DIR      # make the files, before the capture
    python -m tests.linux_known_workloads run NAME DIR   # one workload, inside the capture
    sudo python -m tests.linux_known_workloads fixtures  # record all, write tests/data/known/

Each workload reads a small marker file first and another last, so that the
capture shows where it starts and ends and which task ran it (the markers'
``mm_filemap_get_pages`` lines). ``tests/test_linux_known.py`` records them
with ``cmmsim trace record --drop-caches`` and checks the converter's counts.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

PAGE = 4096
#: The file read twice: 513 pages, the last one partial.
READ_BYTES = 2 * 2**20 + 1000
#: Written and synced: 256 pages.
WRITE_PAGES = 256
#: Anonymous memory allocated, touched and freed: 512 pages.
ANON_PAGES = 512
#: The file mapped and read a byte per page: 256 pages.
MMAP_PAGES = 256
#: Bytes per read(), as cat reads.
READ_CHUNK = 128 * 1024

FILES = {"read": "read.bin", "write": "write.bin", "mmap": "mmap.bin", "start": "marker-start", "end": "marker-end"}


def path(folder: str | os.PathLike, what: str) -> Path:
    return Path(folder) / FILES[what]


def setup(folder: str | os.PathLike) -> None:
    """The files the workloads read, on disk (synced); the written one absent."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    for what, size in (("read", READ_BYTES), ("mmap", MMAP_PAGES * PAGE), ("start", 100), ("end", 100)):
        with open(path(folder, what), "wb") as f:
            f.write(os.urandom(size))
            os.fsync(f.fileno())
    path(folder, "write").unlink(missing_ok=True)


#: The read buffer, touched before any workload runs: reads allocate no memory.
_BUFFER = bytearray(b"\x01" * READ_CHUNK)


def _read_all(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        while os.readv(fd, [_BUFFER]):
            pass
    finally:
        os.close(fd)


def cold_read_twice(folder: Path) -> Iterator[None]:
    yield
    _read_all(path(folder, "read"))
    _read_all(path(folder, "read"))


def write_fsync(folder: Path) -> Iterator[None]:
    page = b"\x01" * PAGE
    yield
    fd = os.open(path(folder, "write"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(WRITE_PAGES):
            os.write(fd, page)
        os.fsync(fd)
    finally:
        os.close(fd)


def anon_touch_free(folder: Path) -> Iterator[None]:
    m = mmap.mmap(-1, ANON_PAGES * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    m.madvise(mmap.MADV_NOHUGEPAGE)  # 4 KiB pages, whatever the THP setting
    offsets = list(range(0, ANON_PAGES * PAGE, PAGE))  # no int allocated while touching
    yield
    for i in offsets:
        m[i] = 1
    m.close()
    _drain_lru_batches()


#: What mlock locks (made, and touched, before any workload runs).
_LOCKED = ctypes.create_string_buffer(PAGE)
_LIBC = ctypes.CDLL(None, use_errno=True)


def _drain_lru_batches() -> None:
    # Freed pages still referenced by a per-CPU LRU batch (up to 31 per CPU)
    # are freed only when the batch drains; mlock drains them, another CPU's
    # by that CPU's kworker (hence ``run`` keeps to one CPU).
    if _LIBC.mlock(_LOCKED, PAGE) == 0:
        _LIBC.munlock(_LOCKED, PAGE)


def mmap_read(folder: Path) -> Iterator[None]:
    offsets = list(range(0, MMAP_PAGES * PAGE, PAGE))
    yield
    with open(path(folder, "mmap"), "rb") as f:
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        total = 0
        for i in offsets:
            total += m[i]
        m.close()


#: Each workload prepares what it needs, yields, then runs (between the markers).
WORKLOADS = {
    "cold-read-twice": cold_read_twice,
    "write-fsync": write_fsync,
    "anon-touch-free": anon_touch_free,
    "mmap-read": mmap_read,
}


def run(name: str, folder: str | os.PathLike) -> None:
    # One CPU for the whole run: a page left in another CPU's LRU batch (the task
    # migrated while touching) is freed by that CPU's kworker, outside the task's
    # lines (a CI run lost 22 of the 512 frees so).
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    folder = Path(folder)
    work = WORKLOADS[name](folder)
    next(work)
    _drain_lru_batches()
    _read_all(path(folder, "start"))
    next(work, None)
    _read_all(path(folder, "end"))


# -- the captures: what a run's text holds and the cut the known-answer checks read -----------

#: The first line of a cut: the facts the checks need.
FACTS_PREFIX = "# known-answer"
_PERF_HEAD = re.compile(r"^\s*.*?\s(\d+)\s+\[\d+\]\s+\d+\.\d+:\s+(\w+:\w+):\s(.*)$")


def file_facts(folder: str | os.PathLike, name: str) -> dict[str, int]:
    """Device and inode numbers of the files of a workload (after it ran)."""
    st = {
        what: os.stat(path(folder, what))
        for what in ("start", "end", FILE_OF[name])
        if what and path(folder, what).exists()
    }
    dev = st["start"].st_dev
    facts = {"major": os.major(dev), "minor": os.minor(dev), "start": st["start"].st_ino, "end": st["end"].st_ino}
    if FILE_OF[name]:
        facts["file"] = st[FILE_OF[name]].st_ino
    return facts


def _names_file(body: str, facts: dict[str, int], ino: int) -> bool:
    major, minor = facts["major"], facts["minor"]
    return any(
        key in body + " "
        for key in (
            f"dev {major}:{minor} ino {ino:x} ",
            f"dev={major}:{minor} ino={ino:x} ",
            f"bdi {major}:{minor}: ino={ino} ",
            f"dev {major},{minor} ino {ino} ",
        )
    )


def cut(lines: list[str], name: str, facts: dict[str, int]) -> list[str]:
    """The lines of a run the checks read: between the markers' first reads (both
    included), those naming the workload's file, or for ``anon-touch-free`` the
    allocator lines of the task that read the markers. Headed by the facts."""
    bounds = []
    for which in ("start", "end"):
        for i, line in enumerate(lines):
            m = _PERF_HEAD.match(line)
            if m and m.group(2) == "filemap:mm_filemap_get_pages" and _names_file(m.group(3), facts, facts[which]):
                bounds.append((i, m.group(1)))
                break
    if len(bounds) != 2:
        raise ValueError("the capture has no read of a marker file")
    (first, task), (last, _) = bounds
    out = []
    for line in lines[first : last + 1]:
        m = _PERF_HEAD.match(line)
        if m is None:
            continue
        if FILE_OF[name]:
            keep = _names_file(m.group(3), facts, facts["file"])
        else:
            keep = m.group(1) == task and m.group(2).startswith("kmem:")
        if keep:
            out.append(line.rstrip("\n"))
    head = " ".join(f"{k}={v}" for k, v in {"workload": name, **facts}.items())
    return [f"{FACTS_PREFIX} {head}"] + out


def read_facts(first_line: str) -> dict[str, str | int]:
    """The facts of a cut's first line."""
    pairs = dict(item.split("=", 1) for item in first_line.removeprefix(FACTS_PREFIX).split())
    return {k: (v if k == "workload" else int(v)) for k, v in pairs.items()}


#: The file each workload's checks look at (none: the task's anonymous memory).
FILE_OF = {"cold-read-twice": "read", "write-fsync": "write", "anon-touch-free": None, "mmap-read": "mmap"}


def record_cut(name: str, folder: str | os.PathLike, out: str | os.PathLike) -> list[str]:
    """Run one workload under ``cmmsim trace record --drop-caches`` and return its cut."""
    from cmmsim.tracer.record import record

    setup(folder)
    text = Path(out).with_suffix(".txt")
    record(
        Path(out),
        [sys.executable, "-m", "tests.linux_known_workloads", "run", name, str(folder)],
        keep_text=text,
        drop_caches=True,
    )
    return cut(text.read_text().splitlines(), name, file_facts(folder, name))


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2])
    elif sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "fixtures":  # record every workload, write tests/data/known/*.txt.gz
        import gzip
        import tempfile

        target = Path(__file__).parent / "data" / "known"
        target.mkdir(parents=True, exist_ok=True)
        for workload in WORKLOADS:
            with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
                lines = record_cut(workload, Path(tmp) / "files", Path(tmp) / "run.parquet")
            with gzip.open(target / f"{workload}.txt.gz", "wt") as f:
                f.write("\n".join(lines) + "\n")
