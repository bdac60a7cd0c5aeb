"""The master process: workers register and heartbeat; drivers watch membership.

``POST /v1/workers`` registers a worker, ``POST /v1/workers/{id}/heartbeat``
keeps it alive (404 tells a forgotten worker to register again), and a worker
silent for ``worker_timeout`` seconds is declared lost.  Drivers open the
WebSocket ``/v1/events`` and are pushed a snapshot, then every change, so they
hear of a lost worker at once instead of polling.  ``GET /v1/status`` is the
cluster as JSON, ``GET /metrics`` the same in Prometheus' text format, and
``/ui/`` a live page of it for browsers (``master.ui``).  Drivers name their
application when they open ``/v1/events`` and report their jobs' progress with
``POST /v1/apps/{app}/jobs`` (``master.job_board``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import shutil
import time
from collections import deque
from typing import Any

from aiohttp import web

from aiospark import faults, logs
from aiospark.master.job_board import JobBoard
from aiospark.master.metrics import CONTENT_TYPE, render_metrics
from aiospark.master.shares import split_cores
from aiospark.master.ui import Changes, StatusPage
from aiospark.protocol.auth import auth_middleware
from aiospark.protocol.ids import check_app_id
from aiospark.protocol.messages import (
    MAX_TEXT,
    ClusterEvent,
    Heartbeat,
    JobsReport,
    RegisterWorker,
    WorkerInfo,
    read_message,
)
from aiospark.protocol.openapi import openapi_document

log = logging.getLogger("aiospark.master")

#: Lost workers the status shows (the most recent).
KEEP_LOST = 20


def _bad_request(error: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": error}), content_type="application/json")


class Master:
    """Membership state plus the HTTP handlers that change it."""

    def __init__(self, secret: str, worker_timeout: float = 10.0) -> None:
        self.secret = secret
        self.worker_timeout = worker_timeout
        self.workers: dict[str, WorkerInfo] = {}
        self.watchers: set[web.WebSocketResponse] = set()
        #: the drivers' event streams: WebSocket -> application id, and the share last sent
        self.app_streams: dict[web.WebSocketResponse, str] = {}
        self.shares_sent: dict[web.WebSocketResponse, int] = {}
        self.started = time.time()
        self._reaper: asyncio.Task | None = None
        #: workers declared lost (most recent first), and how many since start
        self.lost: deque[WorkerInfo] = deque(maxlen=KEEP_LOST)
        self.workers_lost = 0
        #: the drivers and their jobs
        self.board = JobBoard()
        #: bumped on every change the status page should show
        self.changes = Changes()
        self.page = StatusPage(secret, self.snapshot, self.changes)

    async def openapi(self, request: web.Request) -> web.Response:
        """The master's API as an OpenAPI document (``aiospark.protocol.openapi``)."""
        return web.json_response(openapi_document("master"))

    def make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[auth_middleware(self.secret, allow=self.page.allow),
                         faults.middleware()],
            client_max_size=1 << 20,
        )
        app.add_routes(
            [
                web.post("/v1/workers", self.register),
                web.post("/v1/workers/{worker_id}/heartbeat", self.heartbeat),
                web.delete("/v1/workers/{worker_id}", self.deregister),
                web.get("/v1/status", self.status),
                web.get("/v1/events", self.events),
                web.get("/v1/health", self.health),
                web.get("/v1/openapi.json", self.openapi),
                web.post("/v1/apps/{app_id}/jobs", self.report_jobs),
                web.get("/metrics", self.metrics),
            ]
        )
        self.page.setup(app)
        app.on_startup.append(self._start_reaper)
        app.on_cleanup.append(self._stop_reaper)
        return app

    async def _start_reaper(self, _app: web.Application) -> None:
        self._reaper = asyncio.create_task(self._reap_loop())

    async def _stop_reaper(self, _app: web.Application) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for ws in list(self.watchers):
            await ws.close()

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.worker_timeout / 4))
            now = time.time()
            for info in list(self.workers.values()):
                if now - info.last_heartbeat > self.worker_timeout:
                    log.warning("worker %s lost: no heartbeat for %.1fs", info.worker_id,
                                now - info.last_heartbeat,
                                extra=logs.fields(worker_id=info.worker_id))
                    del self.workers[info.worker_id]
                    self.lost.appendleft(dataclasses.replace(info, state="lost"))
                    self.workers_lost += 1
                    self.changes.bump()
                    await self._push(ClusterEvent("worker_lost", [info]))

    async def _push(self, event: ClusterEvent) -> None:
        data = event.to_json()
        for ws in list(self.watchers):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(data)
        await self._push_shares()

    def shares(self) -> dict[str, int]:
        """Each connected application's share of the cluster's cores (``master.shares``)."""
        apps = sorted((a for a in self.board.apps.values() if a.connections > 0),
                      key=lambda a: (a.first_seen, a.app_id))
        busy = [(a.app_id, any(j["state"] == "running" for j in a.jobs.values())) for a in apps]
        return split_cores(sum(w.cores for w in self.workers.values()), busy)

    async def _push_shares(self) -> None:
        """Tell each driver its share when it changed."""
        shares = self.shares()
        for ws, app_id in list(self.app_streams.items()):
            share = shares.get(app_id)
            if share is None or self.shares_sent.get(ws) == share:
                continue
            self.shares_sent[ws] = share
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(ClusterEvent("share", cores=share).to_json())

    async def register(self, request: web.Request) -> web.Response:
        msg = await read_message(request, RegisterWorker)
        info = WorkerInfo(
            **dataclasses.asdict(msg), state="alive", last_heartbeat=time.time()
        )
        known = self.workers.get(msg.worker_id)
        self.workers[msg.worker_id] = info
        self.changes.bump()
        if known is not None and known.pid != msg.pid:
            # Its executor was restarted (killed or crashed): drivers reconnect to the new one.
            log.info("worker %s restarted its executor (pid %d)", msg.worker_id, msg.pid,
                     extra=logs.fields(worker_id=msg.worker_id, pid=msg.pid))
            await self._push(ClusterEvent("worker_added", [info]))
        elif known is None:
            for gone in [w for w in self.lost if w.worker_id == msg.worker_id]:
                self.lost.remove(gone)  # it came back
            log.info("worker %s registered at %s", msg.worker_id, msg.url,
                     extra=logs.fields(worker_id=msg.worker_id, url=msg.url, cores=msg.cores))
            await self._push(ClusterEvent("worker_added", [info]))
        return web.json_response({"worker_id": msg.worker_id})

    async def deregister(self, request: web.Request) -> web.Response:
        """A worker leaves the cluster (it drained): forget it and tell the drivers."""
        worker_id = request.match_info["worker_id"]
        info = self.workers.pop(worker_id, None)
        if info is None:
            return web.json_response({"error": f"unknown worker {worker_id}"}, status=404)
        log.info("worker %s left the cluster", worker_id,
                 extra=logs.fields(worker_id=worker_id))
        self.changes.bump()
        await self._push(ClusterEvent("worker_left", [info]))
        return web.json_response({"worker_id": worker_id, "left": True})

    async def heartbeat(self, request: web.Request) -> web.Response:
        msg = await read_message(request, Heartbeat)
        worker_id = request.match_info["worker_id"]
        if msg.worker_id != worker_id:
            raise web.HTTPBadRequest(text='{"error": "worker_id does not match the path"}')
        info = self.workers.get(worker_id)
        if info is None:
            return web.json_response({"error": f"unknown worker {worker_id}"}, status=404)
        self.workers[worker_id] = dataclasses.replace(
            info,
            running_tasks=msg.running_tasks,
            memory_used=msg.memory_used,
            storage_used=msg.storage_used,
            execution_used=msg.execution_used,
            cached=msg.cached,
            tasks_succeeded=msg.tasks_succeeded,
            tasks_failed=msg.tasks_failed,
            tasks_cancelled=msg.tasks_cancelled,
            spilled_bytes=msg.spilled_bytes,
            last_heartbeat=time.time(),
        )
        self.changes.bump()
        return web.json_response({"ok": True})

    async def report_jobs(self, request: web.Request) -> web.Response:
        """A driver's jobs (``JobsReport``); answers whether it should send them all again."""
        try:
            app_id = check_app_id(request.match_info["app_id"])
        except ValueError as exc:
            raise _bad_request(f"app_id: {exc}") from None
        report = await read_message(request, JobsReport)
        resync = self.board.report(app_id, report)
        self.changes.bump()
        await self._push_shares()  # a job started or ended: the split may change
        return web.json_response({"ok": True, "resync": resync})

    def snapshot(self) -> dict[str, Any]:
        """The cluster for ``GET /v1/status``: workers (with their memory and cached RDDs).

        Each worker reports ``memory_bytes`` (its budget), ``storage_used`` and
        ``execution_used`` (charged against it) and ``cached``: per persisted
        RDD, the splits it holds and their bytes in memory and on disk.
        ``cached`` at the top sums those over the workers, per RDD, and says
        where its blocks are (``locations``).  ``lost_workers`` are the last
        workers declared lost.  ``apps`` are the drivers (connected or lately
        gone, each with ``cores``, its share of the cluster's cores, ``master.shares``)
        and ``jobs`` their running jobs, then the most recently ended,
        each with its stages' tasks done and running (``protocol.messages.JobReport``;
        a job whose driver went away while it ran is ``lost``).  ``counters``
        count lost workers and ended jobs since the master started; ``now`` is
        the master's clock (Unix time), to age ``last_heartbeat`` against.

        >>> status = Master("secret").snapshot()
        >>> status["cached"], status["jobs"], status["counters"]["workers_lost"]
        ([], [], 0)
        """
        workers = list(self.workers.values())
        board = self.board.to_json()
        shares = self.shares()
        for app in board["apps"]:
            app["cores"] = shares.get(app["app_id"])  # its share (None: not connected)
        return {
            "now": time.time(),
            "uptime": round(time.time() - self.started, 3),
            "workers": [w.to_json() for w in workers],
            "lost_workers": [w.to_json() for w in self.lost],
            "cores": sum(w.cores for w in workers),
            "cached": cached_totals(workers),
            "apps": board["apps"],
            "jobs": board["jobs"],
            "counters": {"workers_lost": self.workers_lost,
                         "jobs_ended": dict(self.board.ended_jobs)},
        }

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def metrics(self, request: web.Request) -> web.Response:
        """The snapshot in Prometheus' text format (``master.metrics``)."""
        return web.Response(text=render_metrics(self.snapshot()),
                            headers={"Content-Type": CONTENT_TYPE})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": True, "workers": len(self.workers), "faults": dict(faults.PLAN.injected)}
        )

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        """Membership changes, pushed; a driver names itself with ``?app=<id>&name=<name>``."""
        app_id = request.query.get("app")
        name = request.query.get("name", "")
        if app_id is not None:
            try:
                check_app_id(app_id)
            except ValueError as exc:
                raise _bad_request(f"app: {exc}") from None
        if len(name) > MAX_TEXT:
            raise _bad_request(f"name: longer than {MAX_TEXT} characters")
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        await ws.send_json(ClusterEvent("snapshot", list(self.workers.values())).to_json())
        self.watchers.add(ws)
        if app_id is not None:
            self.board.connected(app_id, name)
            self.app_streams[ws] = app_id
            self.changes.bump()
            await self._push_shares()
        try:
            async for _ in ws:
                pass  # drivers only listen
        finally:
            self.watchers.discard(ws)
            self.app_streams.pop(ws, None)
            self.shares_sent.pop(ws, None)
            if app_id is not None:
                self.board.disconnected(app_id)
                self.changes.bump()
                await self._push_shares()  # its cores go back to the others
        return ws


