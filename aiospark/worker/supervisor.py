"""The worker's supervisor: the process ``aiospark worker`` runs, which user code cannot starve.

User code runs in a child process, the executor (``worker.executor_server``).  User code
may hold the GIL for minutes in one C call, sleep forever, or ignore
cancellation: none of that can stop this process, which does no data work at
all.  It

- holds the executor's listening socket, so the worker's URL outlives any
  one executor;
- registers the worker with the master and heartbeats, with the load the
  executor last reported: a task inside one long C call never makes its worker
  "lost", and the status page shows it running;
- kills the executor when a driver asks (``POST /v1/kill`` on the control
  URL, for a cancelled task that did not stop in time) or the executor asks
  itself (its driver went away and a cancelled task runs on), and starts a
  fresh one, which registers again with its new pid: drivers then reconnect
  and recompute what the old one cached from lineage (Spark's task reaper,
  PySpark's executor JVM beside its Python workers);
- restarts an executor that crashed (at most ``MAX_CRASHES`` in
  ``CRASH_WINDOW`` seconds, then it gives up and exits);
- on SIGTERM has the executor drain, then deregisters (``worker.drain``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import time
import urllib.parse
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from aiospark import faults, logs
from aiospark.memory import default_budget
from aiospark.protocol import tls
from aiospark.protocol.auth import auth_headers, auth_middleware
from aiospark.protocol.messages import Heartbeat, KillTasks, RegisterWorker, read_message
from aiospark.protocol.reach import MasterLink
from aiospark.runtime import process_stopped, serve, wait_for_stop
from aiospark.sockets import listening_socket
from aiospark.worker.control import ControlLink
from aiospark.worker.spawn import Spawned, executor_config, spawn_executor

log = logging.getLogger("aiospark.worker")

#: An executor that crashes more than MAX_CRASHES times in CRASH_WINDOW seconds is not
#: started again: the supervisor exits (kills on request do not count).
MAX_CRASHES = 5
CRASH_WINDOW = 60.0
#: Deregistering from an unreachable master gives up after this many seconds.
DEREGISTER_TIMEOUT = 3.0
#: An executor asked to stop (its channel closed) is killed after this many seconds.
STOP_GRACE = 3.0
#: The first executor must be serving within this many seconds.
START_TIMEOUT = 60.0


class CrashCounter:
    """Whether an executor that exited unasked may be started again.

    >>> crashes = CrashCounter(limit=2, window=60.0)
    >>> crashes.may_restart(now=0.0), crashes.may_restart(now=1.0), crashes.may_restart(now=2.0)
    (True, True, False)
    >>> crashes.may_restart(now=100.0)  # the old ones are forgotten
    True
    """

    def __init__(self, limit: int = MAX_CRASHES, window: float = CRASH_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._times: list[float] = []

    def may_restart(self, now: float) -> bool:
        """Count one crash at ``now``; False when there were too many lately."""
        self._times = [t for t in self._times if now - t < self.window] + [now]
        return len(self._times) <= self.limit


class Executor:
    """One running executor process, as the supervisor sees it."""

    def __init__(self, spawned: Spawned, link: ControlLink) -> None:
        self.proc = spawned.proc
        self.link = link
        #: how many tasks it runs (written by the executor at each launch and end)
        self.gauge = spawned.gauge
        #: its own scratch directory, removed when it is gone
        self.work_dir = spawned.work_dir
        self.pid = spawned.proc.pid
        self.exited = asyncio.Event()
        self.url = ""
        self.shuffle_url = ""
        self.ready = asyncio.Event()
        #: the load it last reported (``Heartbeat`` fields)
        self.heartbeat: dict[str, Any] = {}
        #: cancelled tasks it said stopped (a kill asked for them comes too late)
        self.stopped: set[tuple[str, int]] = set()
        #: why the supervisor killed it (None: it was not killed)
        self.killed: str | None = None
        self.drained: asyncio.Future[bool] = asyncio.get_running_loop().create_future()


class Supervisor:
    """Registers the worker, heartbeats, and keeps one executor running."""

    def __init__(self, settings: Any, listener: socket.socket | None = None) -> None:
        self.settings = settings
        self.master_url = settings.master.rstrip("/")
        self.secret = settings.secret
        self.worker_id = settings.worker_id = (
            settings.worker_id or f"worker-{uuid.uuid4().hex[:12]}")
        self.cores = settings.cores
        self.memory_bytes = settings.memory or default_budget(settings.cores)
        self.work_dir = settings.work_dir
        self.heartbeat_interval = settings.heartbeat_interval
        #: what to log, and how long to wait, while the master cannot be reached
        self.link = MasterLink(
            f"worker {self.worker_id}", self.master_url, max_delay=self.heartbeat_interval,
            give_up_after=getattr(settings, "connect_timeout", None),
        )
        #: A register or heartbeat request that takes longer is retried (a cut link must not
        #: leave the worker waiting out TCP's back-off).
        self._request_timeout = aiohttp.ClientTimeout(total=max(3.0, 3 * self.heartbeat_interval))
        #: the executors' listening socket: the worker's URL
        self.listener = listener or listening_socket(settings.host, settings.port)
        self.control_url = ""
        self.executor: Executor | None = None
        self.crashes = CrashCounter()
        #: executors started, and killed on request (for ``/v1/health`` and tests)
        self.started = 0
        self.kills = 0
        self._registered_pid = 0
        self._leaving = False
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._heartbeats: asyncio.Task | None = None
        #: the tasks following each executor (one at a time, a few during a restart)
        self._watchers: set[asyncio.Task] = set()
        self._beat_now = asyncio.Event()
        #: set when the executor cannot be kept running: the supervisor exits
        self.failed = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self, first: Spawned | None = None) -> None:
        """Follow ``first`` (started before this process's own imports), or start one."""
        if first is not None:
            self.started += 1
        await self._follow(first or self._spawn())
        self._session = aiohttp.ClientSession(
            headers=auth_headers(self.secret),
            connector=aiohttp.TCPConnector(ssl=tls.client_context()),
        )
        self._runner, self.control_url = await serve(
            self.make_app(), self.settings.host, getattr(self.settings, "control_port", 0),
            advertise=self.settings.advertise_host,
        )
        self._heartbeats = asyncio.create_task(self._heartbeat_loop())

    def make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[auth_middleware(self.secret), faults.middleware()],
            client_max_size=1 << 20,
        )
        app.add_routes([web.get("/v1/health", self.health), web.post("/v1/kill", self.kill)])
        return app

    async def stop(self) -> None:
        """Stop heartbeating, stop the executor, remove the work directory."""
        await self.stop_heartbeats()
        for task in list(self._watchers):
            task.cancel()
        executor = self.executor
        self.executor = None
        if executor is not None:
            await self._stop_executor(executor)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self.listener.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    async def stop_heartbeats(self) -> None:
        """Stop registering and heartbeating for good (before leaving the cluster)."""
        self._leaving = True
        if self._heartbeats is not None:
            self._heartbeats.cancel()
            await asyncio.wait([self._heartbeats])

    # -- the executor ----------------------------------------------------------------

    def _spawn(self) -> Spawned:
        os.makedirs(self.work_dir, exist_ok=True)
        spawned = spawn_executor(executor_config(self.settings, self.started), self.listener,
                                 self.secret, self.settings.log_level, self.settings.log_format)
        self.started += 1
        return spawned

    async def _follow(self, spawned: Spawned) -> Executor:
        executor = Executor(spawned, await ControlLink.open(spawned.channel))
        self.executor = executor
        watcher = asyncio.create_task(self._watch(executor))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return executor

    async def _watch(self, executor: Executor) -> None:
        """Follow one executor's reports until it exits; then start another if it should."""
        while (message := await executor.link.receive()) is not None:
            try:
                self._on_report(executor, message)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("bad report from executor %d: %r (%s)", executor.pid, message, exc)
        code = await asyncio.to_thread(executor.proc.wait)
        executor.exited.set()
        executor.link.close()
        if not executor.drained.done():
            executor.drained.set_result(False)
        shutil.rmtree(executor.work_dir, ignore_errors=True)
        executor.gauge.close()
        with contextlib.suppress(OSError):
            os.remove(executor.gauge.path)
        if self.executor is not executor or self._leaving:
            return
        self.executor = None
        self._beat_now.set()  # the master sees no running tasks here now
        if executor.killed is None:
            log.warning("executor %d exited with code %s", executor.pid, code)
            if not self.crashes.may_restart(time.monotonic()):
                log.error("executor crashed %d times within %.0f s; giving up",
                          self.crashes.limit + 1, self.crashes.window)
                self.failed.set()
                return
        await self._follow(self._spawn())

    def _on_report(self, executor: Executor, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ready":
            executor.url = str(message["url"])
            executor.shuffle_url = str(message["shuffle_url"])
            executor.ready.set()
            self._beat_now.set()  # register it now
        elif kind == "load":
            executor.heartbeat = dict(message["heartbeat"])
            if len(executor.stopped) > 100_000:
                executor.stopped.clear()
            executor.stopped.update((str(a), int(t)) for a, t in message.get("stopped", []))
        elif kind == "kill":
            self._kill(executor, str(message.get("reason", "it asked to be killed")))
        elif kind == "drained" and not executor.drained.done():
            executor.drained.set_result(bool(message.get("finished")))

    def _kill(self, executor: Executor, reason: str) -> None:
        if executor.killed is not None or executor.exited.is_set():
            return
        log.warning("killing executor %d: %s", executor.pid, reason)
        executor.killed = reason
        self.kills += 1
        with contextlib.suppress(ProcessLookupError):
            executor.proc.kill()

    async def _stop_executor(self, executor: Executor) -> None:
        executor.link.close()  # it stops when its channel closes
        try:
            await asyncio.wait_for(asyncio.to_thread(executor.proc.wait), STOP_GRACE)
        except TimeoutError:  # a task thread that holds on
            self._kill(executor, "it did not stop in time")
            await asyncio.to_thread(executor.proc.wait)

    async def drain(self, timeout: float) -> bool:
        """Have the executor drain (at most ``timeout`` s), then deregister."""
        executor = self.executor
        finished = True
        if executor is not None:
            executor.link.send({"type": "drain", "timeout": timeout})
            try:
                finished = await asyncio.wait_for(asyncio.shield(executor.drained),
                                                  timeout + STOP_GRACE)
            except TimeoutError:
                finished = False
        left = await self.deregister()
        log.info("drained: %s", "left the cluster" if left else "the master did not answer")
        return finished

    async def deregister(self) -> bool:
        """Leave the master's membership now (heartbeats stop first); True when it answered."""
        await self.stop_heartbeats()
        if self._session is None:
            return False
        url = f"{self.master_url}/v1/workers/{self.worker_id}"
        try:
            async with self._session.delete(
                url, timeout=aiohttp.ClientTimeout(total=DEREGISTER_TIMEOUT)
            ) as resp:
                return resp.status < 300 or resp.status == 404
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("could not deregister from the master: %s", exc or type(exc).__name__)
            return False

    # -- the master ------------------------------------------------------------------

    def heartbeat_message(self) -> Heartbeat:
        """Proof of life, with the load the executor last reported (none while it restarts)."""
        executor = self.executor
        fields = dict(executor.heartbeat) if executor is not None else {}
        fields.update(worker_id=self.worker_id,
                      running_tasks=executor.gauge.get() if executor is not None else 0)
        fields.setdefault("memory_used", 0)
        return Heartbeat.from_json(fields)

    async def _register(self, executor: Executor) -> None:
        assert self._session is not None
        message = RegisterWorker(
            worker_id=self.worker_id,
            url=executor.url,
            host=urllib.parse.urlsplit(executor.url).hostname or self.settings.host,
            cores=self.cores,
            memory_bytes=self.memory_bytes,
            shuffle_url=executor.shuffle_url,
            pid=executor.pid,
            control_url=self.control_url,
        )
        async with self._session.post(
            f"{self.master_url}/v1/workers", json=message.to_json(), timeout=self._request_timeout
        ) as resp:
            resp.raise_for_status()
        self._registered_pid = executor.pid
        executor.link.send({"type": "registered", "value": True})

    async def _heartbeat_loop(self) -> None:
        assert self._session is not None
        while not self._leaving:
            try:
                executor = self.executor
                if executor is not None and executor.ready.is_set() and (
                    self._registered_pid != executor.pid
                ):
                    await self._register(executor)  # a new executor: drivers reconnect
                    self._reached_master()
                elif self._registered_pid and not (executor and process_stopped(executor.pid)):
                    # (A stopped executor, SIGSTOP or a debugger, is hung: the master is to
                    # see this worker go silent, as it would if the whole worker hung.)
                    url = f"{self.master_url}/v1/workers/{self.worker_id}/heartbeat"
                    async with self._session.post(
                        url, json=self.heartbeat_message().to_json(),
                        timeout=self._request_timeout,
                    ) as resp:
                        if resp.status == 404:  # the master forgot us: register again
                            self._forget_registration()
                            continue
                        resp.raise_for_status()
                    self._reached_master()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._beat_now.wait(), self.heartbeat_interval)
                self._beat_now.clear()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                line, delay = self.link.failed(exc)
                if line is not None:
                    log.warning("%s", line)
                else:
                    log.debug("master still unreachable (%s); retrying in %.2fs", exc, delay)
                self._forget_registration()
                if self.link.gave_up:
                    log.error("worker %s gives up: no link to the master at %s for %.0f s "
                              "(--connect-timeout)", self.worker_id, self.master_url,
                              self.link.give_up_after)
                    self.failed.set()
                    return
                await asyncio.sleep(delay)

    def _reached_master(self) -> None:
        line = self.link.succeeded()
        if line is not None:
            log.info("%s", line)

    def _forget_registration(self) -> None:
        self._registered_pid = 0
        if self.executor is not None:
            self.executor.link.send({"type": "registered", "value": False})

    # -- HTTP ------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        executor = self.executor
        return web.json_response({
            "worker_id": self.worker_id,
            "executor_pid": executor.pid if executor is not None else None,
            "executor_url": executor.url if executor is not None else None,
            "executors_started": self.started,
            "executors_killed": self.kills,
            "registered": bool(self._registered_pid),
            # the executor's tasks now (its shared counter, set at each launch and end)
            "running_tasks": executor.gauge.get() if executor is not None else 0,
        })

    async def kill(self, request: web.Request) -> web.Response:
        """A driver's cancelled tasks did not stop: kill the executor they run in, unless it
        is not that one any more or it said they stopped.  (Only the driver can tell: an
        executor whose task holds the GIL cannot say anything.)"""
        message = await read_message(request, KillTasks)
        executor = self.executor
        if (
            executor is None
            or message.pid != executor.pid
            or all((message.app_id, t) in executor.stopped for t in message.task_ids)
        ):
            return web.json_response({"killed": False})
        reason = message.reason or f"tasks {message.task_ids} of {message.app_id} ignored " \
            "their cancellation"
        self._kill(executor, reason)
        return web.json_response({"killed": True})


