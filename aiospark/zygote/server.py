"""The zygote's loop: accept fork requests, fork, report each child's exit.

No event loop and no thread: a ``selectors`` loop over the listening socket, the
connections whose request has not arrived, a self-pipe that ``SIGCHLD`` writes
to, and a pidfd of the process to outlive (the driver).  Each request's
connection stays open while its child runs; the child's exit code is sent on it,
then it is closed.  A requester that goes away before it has the child's pid
(cancelled) gets no child: it is not forked, or killed at once.  One that goes
away later is no matter: its child runs on.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import select
import selectors
import signal
import socket
import sys
from typing import Any

from aiospark.zygote import wire
from aiospark.zygote.child import Mains, run_child

log = logging.getLogger("aiospark.zygote")

#: Seconds between checks that the parent lives, where pidfds are not available.
PARENT_POLL = 0.25


def check_request(message: dict[str, Any], received: list[int], mains: Mains) -> None:
    """Refuse (``ValueError``) a request this zygote cannot serve.

    >>> check_request({"argv": ["-m", "x"], "fds": [], "env": {}}, [], {"x": print})
    >>> check_request({"argv": ["-m", "y"], "fds": [], "env": {}}, [], {"x": print})
    Traceback (most recent call last):
    ...
    ValueError: no main for ['-m', 'y']
    """
    argv = message.get("argv")
    if not isinstance(argv, list) or len(argv) < 2 or argv[0] != "-m" or argv[1] not in mains:
        raise ValueError(f"no main for {argv!r}")
    if len(message.get("fds", ())) != len(received):
        raise ValueError(f"{len(received)} fds sent for {message.get('fds')!r}")


class Zygote:
    """Forks the processes asked for on ``listener``, until ``parent_pid`` exits."""

    def __init__(self, listener: socket.socket, parent_pid: int, mains: Mains) -> None:
        self.listener = listener
        self.parent_pid = parent_pid
        self.mains = mains
        self.selector = selectors.DefaultSelector()
        #: child pid -> the connection its exit code goes to
        self.children: dict[int, socket.socket] = {}
        #: connections whose request has not arrived yet
        self.waiting: set[socket.socket] = set()
        self.wake_r, self.wake_w = os.pipe()
        self.parent_fd: int | None = None

    def own_fds(self) -> list[Any]:
        """Everything of the zygote's a child must not keep."""
        fds: list[Any] = [self.listener, self.wake_r, self.wake_w, *self.children.values(),
                          *self.waiting]
        if self.parent_fd is not None:
            fds.append(self.parent_fd)
        return fds

    def serve(self) -> None:
        """Serve until the parent exits (or is gone already)."""
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd says it
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "reap")
        try:
            self.parent_fd = os.pidfd_open(self.parent_pid)
            self.selector.register(self.parent_fd, selectors.EVENT_READ, "parent")
        except ProcessLookupError:
            return
        except (AttributeError, OSError):
            self.parent_fd = None  # no pidfds here: poll os.getppid()
        gc.freeze()  # what is imported by now stays shared with every child
        while self.parent_fd is not None or os.getppid() == self.parent_pid:
            timeout = None if self.parent_fd is not None else PARENT_POLL
            for key, _ in self.selector.select(timeout):
                if key.data == "parent":
                    return
                if key.data == "accept":
                    self.accept()
                elif key.data == "reap":
                    self.reap()
                else:
                    self.on_request(key.fileobj)  # type: ignore[arg-type]

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.waiting.add(conn)
        self.selector.register(conn, selectors.EVENT_READ, "request")

    def on_request(self, conn: socket.socket) -> None:
        self.selector.unregister(conn)
        self.waiting.discard(conn)
        received: list[int] = []
        try:
            packet, received, _, _ = socket.recv_fds(conn, wire.MAX_PACKET, wire.MAX_FDS)
            if not packet:
                raise ValueError("the requester went away")
            message = wire.decode(packet)
            check_request(message, received, self.mains)
        except (OSError, ValueError) as exc:
            for fd in received:
                os.close(fd)
            with contextlib.suppress(OSError):
                conn.send(wire.encode({"error": str(exc)}))
            conn.close()
            return
        if select.select([conn], [], [], 0)[0]:  # closed already: no one wants the child
            for fd in received:
                os.close(fd)
            conn.close()
            return
        for stream in (sys.stdout, sys.stderr):  # nothing buffered is written twice
            with contextlib.suppress(Exception):
                stream.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = run_child(message, received, self.mains,
                                 [*self.own_fds(), conn, self.selector])
            finally:
                os._exit(code)
        for fd in received:  # the child's now: the requester must see them close with it
            os.close(fd)
        self.children[pid] = conn
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None
        try:
            socket.send_fds(conn, [wire.encode({"pid": pid})], [] if pidfd is None else [pidfd])
        except OSError:  # the requester went away: no one would follow the child
            os.kill(pid, signal.SIGKILL)
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def reap(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.wake_r, 512):
                pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            with contextlib.suppress(OSError):
                conn.send(wire.encode({"code": os.waitstatus_to_exitcode(status)}))
            conn.close()
