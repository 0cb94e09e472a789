"""What a conversion read, skipped and repaired: the converter's part of the trace metadata."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Counters:
    """What the converter read, skipped and repaired (goes into the metadata)."""

    lines_read: int = 0
    events: collections.Counter = field(default_factory=collections.Counter)
    skipped: collections.Counter = field(default_factory=collections.Counter)
    unused_events: collections.Counter = field(default_factory=collections.Counter)
    unresolved_accesses: int = 0
    unresolved_causes: collections.Counter = field(default_factory=collections.Counter)
    page_cache_reads: int = 0
    fault_around_mapped: int = 0
    fault_around_unknown: int = 0
    fault_around_retries: int = 0
    get_pages_unread: int = 0
    faults_filled: int = 0
    snapshot_pages: int = 0
    unresolved_dirty: int = 0
    duplicate_frees: int = 0
    failed_allocations: int = 0
    activate_on_free: int = 0
    sampled_on_free: int = 0
    expired_clean: int = 0
    reordered: int = 0
    clamped_ranges: int = 0
    lost_events: int = 0
    initial_states: collections.Counter = field(default_factory=collections.Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines_read": self.lines_read,
            "events": dict(sorted(self.events.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "unused_events": dict(sorted(self.unused_events.items())),
            "unresolved_accesses": self.unresolved_accesses,
            "unresolved_causes": dict(sorted(self.unresolved_causes.items())),
            "page_cache_reads": self.page_cache_reads,
            "fault_around_mapped": self.fault_around_mapped,
            "fault_around_unknown": self.fault_around_unknown,
            "fault_around_retries": self.fault_around_retries,
            "get_pages_unread": self.get_pages_unread,
            "faults_filled": self.faults_filled,
            "snapshot_pages": self.snapshot_pages,
            "unresolved_dirty": self.unresolved_dirty,
            "duplicate_frees": self.duplicate_frees,
            "failed_allocations": self.failed_allocations,
            "activate_on_free": self.activate_on_free,
            "sampled_on_free": self.sampled_on_free,
            "expired_clean": self.expired_clean,
            "reordered": self.reordered,
            "clamped_ranges": self.clamped_ranges,
            "lost_events": self.lost_events,
            "initial_states": dict(sorted(self.initial_states.items())),
        }


#: Why a page-cache access could not be resolved to a frame: its file had no
#: page known when it was read (cached before the capture and not in the
#: start snapshot, or on a file system whose pages never pass through the
#: page-cache tracepoints), the file had pages known but not this one (cached
#: before the capture), or the file is on a pseudo file system (device 0:N:
#: tmpfs and shmem, whose pages have no page-cache events, or a block device's own cache).
CAUSE_FILE_NOT_SEEN = "file not seen"
CAUSE_PAGE_NOT_SEEN = "page not seen"
CAUSE_PSEUDO_FS = "pseudo file system"
#: In the order the fast mapper counts them.
CAUSES = (CAUSE_FILE_NOT_SEEN, CAUSE_PAGE_NOT_SEEN, CAUSE_PSEUDO_FS)

#: Why a line was skipped, as the counters (and the strict mode's errors) name it.
SKIP_NOISE = "header or comment"
SKIP_BAD_LINE = "not a tracepoint line"


def skip_bad_fields(event: str) -> str:
    """The skip reason of a line of ``event`` whose fields do not parse."""
    return f"fields of {event} do not parse"


def fidelity_lines(converter: dict[str, Any]) -> list[str]:
    """What a converted trace lost, in words: the page-cache reads it could not place, by
    cause, and the range offsets it did not count as reads (from a trace's converter counters;
    none for a trace without them)."""
    if "page_cache_reads" not in converter:
        return []
    read, lost = converter["page_cache_reads"], converter["unresolved_accesses"]
    share = f" ({lost / (read + lost):.1%} of them)" if read + lost else ""
    causes = ", ".join(f"{k} {v:,}" for k, v in converter.get("unresolved_causes", {}).items())
    lines = [f"page-cache reads: {read:,} placed, {lost:,} not placed{share}" + (f": {causes}" if causes else "")]
    if converter.get("snapshot_pages"):
        lines.append(f"start snapshot: {converter['snapshot_pages']:,} mapped file pages placed")
    lines.append(
        f"not reads: {converter['fault_around_mapped']:,} fault-around pages mapped "
        f"untouched, {converter['fault_around_unknown']:,} fault-around offsets "
        f"uncached or unknown, {converter['get_pages_unread']:,} read() offsets past "
        "a turn (past the file's end, or read by the next turn)"
    )
    if converter.get("lost_events"):
        lines.append(f"events the tracer lost (ftrace LOST marks): {converter['lost_events']:,}; the trace has gaps")
    if converter.get("unresolved_dirty"):
        lines.append(f"dirtied folios not placed: {converter['unresolved_dirty']:,}")
    return lines
