"""Scenarios: one or more guest traces sharing one host.

Guests are merged by time (stable: at equal ``t_ns`` the guest listed first
goes first); each guest keeps its own pfn space, laid out one after another
in a global page index. A guest trace may be replicated ``copies`` times,
copy ``j`` shifted by ``j * stagger_ns``, to model many similar guests.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from cmmsim.replay.times import check_shift
from cmmsim.tracer.errors import ParamError, TraceError, show_path
from cmmsim.tracer.io import TraceArrays, read_arrays
from cmmsim.tracer.schema import MANIFEST_NAME, Op

__all__ = ["Scenario", "expand_inputs", "from_arrays", "load", "scenario_name", "trace_name"]


@dataclass(frozen=True)
class Scenario:
    """Merged events of all guests sharing one host.

    Attributes
    ----------
    name : str
        Scenario name (file stem or folder name).
    guest_names : tuple of str
        One per guest, in guest-index order.
    guest_pages : ndarray[int64]
        Memory of each guest, pages.
    t_ns : ndarray[int64]
        Event times, ns, non-decreasing.
    page : ndarray[int32]
        Global page index of each event (guest offset + pfn).
    op : ndarray[uint8]
        Op code of each event.
    guest : ndarray[uint16]
        Guest index of each event.
    page_guest : ndarray[uint16]
        Guest index of each global page.
    sources : tuple of str
        Trace files the guests came from.
    guest_vcpus : ndarray[int64], optional
        Virtual CPUs of each guest from its trace's metadata, 0 where unknown
        (:attr:`cmmsim.tracer.schema.TraceMeta.vcpus`); None: all unknown.
    """

    name: str
    guest_names: tuple[str, ...]
    guest_pages: np.ndarray
    t_ns: np.ndarray
    page: np.ndarray
    op: np.ndarray
    guest: np.ndarray
    page_guest: np.ndarray
    sources: tuple[str, ...]
    guest_vcpus: np.ndarray | None = None

    @property
    def duration_ns(self) -> int:
        """Time from the first event to the last, ns (0 without events)."""
        return int(self.t_ns[-1] - self.t_ns[0]) if len(self.t_ns) else 0

    @property
    def n_guests(self) -> int:
        return len(self.guest_names)

    @property
    def n_pages(self) -> int:
        return int(self.page_guest.shape[0])

    @property
    def n_events(self) -> int:
        return int(self.op.shape[0])

    @cached_property
    def events_per_guest(self) -> np.ndarray:
        """Events of each guest (int64). Counted once per scenario: a count over every
        event, which a sweep's result frames would otherwise repeat per budget and strategy."""
        return self._per_guest(None)

    @cached_property
    def accesses_per_guest(self) -> np.ndarray:
        """Accesses (reads and writes) of each guest (int64), counted once per scenario
        (every replay checks its counters against them)."""
        return self._per_guest(self.op <= Op.WRITE)

    def _per_guest(self, selected: np.ndarray | None) -> np.ndarray:
        """Events of each guest, all or those ``selected`` (a mask over the events); read-only."""
        if self.n_guests == 1:
            counts = np.array([self.n_events if selected is None else np.count_nonzero(selected)], np.int64)
        else:
            guest = self.guest if selected is None else self.guest[selected]
            counts = np.bincount(guest, minlength=self.n_guests).astype(np.int64)
        counts.flags.writeable = False  # shared by every caller
        return counts

    @property
    def page_offset(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.guest_pages)[:-1]]).astype(np.int64)


def expand_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """Trace files named by the inputs: files as they are, scenario folders by manifest."""
    out: list[Path] = []
    for raw in paths:
        # Path("") is ".": an unset shell variable would read every trace of the
        # current folder.
        if not os.fspath(raw):
            raise ParamError("an empty path names no trace")
        p = Path(raw)
        if p.is_dir():
            manifest = p / MANIFEST_NAME
            if manifest.exists():
                try:
                    guests = json.loads(manifest.read_text())["guests"]
                    out.extend(p / g["trace"] for g in guests)
                except (ValueError, KeyError, TypeError) as exc:
                    raise TraceError(f"{manifest}: damaged scenario manifest ({exc})") from None
                if not guests:
                    raise TraceError(f"{show_path(manifest)}: the scenario lists no guest")
            else:
                found = sorted(p.glob("*.parquet"))
                if not found:
                    raise TraceError(f"{p}: folder holds no scenario.json and no .parquet traces")
                out.extend(found)
        else:
            out.append(p)
    if not out:
        raise ParamError("no trace given")
    return out