async def run_worker(
    settings: Any, first: tuple[socket.socket, Spawned] | None = None
) -> None:
    """Entry point of ``aiospark worker``: supervise an executor (``first``, when one was
    started already) until a stop signal, then drain (``worker.drain``) unless
    ``settings.drain_timeout`` is 0 or the parent died."""
    supervisor = Supervisor(settings, first[0] if first else None)
    logs.bind(worker_id=supervisor.worker_id)
    try:
        await supervisor.start(first[1] if first else None)
        executor = supervisor.executor
        assert executor is not None
        ready = asyncio.create_task(executor.ready.wait())
        exited = asyncio.create_task(executor.exited.wait())
        done, _ = await asyncio.wait([ready, exited], timeout=START_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        if ready not in done:
            ready.cancel()
            log.error("the executor did not start within %.0f s", START_TIMEOUT)
            raise SystemExit(1)
        log.info("worker %s serving at %s", supervisor.worker_id, executor.url,
                 extra=logs.fields(url=executor.url, shuffle_url=executor.shuffle_url,
                                   control_url=supervisor.control_url,
                                   executor_pid=executor.pid))
        stop = asyncio.create_task(wait_for_stop(settings.parent_pid))
        failed = asyncio.create_task(supervisor.failed.wait())
        await asyncio.wait([stop, failed], return_when=asyncio.FIRST_COMPLETED)
        if failed.done():
            stop.cancel()
            raise SystemExit(1)
        reason = stop.result()
        failed.cancel()
        log.info("worker %s stopping: %s", supervisor.worker_id, reason)
        timeout = getattr(settings, "drain_timeout", 0.0)
        if timeout > 0 and reason != "parent exited":
            # A second signal stops at once.
            draining = asyncio.create_task(supervisor.drain(timeout))
            again = asyncio.create_task(wait_for_stop())
            await asyncio.wait([draining, again], return_when=asyncio.FIRST_COMPLETED)
            for task in (draining, again):
                task.cancel()
    finally:
        with contextlib.suppress(Exception):
            await supervisor.stop()
