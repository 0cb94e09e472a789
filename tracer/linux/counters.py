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
    unresolved_dirty: int = 0
    duplicate_frees: int = 0
    failed_allocations: int = 0
    activate_on_free: int = 0
    expired_clean: int = 0
    reordered: int = 0
    clamped_ranges: int = 0
    initial_states: collections.Counter = field(default_factory=collections.Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines_read": self.lines_read,
            "events": dict(sorted(self.events.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "unused_events": dict(sorted(self.unused_events.items())),
            "unresolved_accesses": self.unresolved_accesses,
            "unresolved_dirty": self.unresolved_dirty,
            "duplicate_frees": self.duplicate_frees,
            "failed_allocations": self.failed_allocations,
            "activate_on_free": self.activate_on_free,
            "expired_clean": self.expired_clean,
            "reordered": self.reordered,
            "clamped_ranges": self.clamped_ranges,
            "initial_states": dict(sorted(self.initial_states.items())),
        }


#: Why a line was skipped, as the counters (and the strict mode's errors) name it.
SKIP_NOISE = "header or comment"
SKIP_BAD_LINE = "not a tracepoint line"


def skip_bad_fields(event: str) -> str:
    """The skip reason of a line of ``event`` whose fields do not parse."""
    return f"fields of {event} do not parse"
