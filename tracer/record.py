"""Capture a live Linux workload with ``perf record`` and convert it.

Steps: snapshot ``/proc/kpageflags`` (initial page states), ``perf record -a``
the page-allocator, page-cache, writeback and LRU tracepoints with a large
buffer while COMMAND runs (or for a duration), ``perf script`` the capture
straight into :func:`tracer.linux.convert`. Lost events (perf's own warning
lines) and the capture facts go into the trace metadata.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from tracer.errors import CmmsimError
from tracer.linux import convert, read_kpageflags_states
from tracer.schema import TraceMeta

TRACEPOINTS = (
    "kmem:mm_page_alloc", "kmem:mm_page_free", "kmem:mm_page_free_batched",
    "filemap:mm_filemap_add_to_page_cache", "filemap:mm_filemap_delete_from_page_cache",
    "filemap:mm_filemap_get_pages", "filemap:mm_filemap_map_pages", "filemap:mm_filemap_fault",
    "writeback:writeback_dirty_folio", "writeback:writeback_single_inode",
    "pagemap:mm_lru_activate",
)
OPTIONAL = ("ext4:ext4_writepages_result",)


class RecordError(CmmsimError):
    """perf is missing, the tracepoints are unavailable or permission is lacking."""


def _available(perf: str, events: tuple[str, ...]) -> list[str]:
    listing = subprocess.run([perf, "list", "tracepoint"], capture_output=True, text=True)
    return [e for e in events if e in listing.stdout]


def mem_total_pages() -> int:
    """Guest memory from /proc/meminfo MemTotal, 4 KiB pages."""
    text = Path("/proc/meminfo").read_text()
    kib = int(re.search(r"MemTotal:\s+(\d+) kB", text).group(1))
    return kib // 4


def record(out: str | os.PathLike, command: list[str] | None, *, duration_s: float | None = None,
           buffer_pages: int = 4096, keep_text: str | os.PathLike | None = None,
           guest_pages: int | None = None) -> TraceMeta:
    """Record COMMAND (or ``duration_s`` seconds of the whole system) and convert it.

    Parameters
    ----------
    out : path-like
        Output trace.
    command : list of str
        What to run while recording; None or empty with ``duration_s`` set
        records the whole system for that long.
    duration_s : float, optional
        Seconds to record when there is no command.
    buffer_pages : int
        perf's ring buffer per CPU, pages (``-m``).
    keep_text : path-like, optional
        Also keep the ``perf script`` text here (for fixtures).
    guest_pages : int, optional
        Guest memory to record in the trace (default: MemTotal).
    """
    if not command and not duration_s:
        raise RecordError("give a command after -- or --duration S")
    perf = shutil.which("perf")
    if perf is None:
        raise RecordError("perf is not installed (Debian: apt-get install linux-perf)")
    if not os.access("/proc/kpageflags", os.R_OK):
        raise RecordError("cannot read /proc/kpageflags: recording needs root")
    missing = [e for e in TRACEPOINTS if e not in _available(perf, TRACEPOINTS)]
    if missing:
        raise RecordError(f"tracepoints unavailable on this kernel: {', '.join(missing)} "
                          "(is tracefs mounted and are you root?)")
    events = list(TRACEPOINTS) + _available(perf, OPTIONAL)
    initial = read_kpageflags_states()
    run = list(command) if command else ["sleep", str(duration_s)]
    with tempfile.TemporaryDirectory(prefix="cmmsim-rec-") as tmp:
        data = Path(tmp) / "perf.data"
        argv = [perf, "record", "-a", "-m", str(buffer_pages), "-o", str(data)]
        for e in events:
            argv += ["-e", e]
        argv += ["--", *run]
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if not data.exists() or data.stat().st_size == 0:
            err = proc.stderr.strip().splitlines()
            raise RecordError(f"perf record failed: {err[-1] if err else 'no output'}")
        lost = [line.strip() for line in proc.stderr.splitlines()
                if re.search(r"lost|LOST|overload", line)]
        script = subprocess.Popen([perf, "script", "-i", str(data)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, errors="replace")
        stream = script.stdout
        if keep_text:
            text = script.stdout.read()
            Path(keep_text).write_text(text)
            import io

            stream = io.StringIO(text)
        extra = {
            "kernel_release": platform.release(),
            "capture_command": shlex.join(argv),
            "workload_exit_status": proc.returncode,
            "perf_warnings": lost,
            "mem_total_pages": mem_total_pages(),
        }
        try:
            meta = convert(None, out, fmt="perf", lenient=True,
                           guest_pages=guest_pages or mem_total_pages(),
                           initial=initial, extra_meta=extra, stream=stream)
        finally:
            script.wait()
    return meta
