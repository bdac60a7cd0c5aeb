"""The executor process's main: serve a worker's tasks on its supervisor's socket.

Started by the supervisor (``worker.supervisor``) as ``python -m aiospark.worker``,
never by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from typing import Any

from aiospark import logs
from aiospark.runtime import run
from aiospark.worker.control import ControlLink, RunningGauge
from aiospark.worker.drain import drain
from aiospark.worker.executor_server import Worker


async def run_executor(config: dict[str, Any], listen_fd: int, control_fd: int) -> None:
    """The executor process's main: serve on the supervisor's socket until the supervisor
    closes the control channel (it stops or died) or says to drain and stop."""
    try:
        gauge = RunningGauge(config.pop("gauge"))
    except FileNotFoundError:  # the supervisor stopped (and cleaned up) as we started
        return
    worker = Worker(secret=os.environ.get("AIOSPARK_SECRET", ""), **config)
    worker.gauge = gauge
    logs.bind(worker_id=worker.worker_id)
    worker.control = await ControlLink.open(socket.socket(fileno=control_fd))
    await worker.start(fd=listen_fd)
    worker.control.send({"type": "ready", "url": worker.url, "shuffle_url": worker.shuffle_url,
                         "pid": os.getpid()})
    try:
        while (message := await worker.control.receive()) is not None:
            if message.get("type") == "drain":
                finished = await drain(worker, float(message.get("timeout", 0)))
                worker.control.send({"type": "drained", "finished": finished})
            else:
                worker.on_control(message)
    finally:
        with contextlib.suppress(Exception):
            await worker.stop()


def main(argv: list[str]) -> None:
    """``python -m aiospark.worker CONFIG_JSON LISTEN_FD CONTROL_FD LOG_LEVEL LOG_FORMAT``
    (or the same arguments in a process the zygote forked); exits."""
    config_json, listen_fd, control_fd, log_level, log_format = argv[:5]
    logs.configure("worker", log_level, log_format)
    run(lambda: run_executor(json.loads(config_json), int(listen_fd), int(control_fd)))
    # Do not wait for user code still running on task threads (it was cancelled).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
