"""Linux tracepoint text (perf script, trace-cmd report, ftrace) -> cmmsim trace.

The modules, each importing only those listed before it:

* :mod:`~tracer.linux.rules`: the line shapes, the events and every mapping
  rule with the kernel behaviour it stands for (read this first);
* :mod:`~tracer.linux.counters`: what a conversion read, skipped and repaired;
* :mod:`~tracer.linux.textio`: plain, compressed or standard input, in lines or blocks;
* :mod:`~tracer.linux.kpageflags`: initial states from a ``/proc/kpageflags`` snapshot;
* :mod:`~tracer.linux.snapshot`: the frames of the file pages mapped at capture start;
* :mod:`~tracer.linux.reference`: the line-by-line reference (the twin);
* :mod:`~tracer.linux.parse`: the polars parse of chunks of lines;
* :mod:`~tracer.linux.scan`: the numba byte scanner of every line shape;
* :mod:`~tracer.linux.filepage_hash`: the fast mapper's hash table;
* :mod:`~tracer.linux.fast_state`: the fast mapper's arrays and their helpers;
* :mod:`~tracer.linux.fast`: the numba mapper;
* :mod:`~tracer.linux.converter`: :func:`convert`, which picks the path and writes the trace.
"""

from tracer.linux.converter import ConvertError, convert, pfnmap_path
from tracer.linux.counters import Counters
from tracer.linux.kpageflags import kpageflags_to_states, read_kpageflags_states
from tracer.linux.reference import Event, Mapper, parse_line
from tracer.linux.rules import EVENTS, FORMATS
from tracer.linux.textio import open_binary, open_text

__all__ = ["EVENTS", "FORMATS", "ConvertError", "Counters", "Event", "Mapper", "convert",
           "kpageflags_to_states", "open_binary", "open_text", "parse_line", "pfnmap_path",
           "read_kpageflags_states"]
