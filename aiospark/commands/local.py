"""``aiospark local``: the embedded cluster in the foreground, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from aiospark import security
from aiospark.commands import http
from aiospark.commands.failure import CommandFailed
from aiospark.commands.roles import BIND_ERRORS
from aiospark.config import Settings
from aiospark.runtime import run, stop_signals, wait_for_stop

log = logging.getLogger("aiospark.cli")

#: How long the workers may take to register before ``local`` gives up.
START_TIMEOUT = 60.0


def connect_hint(url: str, workers: int, secret: security.Secret) -> str:
    """What ``aiospark local`` prints once its cluster is up.

    >>> print(connect_hint("aiospark://127.0.0.1:7077", 2,
    ...                    security.Secret("s", "local secret", "/home/me/secret")))
    aiospark local: 2 workers ready, master at aiospark://127.0.0.1:7077
      aiospark shell --master aiospark://127.0.0.1:7077
      aiospark submit --master aiospark://127.0.0.1:7077 app.py
      AIOSPARK_MASTER=aiospark://127.0.0.1:7077 AIOSPARK_SECRET_FILE=/home/me/secret python app.py
    Press Ctrl-C to stop.
    """
    if secret.file:
        python = f"AIOSPARK_MASTER={url} AIOSPARK_SECRET_FILE={secret.file} python app.py"
    else:
        python = f"AIOSPARK_MASTER={url} python app.py  (with {secret.source} as set here)"
    return "\n".join([
        f"aiospark local: {workers} workers ready, master at {url}",
        f"  aiospark shell --master {url}",
        f"  aiospark submit --master {url} app.py",
        f"  {python}",
        "Press Ctrl-C to stop.",
    ])


def local(settings: Settings) -> int:
    """Run the embedded cluster until a stop signal; exit 0.

    >>> import socket
    >>> from aiospark.config import resolve
    >>> secret = os.path.join(tmp_dir, "local-secret")
    >>> with open(secret, "w") as f:
    ...     _ = f.write("s3cr3t")
    >>> os.chmod(secret, 0o600)
    >>> with socket.socket() as taken:
    ...     taken.bind(("127.0.0.1", 0))
    ...     port = str(taken.getsockname()[1])
    ...     local(resolve("local", {"port": port, "secret_file": secret}, {}))
    Traceback (most recent call last):
    ...
    aiospark.commands.failure.CommandFailed: cannot listen on 127.0.0.1:...: Address already in use
    """
    secret = security.server_secret(settings, "127.0.0.1")
    try:
        run(lambda: _local(settings, secret))
    except OSError as exc:
        if exc.errno not in BIND_ERRORS:
            raise
        raise CommandFailed(f"cannot listen on 127.0.0.1:{settings.port}: {exc.strerror}"
                            ) from None
    return 0


async def _local(settings: Settings, secret: security.Secret) -> None:
    from aiospark.embedded import EmbeddedCluster

    # Caught from the start: a SIGTERM sent as soon as "Press Ctrl-C" is read, or
    # while the cluster starts, stops it cleanly (exit 0) instead of killing this
    # process and orphaning the cluster's processes until they notice.
    stopped = stop_signals()
    workers = settings.workers or os.cpu_count() or 1
    cluster = EmbeddedCluster(
        workers, secret.value, worker_timeout=settings.worker_timeout,
        log_level=settings.log_level, worker_memory=settings.memory or None,
        master_port=settings.port,
    )

    async def workers_ready(master: str) -> None:
        async with http.session(secret.value) as client:
            await http.wait_for_workers(client, master, workers, START_TIMEOUT)

    try:
        master = await cluster.start()  # spawning only: quick, and never left halfway
        ready = asyncio.ensure_future(workers_ready(master))
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            ready.result()  # raises if the workers did not come
            print(connect_hint(http.aiospark_url(master), workers, secret), flush=True)
        else:  # stopped while the workers were registering
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
        reason = await wait_for_stop(stopped=stopped)
        log.info("stopping: %s", reason)
    finally:
        await cluster.stop()
