"""A worker leaving the cluster on SIGTERM: its executor drains, then the supervisor
deregisters it.

1. It takes no new tasks: each connected driver is sent ``draining`` (and so
   schedules nothing more here); a launch already on its way is refused with
   the reason ``draining``, which the driver does not count as a failed
   attempt; the readiness probe answers 503.
2. Its running tasks finish and their outcomes go back to their drivers, and
   results too large to send inline are fetched, for at most ``timeout``
   seconds.
3. It closes each driver's connection (the driver has then read every outcome
   sent before), and the supervisor deregisters from the master (``DELETE
   /v1/workers/{id}``, ``worker.supervisor``), which tells the other drivers.
   Tasks still running then are handed back: their drivers run them
   elsewhere, again without counting an attempt.

Map outputs the worker wrote to its host's shuffle service stay there; those
it served itself (no ``--shuffle-url``) go with it: drivers recompute them once
they learn the worker is gone (``ShuffleOutputsLost``), or when a reducer misses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import aiohttp

from aiospark import logs
from aiospark.protocol.tasks import Draining

if TYPE_CHECKING:
    from aiospark.worker.executor_server import Worker

log = logging.getLogger("aiospark.worker")


def busy(worker: Worker) -> int:
    """Tasks still running on ``worker``, plus results no driver fetched yet.

    >>> from aiospark.worker.executor_server import Worker
    >>> idle = Worker(secret="s", shuffle_url=None, shuffle_root=None,
    ...               work_dir=os.path.join(tmp_dir, "drained"))
    >>> busy(idle)
    0
    """
    return worker.running_tasks() + len(worker.results)


async def wait_idle(worker: Worker, timeout: float) -> bool:
    """Wait until ``worker`` has no task running and no result waiting, for at most
    ``timeout`` seconds; True when it got there.

    >>> from aiospark.worker.executor_server import Worker
    >>> idle = Worker(secret="s", shuffle_url=None, shuffle_root=None,
    ...               work_dir=os.path.join(tmp_dir, "drained"))
    >>> idle.results[("app-1", 7)] = b"a result no driver fetched"
    >>> await wait_idle(idle, 0.01)
    False
    >>> idle.results.clear(); await wait_idle(idle, 0.01)
    True
    """
    try:
        async with asyncio.timeout(timeout):
            while busy(worker):
                worker.changed.clear()
                await worker.changed.wait()
    except TimeoutError:
        return False
    return True


async def drain(worker: Worker, timeout: float) -> bool:
    """Stop taking tasks, let running ones finish (at most ``timeout`` s) and close the
    drivers' connections; True when every task finished in time.

    >>> from aiospark.worker.executor_server import Worker
    >>> idle = Worker(secret="s", shuffle_url=None, shuffle_root=None,
    ...               work_dir=os.path.join(tmp_dir, "drained"))
    >>> await drain(idle, 1.0), idle.ready()
    (True, False)
    """
    worker.apply(worker.state.drain())  # queued launches are refused
    running = worker.running_tasks()
    log.info("draining: taking no new tasks, %d running", running,
             extra=logs.fields(running_tasks=running, timeout=timeout))
    for session in list(worker.sessions):
        with contextlib.suppress(ConnectionError, RuntimeError):
            await session.send(Draining())
    finished = await wait_idle(worker, timeout)
    if not finished:
        log.warning("drain timeout: handing back %d running tasks", worker.running_tasks(),
                    extra=logs.fields(running_tasks=worker.running_tasks()))
    for session in list(worker.sessions):
        with contextlib.suppress(ConnectionError, RuntimeError):
            await session.flush()  # the outcomes of the tasks that finished
            await session.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"draining")
    log.info("drained", extra=logs.fields(finished=finished))
    return finished
