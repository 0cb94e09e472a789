"""Access sampling for ``trace record --sample-period``: re-accesses tracepoints never see.

Tracepoints see a page when it is allocated, freed or goes through the page
cache; a task touching memory it has mapped already leaves no event. The
sampler recovers part of it: every period, for each process of the recorded
command (its descendants, not perf itself), it finds which mapped pages were
touched since the last period and emits one access per such frame at the
sample time, as a line the converter reads (``cmmsim:cmmsim_sampled_access
pfn=0x...``, rule in :mod:`cmmsim.tracer.linux.rules`).

How "touched" is found depends on what the kernel offers (:func:`probe`
says; ``docs/sampling.md`` has the why):

* per page, exactly: soft-dirty bits (writes) and idle page tracking (reads).
  This module does not use them: the kernel it was built on offers neither
  (``CONFIG_MEM_SOFT_DIRTY`` and ``CONFIG_IDLE_PAGE_TRACKING`` off), so no
  code path here could be tested. :func:`probe` still reports them.
* per mapping (:data:`METHOD_SMAPS`, what is used): ``echo 1 >
  /proc/PID/clear_refs`` clears the accessed bits of every page the process
  maps, and ``echo 4`` after it flushes the process's TLB
  (:func:`clear_accessed` says why both); ``/proc/PID/smaps`` then gives,
  per mapping, ``Referenced:`` (kB of its pages whose accessed bit was set
  again) and ``/proc/PID/pagemap`` the frames of its present pages (root).
  With R referenced and P present pages, all P are emitted when R >= P;
  otherwise R of the P, picked pseudo-randomly (a hash seeded by the seed,
  the sample, the pid and the mapping's start). The count per mapping is
  exact; which pages within a partly touched mapping is not.

Sample times are ``CLOCK_MONOTONIC`` (``record`` gives perf ``-k monotonic``
so the two clocks agree); :func:`merge_lines` puts the sampled lines among
perf's by time. The sampler perturbs what it measures: clearing the
accessed bits makes the kernel's reclaim see the process's pages as not
referenced since the last sample.
"""

from __future__ import annotations

import bisect
import mmap
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from cmmsim.tracer.errors import ParamError

#: The converter's event name of a sampled access, and the line's ``sys:event``.
SAMPLE_EVENT = "cmmsim_sampled_access"
SAMPLE_TAG = f"cmmsim:{SAMPLE_EVENT}"
#: Methods :class:`Sampler` can use; ``metadata["method"]``.
METHOD_SMAPS = "smaps-referenced"
#: Periods ``record`` accepts, seconds (below: the sampler's own walk dominates;
#: above: too few samples to tell re-use from a single touch).
MIN_PERIOD_S, MAX_PERIOD_S = 0.01, 60.0
_PAGE = 4096
# /proc/PID/pagemap: bit 63 present, 62 swapped, 55 soft-dirty, bits 0-54 pfn.
_PRESENT, _SOFT_DIRTY, _PFN_MASK = 1 << 63, 1 << 55, (1 << 55) - 1
_SMAPS_HEAD = re.compile(rb"^([0-9a-f]+)-([0-9a-f]+) ", re.M)
_REFERENCED = re.compile(rb"^Referenced:\s+(\d+) kB", re.M)
#: A sample record on disk: time (ns, CLOCK_MONOTONIC) and physical pfn.
RECORD = np.dtype([("t_ns", "<i8"), ("pfn", "<i8")])


