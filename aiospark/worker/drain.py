"""A worker leaving the cluster on SIGTERM: it drains, then deregisters.

1. It takes no new tasks: each connected driver is sent ``draining`` (and so
   schedules nothing more here); a launch already on its way is refused with
   the reason ``draining``, which the driver does not count as a failed
   attempt; the readiness probe answers 503.
2. Its running tasks finish and their outcomes go back to their drivers, and
   results too large to send inline are fetched, for at most ``timeout``
   seconds.
3. It closes each driver's connection (the driver has then read every outcome
   sent before), and deregisters from the master (``DELETE
   /v1/workers/{id}``), which tells the other drivers.  Tasks still running
   then are handed back: their drivers run them elsewhere, again without
   counting an attempt.

Map outputs the worker wrote to its host's shuffle service stay there; those
it served itself (no ``--shuffle-url``) go with it and are recomputed when a
reducer misses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import aiohttp

from aiospark import logs

if TYPE_CHECKING:
    from aiospark.worker.app import Worker

log = logging.getLogger("aiospark.worker")

#: Deregistering from an unreachable master gives up after this many seconds.
DEREGISTER_TIMEOUT = 3.0


def busy(worker: Worker) -> int:
    """Tasks still running on ``worker``, plus results no driver fetched yet.

    >>> from aiospark.worker.app import Worker
    >>> idle = Worker(master_url="http://127.0.0.1:9", secret="s", shuffle_url=None,
    ...               shuffle_root=None, work_dir=os.path.join(tmp_dir, "drained"))
    >>> busy(idle)
    0
    """
    return worker.running_tasks() + len(worker.results)


async def wait_idle(worker: Worker, timeout: float) -> bool:
    """Wait until ``worker`` has no task running and no result waiting, for at most
    ``timeout`` seconds; True when it got there.

    >>> from aiospark.worker.app import Worker
    >>> idle = Worker(master_url="http://127.0.0.1:9", secret="s", shuffle_url=None,
    ...               shuffle_root=None, work_dir=os.path.join(tmp_dir, "drained"))
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


async def deregister(worker: Worker) -> bool:
    """Leave the master's membership now (heartbeats stop first); True when it answered.

    >>> from aiospark.worker.app import Worker
    >>> unstarted = Worker(master_url="http://127.0.0.1:9", secret="s", shuffle_url=None,
    ...                    shuffle_root=None, work_dir=os.path.join(tmp_dir, "drained"))
    >>> await deregister(unstarted)  # it never connected to a master
    False
    """
    await worker.stop_heartbeats()
    if worker._session is None:
        return False
    url = f"{worker.master_url}/v1/workers/{worker.worker_id}"
    try:
        async with worker._session.delete(
            url, timeout=aiohttp.ClientTimeout(total=DEREGISTER_TIMEOUT)
        ) as resp:
            return resp.status < 300 or resp.status == 404
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("could not deregister from the master: %s", exc or type(exc).__name__)
        return False


async def drain(worker: Worker, timeout: float) -> bool:
    """Stop taking tasks, let running ones finish (at most ``timeout`` s), close the
    drivers' connections and deregister; True when every task finished in time.

    >>> from aiospark.worker.app import Worker
    >>> idle = Worker(master_url="http://127.0.0.1:9", secret="s", shuffle_url=None,
    ...               shuffle_root=None, work_dir=os.path.join(tmp_dir, "drained"))
    >>> await drain(idle, 1.0), idle.ready()
    (True, False)
    """
    worker.draining = True
    running = worker.running_tasks()
    log.info("draining: taking no new tasks, %d running", running,
             extra=logs.fields(running_tasks=running, timeout=timeout))
    for session in list(worker.sessions):
        with contextlib.suppress(ConnectionError, RuntimeError):
            await session.send({"type": "draining"})
    finished = await wait_idle(worker, timeout)
    if not finished:
        log.warning("drain timeout: handing back %d running tasks", worker.running_tasks(),
                    extra=logs.fields(running_tasks=worker.running_tasks()))
    for session in list(worker.sessions):
        with contextlib.suppress(ConnectionError, RuntimeError):
            await session.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"draining")
    left = await deregister(worker)
    log.info("drained: %s", "left the cluster" if left else "the master did not answer",
             extra=logs.fields(finished=finished))
    return finished
