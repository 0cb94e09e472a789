"""Exceptions the command line turns into one-line messages (exit status 2).

Every message names the thing at fault first (a file, a parameter, an
option) and then the reason: ``<path>: <reason>``. The command line prints it
as ``cmmsim: error: <message>`` (:func:`cmmsim.cli_common.cli_errors`).
"""

from __future__ import annotations

import os


class CmmsimError(Exception):
    """Bad input or a bad request: the message is meant for the user as it is."""


class TraceError(CmmsimError):
    """A trace file that is missing, unreadable or breaks the schema."""


class ParamError(CmmsimError):
    """An unknown or ill-typed parameter, workload, strategy or budget."""


class OutputError(CmmsimError):
    """An output that cannot be written (refused before the work where it can be)."""


class ResultsError(CmmsimError):
    """A results, states or series file (or a sweep's part) that is missing, damaged or foreign."""


class KernelError(CmmsimError):
    """A replay kernel that returned incomplete counters (it failed part way)."""


def os_reason(exc: BaseException) -> str:
    """The reason of an OS error in a few words (``strerror``), else its first line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def show_path(path: str | os.PathLike | bytes) -> str:
    """A path as text that prints on any terminal (undecodable bytes as ``\\xNN``)."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", errors="backslashreplace")
