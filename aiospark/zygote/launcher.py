"""The driver's side of the zygote: start it, ask it for processes, stop it.

Used by ``EmbeddedCluster``.  The listening socket is made here and handed to the
zygote, so requests can be sent at once (they wait in the socket's backlog while
the zygote imports); the driver keeps no copy of it, so once the zygote is gone
a request is refused at once and the role is spawned instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys

from aiospark.zygote import wire
from aiospark.zygote.client import AsyncForkedProcess, ForkFailed, request_fork_async

log = logging.getLogger("aiospark.embedded")

#: Room left in the zygote's command line for each forked process's own (``proctitle``).
TITLE_ROOM = 1024
#: A Unix socket's path must fit in ``sun_path`` (108 bytes on Linux).
MAX_PATH = 100


def forking_enabled(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether roles are forked from a zygote: on Linux (pidfds, ``SOCK_SEQPACKET``),
    unless ``AIOSPARK_FORK=0`` says to spawn them.

    >>> forking_enabled({}) == sys.platform.startswith("linux")
    True
    >>> forking_enabled({"AIOSPARK_FORK": "0"})
    False
    """
    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        return False
    return environ.get(wire.FORK_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class ZygoteLauncher:
    """The zygote of one embedded cluster, its socket in ``directory``."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, "zygote.sock")
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The zygote's pid while it is used."""
        return None if self.proc is None else self.proc.pid

    async def start(self, env: dict[str, str]) -> bool:
        """Start the zygote with ``env`` (that of the roles); False when it is not used."""
        if not forking_enabled() or len(self.path.encode()) > MAX_PATH:
            return False
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            listener.bind(self.path)
            listener.listen(1024)
            listener.set_inheritable(True)
            fd = listener.fileno()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "aiospark.zygote", "--fd", str(fd),
                "--parent-pid", str(os.getpid()), " " * TITLE_ROOM,
                env={**env, wire.ZYGOTE_ENV: self.path},
                pass_fds=(fd,),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            listener.close()
        return True

    async def fork(self, argv: list[str], fds: tuple[int, ...]) -> AsyncForkedProcess | None:
        """Have the zygote fork ``argv`` (``[python, -m, module, ...]``); None when it
        cannot (it is then given up: every later process is spawned)."""
        if self.proc is None:
            return None
        try:
            return await request_fork_async(self.path, argv[1:], list(fds), None)
        except ForkFailed as exc:
            log.warning("the zygote cannot fork (%s); spawning processes instead", exc)
            await self.stop()
            return None

    async def stop(self) -> None:
        """Stop the zygote (the processes it forked run on)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
