"""Process plumbing shared by every role: event loop choice, serving an app, stopping."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from aiospark.fdwait import readable
from aiospark.protocol import tls
from aiospark.protocol.connections import GuardedSite, guarded_runner
from aiospark.sockets import listening_socket  # noqa: F401  (re-exported)

log = logging.getLogger("aiospark")


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``main()`` on uvloop when it is installed, else on the standard loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())


async def serve(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    fd: int | None = None,
    advertise: str | None = None,
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (or an inherited listening socket); returns its URL.

    The URL names ``advertise`` when given (the address other machines use to
    reach this process), else the bound address, or this machine's host name
    when bound to every interface.  With TLS configured (``protocol.tls``) it
    serves HTTPS and the URL says so.  Connections go through a
    ``protocol.connections.ConnectionGuard``: a header deadline, an idle deadline
    and a cap on open connections.
    """
    runner, guard, handler_args = guarded_runner(app)
    await runner.setup()
    ssl_context = tls.server_context()
    if fd is not None:
        sock = socket.socket(fileno=fd)
    else:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
    site = GuardedSite(runner, sock, guard, handler_args, ssl_context=ssl_context)
    await site.start()
    bound_host, bound_port = sock.getsockname()[:2]
    if advertise:
        bound_host = advertise
    elif bound_host in ("0.0.0.0", "::"):
        bound_host = socket.gethostname()
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"{tls.scheme()}://{shown}:{bound_port}"


def stop_signals() -> asyncio.Future[str]:
    """Catch SIGTERM and SIGINT from now on: the future gets the first one's name.

    Call it before a process announces that it is ready, so a stop signal sent
    as soon as the announcement is read is caught, not fatal.
    """
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[str] = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(
            sig, lambda s=sig: stopped.done() or stopped.set_result(signal.Signals(s).name)
        )
    return stopped


async def wait_for_stop(
    parent_pid: int | None = None, stopped: asyncio.Future[str] | None = None
) -> str:
    """Wait for SIGTERM/SIGINT or, when ``parent_pid`` is given, for that process to die.

    ``parent_pid`` is the process that started this one (the embedded cluster's
    driver), which may not be its parent in the kernel's sense: a process forked
    by the zygote has the zygote for parent.  ``stopped`` is the future of an
    earlier ``stop_signals()``; without it the signal handlers are installed now.
    """
    if stopped is None:
        stopped = stop_signals()
    watcher = None
    if parent_pid:
        done = stopped

        async def watch_parent() -> None:
            await process_exit(parent_pid)
            if not done.done():
                done.set_result("parent exited")

        watcher = asyncio.create_task(watch_parent())
    try:
        return await stopped
    finally:
        if watcher is not None:
            watcher.cancel()


async def process_exit(pid: int) -> None:
    """Return when process ``pid`` exits (at once when there is none).

    A pidfd says it without polling; where there are none, poll whether it is
    still this process's parent, or (from ``/proc``) still exists.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):
        while os.getppid() == pid or process_exists(pid):
            await asyncio.sleep(0.25)
        return
    try:
        await readable(pidfd)
    finally:
        os.close(pidfd)


def process_exists(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has).

    >>> process_exists(os.getpid()), process_exists(2 ** 22 + 1)
    (True, False)
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")


def process_stopped(pid: int) -> bool:
    """Whether process ``pid`` is stopped (SIGSTOP, a debugger); False where unknown.

    >>> process_stopped(os.getpid())
    False
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    # "pid (command) state ...": the command may hold spaces and parentheses.
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] in (b"T", b"t")
