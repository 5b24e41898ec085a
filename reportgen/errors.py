"""Errors a user can cause and fix (bad suite, bad option): one line, exit code 2, never a traceback."""


class UsageError(Exception):
    """A problem with the user's input; ``str(err)`` is the whole message, naming file and key."""

    exit_code = 2
