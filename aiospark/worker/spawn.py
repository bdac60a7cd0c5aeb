"""Starting a worker's executor process, cheaply enough to do before anything else.

``aiospark worker`` starts its first executor before it imports the supervisor's
own modules (aiohttp and the rest): the executor's start-up is the slow part of a
worker's, and the two then overlap.  The supervisor starts every later one the
same way.  In an embedded cluster (``AIOSPARK_ZYGOTE`` set) the executor is forked
from the cluster's zygote instead, with the same command line and sockets.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import uuid
from typing import Any

from aiospark.memory import default_budget
from aiospark.sockets import listening_socket
from aiospark.worker.control import RunningGauge
from aiospark.zygote.client import ForkedProcess, ForkFailed, request_fork
from aiospark.zygote.wire import ZYGOTE_ENV

log = logging.getLogger("aiospark.worker")

#: Seconds a supervisor waits for the zygote's answer (it is up: it forked the supervisor).
ZYGOTE_TIMEOUT = 10.0


def fork_from_zygote(argv: list[str], fds: list[int], env: dict[str, str]) -> ForkedProcess | None:
    """``argv`` forked by the embedded cluster's zygote, when this process has one and it
    answers; None otherwise (the caller spawns it)."""
    path = os.environ.get(ZYGOTE_ENV)
    if not path:
        return None
    try:
        return request_fork(path, argv[1:], fds, env, timeout=ZYGOTE_TIMEOUT)
    except ForkFailed as exc:
        log.warning("spawning the executor: %s", exc)
        del os.environ[ZYGOTE_ENV]  # gone for good: do not wait on it again
        return None


@dataclasses.dataclass
class Spawned:
    """An executor process just started, and what the supervisor keeps of it."""

    proc: subprocess.Popen | ForkedProcess
    #: the supervisor's end of the control channel
    channel: socket.socket
    #: the running-task count the executor writes
    gauge: RunningGauge
    #: its own scratch directory (removed when it is gone)
    work_dir: str


def spawn_executor(
    config: dict[str, Any], listener: socket.socket, secret: str, log_level: str,
    log_format: str,
) -> Spawned:
    """Start ``python -m aiospark.worker`` serving on ``listener`` with ``config`` (the
    keyword arguments of ``worker.executor_server.Worker``, plus ``gauge``, the path of its
    running-task count).  The secret travels in the environment, not the command line.
    """
    gauge = RunningGauge(config["gauge"], create=True)
    ours, theirs = socket.socketpair()
    listen_fd, channel_fd = listener.fileno(), theirs.fileno()
    argv = [sys.executable, "-m", "aiospark.worker", json.dumps(config), str(listen_fd),
            str(channel_fd), log_level, log_format]
    env = {**os.environ, "AIOSPARK_SECRET": secret}
    try:
        proc = fork_from_zygote(argv, [listen_fd, channel_fd], env)
        if proc is None:
            proc = subprocess.Popen(
                argv,
                pass_fds=(listen_fd, channel_fd),
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal is for the supervisor
                env=env,
            )
    except BaseException:
        ours.close()
        gauge.close()
        raise
    finally:
        theirs.close()
    return Spawned(proc, ours, gauge, config["work_dir"])


def executor_config(settings: Any, number: int) -> dict[str, Any]:
    """The settings of the worker's executor number ``number`` (the first is 0).

    Each has a scratch directory of its own; map outputs it serves itself (no
    ``--shuffle-url``) live in the worker's directory and outlive it.
    """
    if not settings.worker_id:
        settings.worker_id = f"worker-{uuid.uuid4().hex[:12]}"
    work_dir = settings.work_dir
    return {
        "shuffle_url": settings.shuffle_url,
        "shuffle_root": settings.shuffle_dir or os.path.join(work_dir, "shuffle"),
        "work_dir": os.path.join(work_dir, f"executor-{number}"),
        "host": settings.host,
        "advertise_host": settings.advertise_host,
        "cores": settings.cores,
        "memory_bytes": settings.memory or default_budget(settings.cores),
        "worker_id": settings.worker_id,
        "heartbeat_interval": settings.heartbeat_interval,
        "gauge": os.path.join(work_dir, f"executor-{number}.running"),
    }


def start_first_executor(settings: Any) -> tuple[socket.socket, Spawned]:
    """Bind the worker's listening socket and start its first executor on it."""
    os.makedirs(settings.work_dir, exist_ok=True)
    listener = listening_socket(settings.host, settings.port)
    try:
        return listener, spawn_executor(executor_config(settings, 0), listener,
                                        settings.secret, settings.log_level,
                                        settings.log_format)
    except BaseException:
        listener.close()
        raise
