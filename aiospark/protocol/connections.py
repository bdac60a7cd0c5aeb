"""Connections no client can hold: a header deadline, an idle deadline and a cap, per server.

aiohttp waits for a request's headers as long as the client likes, so a client
that opens connections and sends half a request line (no secret needed) could
keep every file descriptor of a server.  Every aiospark server (master, worker
supervisor, executor, shuffle service) is served through ``runtime.serve``,
which puts this guard in front of aiohttp:

- a connection must deliver a complete request head within ``HEADER_TIMEOUT``
  seconds of opening, or of its first byte after a response, else it is closed;
- a kept-alive connection with no request for ``IDLE_TIMEOUT`` seconds is closed
  (longer than aiohttp clients keep pooled connections, 15 s);
- at most ``max_connections`` connections are open at once (half the process's
  file descriptor limit, at most ``MAX_CONNECTIONS``): a new connection beyond
  that closes the oldest connection not in a request; when every connection is
  serving a request the new one is refused.

A connection is *in a request* from the moment its handler starts (its headers
arrived) until the handler returns; a WebSocket is in a request for its whole
life.  Request bodies are not timed here: a request without the secret is
answered 401 before its body is read, and the connection then closes.
"""

from __future__ import annotations

import asyncio
import collections
import resource
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

#: Seconds a client has to send a complete request head.
HEADER_TIMEOUT = 5.0
#: Seconds a kept-alive connection may sit between requests.
IDLE_TIMEOUT = 60.0
#: Most connections a server keeps open (lower with a low file descriptor limit).
MAX_CONNECTIONS = 4096
#: The fewest it allows, whatever the file descriptor limit.
MIN_CONNECTIONS = 64


def guarded_runner(runner_app: web.Application, guard: ConnectionGuard | None = None
                  ) -> tuple[web.AppRunner, ConnectionGuard, dict[str, Any]]:
    """An ``AppRunner`` for ``app`` with the guard's middleware first (call before setup)."""
    guard = guard or ConnectionGuard()
    runner_app.middlewares.insert(0, guard.middleware())
    handler_args: dict[str, Any] = {"access_log": None, "keepalive_timeout": guard.idle_timeout}
    runner = web.AppRunner(runner_app, handle_signals=False, **handler_args)
    return runner, guard, handler_args


def default_max_connections() -> int:
    """Half the soft file descriptor limit, between ``MIN_CONNECTIONS`` and ``MAX_CONNECTIONS``.

    >>> MIN_CONNECTIONS <= default_max_connections() <= MAX_CONNECTIONS
    True
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, soft // 2))


class ConnectionGuard:
    """The open connections of one server, their deadlines, and the cap."""

    def __init__(
        self,
        header_timeout: float = HEADER_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int | None = None,
    ) -> None:
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections or default_max_connections()
        #: connections not in a request, oldest first (the first to close at the cap)
        self._waiting: collections.OrderedDict[_GuardedHandler, None] = collections.OrderedDict()
        #: connections in a request
        self._busy: set[_GuardedHandler] = set()
        #: closed for their deadline, and for the cap (``/v1/health`` of no role shows
        #: them; tests read them through the log)
        self.closed_slow = 0
        self.closed_for_cap = 0

    @property
    def open(self) -> int:
        return len(self._waiting) + len(self._busy)

    # -- called by the handlers ----------------------------------------------------------

    def opened(self, conn: _GuardedHandler) -> bool:
        """A new connection: False when it must be refused (every other one is busy)."""
        while self.open >= self.max_connections:
            if not self._waiting:
                return False
            oldest = next(iter(self._waiting))
            self.closed_for_cap += 1
            self._drop(oldest)
            oldest.close_now()
        self._waiting[conn] = None
        conn.arm(self.header_timeout)
        return True

    def data(self, conn: _GuardedHandler) -> None:
        """Bytes arrived: an idle connection now has ``header_timeout`` to finish its head."""
        if conn.idle:
            conn.idle = False
            conn.arm(self.header_timeout)

    def request_started(self, conn: _GuardedHandler) -> None:
        if conn in self._waiting:
            del self._waiting[conn]
            self._busy.add(conn)
            conn.disarm()

    def request_ended(self, conn: _GuardedHandler) -> None:
        if conn in self._busy:
            self._busy.discard(conn)
            self._waiting[conn] = None  # the newest idle one: the last to go at the cap
            conn.idle = True
            conn.arm(self.idle_timeout)

    def expired(self, conn: _GuardedHandler) -> None:
        """A deadline passed: close the connection unless a response is still going out."""
        if conn not in self._waiting:
            return
        transport = conn.transport
        if transport is not None and transport.get_write_buffer_size() > 0:
            conn.arm(self.header_timeout)  # still sending an answer: look again later
            return
        self.closed_slow += 1
        self._drop(conn)
        conn.close_now()

    def _drop(self, conn: _GuardedHandler) -> None:
        self._waiting.pop(conn, None)
        self._busy.discard(conn)
        conn.disarm()

    def lost(self, conn: _GuardedHandler) -> None:
        self._drop(conn)

    # -- wiring --------------------------------------------------------------------------

    def middleware(self) -> Callable[..., Any]:
        """Marks the connection in a request while the handler runs (put it first)."""

        @web.middleware
        async def track(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            conn = request.protocol
            if not isinstance(conn, _GuardedHandler):
                return await handler(request)
            self.request_started(conn)
            try:
                return await handler(request)
            finally:
                self.request_ended(conn)

        return track


class _GuardedHandler(web.RequestHandler):
    """aiohttp's request handler, reporting to a ``ConnectionGuard``."""

    def __init__(self, guard: ConnectionGuard, manager: Any, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.guard = guard
        #: between requests (no byte of the next one yet)
        self.idle = False
        self._deadline: asyncio.TimerHandle | None = None

    def arm(self, seconds: float) -> None:
        self.disarm()
        self._deadline = self._loop.call_later(seconds, self.guard.expired, self)

    def disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def close_now(self) -> None:
        transport = self.transport
        self.force_close()
        if transport is not None:
            transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.guard.opened(self):
            self.close_now()

    def data_received(self, data: bytes) -> None:
        self.guard.data(self)
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.guard.lost(self)
        super().connection_lost(exc)


class GuardedSite(web.SockSite):
    """``web.SockSite`` whose connections go through a ``ConnectionGuard``."""

    def __init__(self, runner: web.AppRunner, sock: socket.socket, guard: ConnectionGuard,
                 handler_args: dict[str, Any], ssl_context: ssl.SSLContext | None = None,
                 backlog: int = 512) -> None:
        super().__init__(runner, sock, ssl_context=ssl_context, backlog=backlog)
        self._guarded_sock = sock
        self._guarded_ssl = ssl_context
        self._guarded_backlog = backlog
        self._guard = guard
        self._handler_args = handler_args

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        guard, args = self._guard, self._handler_args

        def protocol() -> _GuardedHandler:
            return _GuardedHandler(guard, server, loop=loop, **args)

        # A TLS handshake must not take longer than a request head either.
        handshake = None if self._guarded_ssl is None else guard.header_timeout
        self._server = await loop.create_server(
            protocol, sock=self._guarded_sock, ssl=self._guarded_ssl,
            backlog=self._guarded_backlog, ssl_handshake_timeout=handshake,
        )
