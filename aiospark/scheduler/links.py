"""The driver's connection to one worker."""

from __future__ import annotations

import asyncio
from collections import deque

import aiohttp

from aiospark.protocol.envelope import batches
from aiospark.protocol.messages import WorkerInfo


class WorkerLink:
    """The driver's WebSocket to one worker, with an outbox drained by a writer task."""

    def __init__(self, info: WorkerInfo, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.info = info
        self.ws = ws
        self.sent_stages: set[int] = set()
        #: broadcasts this worker holds or is fetching
        self.broadcasts: set[int] = set()
        self.outbox: deque[bytes] = deque()
        self.wakeup = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def send(self, message: bytes) -> None:
        self.outbox.append(message)
        self.wakeup.set()

    async def write_loop(self) -> None:
        """Send what was queued, the messages queued meanwhile together in one frame."""
        outbox = self.outbox
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while outbox:
                messages = list(outbox)
                outbox.clear()
                for frame in batches(messages):
                    await self.ws.send_bytes(frame)
