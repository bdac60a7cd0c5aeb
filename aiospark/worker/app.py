"""The worker process: registers with the master, takes tasks from drivers, serves results.

Drivers connect to ``/v1/driver?app=<id>`` with a WebSocket and send
``launch``/``cancel``/``unpersist``/``forget_stages`` messages (see
``aiospark.protocol.envelope``); the worker answers each launch with a
``success`` or ``failure`` message.  Tasks run on a thread pool of ``cores``
threads; the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import os
import shutil
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
from aiohttp import web

from aiospark import faults, logs
from aiospark.files import check_name
from aiospark.memory import MemoryManager, TaskMemory, default_budget
from aiospark.protocol import tls
from aiospark.protocol.auth import auth_headers, auth_middleware
from aiospark.protocol.envelope import EnvelopeError, pack, unpack
from aiospark.protocol.frames import decode_frame, split_frames
from aiospark.protocol.messages import CachedRDD, Heartbeat, RegisterWorker
from aiospark.shuffle import spill
from aiospark.shuffle.files import check_app_id
from aiospark.shuffle.reader import read_local, read_remote
from aiospark.worker.blocks import BlockStore
from aiospark.worker.broadcasts import BroadcastStore
from aiospark.worker.executor import (
    StageCache,
    TaskOutcome,
    TaskSpec,
    WorkerTaskContext,
    pickle_exception,
    run_task,
)

log = logging.getLogger("aiospark.worker")

#: Results larger than this are kept on the worker and fetched over HTTP.
INLINE_RESULT_LIMIT = 8 << 20
MAX_REQUEST_BYTES = 64 << 20
BLOCK_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
#: Read map outputs of this host straight from disk (AIOSPARK_SHUFFLE_LOCAL_READS=0 makes
#: every read go through the shuffle service, as between hosts; used by tests).
LOCAL_SHUFFLE_READS = os.environ.get("AIOSPARK_SHUFFLE_LOCAL_READS", "1") != "0"


class DriverSession:
    """One connected driver (application) and its running tasks."""

    def __init__(self, app_id: str, ws: web.WebSocketResponse) -> None:
        self.app_id = app_id
        self.ws = ws
        self.send_lock = asyncio.Lock()
        self.tasks: dict[int, tuple[asyncio.Task, WorkerTaskContext]] = {}

    async def send(
        self,
        header: dict[str, Any],
        *blobs: Any,
        prepare: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Send one envelope.  ``prepare(header)`` runs just before, in sending order
        (so reports read from shared state reach the driver in the order they were
        read); when it returns False nothing is sent."""
        async with self.send_lock:
            if prepare is not None and not prepare(header):
                return
            if not self.ws.closed:
                await self.ws.send_bytes(pack(header, *blobs))