@dataclass(frozen=True)
class Probe:
    """What this kernel offers for access sampling, each with the reason it is or is not.

    Attributes
    ----------
    clear_refs : bool
        ``/proc/PID/clear_refs`` accepts 1 and 4 (:func:`clear_accessed`),
        and smaps shows ``Referenced:`` drop to 0 then rise to every page on
        a touch of every page.
    pagemap_pfns : bool
        ``/proc/PID/pagemap`` gives frame numbers (root).
    soft_dirty : bool
        Bit 55 of pagemap rises on a write after ``echo 4 > clear_refs``.
    page_idle : bool
        ``/sys/kernel/mm/page_idle/bitmap`` exists and can be read.
    reasons : dict
        Item -> one sentence of what was seen.
    """

    clear_refs: bool
    pagemap_pfns: bool
    soft_dirty: bool
    page_idle: bool
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def method(self) -> str | None:
        """The method :class:`Sampler` would use here, None if none works."""
        return METHOD_SMAPS if self.clear_refs and self.pagemap_pfns else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"method": self.method}


def _smaps_referenced_kb(pid: int | str, start: int) -> int | None:
    text = Path(f"/proc/{pid}/smaps").read_bytes()
    for m in _SMAPS_HEAD.finditer(text):
        if int(m.group(1), 16) == start:
            ref = _REFERENCED.search(text, m.end())
            return int(ref.group(1)) if ref else None
    return None


def clear_accessed(pid: int | str) -> None:
    """Clear the accessed bits of every page process ``pid`` maps, and flush its TLB.

    ``echo 1 > clear_refs`` clears the accessed bits (and the folios' young
    and referenced flags) but does not flush the TLB: the kernel uses it to
    age pages, for which a stale entry is harmless. A CPU that still caches
    a page's translation reads and writes that page without setting the
    accessed bit again, so smaps would not count the touch. ``echo 4`` (clear
    soft-dirty) flushes the TLB of the whole process after its walk. Without
    ``CONFIG_MEM_SOFT_DIRTY`` that walk changes nothing else; with it, it
    also clears the soft-dirty bits, and the next write to each page takes a
    minor fault. An access between the two writes is lost, as one between
    the smaps read and the clear is.

    Raises
    ------
    OSError
        The process is gone, or the kernel refuses either write.
    """
    clear_refs = Path(f"/proc/{pid}/clear_refs")
    clear_refs.write_text("1\n")
    clear_refs.write_text("4\n")


#: ``comm`` of DAMON's kernel threads (one ``kdamond.N`` per running kdamond).
_KDAMOND = re.compile(r"kdamond\.\d+")


def kdamond_threads(proc: str | os.PathLike = "/proc") -> list[tuple[int, str]]:
    """DAMON's kernel threads running here, as (pid, name), by ``PROC/PID/comm``.

    Parameters
    ----------
    proc : path
        The proc file system's root (a test gives a folder of its own).
    """
    found = []
    for d in Path(proc).iterdir():
        if not d.name.isdigit():
            continue
        try:
            comm = (d / "comm").read_text().strip()
        except OSError:  # exited meanwhile
            continue
        if _KDAMOND.fullmatch(comm):
            found.append((int(d.name), comm))
    return sorted(found)


def damon_reason(threads: list[tuple[int, str]]) -> str:
    """The probe's ``damon`` reason: which kdamond threads run, and that none is used."""
    if not threads:
        return "not used; no DAMON thread (kdamond) runs here"
    running = ", ".join(f"{name} pid {pid}" for pid, name in threads)
    return (
        f"not used; the machine runs DAMON of its own ({running}): its contexts are never "
        "reconfigured, and none of ours is created"
    )


#: Tries of the clear_refs probe before it is called unusable.
_PROBE_TRIES = 3


