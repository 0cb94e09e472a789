"""The ``cmmsim`` command line: a thin shell over the library.

Each command parses its arguments, calls one library function and prints
the result. Every :class:`tracer.errors.CmmsimError` becomes a one-line
message on stderr and exit status 2, never a traceback.

The commands live in :mod:`analysis.cli_trace` (``cmmsim trace ...``),
:mod:`analysis.cli_replay` (``replay``, ``strategies``, ``mrc``) and
:mod:`analysis.cli_sweep` (``sweep``, ``report``, ``plot``, ``demo``); each
registers its commands on the one :data:`analysis.cli_common.app` when
imported, which this module does. ``docs/cli.md`` is generated from this
tree (``python -m analysis.docgen``).
"""

from __future__ import annotations

import sys

# Importing a command module registers its commands on ``app``.
from analysis import cli_replay, cli_sweep, cli_trace  # noqa: F401
from analysis.cli_common import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app(prog_name="cmmsim")
    sys.exit(0)
