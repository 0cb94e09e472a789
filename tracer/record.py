"""Capture a live Linux workload with ``perf record`` and convert it.

Steps: optionally drop the page cache (so that the pages the workload reads
enter the cache inside the capture), snapshot ``/proc/kpageflags`` (initial
page states) and the file pages processes map (their frames:
:func:`cmmsim.tracer.linux.snapshot.mapped_file_pages`), ``perf record -a`` the
page-allocator, page-cache, writeback and LRU tracepoints with a large
buffer while COMMAND runs (or for a duration), ``perf script`` the capture
straight into :func:`cmmsim.tracer.linux.convert`. Lost events (perf's own warning
lines) and the capture facts go into the trace metadata.

With a sample period (``--sample-period``), a
:class:`cmmsim.tracer.linux.sampling.Sampler` thread samples the recorded
command's accesses while perf runs (perf's clock is then CLOCK_MONOTONIC,
``-k monotonic``, the sampler's), and its lines are merged into perf's text by
time (:func:`cmmsim.tracer.linux.sampling.merge_lines`) before conversion.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cmmsim.tracer.errors import CmmsimError, ParamError
from cmmsim.tracer.linux import convert, kpageflags_to_states
from cmmsim.tracer.linux.kpageflags import read_kpageflags
from cmmsim.tracer.linux.sampling import (
    MAX_PERIOD_S,
    MIN_PERIOD_S,
    Sampler,
    merge_lines,
    probe,
    read_records,
)
from cmmsim.tracer.linux.snapshot import mapped_file_pages, whole_folios
from cmmsim.tracer.schema import TraceMeta

TRACEPOINTS = (
    "kmem:mm_page_alloc",
    "kmem:mm_page_free",
    "kmem:mm_page_free_batched",
    "filemap:mm_filemap_add_to_page_cache",
    "filemap:mm_filemap_delete_from_page_cache",
    "filemap:mm_filemap_get_pages",
    "filemap:mm_filemap_map_pages",
    "filemap:mm_filemap_fault",
    "writeback:writeback_dirty_folio",
    "writeback:writeback_single_inode",
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


def start_path(text: str | os.PathLike) -> Path:
    """Where ``record`` keeps the start snapshots of a capture whose text it keeps."""
    return Path(f"{text}.start.npz")


def read_start(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The start snapshots kept with a capture: (initial states per pfn, mapped file pages)."""
    try:
        with np.load(path) as z:
            states, mapped = z["states"], z["mapped_pages"]
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise ParamError(f"{path}: not a start snapshot of `cmmsim trace record` ({exc})") from None
    from cmmsim.tracer.linux.rules import MAX_PFN, POT_VOLATILE, STATE_NAMES, UNUSED

    # States index the rules' tables: an integer code of U, S, V or P, nothing else.
    if states.dtype.kind not in "iu" or (
        states.size and (int(states.min()) < UNUSED or int(states.max()) > POT_VOLATILE)
    ):
        raise ParamError(
            f"{path}: not a start snapshot of `cmmsim trace record` "
            f"(its states are not the integer codes {UNUSED}-{POT_VOLATILE} of {STATE_NAMES})"
        )
    # Untrusted sizes: the mapper sizes tables by these (a pfn past any
    # machine's would ask for terabytes).
    rows = np.asarray(mapped).reshape(-1, 5) if np.asarray(mapped).size % 5 == 0 else None
    if (
        states.ndim != 1
        or len(states) > MAX_PFN
        or rows is None
        or (len(rows) and (rows[:, 4].min() < 0 or rows[:, 4].max() >= MAX_PFN))
    ):
        raise ParamError(f"{path}: not a start snapshot of `cmmsim trace record` (its pfns are out of range)")
    return states, mapped