class Worker:
    """A worker's state and its HTTP/WebSocket server."""

    def __init__(
        self,
        *,
        master_url: str,
        secret: str,
        shuffle_url: str | None,
        shuffle_root: str | None,
        work_dir: str,
        host: str = "127.0.0.1",
        advertise_host: str | None = None,
        cores: int = 1,
        memory_bytes: int = 0,
        worker_id: str | None = None,
        heartbeat_interval: float = 1.0,
    ) -> None:
        self.master_url = master_url.rstrip("/")
        self.secret = secret
        #: without a shuffle service, the worker serves its own map outputs
        self.serves_shuffle = shuffle_url is None
        self.shuffle_url = (shuffle_url or "").rstrip("/")
        if self.serves_shuffle:
            shuffle_root = os.path.join(work_dir, "shuffle")
        self.shuffle_root = shuffle_root
        self.work_dir = work_dir
        self.host = host
        self.advertise_host = advertise_host
        self.cores = cores
        self.memory_bytes = memory_bytes or default_budget(cores)
        self.memory = MemoryManager(self.memory_bytes, cores)
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self.heartbeat_interval = heartbeat_interval
        #: A register or heartbeat request that takes longer is retried (a cut link must not
        #: leave the worker waiting out TCP's back-off).
        self._control_timeout = aiohttp.ClientTimeout(total=max(3.0, 3 * heartbeat_interval))
        self.url = ""
        self.blocks = BlockStore(work_dir, self.memory, on_evict=self._blocks_evicted)
        #: apps whose drivers are about to hear of evicted blocks
        self._eviction_notices: set[str] = set()
        #: set to send a heartbeat now rather than at the next interval
        self._beat_now = asyncio.Event()
        self.stages = StageCache()
        self.broadcasts = BroadcastStore(lambda: self._session)
        #: cached splits this worker read from other workers instead of recomputing
        self.blocks_fetched = 0
        #: tasks ended since start, by outcome (reported in heartbeats, for ``/metrics``)
        self.tasks_ended = {"succeeded": 0, "failed": 0, "cancelled": 0}
        self.pool = ThreadPoolExecutor(cores, thread_name_prefix="aiospark-task")
        self.sessions: set[DriverSession] = set()
        self.results: dict[tuple[str, int], bytes] = {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._background: list[asyncio.Task] = []
        self._registered = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heartbeats: asyncio.Task | None = None
        self._leaving = False
        #: leaving the cluster: no new tasks (``worker.drain``)
        self.draining = False
        #: set whenever a task ends or a result is fetched (the drain waits on it)
        self.changed = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[auth_middleware(self.secret, ready=self.ready), faults.middleware()],
            client_max_size=MAX_REQUEST_BYTES,
        )
        app.add_routes(
            [
                web.get("/v1/health", self.health),
                web.get("/v1/driver", self.driver_socket),
                web.get("/v1/results/{app}/{task}", self.get_result),
                web.get("/v1/broadcast/{app}/{bid}", self.get_broadcast),
                web.get("/v1/blocks/{app}/{rdd}/{split}", self.get_block),
            ]
        )
        if self.serves_shuffle:
            from aiospark.shuffle.service import ShuffleService

            assert self.shuffle_root is not None
            service = ShuffleService(self.shuffle_root)
            app.add_routes(r for r in service.routes() if r.path != "/v1/health")
        return app

    def ready(self) -> bool:
        """Whether the worker takes tasks: registered, and not draining."""
        return self._registered.is_set() and not self.draining

    async def start(self, port: int = 0) -> None:
        from aiospark.runtime import serve

        os.makedirs(self.work_dir, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(
            headers=auth_headers(self.secret),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            connector=aiohttp.TCPConnector(ssl=tls.client_context()),
        )
        self._runner, self.url = await serve(
            self.make_app(), self.host, port, advertise=self.advertise_host
        )
        self.host = urllib.parse.urlsplit(self.url).hostname or self.host
        if self.serves_shuffle:
            self.shuffle_url = self.url
        self._heartbeats = asyncio.create_task(self._heartbeat_loop())
        self._background.append(self._heartbeats)

    async def stop_heartbeats(self) -> None:
        """Stop registering and heartbeating for good (before leaving the cluster)."""
        self._leaving = True
        if self._heartbeats is not None:
            self._heartbeats.cancel()
            await asyncio.wait([self._heartbeats])

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        for session in list(self.sessions):
            for task, tctx in session.tasks.values():
                tctx.cancelled = True
                task.cancel()
            await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.work_dir, ignore_errors=True)

    # -- master ------------------------------------------------------------------------

    async def _register(self) -> None:
        assert self._session is not None
        message = RegisterWorker(
            worker_id=self.worker_id,
            url=self.url,
            host=self.host,
            cores=self.cores,
            memory_bytes=self.memory_bytes,
            shuffle_url=self.shuffle_url,
            pid=os.getpid(),
        )
        async with self._session.post(
            f"{self.master_url}/v1/workers", json=message.to_json(), timeout=self._control_timeout
        ) as resp:
            resp.raise_for_status()
        self._registered.set()

    async def _heartbeat_loop(self) -> None:
        assert self._session is not None
        delay = 0.05
        while not self._leaving:
            try:
                if not self._registered.is_set():
                    await self._register()
                    delay = 0.05
                else:
                    beat = self.heartbeat_message()
                    url = f"{self.master_url}/v1/workers/{self.worker_id}/heartbeat"
                    async with self._session.post(
                        url, json=beat.to_json(), timeout=self._control_timeout
                    ) as resp:
                        if resp.status == 404:  # the master forgot us: register again
                            self._registered.clear()
                            continue
                        resp.raise_for_status()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._beat_now.wait(), self.heartbeat_interval)
                self._beat_now.clear()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, aiohttp.ClientResponseError) and exc.status == 401:
                    log.error("the master at %s refused this worker's cluster secret (401)",
                              self.master_url)
                log.debug("master unreachable (%s); retrying in %.2fs", exc, delay)
                self._registered.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.heartbeat_interval)

    def running_tasks(self) -> int:
        return sum(len(s.tasks) for s in self.sessions)

    def heartbeat_message(self) -> Heartbeat:
        """Proof of life with the load: tasks, memory against the budget, cached RDDs."""
        memory = self.memory.snapshot()
        return Heartbeat(
            self.worker_id,
            self.running_tasks(),
            memory["storage"] + memory["execution"],
            storage_used=memory["storage"],
            execution_used=memory["execution"],
            cached=[CachedRDD(**entry) for entry in self.blocks.rdds()],
            tasks_succeeded=self.tasks_ended["succeeded"],
            tasks_failed=self.tasks_ended["failed"],
            tasks_cancelled=self.tasks_ended["cancelled"],
            spilled_bytes=spill.STATS.snapshot()["bytes"],
        )

    # -- HTTP ------------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "worker_id": self.worker_id,
                "registered": self._registered.is_set(),
                "running_tasks": self.running_tasks(),
                "blocks": self.blocks.summary(),
                "cached": self.blocks.rdds(),
                "memory": self.memory.snapshot(),
                "spilled": spill.STATS.snapshot(),
                "blocks_fetched": self.blocks_fetched,
                "broadcasts": self.broadcasts.summary(),
                "faults": dict(faults.PLAN.injected),
            }
        )

    async def get_result(self, request: web.Request) -> web.StreamResponse:
        try:
            key = (check_app_id(request.match_info["app"]), int(request.match_info["task"]))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        data = self.results.pop(key, None)
        self.changed.set()
        if data is None:
            raise web.HTTPNotFound(text=f"no result for task {key[1]}")
        return web.Response(body=data, content_type="application/octet-stream")

    async def get_block(self, request: web.Request) -> web.StreamResponse:
        """A cached split, streamed as frames; 404 when this worker no longer has it."""
        try:
            app_id = check_app_id(request.match_info["app"])
            rdd_id, split = int(request.match_info["rdd"]), int(request.match_info["split"])
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        frames = self.blocks.frames(app_id, rdd_id, split)
        if frames is None:
            return web.json_response({"missing": True}, status=404)
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        try:
            # Encoding (memory blocks) or reading (disk blocks) runs off the loop, frame by frame.
            while (pieces := await loop.run_in_executor(None, next, frames, None)) is not None:
                for piece in pieces:
                    await response.write(piece)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        await response.write_eof()
        return response

    async def get_broadcast(self, request: web.Request) -> web.StreamResponse:
        """A broadcast value's bytes, for a peer worker (waits while still fetching it)."""
        try:
            app_id = check_app_id(request.match_info["app"])
            bid = int(request.match_info["bid"])
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if not any(session.app_id == app_id for session in self.sessions):
            # Waiting for a broadcast to arrive only makes sense for a driver we serve.
            raise web.HTTPNotFound(text=f"no driver of {app_id} is connected to this worker")
        blob = await self.broadcasts.serve(app_id, bid)
        if blob is None:
            raise web.HTTPNotFound(text=f"broadcast {bid} is not on this worker")
        return web.Response(body=blob, content_type="application/octet-stream")

    async def driver_socket(self, request: web.Request) -> web.WebSocketResponse:
        try:
            app_id = check_app_id(request.query.get("app", ""))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        ws = web.WebSocketResponse(max_msg_size=0, heartbeat=None)
        await ws.prepare(request)
        session = DriverSession(app_id, ws)
        self.sessions.add(session)
        try:
            if self.draining:
                await session.send({"type": "draining"})
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    await ws.close(code=1003, message=b"binary envelopes only")
                    break
                header: dict[str, Any] = {}
                try:
                    header, blobs = unpack(msg.data)
                    if self.draining and header.get("type") == "launch":
                        # Sent before the driver heard we drain: it runs the task elsewhere.
                        await session.send({"type": "failure", "task_id": header["task_id"],
                                            "reason": "draining", "traceback": ""})
                        continue
                    self._dispatch(session, header, blobs)
                except (EnvelopeError, KeyError, TypeError, ValueError) as exc:
                    reply: dict[str, Any] = {"type": "error", "error": f"bad message: {exc}"}
                    if header.get("type") == "launch" and isinstance(header.get("task_id"), int):
                        # Fail the task rather than leave the driver waiting for it.
                        error = ValueError(f"worker {self.worker_id} refused the task: {exc}")
                        reply = {"type": "failure", "task_id": header["task_id"],
                                 "reason": "error", "traceback": ""}
                        await session.send(reply, pickle_exception(error))
                        continue
                    await session.send(reply)
        finally:
            self.sessions.discard(session)
            self._driver_gone(session)
        return ws

    # -- driver messages ----------------------------------------------------------------

    def _dispatch(self, session: DriverSession, header: dict, blobs: list) -> None:
        kind = header["type"]
        if kind == "launch":
            self._launch(session, header, blobs)
        elif kind == "cancel":
            entry = session.tasks.get(int(header["task_id"]))
            if entry is not None:
                entry[1].cancelled = True
        elif kind == "unpersist":
            self.blocks.drop_rdd(session.app_id, int(header["rdd_id"]))
            self._beat_now.set()  # the master's status shows it soon
        elif kind == "forget_stages":
            self.stages.drop(session.app_id, [int(s) for s in header["stage_ids"]])
        elif kind == "add_file":
            self._add_file(session.app_id, header["name"], bytes(blobs[0]), bool(header["python"]))
        elif kind == "unpersist_broadcast":
            self.broadcasts.drop(session.app_id, int(header["broadcast_id"]))
        else:
            raise ValueError(f"unknown message type {kind!r}")

    def files_dir(self, app_id: str) -> str:
        return os.path.join(self.work_dir, "files", app_id)

    def _add_file(self, app_id: str, name: str, data: bytes, python: bool) -> None:
        """Keep a file a driver shipped; make Python code importable by its tasks."""
        folder = self.files_dir(app_id)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, check_name(name))
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        if python:
            entry = folder if name.endswith(".py") else path  # .zip / .egg / .whl
            if entry not in sys.path:
                sys.path.insert(0, entry)
            importlib.invalidate_caches()

    def _launch(self, session: DriverSession, header: dict, blobs: list) -> None:
        """Start a task.  Blobs: the split, then the stage if included, then inline broadcasts."""
        app_id = session.app_id
        stage_id = int(header["stage_id"])
        rest = iter(blobs[1:])
        if header.get("stage_included"):
            self.stages.add(app_id, stage_id, bytes(next(rest)))
        elif not self.stages.has(app_id, stage_id):
            raise ValueError(f"stage {stage_id} was never sent")
        broadcast_ids = []
        for bid in header.get("broadcast_inline", []):
            self.broadcasts.put(app_id, int(bid), next(rest))
            broadcast_ids.append(int(bid))
        for bid, sources in (header.get("broadcast_sources") or {}).items():
            self.broadcasts.ensure(app_id, int(bid), [str(s) for s in sources])
            broadcast_ids.append(int(bid))
        spec = TaskSpec(
            app_id=app_id,
            task_id=int(header["task_id"]),
            stage_id=stage_id,
            partition=int(header["partition"]),
            attempt=int(header["attempt"]),
            split_blob=bytes(blobs[0]),
            shuffle_inputs=header.get("inputs") or {},
            broadcasts=broadcast_ids + [int(b) for b in header.get("broadcast_held", [])],
            remote_blocks=header.get("blocks") or {},
        )
        fetch = functools.partial(self._fetch, app_id)
        assert self._loop is not None
        broadcast = functools.partial(self.broadcasts.value, self._loop, app_id)
        fetch_block = functools.partial(self._fetch_block, app_id)
        tctx = WorkerTaskContext(spec, self.blocks, fetch, broadcast, fetch_block)
        tctx.files_dir = self.files_dir(app_id)
        tctx.memory = TaskMemory(self.memory, (app_id, spec.task_id))
        tctx.spill_dir = os.path.join(self.work_dir, "spill", f"{app_id}-{spec.task_id}")
        task = asyncio.create_task(self._execute(session, spec, tctx))
        session.tasks[spec.task_id] = (task, tctx)

    def _fetch_block(
        self, app_id: str, rdd_id: int, split: int, urls: list[str]
    ) -> tuple[list | None, list[str]]:
        """From a task thread: a cached block from the workers holding it, and who lacked it."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(
            self._get_remote_block(app_id, rdd_id, split, urls), self._loop
        )
        return future.result()

    async def _get_remote_block(
        self, app_id: str, rdd_id: int, split: int, urls: list[str]
    ) -> tuple[list | None, list[str]]:
        assert self._session is not None
        missing = []
        for url in urls:
            try:
                async with self._session.get(
                    f"{url}/v1/blocks/{app_id}/{rdd_id}/{split}", timeout=BLOCK_FETCH_TIMEOUT
                ) as resp:
                    if resp.status != 200:
                        missing.append(url)
                        continue
                    data = bytearray(await resp.read())
            except (aiohttp.ClientError, OSError, TimeoutError):
                missing.append(url)
                continue
            records: list = []
            for frame in split_frames(data):
                records.extend(decode_frame(frame))
            self.blocks_fetched += 1
            return records, missing
        return None, missing

    def _fetch(self, app_id: str, url: str, shuffle_id: int, reduce_id: int, map_ids: list):
        if url == self.shuffle_url and self.shuffle_root and LOCAL_SHUFFLE_READS:
            return read_local(self.shuffle_root, app_id, shuffle_id, reduce_id, map_ids, url)
        assert self._session is not None and self._loop is not None
        return read_remote(
            self._loop, self._session, url, app_id, shuffle_id, reduce_id, map_ids
        )

    async def _execute(self, session: DriverSession, spec: TaskSpec, tctx: WorkerTaskContext):
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            outcome: TaskOutcome = await loop.run_in_executor(
                self.pool, run_task, spec, self.stages, tctx, self.shuffle_root or self.work_dir
            )
        except asyncio.CancelledError:
            tctx.cancelled = True
            raise
        finally:
            session.tasks.pop(spec.task_id, None)
            self.changed.set()
        outcome_name = "succeeded" if outcome.ok else "cancelled" if outcome.cancelled else "failed"
        self.tasks_ended[outcome_name] += 1
        if log.isEnabledFor(logging.INFO):
            log.info("task %s", outcome_name, extra=logs.fields(
                app_id=session.app_id, stage_id=spec.stage_id, task_id=spec.task_id,
                partition=spec.partition, attempt=spec.attempt,
                seconds=round(time.perf_counter() - started, 6)))
        header: dict[str, Any] = {
            "task_id": spec.task_id,
            "seconds": round(time.perf_counter() - started, 6),
        }
        if tctx.blocks_missing:
            header["blocks_missing"] = tctx.blocks_missing
        # Blocks this task cached (still held) and blocks evicted since the last report.
        report = functools.partial(self._block_report, session.app_id, tctx.cached)
        blobs: list[bytes] = []
        if outcome.ok:
            header["type"] = "success"
            if outcome.map_sizes is not None:
                header["map_sizes"] = outcome.map_sizes
            else:
                result = outcome.result or b""
                if len(result) > INLINE_RESULT_LIMIT:
                    self.results[(session.app_id, spec.task_id)] = result
                    url = f"{self.url}/v1/results/{session.app_id}/{spec.task_id}"
                    header["result_url"] = url
                else:
                    blobs.append(result)
            if outcome.accumulators is not None:
                header["acc_blob"] = len(blobs)
                blobs.append(outcome.accumulators)
            await session.send(header, *blobs, prepare=report)
            return
        header["type"] = "failure"
        header["traceback"] = outcome.traceback
        failed = [b for b in spec.broadcasts if self.broadcasts.failed(session.app_id, b)]
        if failed:  # forget them, so a retry fetches them again
            header["broadcast_failed"] = failed
            for bid in failed:
                self.broadcasts.drop(session.app_id, bid)
        if outcome.cancelled:
            header["reason"] = "cancelled"
            await session.send(header, prepare=report)
        elif outcome.fetch_failed is not None:
            failure = outcome.fetch_failed
            header["reason"] = "fetch_failed"
            header["fetch"] = {
                "shuffle_id": failure.shuffle_id,
                "map_ids": failure.map_ids,
                "url": failure.url,
                "message": failure.reason,
            }
            await session.send(header, prepare=report)
        else:
            header["reason"] = "error"
            await session.send(header, outcome.error or b"", prepare=report)

    def _block_report(self, app_id: str, cached: list[tuple[int, int]], header: dict) -> bool:
        """Add to an outcome the blocks the task cached that are still here, and evictions."""
        held, evicted = self.blocks.report(app_id, cached)
        header["cached"] = held
        if evicted:
            header["evicted"] = evicted
        return True

    def _blocks_evicted(self, app_id: str) -> None:
        """From any thread: blocks of ``app_id`` were evicted; tell its driver soon."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._notice_evictions, app_id)

    def _notice_evictions(self, app_id: str) -> None:
        if app_id not in self._eviction_notices:
            self._eviction_notices.add(app_id)
            task = asyncio.create_task(self._send_evictions(app_id))
            self._background.append(task)
            task.add_done_callback(self._background.remove)

    async def _send_evictions(self, app_id: str) -> None:
        """A ``blocks`` message with what was evicted, unless a task outcome said it first."""
        self._eviction_notices.discard(app_id)

        def add_evicted(header: dict) -> bool:
            header["evicted"] = self.blocks.take_evicted(app_id)
            return bool(header["evicted"])

        for session in [s for s in self.sessions if s.app_id == app_id]:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.send({"type": "blocks"}, prepare=add_evicted)

    def _driver_gone(self, session: DriverSession) -> None:
        """A driver disconnected: stop its tasks, drop what it cached."""
        for task, tctx in list(session.tasks.values()):
            tctx.cancelled = True
            task.cancel()
        app_id = session.app_id
        if not any(s.app_id == app_id for s in self.sessions):
            self.stages.drop(app_id)
            self.blocks.drop_app(app_id)
            self._beat_now.set()
            self.broadcasts.drop(app_id)
            shutil.rmtree(self.files_dir(app_id), ignore_errors=True)
            if self.shuffle_root and not self.draining:
                # The driver is gone (not just our link to it, closed as we drain):
                # nobody will read its map outputs.
                shutil.rmtree(os.path.join(self.shuffle_root, app_id), ignore_errors=True)
            for key in [k for k in self.results if k[0] == app_id]:
                del self.results[key]


