"""``aiospark master``, ``aiospark worker``, ``aiospark shuffle-service``: one role per process.

Each checks its settings and its secret before it starts serving, so a bad value
or a refused address stops it at once with one line naming the option.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Coroutine
from typing import Any

from aiospark import security
from aiospark.commands.failure import CommandFailed
from aiospark.config import ConfigError, Settings, default_shuffle_dir

log = logging.getLogger("aiospark.cli")

#: Errors of binding a listening socket, reported as one line rather than a traceback.
BIND_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def serve_role(settings: Settings, main: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Run a role's ``main``; a port that cannot be bound is a ``CommandFailed``.

    >>> from aiospark.config import resolve
    >>> async def taken():
    ...     raise OSError(errno.EADDRINUSE, "Address already in use")
    >>> serve_role(resolve("master", {"port": "7077"}, {}), taken)
    Traceback (most recent call last):
    ...
    aiospark.commands.failure.CommandFailed: cannot listen on 127.0.0.1:7077: Address already in use
    """
    from aiospark.runtime import run

    try:
        run(main)
    except OSError as exc:
        if exc.errno not in BIND_ERRORS:
            raise
        where = f"{settings.host}:{settings.port}"
        raise CommandFailed(f"cannot listen on {where}: {exc.strerror}") from None


def _use_secret(settings: Settings, secret: security.Secret) -> None:
    settings.secret = secret.value
    if not secret.configured:
        log.info("no cluster secret configured: using the local secret in %s "
                 "(loopback only)", secret.file)


def master(settings: Settings) -> int:
    """``aiospark master``: cluster membership, status and events (until SIGTERM).

    >>> from aiospark.config import resolve
    >>> master(resolve("master", {"secret_file": "/nonexistent/secret"}, {}))
    Traceback (most recent call last):
    ...
    aiospark.config.ConfigError: --secret-file: cannot read the secret file /nonexistent/secret...
    """
    from aiospark.master.server import run_master

    _use_secret(settings, security.server_secret(settings, settings.host))
    serve_role(settings, lambda: run_master(settings))
    return 0


def shuffle_service(settings: Settings) -> int:
    """``aiospark shuffle-service``: serves the map outputs of this host's workers.

    >>> from aiospark.config import resolve
    >>> shuffle_service(resolve("shuffle-service", {"secret_file": "/nonexistent/s"}, {}))
    Traceback (most recent call last):
    ...
    aiospark.config.ConfigError: --secret-file: cannot read the secret file /nonexistent/s: ...
    """
    from aiospark.shuffle.service import run_shuffle_service

    _use_secret(settings, security.server_secret(settings, settings.host))
    if settings.dir is None:
        settings.dir = security.private_directory(default_shuffle_dir())
    serve_role(settings, lambda: run_shuffle_service(settings))
    return 0


def worker(settings: Settings) -> int:
    """``aiospark worker``: runs tasks for the drivers of the cluster at ``--master``.

    >>> from aiospark.config import resolve
    >>> worker(resolve("worker", {}, {}))
    Traceback (most recent call last):
    ...
    aiospark.config.ConfigError: --master: required: the master's URL, aiospark://host:port ...
    """
    if settings.master is None:
        raise ConfigError("--master", "required: the master's URL, aiospark://host:port "
                          "(or set AIOSPARK_MASTER, or master_url in the config file)")
    if settings.shuffle_url is None and settings.shuffle_dir is not None:
        raise ConfigError(settings.label("shuffle_dir"), "needs --shuffle-url, the URL of "
                          "the shuffle service serving that directory")
    from aiospark.protocol.tls import master_http_url

    url = master_http_url(settings.master)
    secret = security.configured_secret(settings)
    if secret is None:
        security.server_secret(settings, settings.host)  # refuses a non-loopback --host
        secret = security.client_secret(settings, url)  # and a master elsewhere
    # Pin str/bytes hashing, so that user classes hash alike on every worker.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "aiospark", *settings.argv])
    _use_secret(settings, secret)
    settings.master = url
    if settings.shuffle_url is not None and settings.shuffle_dir is None:
        settings.shuffle_dir = security.private_directory(default_shuffle_dir())
    if settings.work_dir is None:
        settings.work_dir = tempfile.mkdtemp(prefix="aiospark-worker-")
    from aiospark.worker.spawn import start_first_executor

    # Before the supervisor's own imports: the executor's start-up is the slow part.
    try:
        first = start_first_executor(settings)
    except OSError as exc:
        if exc.errno not in BIND_ERRORS:
            raise
        raise CommandFailed(f"cannot listen on {settings.host}:{settings.port}: "
                            f"{exc.strerror}") from None
    from aiospark.worker.supervisor import run_worker

    serve_role(settings, lambda: run_worker(settings, first))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
