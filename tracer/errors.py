"""Exceptions the command line turns into one-line messages (exit status 2)."""


class CmmsimError(Exception):
    """Bad input or a bad request: the message is meant for the user as it is."""


class TraceError(CmmsimError):
    """A trace file that is missing, unreadable or breaks the schema."""


class ParamError(CmmsimError):
    """An unknown or ill-typed parameter, workload, strategy or budget."""
