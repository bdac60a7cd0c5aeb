"""The one error a command raises to stop with a one-line message."""

from __future__ import annotations


class CommandFailed(Exception):
    """The command cannot go on; ``str()`` is the message for the user (exit code 1).

    >>> str(CommandFailed("cannot listen on 127.0.0.1:7077: Address already in use"))
    'cannot listen on 127.0.0.1:7077: Address already in use'
    """