def probe(pages: int = 64) -> Probe:
    """Try each sampling mechanism on a private mapping of ``pages`` pages of this process.

    Writes ``/proc/self/clear_refs`` (this process only) and reads
    pagemap and smaps; never touches DAMON (a context the machine runs is
    not ours to reconfigure, and none of our own is attempted): it only
    names the kdamond threads it finds.
    """
    reasons: dict[str, str] = {}
    buf = mmap.mmap(-1, pages * _PAGE)
    try:
        view = np.frombuffer(buf, np.uint8)
        start = int(view.ctypes.data)
        view[::_PAGE] = 1
        clear = soft = pfns = False
        try:
            # The sampler's own clear. A few tries, so that one stray clear of a probe
            # page's accessed bit between the touch and the read (anything else that
            # ages pages) does not turn sampling off; a clear that does not take fails
            # every try.
            for attempt in range(1, _PROBE_TRIES + 1):
                clear_accessed("self")
                before = _smaps_referenced_kb("self", start)
                view[::_PAGE] = 2 + attempt
                after = _smaps_referenced_kb("self", start)
                clear = before is not None and after is not None and before == 0 and after >= pages * _PAGE // 1024
                if clear:
                    break
            reasons["clear_refs"] = (
                f"smaps Referenced of a {pages}-page mapping: {before} kB after "
                f"clear_refs 1 and 4, {after} kB after touching every page (try {attempt} of {_PROBE_TRIES})"
            )
            if not clear:
                reasons["clear_refs"] += (
                    f"; want 0 and {pages * _PAGE // 1024} kB: a touch the smaps count misses "
                    "would be missed by the sampler too"
                )
        except OSError as exc:
            reasons["clear_refs"] = f"clear_refs/smaps unusable: {exc}"
        try:
            fd = os.open("/proc/self/pagemap", os.O_RDONLY)
            try:

                def entries() -> np.ndarray:
                    return np.frombuffer(os.pread(fd, 8 * pages, 8 * (start // _PAGE)), np.uint64)

                e = entries()
                present = (e & np.uint64(_PRESENT)) != 0
                pfns = bool(present.all() and (e & np.uint64(_PFN_MASK)).all())
                reasons["pagemap_pfns"] = (
                    "pagemap gives frame numbers" if pfns else "pagemap hides frame numbers (needs root)"
                )
                try:
                    Path("/proc/self/clear_refs").write_text("4\n")
                    view[::_PAGE] = 3
                    n_soft = int(((entries() & np.uint64(_SOFT_DIRTY)) != 0).sum())
                    soft = n_soft == pages
                    reasons["soft_dirty"] = (
                        f"{n_soft} of {pages} written pages soft-dirty after "
                        "clear_refs 4 (none: CONFIG_MEM_SOFT_DIRTY off)"
                    )
                except OSError as exc:
                    reasons["soft_dirty"] = f"clear_refs 4 refused: {exc}"
            finally:
                os.close(fd)
        except OSError as exc:
            reasons["pagemap_pfns"] = f"pagemap unreadable: {exc}"
        del view
    finally:
        buf.close()
    idle_path = Path("/sys/kernel/mm/page_idle/bitmap")
    try:
        with open(idle_path, "rb") as f:
            f.read(8)
        idle = True
        reasons["page_idle"] = f"{idle_path} readable (not used by this sampler)"
    except OSError as exc:
        idle = False
        reasons["page_idle"] = f"{idle_path}: {exc.strerror or exc} (CONFIG_IDLE_PAGE_TRACKING off, or not root)"
    reasons.setdefault("soft_dirty", "not tried (pagemap unreadable)")
    try:
        reasons["damon"] = damon_reason(kdamond_threads())
    except OSError as exc:
        reasons["damon"] = f"not used; /proc unreadable: {exc}"
    return Probe(clear_refs=clear, pagemap_pfns=pfns, soft_dirty=soft, page_idle=idle, reasons=reasons)


def descendants(root: int, proc: str | os.PathLike = "/proc") -> list[int]:
    """Every process below ``root`` (not ``root`` itself), from ``/proc/PID/task/TID/children``."""
    out: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = list(Path(proc, str(pid), "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in kids:
                out.append(int(k))
                todo.append(int(k))
    return sorted(set(out))


def pick_pages(present: np.ndarray, referenced: int, key: tuple[int, ...]) -> np.ndarray:
    """Which of a mapping's present frames to emit, given ``referenced`` pages of it touched.

    All of them when ``referenced >= len(present)``; none when 0; otherwise
    the ``referenced`` whose positions rank lowest under a hash seeded by
    ``key`` (a pseudo-random pick, uniform over positions; same key, same
    pick), in their order in the mapping. A hash, not a generator: a sample
    may pick in hundreds of mappings, and seeding a generator each time
    costs more than the pick.
    """
    if referenced <= 0 or not len(present):
        return present[:0]
    if referenced >= len(present):
        return present
    mix = 0
    for k in key:
        mix = ((mix ^ (k & _MASK64)) * _MIX1) & _MASK64
    with np.errstate(over="ignore"):
        x = np.arange(len(present), dtype=np.uint64) ^ np.uint64(mix)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(_MIX1)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(_MIX2)
        x ^= x >> np.uint64(31)
    return present[np.sort(np.argpartition(x, referenced - 1)[:referenced])]


# splitmix64's multipliers (Steele, Lea and Flood 2014): a bijective mix of 64-bit words.
_MIX1, _MIX2, _MASK64 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, (1 << 64) - 1


@dataclass
class SampleStats:
    """What the sampler did (goes into the trace metadata under ``sampling``)."""

    samples: int = 0
    late_samples: int = 0
    processes_seen: int = 0
    mappings_referenced: int = 0
    referenced_pages: int = 0
    present_pages: int = 0
    sampled_accesses: int = 0
    partial_mappings: int = 0
    duplicate_frames: int = 0
    vanished: int = 0
    busy_s: float = 0.0


class Sampler(threading.Thread):
    """Sample the processes below ``root_pid`` every ``period_s``, records to ``out``.

    Parameters
    ----------
    root_pid : int
        perf's pid: its descendants are the recorded command (perf is not).
    period_s : float
        Seconds between samples.
    out : binary file
        Receives :data:`RECORD` rows (time-ordered).
    seed : int
        Seeds the pick within partly referenced mappings (:func:`pick_pages`).
    skip_exe : str, optional
        Processes running this executable are not sampled (perf's forked
        child before it execs the command).
    """

    def __init__(self, root_pid: int, period_s: float, out: IO[bytes], *, seed: int = 0, skip_exe: str | None = None):
        super().__init__(name="cmmsim-sampler", daemon=True)
        if not MIN_PERIOD_S <= period_s <= MAX_PERIOD_S:
            raise ParamError(f"--sample-period {period_s}: must be {MIN_PERIOD_S}..{MAX_PERIOD_S} s")
        self.root_pid, self.period_s, self.out, self.seed = root_pid, period_s, out, seed
        self.skip_exe = skip_exe
        self.stats = SampleStats()
        self.error: BaseException | None = None
        self._stop_event = threading.Event()
        self._seen: set[int] = set()

    def stop(self) -> None:
        """Ask the thread to end after its current sample and wait for it."""
        self._stop_event.set()
        self.join()

    def run(self) -> None:
        try:
            nxt = time.monotonic() + self.period_s
            while not self._stop_event.wait(max(0.0, nxt - time.monotonic())):
                began = time.monotonic()
                self.sample_once()
                self.stats.busy_s += time.monotonic() - began
                nxt += self.period_s
                if time.monotonic() > nxt:  # the walk took longer than a period
                    self.stats.late_samples += 1
                    nxt = time.monotonic() + self.period_s
        except BaseException as exc:  # noqa: BLE001 - handed to the recorder, which re-raises
            self.error = exc

    def sample_once(self) -> int:
        """One sample of every process below the root; returns the accesses emitted."""
        tick = self.stats.samples
        self.stats.samples += 1
        parts: list[np.ndarray] = []
        for pid in descendants(self.root_pid):
            if self.skip_exe is not None:
                try:
                    if os.readlink(f"/proc/{pid}/exe") == self.skip_exe:
                        continue
                except OSError:
                    continue
            if pid not in self._seen:
                self._seen.add(pid)
                self.stats.processes_seen += 1
            parts += self._sample_process(pid, tick)
        if not parts:
            return 0
        rows = np.concatenate(parts)
        # A frame mapped by several processes (shared libraries) is one access per sample.
        _, first = np.unique(rows["pfn"], return_index=True)
        self.stats.duplicate_frames += len(rows) - len(first)
        rows = rows[np.sort(first)]
        self.out.write(rows.tobytes())
        self.out.flush()
        self.stats.sampled_accesses += len(rows)
        return len(rows)

    def _sample_process(self, pid: int, tick: int) -> list[np.ndarray]:
        try:
            smaps = Path(f"/proc/{pid}/smaps").read_bytes()
            # Cleared right after the read: an access between the two is lost, not double counted.
            clear_accessed(pid)
            fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
        except OSError:
            self.stats.vanished += 1
            return []
        parts = []
        try:
            heads = list(_SMAPS_HEAD.finditer(smaps))
            for j, m in enumerate(heads):
                stop = heads[j + 1].start() if j + 1 < len(heads) else len(smaps)
                ref = _REFERENCED.search(smaps, m.end(), stop)
                kb = int(ref.group(1)) if ref else 0
                if kb == 0:
                    continue
                start, end = int(m.group(1), 16), int(m.group(2), 16)
                try:
                    raw = os.pread(fd, 8 * ((end - start) // _PAGE), 8 * (start // _PAGE))
                except OSError:  # e.g. [vsyscall]
                    continue
                e = np.frombuffer(raw, np.uint64)
                pfn = (e[(e & np.uint64(_PRESENT)) != 0] & np.uint64(_PFN_MASK)).astype(np.int64)
                pfn = pfn[pfn > 0]
                referenced = kb * 1024 // _PAGE
                self.stats.mappings_referenced += 1
                self.stats.referenced_pages += referenced
                self.stats.present_pages += len(pfn)
                if referenced < len(pfn):
                    self.stats.partial_mappings += 1
                pick = pick_pages(pfn, referenced, (self.seed, tick, pid, start // _PAGE))
                if len(pick):
                    rows = np.empty(len(pick), RECORD)
                    rows["pfn"] = pick
                    # Stamped after the pagemap read: the frames were mapped then.
                    rows["t_ns"] = time.monotonic_ns()
                    parts.append(rows)
        finally:
            os.close(fd)
        return parts


def sample_lines(rows: np.ndarray) -> bytes:
    """perf-script lines of sampled accesses (one per record)."""
    t = rows["t_ns"]
    return b"".join(
        f"cmmsim-sampler 0 [000] {s}.{ns:09d}: {SAMPLE_TAG}: pfn=0x{p:x}\n".encode()
        for s, ns, p in zip(
            (t // 1_000_000_000).tolist(), (t % 1_000_000_000).tolist(), rows["pfn"].tolist(), strict=True
        )
    )


_LINE_TIME = re.compile(rb"\s([0-9]+)\.([0-9]+):\s")


def line_time_ns(line: bytes) -> int | None:
    """The time of a perf-script line in ns (its first ``sec.frac:``), None if it has none."""
    m = _LINE_TIME.search(b" " + line)
    if m is None:
        return None
    frac = (m.group(2) + b"000000000")[:9]
    return int(m.group(1)) * 1_000_000_000 + int(frac)


def read_records(path: str | os.PathLike, chunk: int = 1 << 20) -> Iterator[np.ndarray]:
    """The sampler's records from ``path`` in chunks of at most ``chunk`` rows."""
    with open(path, "rb") as f:
        while True:
            rows = np.fromfile(f, RECORD, count=chunk)
            if not len(rows):
                return
            yield rows


def merge_lines(perf_text: IO[bytes], records: Iterator[np.ndarray], out: IO[bytes], block_bytes: int = 1 << 22) -> int:
    """Write perf-script text with the sampled-access lines put among it by time.

    A record goes before the first perf line whose time is later than its
    own (perf prints its lines in time order; the place is found by
    bisection, a line without a time counting as earliest). Returns the
    sampled lines written.

    Parameters
    ----------
    perf_text : binary file
        ``perf script`` output.
    records : iterator of ndarray
        :data:`RECORD` chunks in time order (:func:`read_records`).
    out : binary file
        Merged text.
    block_bytes : int
        Bytes of perf text read at a time.
    """
    written = 0
    pending = np.zeros(0, RECORD)
    recs = iter(records)

    def fill() -> np.ndarray:
        nonlocal pending
        while not len(pending):
            nxt = next(recs, None)
            if nxt is None:
                break
            pending = nxt
        return pending

    def key(line: bytes) -> int:
        t = line_time_ns(line)
        return -1 if t is None else t

    def put(lines: list[bytes]) -> None:
        if lines:
            out.write(b"\n".join(lines) + b"\n")

    carry = b""
    while True:
        data = perf_text.read(block_bytes)
        block = carry + data
        if data:
            cut = block.rfind(b"\n") + 1
            block, carry = block[:cut], block[cut:]
        elif block and not block.endswith(b"\n"):
            block += b"\n"
        lines = block.split(b"\n")[:-1]
        t_last = next((t for t in map(line_time_ns, reversed(lines)) if t is not None), -1)
        pos = 0
        while len(fill()) and pending["t_ns"][0] < t_last:
            i = bisect.bisect_right(lines, int(pending["t_ns"][0]), lo=pos, key=key)
            t_i = key(lines[i])
            put(lines[pos:i])
            pos = i
            while len(fill()) and pending["t_ns"][0] < t_i:
                n = int(np.searchsorted(pending["t_ns"], t_i, side="left"))
                out.write(sample_lines(pending[:n]))
                written += n
                pending = pending[n:]
        put(lines[pos:])
        if not data:
            break
    while len(fill()):
        out.write(sample_lines(pending))
        written += len(pending)
        pending = pending[:0]
    return written


def sampling_lines(sampling: dict[str, Any], converter: dict[str, Any]) -> list[str]:
    """What access sampling a recorded trace had, in words (``trace info``).

    ``sampling`` is the trace's ``params["sampling"]``, ``converter`` its
    converter counters (the sampled lines it read and dropped).
    """
    probe_d = sampling.get("probe") or {}
    avail = ", ".join(
        f"{k} {'yes' if probe_d.get(k) else 'no'}" for k in ("clear_refs", "pagemap_pfns", "soft_dirty", "page_idle")
    )
    lines = [f"kernel offered: {avail}; DAMON not used"]
    for k, why in (probe_d.get("reasons") or {}).items():
        lines.append(f"  {k}: {why}")
    if sampling.get("method") in (None, "off"):
        lines.append("method: off (no --sample-period): re-accesses of mapped memory are not in this trace")
        return lines
    read = (converter.get("events") or {}).get(SAMPLE_EVENT, 0)
    dropped = converter.get("sampled_on_free", 0)
    lines.append(
        f"method: {sampling['method']} every {sampling['period_s']} s (seed "
        f"{sampling.get('seed', 0)}): per mapping counts exact, frames within a "
        "partly referenced mapping picked at random"
    )
    lines.append(
        f"accesses from sampling: {read - dropped:,} ({read:,} sampled lines, "
        f"{dropped:,} on frames already free dropped)"
    )
    lines.append(
        f"samples {sampling.get('samples', 0):,} ({sampling.get('late_samples', 0):,} "
        f"late), processes {sampling.get('processes_seen', 0):,}, referenced pages "
        f"{sampling.get('referenced_pages', 0):,} of {sampling.get('present_pages', 0):,} "
        f"present in referenced mappings, {sampling.get('partial_mappings', 0):,} "
        f"partly referenced, sampler busy {sampling.get('busy_s', 0)} s of "
        f"{sampling.get('wall_s', 0)} s"
    )
    return lines