async def run_worker(args: Any) -> None:
    """Entry point of ``aiospark worker``: serve until a stop signal, then drain
    (``worker.drain``) unless ``args.drain_timeout`` is 0 or the parent died."""
    from aiospark.runtime import wait_for_stop
    from aiospark.worker.drain import drain

    worker = Worker(
        master_url=args.master,
        secret=args.secret,
        shuffle_url=args.shuffle_url,
        shuffle_root=args.shuffle_dir,
        work_dir=args.work_dir,
        host=args.host,
        advertise_host=args.advertise_host,
        cores=args.cores,
        memory_bytes=args.memory,
        worker_id=args.worker_id,
        heartbeat_interval=args.heartbeat_interval,
    )
    logs.bind(worker_id=worker.worker_id)
    await worker.start(args.port)
    log.info("worker %s serving at %s", worker.worker_id, worker.url,
             extra=logs.fields(url=worker.url, shuffle_url=worker.shuffle_url))
    try:
        reason = await wait_for_stop(args.parent_pid)
        log.info("worker %s stopping: %s", worker.worker_id, reason)
        timeout = getattr(args, "drain_timeout", 0.0)
        if timeout > 0 and reason != "parent exited":
            # A second signal stops at once.
            draining = asyncio.create_task(drain(worker, timeout))
            stop = asyncio.create_task(wait_for_stop())
            await asyncio.wait([draining, stop], return_when=asyncio.FIRST_COMPLETED)
            for task in (draining, stop):
                task.cancel()
    finally:
        with contextlib.suppress(Exception):
            await worker.stop()
