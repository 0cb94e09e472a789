"""The ``cmmsim`` command line: a thin shell over the library.

Each command parses its arguments, calls one library function and prints
the result. Every :class:`cmmsim.tracer.errors.CmmsimError` becomes a one-line
message on stderr and exit status 2, never a traceback.

The commands live in :mod:`cmmsim.cli_trace` (``cmmsim trace ...``),
:mod:`cmmsim.cli_replay` (``replay``, ``strategies``, ``mrc``) and
:mod:`cmmsim.cli_sweep` (``sweep``, ``report``, ``plot``, ``demo``); each
registers its commands on the one :data:`cmmsim.cli_common.app` when
imported, which this module does. ``docs/cli.md`` is generated from this
tree (``python -m cmmsim.docgen``).
"""

from __future__ import annotations

import sys

# Importing a command module registers its commands on ``app``.
from cmmsim import cli_replay, cli_sweep, cli_trace  # noqa: F401
from cmmsim.cli_common import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    # typer turns an empty path into Path("."), the current folder: an unset
    # shell variable ("$TRACE") would read every trace there. No value of cmmsim
    # is empty; what follows "--" is a recorded command's own.
    args = sys.argv[1:]
    own = args[: args.index("--")] if "--" in args else args
    if "" in own:
        i = own.index("")
        where = f"the argument after {own[i - 1]!r}" if i else "the first argument"
        print(f"cmmsim: error: {where} is empty (an unset variable?): it names nothing", file=sys.stderr)
        sys.exit(2)
    app(prog_name="cmmsim")
    sys.exit(0)