def cached_totals(workers: list[WorkerInfo]) -> list[dict[str, Any]]:
    """Per persisted RDD, its blocks summed over ``workers`` (and how many workers hold some).

    ``locations`` lists the workers holding blocks of it, with theirs.

    >>> from aiospark.protocol.messages import CachedRDD
    >>> def worker(i, *cached):
    ...     return WorkerInfo(f"w{i}", "", f"h{i}", 1, 0, "", "alive", cached=list(cached))
    >>> [total] = cached_totals([worker(1, CachedRDD("a", 3, 2, 100, 0)),
    ...                          worker(2, CachedRDD("a", 3, 1, 0, 40))])
    >>> {k: v for k, v in total.items() if k != "locations"}
    {'app_id': 'a', 'rdd_id': 3, 'splits': 3, 'memory_bytes': 100, 'disk_bytes': 40, 'workers': 2}
    >>> total["locations"][1]
    {'worker_id': 'w2', 'host': 'h2', 'splits': 1, 'memory_bytes': 0, 'disk_bytes': 40}
    """
    totals: dict[tuple[str, int], dict[str, Any]] = {}
    for info in workers:
        for c in info.cached:
            entry = totals.setdefault(
                (c.app_id, c.rdd_id),
                {"app_id": c.app_id, "rdd_id": c.rdd_id, "splits": 0,
                 "memory_bytes": 0, "disk_bytes": 0, "workers": 0, "locations": []},
            )
            entry["locations"].append(
                {"worker_id": info.worker_id, "host": info.host, "splits": c.splits,
                 "memory_bytes": c.memory_bytes, "disk_bytes": c.disk_bytes}
            )
            entry["splits"] += c.splits
            entry["memory_bytes"] += c.memory_bytes
            entry["disk_bytes"] += c.disk_bytes
            entry["workers"] += 1
    return [totals[key] for key in sorted(totals)]


async def run_master(args: Any) -> None:
    """Entry point of ``aiospark master``."""
    from aiospark.runtime import serve, wait_for_stop

    master = Master(args.secret, worker_timeout=args.worker_timeout)
    runner, url = await serve(
        master.make_app(), args.host, args.port, fd=args.fd, advertise=args.advertise_host
    )
    log.info("master serving at %s", url, extra=logs.fields(url=url))
    log.info("status page at %s/ui/ (log in with the cluster secret, or a link from "
             "Context.status_page_link())", url)
    try:
        await wait_for_stop(args.parent_pid)
    finally:
        await runner.cleanup()
        if args.session_dir:  # the embedded cluster's temporary files, if the driver died
            shutil.rmtree(args.session_dir, ignore_errors=True)
