"""The private channel between a worker's supervisor and its executor process.

One message per line, each a JSON object with a ``"type"``, over a Unix socket
pair made by the supervisor.  The executor reports to the supervisor
(``ready``, ``load``, ``kill``, ``drained``); the supervisor tells the
executor what only it knows (``registered``, ``drain``).  Nothing on this
channel carries data: it is small, rare and local.

>>> import asyncio, socket
>>> async def demo():
...     a, b = socket.socketpair()
...     left, right = await ControlLink.open(a), await ControlLink.open(b)
...     left.send({"type": "load", "running": 2})
...     message = await right.receive()
...     left.close(); right.close()
...     return message
>>> asyncio.run(demo())
{'type': 'load', 'running': 2}
"""

from __future__ import annotations

import asyncio
import json
import mmap
import socket
from typing import Any

#: The longest line either side accepts (a load report lists running task ids).
MAX_LINE = 4 << 20


class ControlLink:
    """One end of the channel: ``send`` a message, ``receive`` the next (None at the end)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> ControlLink:
        """Wrap a connected Unix socket (one end of a ``socket.socketpair()``)."""
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_LINE)
        return cls(reader, writer)

    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message``; dropped silently when the other end is gone."""
        if not self._writer.is_closing():
            self._writer.write(json.dumps(message).encode() + b"\n")

    async def receive(self) -> dict[str, Any] | None:
        """The next message, or None when the other end closed (or sent garbage)."""
        try:
            line = await self._reader.readline()
            if not line:
                return None
            message = json.loads(line)
        except (ConnectionError, ValueError):
            return None
        return message if isinstance(message, dict) else None

    def close(self) -> None:
        self._writer.close()


class RunningGauge:
    """How many tasks the executor runs, in a file both processes map into memory.

    The executor writes it on every launch and end (a store, no system call); the
    supervisor reads it for each heartbeat.  A task holding the GIL from its first
    instant cannot stop the executor from having written it, so the master's status
    shows the task running even while the executor cannot say anything.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "running")
    >>> writer, reader = RunningGauge(path, create=True), RunningGauge(path)
    >>> writer.set(3); reader.get()
    3
    >>> writer.close(); reader.close()
    """

    _SIZE = 8

    def __init__(self, path: str, create: bool = False) -> None:
        self.path = path
        if create:
            with open(path, "wb") as f:
                f.write(bytes(self._SIZE))
        with open(path, "r+b") as f:
            self._map = mmap.mmap(f.fileno(), self._SIZE)

    def set(self, value: int) -> None:
        self._map[: self._SIZE] = value.to_bytes(self._SIZE, "little", signed=True)

    def get(self) -> int:
        return int.from_bytes(self._map[: self._SIZE], "little", signed=True)

    def close(self) -> None:
        self._map.close()
