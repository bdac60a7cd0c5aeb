"""Asking the zygote for a process, and following it.

``request_fork`` (blocking, for a worker's supervisor) and ``request_fork_async``
(the driver) send a request and return a handle: ``ForkedProcess`` behaves as a
``subprocess.Popen`` (``pid``, ``poll``, ``wait``, ``send_signal``, ``kill``),
``AsyncForkedProcess`` as an ``asyncio.subprocess.Process`` (``await wait()``).
Both learn the exit code from the zygote, which reaps the child; signals go
through the child's pidfd, so they never reach a recycled pid.  When the zygote
is gone the handle still sees the exit (the pidfd becomes readable), but not the
code: ``returncode`` is then ``UNKNOWN_EXIT``.

Any failure to get a process (no zygote, a refusal, a zygote that does not
answer within the bound) is a ``ForkFailed``: callers spawn the process instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
import weakref

from aiospark.fdwait import readable
from aiospark.zygote import wire

#: ``returncode`` of a forked process whose zygote died before it (its code is lost).
UNKNOWN_EXIT = 255
#: Seconds to wait for the zygote's answer to a request (it may still be importing).
REPLY_TIMEOUT = 60.0


class ForkFailed(Exception):
    """The zygote could not be asked, refused, or did not answer: spawn instead."""


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _readable(fd: int, timeout: float | None) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


class ForkedProcess:
    """A process the zygote forked, followed through the connection that asked for it."""

    def __init__(self, pid: int, pidfd: int | None, conn: socket.socket) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd = pidfd
        self._conn: socket.socket | None = conn
        self._lock = threading.Lock()
        conn.setblocking(False)
        # Closed only with the handle: another thread may be waiting or signalling.
        self._finalizer = weakref.finalize(self, _release, conn, pidfd)

    def _watched_fd(self) -> int:
        """The fd that becomes readable when there is news: the zygote's connection,
        or without it the pidfd."""
        if self._conn is not None:
            return self._conn.fileno()
        if self._pidfd is None:
            raise ProcessLookupError(self.pid)  # neither: the caller polls /proc
        return self._pidfd

    def poll(self) -> int | None:
        """The exit code when the process has exited and it is known, else None."""
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            if self._conn is not None:
                try:
                    packet = self._conn.recv(wire.MAX_PACKET)
                except BlockingIOError:
                    return None
                except OSError:
                    packet = b""
                if packet:
                    self.returncode = int(wire.decode(packet)["code"])
                    return self.returncode
                self._conn = None  # the zygote is gone: follow the process itself
            if self._exited_without_zygote():
                self.returncode = UNKNOWN_EXIT
            return self.returncode

    def _exited_without_zygote(self) -> bool:
        if self._pidfd is not None:
            return _readable(self._pidfd, 0)
        return not os.path.exists(f"/proc/{self.pid}")

    def wait(self, timeout: float | None = None) -> int:
        """Block until the process exits (``subprocess.TimeoutExpired`` after ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            try:
                _readable(self._watched_fd(), left)
            except ProcessLookupError:
                time.sleep(0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Signal the process; ``ProcessLookupError`` when it has exited."""
        if self._pidfd is None:
            os.kill(self.pid, sig)
        else:
            signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)


def _release(conn: socket.socket, pidfd: int | None) -> None:
    conn.close()
    if pidfd is not None:
        _close_quietly(pidfd)


class AsyncForkedProcess(ForkedProcess):
    """A ``ForkedProcess`` awaited from an event loop, as an ``asyncio.subprocess.Process``."""

    _follower: asyncio.Task[int] | None = None

    async def wait(self) -> int:  # type: ignore[override]
        """The exit code, once the process has exited."""
        if self.poll() is not None:
            assert self.returncode is not None
            return self.returncode
        if self._follower is None:
            self._follower = asyncio.ensure_future(self._follow())
        return await asyncio.shield(self._follower)

    async def _follow(self) -> int:
        while self.poll() is None:
            try:
                fd = self._watched_fd()
            except ProcessLookupError:
                await asyncio.sleep(0.05)
                continue
            await readable(fd)
        assert self.returncode is not None
        return self.returncode


def _connect(path: str, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise ForkFailed(f"cannot reach the zygote at {path}: {exc}") from None
    return sock


def _answer(packet: bytes, fds: list[int]) -> tuple[int, int | None]:
    """``(pid, pidfd)`` of the zygote's answer packet."""
    try:
        if not packet:
            raise ValueError("the zygote closed the connection")
        message = wire.decode(packet)
        if "error" in message:
            raise ValueError(f"the zygote refused: {message['error']}")
        pid = int(message["pid"])
    except (KeyError, TypeError, ValueError) as exc:
        for fd in fds:
            _close_quietly(fd)
        raise ForkFailed(str(exc)) from None
    for fd in fds[1:]:
        _close_quietly(fd)
    return pid, (fds[0] if fds else None)


def request_fork(path: str, argv: list[str], fds: list[int], env: dict[str, str] | None,
                 timeout: float = REPLY_TIMEOUT) -> ForkedProcess:
    """Have the zygote at ``path`` fork ``python ARGV`` with ``fds`` at their numbers, and
    the environment ``env`` (None: the zygote's own)."""
    sock = _connect(path, timeout)
    try:
        socket.send_fds(sock, [wire.request(argv, fds, env)], fds)
        packet, received, _, _ = socket.recv_fds(sock, wire.MAX_PACKET, 1)
    except OSError as exc:
        sock.close()
        raise ForkFailed(f"the zygote did not answer: {exc}") from None
    try:
        pid, pidfd = _answer(packet, received)
    except ForkFailed:
        sock.close()
        raise
    return ForkedProcess(pid, pidfd, sock)


async def request_fork_async(path: str, argv: list[str], fds: list[int],
                             env: dict[str, str] | None,
                             timeout: float = REPLY_TIMEOUT) -> AsyncForkedProcess:
    """``request_fork`` from an event loop (the wait for the answer does not block it)."""
    sock = _connect(path, 1.0)  # a local listening socket: connecting does not wait
    sock.setblocking(False)
    try:
        socket.send_fds(sock, [wire.request(argv, fds, env)], fds)
        await asyncio.wait_for(readable(sock.fileno()), timeout)
        packet, received, _, _ = socket.recv_fds(sock, wire.MAX_PACKET, 1)
        pid, pidfd = _answer(packet, received)
    except (OSError, TimeoutError) as exc:
        sock.close()
        raise ForkFailed(f"the zygote did not answer: {exc!r}") from None
    except BaseException:  # cancelled: a child forked meanwhile would be no one's
        with contextlib.suppress(OSError, ForkFailed):
            ForkedProcess(*_answer(*socket.recv_fds(sock, wire.MAX_PACKET, 1)[:2]), sock).kill()
        sock.close()
        raise
    return AsyncForkedProcess(pid, pidfd, sock)
