"""Linux tracepoint text (perf script, trace-cmd report, ftrace) -> cmmsim trace.

The modules, each importing only those listed before it:

* :mod:`~cmmsim.tracer.linux.rules`: the line shapes, the events and every mapping
  rule with the kernel behaviour it stands for (read this first);
* :mod:`~cmmsim.tracer.linux.counters`: what a conversion read, skipped and repaired;
* :mod:`~cmmsim.tracer.linux.textio`: plain, compressed or standard input, in lines or blocks;
* :mod:`~cmmsim.tracer.linux.kpageflags`: initial states from a ``/proc/kpageflags`` snapshot;
* :mod:`~cmmsim.tracer.linux.snapshot`: the frames of the file pages mapped at capture start;
* :mod:`~cmmsim.tracer.linux.reference`: the line-by-line reference (the twin);
* :mod:`~cmmsim.tracer.linux.parse`: the polars parse of chunks of lines;
* :mod:`~cmmsim.tracer.linux.scan`: the numba byte scanner of every line shape;
* :mod:`~cmmsim.tracer.linux.filepage_hash`: the fast mapper's hash table;
* :mod:`~cmmsim.tracer.linux.fast_state`: the fast mapper's arrays and their helpers;
* :mod:`~cmmsim.tracer.linux.fast`: the numba mapper;
* :mod:`~cmmsim.tracer.linux.converter`: :func:`convert`, which picks the path and writes the trace.
"""

from cmmsim.tracer.linux.converter import ConvertError, convert, pfnmap_path
from cmmsim.tracer.linux.counters import Counters
from cmmsim.tracer.linux.kpageflags import kpageflags_to_states, read_kpageflags_states
from cmmsim.tracer.linux.reference import Event, Mapper, parse_line
from cmmsim.tracer.linux.rules import EVENTS, FORMATS
from cmmsim.tracer.linux.textio import open_binary, open_text

__all__ = [
    "EVENTS",
    "FORMATS",
    "ConvertError",
    "Counters",
    "Event",
    "Mapper",
    "convert",
    "kpageflags_to_states",
    "open_binary",
    "open_text",
    "parse_line",
    "pfnmap_path",
    "read_kpageflags_states",
]
