"""The executor: the worker's process that runs user code, keeps cached blocks, serves results.

``aiospark worker`` starts a supervisor (``aiospark.worker.supervisor``), which
talks to the master and starts this process, restarting it when it dies or
must be killed.  Drivers connect to ``/v1/driver?app=<id>`` with a WebSocket
and send ``launch``/``cancel``/``unpersist``/``forget_stages`` messages (see
``aiospark.protocol.envelope``); the executor answers each launch with a
``success`` or ``failure`` message.  Tasks run on a thread pool of ``cores``
threads; the event loop only moves bytes.  Which task runs, is refused,
interrupted or gets this process killed is decided by ``worker.state``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import importlib
import logging
import os
import shutil
import sys
import traceback
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from aiospark import faults, logs, spill
from aiospark.barrier import BarrierTaskContext
from aiospark.files import check_relative_name
from aiospark.lineage import StorageLevel
from aiospark.memory import MemoryManager, TaskMemory, default_budget
from aiospark.protocol import tls
from aiospark.protocol.auth import auth_headers, auth_middleware
from aiospark.protocol.envelope import EnvelopeError, split_batch
from aiospark.protocol.frames import decode_frame, split_frames
from aiospark.protocol.ids import check_app_id, parse_id
from aiospark.protocol.messages import CachedRDD, Heartbeat
from aiospark.protocol.tasks import (
    AddFile,
    BarrierAnswer,
    BlocksEvicted,
    CancelTask,
    Draining,
    ForgetStages,
    LaunchTask,
    Refused,
    TaskFailed,
    TaskMessage,
    TaskSucceeded,
    Unpersist,
    UnpersistBroadcast,
    decode,
    task_id_of,
)
from aiospark.shuffle.reader import read_local, read_remote
from aiospark.worker.block_server import BlockServer
from aiospark.worker.blocks import BlockStore
from aiospark.worker.broadcasts import BroadcastStore
from aiospark.worker.control import ControlLink, RunningGauge
from aiospark.worker.executor import (
    StageCache,
    TaskOutcome,
    TaskSpec,
    WorkerTaskContext,
    pickle_exception,
    run_task,
)
from aiospark.worker.lanes import Lanes
from aiospark.worker.session import DriverSession
from aiospark.worker.state import (
    DropApp,
    Instruction,
    Interrupt,
    Kill,
    Refuse,
    ReportLoad,
    Start,
    Unqueue,
    WorkerState,
)

log = logging.getLogger("aiospark.worker")

#: Tasks per core the executor starts early, to wait in front of its task threads
#: (``WorkerState(queue=...)``): a driver queues short tasks here (``prefetch``).
LANE_QUEUE = 8
#: Results larger than this are kept on the worker and fetched over HTTP.
INLINE_RESULT_LIMIT = 8 << 20
MAX_REQUEST_BYTES = 64 << 20
BLOCK_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
#: Read map outputs of this host straight from disk (AIOSPARK_SHUFFLE_LOCAL_READS=0 makes
#: every read go through the shuffle service, as between hosts; used by tests).
LOCAL_SHUFFLE_READS = os.environ.get("AIOSPARK_SHUFFLE_LOCAL_READS", "1") != "0"


class Worker:
    """An executor's state and its HTTP/WebSocket server."""

    def __init__(
        self,
        *,
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
        self.secret = secret
        #: without a shuffle service, the worker serves its own map outputs
        self.serves_shuffle = shuffle_url is None
        self.shuffle_url = (shuffle_url or "").rstrip("/")
        if self.serves_shuffle and shuffle_root is None:
            shuffle_root = os.path.join(work_dir, "shuffle")
        self.shuffle_root = shuffle_root
        self.work_dir = work_dir
        self.host = host
        self.advertise_host = advertise_host
        self.cores = cores
        self.memory_bytes = memory_bytes or default_budget(cores)
        self.memory = MemoryManager(self.memory_bytes, cores)
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        #: how often the load goes to the supervisor (which heartbeats to the master with it)
        self.heartbeat_interval = heartbeat_interval
        self.url = ""
        #: which tasks run, and when a cancelled one gets this process killed
        self.state = WorkerState(cores, queue=LANE_QUEUE)
        #: launches the state queued until a core frees: (app, task) -> session, message,
        #: what ``_receive`` kept of it
        self._queued: dict[tuple[str, int], tuple[DriverSession, LaunchTask, list]] = {}
        #: the channel to the supervisor (None when run on its own, as in tests), and the
        #: running-task count it reads even while user code holds the GIL
        self.control: ControlLink | None = None
        self.gauge: RunningGauge | None = None
        self._kill_timer: asyncio.TimerHandle | None = None
        #: shutting down: closing the drivers' sessions is not their going away
        self._stopping = False
        #: cancelled tasks that ended since the last load report
        self._stopped: list[tuple[str, int]] = []
        self.blocks = BlockStore(work_dir, self.memory, on_evict=self._blocks_evicted)
        #: blocks to and from peers: serving them, and copies of replicated ones
        self.block_server = BlockServer(
            self.blocks, lambda app_id: any(s.app_id == app_id for s in self.sessions),
            lambda: self._session)
        #: apps whose drivers are about to hear of evicted blocks
        self._eviction_notices: set[str] = set()
        #: set to report the load now rather than at the next interval
        self._beat_now = asyncio.Event()
        self.stages = StageCache()
        self.broadcasts = BroadcastStore(lambda: self._session)
        #: cached splits this worker read from other workers instead of recomputing
        self.blocks_fetched = 0
        #: tasks ended since start, by outcome (reported in heartbeats, for ``/metrics``)
        self.tasks_ended = {"succeeded": 0, "failed": 0, "cancelled": 0}
        #: the task threads, one per core, and the tasks started to wait in front of them
        self.lanes = Lanes(cores)
        self.sessions: set[DriverSession] = set()
        self.results: dict[tuple[str, int], bytes] = {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._background: list[asyncio.Task] = []
        #: the supervisor registered this worker with the master (it is ready for tasks)
        self._registered = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
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
                *self.block_server.routes(),
            ]
        )
        if self.serves_shuffle:
            from aiospark.shuffle.service import ShuffleService

            assert self.shuffle_root is not None
            service = ShuffleService(self.shuffle_root)
            app.add_routes(r for r in service.routes() if r.path != "/v1/health")
        return app

    @property
    def draining(self) -> bool:
        """Leaving the cluster: no new tasks (``worker.drain``)."""
        return self.state.draining

    def ready(self) -> bool:
        """Whether the worker takes tasks: registered, and not draining."""
        return self._registered.is_set() and not self.draining

    async def start(self, port: int = 0, fd: int | None = None) -> None:
        """Serve on ``host:port``, or on the listening socket ``fd`` (the supervisor's)."""
        from aiospark.runtime import serve

        os.makedirs(self.work_dir, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        self.lanes.bind(self._loop)
        self._session = aiohttp.ClientSession(
            headers=auth_headers(self.secret),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            connector=aiohttp.TCPConnector(ssl=tls.client_context()),
        )
        self._runner, self.url = await serve(
            self.make_app(), self.host, port, fd=fd, advertise=self.advertise_host
        )
        self.host = urllib.parse.urlsplit(self.url).hostname or self.host
        if self.serves_shuffle:
            self.shuffle_url = self.url
        if self.control is not None:
            self._background.append(asyncio.create_task(self._report_loop()))
        else:
            self._registered.set()  # on its own (tests): nobody else to wait for

    async def stop(self) -> None:
        self._stopping = True
        for task in self._background:
            task.cancel()
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        for session in list(self.sessions):
            for tctx in session.tasks.values():
                tctx.cancelled = True
            await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self.lanes.shutdown()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    # -- the supervisor ------------------------------------------------------------------

    def load_message(self) -> dict[str, Any]:
        """What the supervisor heartbeats with: the load, and the cancelled tasks that
        stopped since the last report (a kill asked for them would come too late)."""
        stopped, self._stopped = self._stopped, []
        return {"type": "load", "heartbeat": self.heartbeat_message().to_json(),
                "stopped": stopped}

    async def _report_loop(self) -> None:
        """Report the load to the supervisor every interval, or at once when asked."""
        assert self.control is not None
        while True:
            self.control.send(self.load_message())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat_now.wait(), self.heartbeat_interval)
            self._beat_now.clear()

    def on_control(self, message: dict[str, Any]) -> None:
        """A message from the supervisor (``registered``)."""
        if message.get("type") == "registered":
            if message.get("value"):
                self._registered.set()
            else:
                self._registered.clear()

    def _apply(self, instructions: list[Instruction]) -> None:
        """Carry out what ``self.state`` decided."""
        for instruction in instructions:
            if isinstance(instruction, Interrupt):
                for session in self.sessions:
                    tctx = session.tasks.get(instruction.task_id)
                    if tctx is not None and session.app_id == instruction.app_id:
                        tctx.cancelled = True
                        session.barrier.interrupt(instruction.task_id)
                done = self.lanes.withdraw((instruction.app_id, instruction.task_id))
                if done is not None:  # it never started: it ends now, as cancelled
                    self._loop.call_soon(done, TaskOutcome(False, cancelled=True), None)  # type: ignore[union-attr]
            elif isinstance(instruction, DropApp):
                self._drop_app(instruction.app_id)
            elif isinstance(instruction, ReportLoad):
                self._beat_now.set()
            elif isinstance(instruction, Start):
                self._start_queued(instruction.app_id, instruction.task_id)
            elif isinstance(instruction, (Refuse, Unqueue)):
                queued = self._take_launch((instruction.app_id, instruction.task_id))
                if queued is not None:
                    reason = instruction.reason if isinstance(instruction, Refuse) else "cancelled"
                    queued[0].post(TaskFailed(instruction.task_id, reason=reason))
            elif isinstance(instruction, Kill):
                log.info("asking to be killed: %s", instruction.reason)
                if self.control is not None:
                    self.control.send({"type": "kill", "reason": instruction.reason})
        self._arm_kill_timer()

    def apply(self, instructions: list[Instruction]) -> None:
        """Carry out decisions of ``self.state`` taken outside this module (the drain)."""
        self._apply(instructions)
        if self.state.draining:
            # Started early but not running yet: refused like the queued ones, so their
            # drivers run them elsewhere at once.
            for _key, done in self.lanes.withdraw_all():
                asyncio.get_running_loop().call_soon(
                    done, TaskOutcome(False, refused=True), None)

    def _keep_launch(self, key: tuple[str, int], entry: tuple[DriverSession, LaunchTask, list]
                     ) -> None:
        """Keep a launch until the state starts, refuses or unqueues it."""
        self._queued[key] = entry
        entry[0].queued += 1

    def _take_launch(self, key: tuple[str, int]
                     ) -> tuple[DriverSession, LaunchTask, list] | None:
        """The launch kept for ``key`` (None if there is none), no longer kept."""
        entry = self._queued.pop(key, None)
        if entry is not None:
            entry[0].queued -= 1
        return entry

    def _start_queued(self, app_id: str, task_id: int) -> None:
        """A core freed for a launch the state had queued: start it."""
        queued = self._take_launch((app_id, task_id))
        if queued is None:  # its driver went away meanwhile
            self._apply(self.state.ended(app_id, task_id))
            return
        session, message, received = queued
        try:
            self._launch(session, message, received)
        except (EnvelopeError, KeyError, TypeError, ValueError, IndexError) as exc:
            self._apply(self.state.ended(app_id, task_id))
            error = ValueError(f"worker {self.worker_id} refused the task: {exc}")
            session.post(TaskFailed(task_id), pickle_exception(error))
        finally:
            self._count_running()

    def _arm_kill_timer(self) -> None:
        if self._kill_timer is not None:
            self._kill_timer.cancel()
            self._kill_timer = None
        wake = self.state.wake_at
        if wake is not None and self._loop is not None:
            self._kill_timer = self._loop.call_at(
                wake, lambda: self._apply(self.state.tick(self._loop.time()))  # type: ignore[union-attr]
            )

    def running_tasks(self) -> int:
        """Tasks running: those started, but at most one per task thread (the others
        started early wait in front of them, ``worker.lanes``)."""
        return min(self.state.running, self.lanes.count)

    def _count_running(self) -> None:
        if self.gauge is not None:
            self.gauge.set(self.running_tasks())

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
                "block_transfers": dict(self.block_server.stats),
                "broadcasts": self.broadcasts.summary(),
                "faults": dict(faults.PLAN.injected),
            }
        )

    async def get_result(self, request: web.Request) -> web.StreamResponse:
        try:
            key = (check_app_id(request.match_info["app"]),
                   parse_id(request.match_info["task"], "task"))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        data = self.results.pop(key, None)
        self.changed.set()
        if data is None:
            raise web.HTTPNotFound(text=f"no result for task {key[1]}")
        return web.Response(body=data, content_type="application/octet-stream")

    async def get_broadcast(self, request: web.Request) -> web.StreamResponse:
        """A broadcast value's bytes, for a peer worker (waits while still fetching it)."""
        try:
            app_id = check_app_id(request.match_info["app"])
            bid = parse_id(request.match_info["bid"], "bid")
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
        self._apply(self.state.driver_connected(app_id))
        try:
            if self.draining:
                await session.send(Draining())
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    await ws.close(code=1003, message=b"binary envelopes only")
                    break
                try:
                    messages = split_batch(msg.data)
                except EnvelopeError as exc:
                    await session.send(Refused(f"bad message: {exc}"))
                    continue
                for data in messages:
                    self._receive_message(session, data)
        finally:
            session.close()
            self.sessions.discard(session)
            for key in [k for k, q in self._queued.items() if q[0] is session]:
                self._take_launch(key)
            self._apply(self.state.driver_gone(app_id, self._now(), session.kill_after))
        return ws

    def _receive_message(self, session: DriverSession, data: Any) -> None:
        """Act on one message from a driver; a bad one is answered (a launch: as failed)."""
        try:
            message, blobs = decode(data)
            self._dispatch(session, message, blobs)
        except (EnvelopeError, KeyError, TypeError, ValueError, IndexError) as exc:
            task_id = task_id_of(data)
            if task_id is None:
                session.post(Refused(f"bad message: {exc}"))
                return
            # Fail the task rather than leave the driver waiting for it.
            app_id = session.app_id
            self._take_launch((app_id, task_id))
            self._apply(self.state.ended(app_id, task_id))
            error = ValueError(f"worker {self.worker_id} refused the task: {exc}")
            session.post(TaskFailed(task_id), pickle_exception(error))

    # -- driver messages ----------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _dispatch(self, session: DriverSession, message: TaskMessage, blobs: list) -> None:
        app_id = session.app_id
        if isinstance(message, LaunchTask):
            key = (app_id, message.task_id)
            if key not in self._queued:
                self._keep_launch(key, (session, message, self._receive(session, message, blobs)))
            instructions = self.state.launch(app_id, message.task_id, self._now())
            if not instructions and key not in self.state.waiting:
                self._take_launch(key)  # a duplicate of a running launch
            # Start runs it (or fails it); Refuse, sent before the driver heard we
            # drain, answers it so the driver runs it elsewhere; none: queued.
            self._apply(instructions)
        elif isinstance(message, CancelTask):
            if message.if_waiting:
                self._recall(app_id, message.task_id)
                return
            session.kill_after = message.kill_after
            self._apply(self.state.cancel(app_id, message.task_id, self._now(),
                                          message.kill_after))
        elif isinstance(message, Unpersist):
            self.blocks.drop_rdd(app_id, message.rdd_id)
            self._beat_now.set()  # the master's status shows it soon
        elif isinstance(message, ForgetStages):
            self.stages.drop(app_id, message.stage_ids)
        elif isinstance(message, AddFile):
            if not blobs:
                raise ValueError("add_file carries no file")
            self._add_file(app_id, message.name, bytes(blobs[0]), message.python)
        elif isinstance(message, UnpersistBroadcast):
            self.broadcasts.drop(app_id, message.broadcast_id)
        elif isinstance(message, BarrierAnswer):
            session.barrier.answer(message)
        else:
            raise ValueError(f"a driver does not send {message.kind!r}")

    def _recall(self, app_id: str, task_id: int) -> None:
        """The driver wants a task back unless it started: one queued (in the state, or
        in front of the task threads) is answered as cancelled; one running runs on."""
        key = (app_id, task_id)
        if key in self.state.waiting:
            self._apply(self.state.cancel(app_id, task_id, self._now()))  # Unqueue
            return
        done = self.lanes.withdraw(key)
        if done is not None:
            assert self._loop is not None
            self._loop.call_soon(done, TaskOutcome(False, cancelled=True), None)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.append(task)
        task.add_done_callback(self._background.remove)

    def files_dir(self, app_id: str) -> str:
        return os.path.join(self.work_dir, "files", app_id)

    def _add_file(self, app_id: str, name: str, data: bytes, python: bool) -> None:
        """Keep a file a driver shipped; make Python code importable by its tasks."""
        folder = self.files_dir(app_id)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, *check_relative_name(name).split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)  # a file of a shipped directory
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        if python:
            entry = folder if name.endswith(".py") else path  # .zip / .egg / .whl
            if entry not in sys.path:
                sys.path.insert(0, entry)
            importlib.invalidate_caches()

    def _receive(self, session: DriverSession, launch: LaunchTask, blobs: list) -> list:
        """Keep what a launch ships (its stage, inline broadcasts) as it arrives, even if the
        task waits for a core or is cancelled meanwhile: the driver counts on this worker
        holding them.  Blobs: the split, then the stage if included, then inline broadcasts.
        Returns what starting the task needs: the split and the task's broadcast ids."""
        app_id = session.app_id
        stage_id = launch.stage_id
        if len(blobs) != 1 + launch.stage_included + len(launch.broadcast_inline):
            raise ValueError("the launch's blobs do not match its header")
        rest = iter(blobs[1:])
        if launch.stage_included:
            self.stages.add(app_id, stage_id, bytes(next(rest)))
        elif not self.stages.has(app_id, stage_id):
            raise ValueError(f"stage {stage_id} was never sent")
        broadcast_ids = []
        for bid in launch.broadcast_inline:
            self.broadcasts.put(app_id, bid, next(rest))
            broadcast_ids.append(bid)
        for key, sources in launch.broadcast_sources.items():
            bid = int(key)
            self.broadcasts.ensure(app_id, bid, sources)
            broadcast_ids.append(bid)
        return [blobs[0], broadcast_ids]

    def _launch(self, session: DriverSession, launch: LaunchTask, received: list) -> None:
        """Start a task, with what ``_receive`` kept of its launch."""
        app_id = session.app_id
        stage_id = launch.stage_id
        split_blob, broadcast_ids = received
        if not self.stages.has(app_id, stage_id):
            raise ValueError(f"stage {stage_id} was forgotten before the task started")
        spec = TaskSpec(
            app_id=app_id,
            task_id=launch.task_id,
            stage_id=stage_id,
            partition=launch.partition,
            attempt=launch.attempt,
            split_blob=bytes(split_blob),
            shuffle_inputs=launch.inputs,
            broadcasts=broadcast_ids + launch.broadcast_held,
            remote_blocks=launch.blocks,
            replicate_to=launch.replicate,
            properties=launch.properties,
        )
        fetch = functools.partial(self._fetch, app_id)
        assert self._loop is not None
        broadcast = functools.partial(self.broadcasts.value, self._loop, app_id)
        fetch_block = functools.partial(self._fetch_block, app_id)
        tctx = WorkerTaskContext(
            spec, self.blocks, fetch, broadcast, fetch_block,
            spill_dir=f"{self.work_dir}/spill/{app_id}-{spec.task_id}",
            replicate=functools.partial(self._replicate, app_id),
        )
        tctx.files_dir = self.files_dir(app_id)
        if launch.barrier_attempt >= 0:
            tctx.barrier = session.barrier.task(
                tctx, spec.task_id, launch.barrier_attempt, spec.partition,
                launch.barrier_peers, launch.barrier_timeout)
            tctx.context_class = BarrierTaskContext
        tctx.memory = TaskMemory(self.memory, (app_id, spec.task_id))
        self.lanes.submit(
            (app_id, spec.task_id),
            functools.partial(run_task, spec, self.stages, tctx,
                              self.shuffle_root or self.work_dir),
            functools.partial(self._finished, session, spec, tctx),
        )
        session.tasks[spec.task_id] = tctx

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

    def _replicate(
        self, app_id: str, rdd_id: int, split: int, level: StorageLevel, urls: list[str]
    ) -> concurrent.futures.Future[list[str]]:
        """From a task thread: start pushing copies of a block it cached to peers."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(
            self.block_server.push(app_id, rdd_id, split, level, urls), self._loop)

    def _fetch(self, app_id: str, url: str, shuffle_id: int, reduce_id: int, map_ids: list):
        if url == self.shuffle_url and self.shuffle_root and LOCAL_SHUFFLE_READS:
            return read_local(self.shuffle_root, app_id, shuffle_id, reduce_id, map_ids, url)
        assert self._session is not None and self._loop is not None
        return read_remote(
            self._loop, self._session, url, app_id, shuffle_id, reduce_id, map_ids
        )

    def _finished(self, session: DriverSession, spec: TaskSpec, tctx: WorkerTaskContext,
                  outcome: TaskOutcome | None, error: BaseException | None) -> None:
        """On the loop: a task's thread ended it (or it was withdrawn before running)."""
        if outcome is None:  # run_task never raises; whatever did is the task's failure
            error = error or RuntimeError("the task ended without an outcome")
            outcome = TaskOutcome(False, error=pickle_exception(error),
                                  traceback="".join(traceback.format_exception(error)))
        session.tasks.pop(spec.task_id, None)
        if tctx.cancelled:
            self._stopped.append((spec.app_id, spec.task_id))
        self._apply(self.state.ended(spec.app_id, spec.task_id))
        self._count_running()
        self.changed.set()
        outcome_name = ("succeeded" if outcome.ok
                        else "cancelled" if outcome.cancelled or outcome.refused else "failed")
        self.tasks_ended[outcome_name] += 1
        seconds = round(outcome.seconds, 6)
        if log.isEnabledFor(logging.INFO):
            log.info("task %s", outcome_name, extra=logs.fields(
                app_id=session.app_id, stage_id=spec.stage_id, task_id=spec.task_id,
                partition=spec.partition, attempt=spec.attempt, seconds=seconds))
        missing = [list(entry) for entry in tctx.blocks_missing]
        replicas = [list(entry) for entry in tctx.replicas]

        def outcome_message(kind: type[TaskMessage], **fields: Any) -> Callable[[], TaskMessage]:
            def make() -> TaskMessage:
                # The blocks the task cached that are still here, and evictions since the
                # last report, read as the message goes out.
                held, evicted = self.blocks.report(session.app_id, tctx.cached)
                return kind(spec.task_id, seconds, cached=[list(k) for k in held],  # type: ignore[call-arg]
                            evicted=[list(k) for k in evicted], blocks_missing=missing,
                            replicas=replicas, **fields)
            return make

        if outcome.ok:
            blobs: list[bytes] = []
            result_url = None
            if outcome.map_sizes is None:
                result = outcome.result or b""
                if len(result) > INLINE_RESULT_LIMIT:
                    self.results[(session.app_id, spec.task_id)] = result
                    result_url = f"{self.url}/v1/results/{session.app_id}/{spec.task_id}"
                else:
                    blobs.append(result)
            acc_blob = None
            if outcome.accumulators is not None:
                acc_blob = len(blobs)
                blobs.append(outcome.accumulators)
            session.post(outcome_message(
                TaskSucceeded, map_sizes=outcome.map_sizes, result_url=result_url,
                acc_blob=acc_blob), *blobs, hold=True)
            return
        failed = [b for b in spec.broadcasts if self.broadcasts.failed(session.app_id, b)]
        for bid in failed:  # forget them, so a retry fetches them again
            self.broadcasts.drop(session.app_id, bid)
        failure = functools.partial(outcome_message, TaskFailed, traceback=outcome.traceback,
                                    broadcast_failed=failed)
        if outcome.refused:
            session.post(failure(reason="draining"))
        elif outcome.cancelled:
            session.post(failure(reason="cancelled"))
        elif outcome.fetch_failed is not None:
            lost = outcome.fetch_failed
            fetch = {"shuffle_id": lost.shuffle_id, "map_ids": lost.map_ids, "url": lost.url,
                     "message": lost.reason}
            session.post(failure(reason="fetch_failed", fetch=fetch))
        else:
            session.post(failure(reason="error"), outcome.error or b"")

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

        def evictions() -> TaskMessage | None:
            evicted = self.blocks.take_evicted(app_id)
            return BlocksEvicted([list(k) for k in evicted]) if evicted else None

        for session in [s for s in self.sessions if s.app_id == app_id]:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.send(evictions)

    def _drop_app(self, app_id: str) -> None:
        """No driver of ``app_id`` is connected any more: drop what it cached and shipped."""
        if not any(s.app_id == app_id for s in self.sessions):
            self.stages.drop(app_id)
            self.blocks.drop_app(app_id)
            self._beat_now.set()
            self.broadcasts.drop(app_id)
            shutil.rmtree(self.files_dir(app_id), ignore_errors=True)
            if self.shuffle_root and not self.draining and not self._stopping:
                # The driver is gone (not just our link to it, closed as we drain or
                # stop): nobody will read its map outputs.
                shutil.rmtree(os.path.join(self.shuffle_root, app_id), ignore_errors=True)
            for key in [k for k in self.results if k[0] == app_id]:
                del self.results[key]
