"""Waiting on a file descriptor from an event loop, without a thread."""

from __future__ import annotations

import asyncio


async def readable(fd: int) -> None:
    """Return once ``fd`` is readable (a socket with data or closed, an exited pidfd).

    >>> import os
    >>> r, w = os.pipe()
    >>> os.write(w, b"x")
    1
    >>> await readable(r)
    >>> os.close(r), os.close(w)
    (None, None)
    """
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(fd)
