"""The master process: workers register and heartbeat; drivers watch membership.

``POST /v1/workers`` registers a worker, ``POST /v1/workers/{id}/heartbeat``
keeps it alive (404 tells a forgotten worker to register again), and a worker
silent for ``worker_timeout`` seconds is declared lost.  Drivers open the
WebSocket ``/v1/events`` and are pushed a snapshot, then every change, so they
hear of a lost worker at once instead of polling.  ``GET /v1/status`` is the
cluster as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import time
from typing import Any

from aiohttp import web

from aiospark import faults
from aiospark.protocol.auth import auth_middleware
from aiospark.protocol.messages import (
    ClusterEvent,
    Heartbeat,
    RegisterWorker,
    WorkerInfo,
    read_message,
)
from aiospark.protocol.openapi import openapi_document

log = logging.getLogger("aiospark.master")


class Master:
    """Membership state plus the HTTP handlers that change it."""

    def __init__(self, secret: str, worker_timeout: float = 10.0) -> None:
        self.secret = secret
        self.worker_timeout = worker_timeout
        self.workers: dict[str, WorkerInfo] = {}
        self.watchers: set[web.WebSocketResponse] = set()
        self.started = time.time()
        self._reaper: asyncio.Task | None = None

    async def openapi(self, request: web.Request) -> web.Response:
        """The master's API as an OpenAPI document (``aiospark.protocol.openapi``)."""
        return web.json_response(openapi_document("master"))

    def make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[auth_middleware(self.secret), faults.middleware()],
            client_max_size=1 << 20,
        )
        app.add_routes(
            [
                web.post("/v1/workers", self.register),
                web.post("/v1/workers/{worker_id}/heartbeat", self.heartbeat),
                web.get("/v1/status", self.status),
                web.get("/v1/events", self.events),
                web.get("/v1/health", self.health),
                web.get("/v1/openapi.json", self.openapi),
            ]
        )
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
                                now - info.last_heartbeat)
                    del self.workers[info.worker_id]
                    await self._push(ClusterEvent("worker_lost", [info]))

    async def _push(self, event: ClusterEvent) -> None:
        data = event.to_json()
        for ws in list(self.watchers):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(data)

    async def register(self, request: web.Request) -> web.Response:
        msg = await read_message(request, RegisterWorker)
        info = WorkerInfo(
            **dataclasses.asdict(msg), state="alive", last_heartbeat=time.time()
        )
        known = msg.worker_id in self.workers
        self.workers[msg.worker_id] = info
        if not known:
            log.info("worker %s registered at %s", msg.worker_id, msg.url)
            await self._push(ClusterEvent("worker_added", [info]))
        return web.json_response({"worker_id": msg.worker_id})

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
            last_heartbeat=time.time(),
        )
        return web.json_response({"ok": True})

    def snapshot(self) -> dict[str, Any]:
        """The cluster for ``GET /v1/status``: workers (with their memory and cached RDDs).

        Each worker reports ``memory_bytes`` (its budget), ``storage_used`` and
        ``execution_used`` (charged against it) and ``cached``: per persisted
        RDD, the splits it holds and their bytes in memory and on disk.
        ``cached`` at the top sums those over the workers, per RDD.

        >>> Master("secret").snapshot()["cached"]
        []
        """
        workers = list(self.workers.values())
        return {
            "uptime": round(time.time() - self.started, 3),
            "workers": [w.to_json() for w in workers],
            "cores": sum(w.cores for w in workers),
            "cached": cached_totals(workers),
        }

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": True, "workers": len(self.workers), "faults": dict(faults.PLAN.injected)}
        )

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        await ws.send_json(ClusterEvent("snapshot", list(self.workers.values())).to_json())
        self.watchers.add(ws)
        try:
            async for _ in ws:
                pass  # drivers only listen
        finally:
            self.watchers.discard(ws)
        return ws


def cached_totals(workers: list[WorkerInfo]) -> list[dict[str, Any]]:
    """Per persisted RDD, its blocks summed over ``workers`` (and how many workers hold some).

    >>> from aiospark.protocol.messages import CachedRDD
    >>> def worker(i, *cached):
    ...     return WorkerInfo(f"w{i}", "", "", 1, 0, "", "alive", cached=list(cached))
    >>> cached_totals([worker(1, CachedRDD("a", 3, 2, 100, 0)),
    ...                worker(2, CachedRDD("a", 3, 1, 0, 40))])
    [{'app_id': 'a', 'rdd_id': 3, 'splits': 3, 'memory_bytes': 100, 'disk_bytes': 40, 'workers': 2}]
    """
    totals: dict[tuple[str, int], dict[str, Any]] = {}
    for info in workers:
        for c in info.cached:
            entry = totals.setdefault(
                (c.app_id, c.rdd_id),
                {"app_id": c.app_id, "rdd_id": c.rdd_id, "splits": 0,
                 "memory_bytes": 0, "disk_bytes": 0, "workers": 0},
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
    log.info("master serving at %s", url)
    try:
        await wait_for_stop(args.parent_pid)
    finally:
        await runner.cleanup()
        if args.session_dir:  # the embedded cluster's temporary files, if the driver died
            shutil.rmtree(args.session_dir, ignore_errors=True)