def scenario_name(paths: list[str | os.PathLike]) -> str:
    """A readable name: the folder or file stem, joined with '+' for several."""
    return "+".join(trace_name(p) for p in paths)


def trace_name(path: str | os.PathLike) -> str:
    """A trace's name: its file name without ``.parquet``, undecodable bytes as ``\\xNN``."""
    return show_path(Path(path).name).removesuffix(".parquet")


def from_arrays(
    traces: list[tuple[str, TraceArrays]], *, name: str = "scenario", copies: int = 1, stagger_ns: int = 0
) -> Scenario:
    """Merge guest traces (already in memory) into one scenario."""
    if copies < 1:
        raise ParamError(f"copies must be >= 1, got {copies}")
    if stagger_ns < 0:
        raise ParamError(f"stagger must be >= 0, got {stagger_ns}")
    if copies > 1:
        for gname, arr in traces:
            if len(arr):
                check_shift(int(arr.t_ns[-1]), (copies - 1) * stagger_ns, gname)
    if copies * len(traces) > np.iinfo(np.uint16).max:
        raise ParamError(f"too many guests ({copies * len(traces):,}); at most 65535")
    guests: list[tuple[str, TraceArrays, int]] = []
    for j in range(copies):
        for gname, arr in traces:
            label = gname if copies == 1 else f"{gname}#{j}"
            guests.append((label, arr, j * stagger_ns))
    if len(guests) > np.iinfo(np.uint16).max:
        raise ParamError(f"too many guests ({len(guests)}); at most 65535")
    guest_pages = np.array([a.meta.guest_pages for _, a, _ in guests], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(guest_pages)[:-1]])
    if guest_pages.sum() > np.iinfo(np.int32).max:
        raise ParamError("scenario has more than 2^31 guest pages")
    page_guest = np.repeat(np.arange(len(guests), dtype=np.uint16), guest_pages)
    if len(guests) == 1:
        _, arr, shift = guests[0]
        t = arr.t_ns + shift if shift else arr.t_ns
        page = arr.pfn.astype(np.int32)
        op = arr.op
        guest = np.zeros(len(arr), np.uint16)
    else:
        t = np.concatenate([a.t_ns + shift for _, a, shift in guests])
        page = np.concatenate(
            [a.pfn.astype(np.int32) + np.int32(off) for (_, a, _), off in zip(guests, offsets, strict=True)]
        )
        op = np.concatenate([a.op for _, a, _ in guests])
        guest = np.concatenate([np.full(len(a), k, np.uint16) for k, (_, a, _) in enumerate(guests)])
        order = np.argsort(t, kind="stable")
        t, page, op, guest = t[order], page[order], op[order], guest[order]
    return Scenario(
        name=name,
        guest_names=tuple(g for g, _, _ in guests),
        guest_pages=guest_pages,
        t_ns=np.ascontiguousarray(t, np.int64),
        page=np.ascontiguousarray(page),
        op=np.ascontiguousarray(op),
        guest=np.ascontiguousarray(guest),
        page_guest=page_guest,
        sources=tuple(a.meta.source for _, a, _ in guests),
        guest_vcpus=np.array([a.meta.vcpus or 0 for _, a, _ in guests], np.int64),
    )


def load(paths: list[str | os.PathLike], *, copies: int = 1, stagger_ns: int = 0, name: str | None = None) -> Scenario:
    """Load and merge trace files (or scenario folders) into one scenario."""
    files = expand_inputs(paths)
    traces = [(trace_name(f), read_arrays(f)) for f in files]
    names = [n for n, _ in traces]
    if len(set(names)) != len(names):
        traces = [(f"{n}@{i}", a) for i, (n, a) in enumerate(traces)]
    return from_arrays(traces, name=name or scenario_name(paths), copies=copies, stagger_ns=stagger_ns)