def drop_page_cache() -> None:
    """Write dirty pages back and drop the clean page cache (root)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        raise RecordError(f"cannot drop the page cache: {exc}") from None


def record(
    out: str | os.PathLike,
    command: list[str] | None,
    *,
    duration_s: float | None = None,
    buffer_pages: int = 4096,
    keep_text: str | os.PathLike | None = None,
    guest_pages: int | None = None,
    drop_caches: bool = False,
    sample_period_s: float | None = None,
    sample_seed: int = 0,
) -> TraceMeta:
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
        Also keep the ``perf script`` text here (for fixtures), and the start
        snapshots beside it (:func:`start_path`; ``trace convert --start``).
    guest_pages : int, optional
        Guest memory to record in the trace (default: MemTotal).
    drop_caches : bool
        Drop the page cache before recording, so that the pages the workload
        reads enter the cache inside the capture.
    sample_period_s : float, optional
        Sample the command's accesses every this many seconds
        (:mod:`cmmsim.tracer.linux.sampling`); None: no sampling.
    sample_seed : int
        Seeds which pages of a partly referenced mapping are emitted.
    """
    if not command and not duration_s:
        raise RecordError("give a command after -- or --duration S")
    if sample_period_s is not None and not MIN_PERIOD_S <= sample_period_s <= MAX_PERIOD_S:
        raise ParamError(f"--sample-period {sample_period_s}: must be {MIN_PERIOD_S}..{MAX_PERIOD_S} s")
    perf = shutil.which("perf")
    if perf is None:
        raise RecordError("perf is not installed (Debian: apt-get install linux-perf)")
    if not os.access("/proc/kpageflags", os.R_OK):
        raise RecordError("cannot read /proc/kpageflags: recording needs root")
    missing = [e for e in TRACEPOINTS if e not in _available(perf, TRACEPOINTS)]
    if missing:
        raise RecordError(
            f"tracepoints unavailable on this kernel: {', '.join(missing)} (is tracefs mounted and are you root?)"
        )
    events = list(TRACEPOINTS) + _available(perf, OPTIONAL)
    offered = probe()
    sampling: dict = {"method": "off", "period_s": None, "probe": offered.as_dict()}
    if sample_period_s is not None:
        if not command:
            raise RecordError("--sample-period samples the recorded command: give one after --")
        if offered.method is None:
            raise RecordError(
                "no access sampling method works here: " + "; ".join(f"{k}: {v}" for k, v in offered.reasons.items())
            )
        sampling |= {"method": offered.method, "period_s": sample_period_s, "seed": sample_seed}
    if drop_caches:
        drop_page_cache()
    flags = read_kpageflags()
    initial = kpageflags_to_states(flags)
    mapped = whole_folios(mapped_file_pages(), flags)
    run = list(command) if command else ["sleep", str(duration_s)]
    with tempfile.TemporaryDirectory(prefix="cmmsim-rec-") as tmp:
        data = Path(tmp) / "perf.data"
        samples = Path(tmp) / "samples.bin"
        # argv[0] is the bare name: perf puts the folder of a path it was started
        # by first on its command's PATH (/usr/bin ahead of a virtual environment).
        argv = ["perf", "record", "-a", "-m", str(buffer_pages), "-o", str(data)]
        if sample_period_s is not None:
            argv += ["-k", "monotonic"]  # the sampler's clock
        for e in events:
            argv += ["-e", e]
        argv += ["--", *run]
        proc = _run_perf(argv, sample_period_s, sample_seed, samples, perf, sampling)
        if not data.exists() or data.stat().st_size == 0:
            err = proc.stderr.strip().splitlines()
            raise RecordError(f"perf record failed: {err[-1] if err else 'no output'}")
        lost = [line.strip() for line in proc.stderr.splitlines() if re.search(r"lost|LOST|overload", line)]
        extra = {
            "kernel_release": platform.release(),
            "capture_command": shlex.join(argv),
            "workload_exit_status": proc.returncode,
            "perf_warnings": lost,
            "mem_total_pages": mem_total_pages(),
            "dropped_caches": drop_caches,
            "sampling": sampling,
        }
        kw = dict(
            fmt="perf",
            lenient=True,
            guest_pages=guest_pages or mem_total_pages(),
            initial=initial,
            initial_pages=mapped,
            extra_meta=extra,
        )
        script_argv = [perf, "script", "-i", str(data)]
        sampled = samples if sample_period_s is not None else None
        if keep_text:
            with open(keep_text, "wb") as text:
                _script(script_argv, text, sampled)
            np.savez_compressed(start_path(keep_text), states=initial, mapped_pages=mapped)
            return convert(keep_text, out, **kw)
        if sampled is None:
            script = subprocess.Popen(script_argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                meta = convert(None, out, stream=script.stdout, **kw)
            finally:
                script.stdout.close()
                script.wait()
            return meta
        # perf script -> merge with the samples (a thread) -> pipe -> the converter.
        r, w = os.pipe()
        with open(r, "rb") as reader, open(w, "wb") as writer:
            failed: list[BaseException] = []

            def feed() -> None:
                try:
                    _script(script_argv, writer, sampled)
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    failed.append(exc)
                finally:
                    writer.close()  # the converter sees the end of its input

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            try:
                meta = convert(None, out, stream=reader, **kw)
            finally:
                feeder.join()
            if failed:
                raise RecordError(f"perf script failed: {failed[0]}")
    return meta


def _run_perf(
    argv: list[str], period_s: float | None, seed: int, samples: Path, perf: str, sampling: dict
) -> subprocess.CompletedProcess:
    """Run perf record; with a period, sample its command while it runs (stats into ``sampling``)."""
    if period_s is None:
        return subprocess.run(argv, executable=perf, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with open(samples, "wb") as out:
        began = time.monotonic()
        proc = subprocess.Popen(argv, executable=perf, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sampler = Sampler(proc.pid, period_s, out, seed=seed, skip_exe=os.path.realpath(perf))
        sampler.start()
        try:
            _, err = proc.communicate()
        finally:
            sampler.stop()
        sampling["wall_s"] = round(time.monotonic() - began, 3)
    if sampler.error is not None:
        raise RecordError(f"the access sampler failed: {sampler.error}")
    sampling |= {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(sampler.stats).items()}
    return subprocess.CompletedProcess(argv, proc.returncode, None, err)


def _script(script_argv: list[str], out, samples: Path | None) -> None:
    """``perf script`` into ``out``, with the sampled-access lines merged in if there are any."""
    if samples is None:
        subprocess.run(script_argv, stdout=out, stderr=subprocess.DEVNULL, check=True)
        return
    script = subprocess.Popen(script_argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        merge_lines(script.stdout, read_records(samples), out)
    finally:
        script.stdout.close()
        if script.wait():
            raise subprocess.CalledProcessError(script.returncode, script_argv)
