"""The scheduler's async shell: talks to the master and the workers, drives the state machine.

It watches the master's event stream for workers joining and leaving, keeps
one WebSocket per worker, turns ``Launch``/``Cancel`` commands into messages,
and turns the workers' answers back into state-machine events.  Each job is a
``JobHandle`` whose futures complete as partitions arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import aiohttp
import cloudpickle

from aiospark.errors import (
    ClusterError,
    FetchFailed,
    JobCancelled,
    JobFailed,
    RemoteTraceback,
    UserCodeError,
    with_source_lines,
)
from aiospark.progress import ProgressHub
from aiospark.protocol.envelope import EnvelopeError, split_batch
from aiospark.protocol.messages import ClusterEvent, KillTasks, MessageError, WorkerInfo
from aiospark.protocol.reach import MasterLink, failure_reason
from aiospark.protocol.tasks import (
    AddFile,
    BarrierAnswer,
    BarrierCall,
    BlocksEvicted,
    CancelTask,
    Draining,
    ForgetStages,
    Refused,
    TaskEnded,
    TaskFailed,
    TaskSucceeded,
    Unpersist,
    UnpersistBroadcast,
    decode,
    encode,
)
from aiospark.scheduler import barrier as bar
from aiospark.scheduler import events as ev
from aiospark.scheduler.dag import ResultFunc, StageBuilder, all_ancestors
from aiospark.scheduler.jobs import JobTable, call_site
from aiospark.scheduler.launches import LaunchBuilder, dag_stage
from aiospark.scheduler.links import WorkerLink
from aiospark.scheduler.pools import DEFAULT_POOL
from aiospark.scheduler.properties import job_labels
from aiospark.scheduler.protocols import SchedulerRDD
from aiospark.scheduler.reporter import JobReporter
from aiospark.scheduler.results import load_result
from aiospark.scheduler.shared_vars import SharedVariables
from aiospark.scheduler.state import (
    BarrierReply,
    Cancel,
    Command,
    JobAborted,
    JobFinished,
    Kill,
    Launch,
    MapOutput,
    PartitionDone,
    SchedulerState,
    StagesFinished,
)

log = logging.getLogger("aiospark.scheduler")

#: Short tasks each busy core may have queued on its worker (``SchedulerState.prefetch``).
PREFETCH = 7

#: Closing a WebSocket waits this long for the peer's answer (it may be unreachable).
_WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0)


class JobHandle:
    """A submitted job: one future per requested partition, and one for the whole job."""

    def __init__(self, job_id: int, count: int, scheduler: Scheduler) -> None:
        loop = asyncio.get_running_loop()
        self.job_id = job_id
        self.futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(count)]
        self.done: asyncio.Future[None] = loop.create_future()
        self._scheduler = scheduler

    def cancel(self) -> None:
        """Stop the job and its tasks on the cluster."""
        self._scheduler.cancel_job(self.job_id)

    def _fail(self, error: BaseException) -> None:
        for future in (*self.futures, self.done):
            if not future.done():
                future.set_exception(error)
                future.exception()  # mark retrieved: callers may await only some


class Scheduler(LaunchBuilder):
    """Runs jobs for one driver (application) on the cluster behind ``master_url``."""

    def __init__(
        self,
        app_id: str,
        master_url: str,
        session: aiohttp.ClientSession,
        max_attempts: int = 4,
        locality_wait: float = 1.0,
        speculation: bool = False,
        app_name: str = "aiospark",
        kill_timeout: float | None = 1.0,
        scheduler_mode: str = "fair",
        pools: dict[str, dict[str, Any]] | None = None,
        watch: Callable[[object, Any, int], None] | None = None,
        prefetch: int = PREFETCH,
        barrier_timeout: float = bar.DEFAULT_TIMEOUT,
    ) -> None:
        self.app_id = app_id
        self.app_name = app_name
        self.master_url = master_url.rstrip("/")
        self.session = session
        self.state = SchedulerState(
            max_attempts=max_attempts, locality_wait=locality_wait, speculation=speculation,
            kill_timeout=kill_timeout,
            scheduler_mode=scheduler_mode, pools=pools, prefetch=prefetch,
            barrier_timeout=barrier_timeout,
        )
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self.builder = StageBuilder()
        self.links: dict[str, WorkerLink] = {}
        self.known: dict[str, WorkerInfo] = {}
        self.handles: dict[int, JobHandle] = {}
        self._stage_blobs: dict[int, bytes] = {}
        self._stage_broadcasts: dict[int, set[int]] = {}
        #: task id -> (stage id, partition), to apply accumulator updates once per partition
        self._task_partitions: dict[int, tuple[int, int]] = {}
        #: ``watch`` (the cleaner's) is told of each broadcast, to drop it once collected
        self.shared = SharedVariables(on_unpersist=self._unpersist_broadcast, watch=watch)
        #: files shipped to every worker: name -> (data, is python code)
        self.files: dict[str, tuple[bytes, bool]] = {}
        self.progress = ProgressHub()
        #: this driver's jobs, reported to the master for its status page
        self.jobs = JobTable(self.state)
        self.reporter = JobReporter(self.jobs, session, self.master_url, app_id, app_name)
        #: stage id -> [finished tasks, tasks], for progress events
        self._stage_counts: dict[int, list[int]] = {}
        self._inputs: dict[int, tuple[int, dict[str, list[Any]]]] = {}
        #: RDDs unpersisted (and not persisted again since): blocks of theirs that a task
        #: still cached are not recorded, and the worker is told to drop them
        self._unpersisted: set[int] = set()
        #: job id -> the local properties its tasks see (only jobs that have some)
        self._properties: dict[int, dict[str, str]] = {}
        self._next_job = 0
        self._watch: asyncio.Task[None] | None = None
        self._snapshot = asyncio.Event()
        self._members_changed = asyncio.Event()
        self._closing = False
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._watch = asyncio.create_task(self._watch_master())
        snapshot = asyncio.create_task(self._snapshot.wait())
        try:
            await asyncio.wait([snapshot, self._watch], return_when=asyncio.FIRST_COMPLETED)
        finally:
            snapshot.cancel()
        if not self._snapshot.is_set():
            self._watch.result()  # the master refused us, or never answered: say why
            raise ClusterError(f"the master at {self.master_url} closed its event stream")
        self.reporter.start()

    async def wait_for_workers(self, count: int, timeout: float) -> None:
        """Wait until ``count`` workers are connected, or raise ``ClusterError``."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.links) < count:
                    if self._watch is not None and self._watch.done():
                        self._watch.result()
                    self._members_changed.clear()
                    await self._members_changed.wait()
        except TimeoutError:
            raise ClusterError(
                f"only {len(self.links)} of {count} workers connected within {timeout:.0f}s"
            ) from None

    async def stop(self) -> None:
        self._closing = True
        self.progress.close()
        if self._timer is not None:
            self._timer.cancel()
        for handle in list(self.handles.values()):
            handle._fail(JobCancelled("the context was stopped"))
            self.jobs.ended(handle.job_id, "cancelled", "the context was stopped")
        self.handles.clear()
        self._properties.clear()
        await self.reporter.stop()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(BaseException):
                await self._watch
        for link in list(self.links.values()):
            await self._close_link(link)
        self.links.clear()

    @property
    def total_cores(self) -> int:
        return sum(link.info.cores for link in self.links.values())

    # -- master events ---------------------------------------------------------------------

    async def _watch_master(self) -> None:
        url = f"{self.master_url}/v1/events"
        # Naming the application lets the master tell when this driver goes away.
        params = {"app": self.app_id, "name": self.app_name}
        link = MasterLink(f"driver {self.app_id}", self.master_url)
        failures = 0
        while not self._closing:
            try:
                async with self.session.ws_connect(
                    url, params=params, heartbeat=None, timeout=_WS_TIMEOUT
                ) as ws:
                    failures = 0
                    if (line := link.succeeded()) is not None:
                        log.info("%s", line)
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        self._on_cluster_event(ClusterEvent.from_json(msg.json()))
                lost: BaseException = ConnectionResetError("it closed the event stream")
            except (aiohttp.ClientError, OSError, MessageError) as exc:
                lost = exc
                failures += 1
                kind, reason = failure_reason(exc)
                # Before the first snapshot the Context is starting: a refusal will not
                # mend by retrying, and an unreachable master fails the start after a while.
                if not self._snapshot.is_set() and (kind == "refused" or failures >= 50):
                    raise ClusterError(
                        f"cannot connect to the master at {self.master_url}: {reason}"
                    ) from exc
            if self._closing:
                break
            line, delay = link.failed(lost)
            if line is not None:
                log.warning("%s", line)
            await asyncio.sleep(delay)

    def _on_cluster_event(self, event: ClusterEvent) -> None:
        if event.kind == "snapshot":
            # A restarted master starts empty and learns workers again as they
            # re-register: only workers we have no live connection to are gone.
            current = {w.worker_id for w in event.workers}
            for worker_id in [w for w in self.known if w not in current and w not in self.links]:
                self._worker_gone(worker_id, "worker left the cluster")
            for info in event.workers:
                self._worker_seen(info)
            self._snapshot.set()
        elif event.kind == "worker_added":
            for info in event.workers:
                self._worker_seen(info)
        elif event.kind == "worker_lost":
            for info in event.workers:
                self._worker_gone(info.worker_id, f"worker {info.worker_id} lost (no heartbeat)")
        elif event.kind == "worker_left":  # deregistered, after draining
            for info in event.workers:
                self._worker_gone(info.worker_id, f"worker {info.worker_id} left the cluster")
        elif event.kind == "share" and event.cores != self.state.share:
            # This application's share of the cluster's cores (``master.shares``).
            self._apply(self.state.handle(ev.ShareChanged(event.cores)))

    def _worker_seen(self, info: WorkerInfo) -> None:
        link = self.links.get(info.worker_id)
        if link is not None and link.info.pid != info.pid:
            # Its executor was restarted: what ran or was cached in the old one is gone.
            self._worker_gone(info.worker_id, f"worker {info.worker_id} restarted its executor")
        self.known[info.worker_id] = info
        if info.worker_id not in self.links:
            self._spawn(self._connect(info))

    def _worker_gone(self, worker_id: str, reason: str) -> None:
        info = self.known.pop(worker_id, None)
        link = self.links.pop(worker_id, None)
        if link is not None:
            self._spawn(self._close_link(link))
            info = info or link.info
        self._apply(self.state.handle(ev.WorkerLost(worker_id, JobFailed(reason))))
        lost = _own_shuffle_url(info, self.known.values())
        if lost is not None:
            # It served its map outputs itself (no shuffle service): they went with it.
            self._apply(self.state.handle(ev.ShuffleOutputsLost(lost)))
        # Tasks that were running there will never answer: forget where they ran.
        for task_id in [t for t in self._task_partitions if t not in self.state.tasks]:
            del self._task_partitions[task_id]
        self._members_changed.set()

    def _spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background, keeping a reference until it is done."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- worker links ---------------------------------------------------------------------

    async def _connect(self, info: WorkerInfo) -> None:
        url = f"{info.url}/v1/driver"
        try:
            ws = await self.session.ws_connect(
                url, params={"app": self.app_id}, max_msg_size=0, heartbeat=None,
                timeout=_WS_TIMEOUT,
            )
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("cannot connect to worker %s at %s: %s", info.worker_id, info.url, exc)
            return
        if self._closing or info.worker_id not in self.known or info.worker_id in self.links:
            await ws.close()
            return
        link = WorkerLink(info, ws)
        self.links[info.worker_id] = link
        for name, (data, python) in self.files.items():
            link.send(encode(AddFile(name, python), data))
        link.tasks = [
            asyncio.create_task(link.write_loop()),
            asyncio.create_task(self._read_loop(link)),
        ]
        self._apply(self.state.handle(ev.WorkerAdded(info.worker_id, info.host, info.cores)))
        self._members_changed.set()

    async def _close_link(self, link: WorkerLink) -> None:
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await link.ws.close()

    async def _read_loop(self, link: WorkerLink) -> None:
        try:
            async for msg in link.ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                try:
                    for data in split_batch(msg.data):
                        try:
                            message, blobs = decode(data)
                            await self._on_worker_message(link, message, blobs)
                        except (EnvelopeError, KeyError, TypeError, ValueError,
                                IndexError) as exc:
                            log.error("bad message from worker %s: %s",
                                      link.info.worker_id, exc)
                except EnvelopeError as exc:
                    log.error("bad message from worker %s: %s", link.info.worker_id, exc)
        finally:
            if not self._closing and self.links.get(link.info.worker_id) is link:
                # The connection dropped: the worker is gone for us, whatever the master says.
                self._worker_gone(link.info.worker_id, f"lost connection to {link.info.url}")

    async def _on_worker_message(
        self, link: WorkerLink, message: Any, blobs: list[memoryview]
    ) -> None:
        if isinstance(message, BlocksEvicted):
            self.state.handle(ev.BlocksEvicted(link.info.worker_id, _keys(message.evicted)))
            return
        if isinstance(message, Draining):
            log.info("worker %s is draining: no new tasks go there", link.info.worker_id)
            self._apply(self.state.handle(ev.WorkerDraining(link.info.worker_id)))
            return
        if isinstance(message, Refused):
            log.error("worker %s refused a message: %s", link.info.worker_id, message.error)
            return
        if isinstance(message, BarrierCall):
            self._apply(self.state.handle(ev.BarrierSync(
                message.task_id, message.barrier_attempt, message.partition, message.epoch,
                message.call, message.message, link.info.worker_id)))
            return
        if not isinstance(message, TaskEnded):
            raise ValueError(f"a worker does not send {message.kind!r}")
        task_id = message.task_id
        placed = self._task_partitions.pop(task_id, None)
        if self.progress.active and placed is not None and task_id in self.state.tasks:
            self._publish_task(message, placed, link)
        if message.blocks_missing or message.replicas:
            by_url = {other.info.url: other for other in self.links.values()}
            for rdd_id, split, url in message.blocks_missing:
                if url in by_url:
                    self.state.handle(ev.BlocksEvicted(by_url[url].info.worker_id,
                                                       ((rdd_id, split),)))
            for rdd_id, split, url in message.replicas:  # copies pushed to peers
                kept = self._live_blocks(by_url[url], [[rdd_id, split]]) if url in by_url else ()
                if kept:
                    self.state.handle(ev.BlocksCached(by_url[url].info.worker_id, kept))
        if message.evicted:
            self.state.handle(ev.BlocksEvicted(link.info.worker_id, _keys(message.evicted)))
        cached = self._live_blocks(link, message.cached)
        if isinstance(message, TaskSucceeded):
            if message.acc_blob is not None and placed is not None and task_id in self.state.tasks:
                updates = cloudpickle.loads(blobs[message.acc_blob])
                self.shared.apply_updates(placed[0], placed[1], updates)
            if message.map_sizes is not None:
                output = MapOutput(
                    link.info.worker_id, link.info.shuffle_url, tuple(message.map_sizes)
                )
                self._apply(self.state.handle(
                    ev.TaskFinished(task_id, None, output, cached, message.seconds)))
                return
            data: list[bytes] | memoryview | BaseException
            if message.result_url is not None:
                data = await self._fetch_result(message.result_url)
            else:
                data = blobs[0]
            try:
                if isinstance(data, BaseException):
                    raise data
                result = await load_result(data)  # off the loop when large
            except Exception as exc:  # e.g. a class the driver cannot import
                error = JobFailed(f"the result of task {task_id} could not be loaded: {exc!r}")
                error.__cause__ = exc
                self._apply(self.state.handle(ev.TaskFailed(task_id, error)))
                return
            self._apply(self.state.handle(
                ev.TaskFinished(task_id, result, None, cached, message.seconds)))
            return
        assert isinstance(message, TaskFailed)
        if cached:
            self.state.handle(ev.BlocksCached(link.info.worker_id, cached))
        link.broadcasts.difference_update(message.broadcast_failed)
        reason = message.reason
        if reason in ("cancelled", "draining"):  # draining: refused by a worker leaving
            self._apply(self.state.handle(ev.TaskFailed(task_id, JobCancelled(), counts=False)))
            return
        if placed is not None:
            self.jobs.task_failed(placed[0])
        if reason == "fetch_failed" and message.fetch is not None:
            f = message.fetch
            lost = FetchFailed(f["shuffle_id"], f["map_ids"], f["url"], f["message"])
            self._apply(self.state.handle(
                ev.FetchFailed(task_id, lost, int(f["shuffle_id"]), tuple(f["map_ids"]))))
        else:
            user_error = _user_error(bytes(blobs[0]) if blobs else b"", message.traceback)
            log.info("task %s failed on %s: %r", task_id, link.info.worker_id, user_error)
            self._apply(self.state.handle(ev.TaskFailed(task_id, user_error)))

    def _live_blocks(
        self, link: WorkerLink, keys: list[list[int]]
    ) -> tuple[tuple[int, int], ...]:
        """The reported blocks of RDDs still persisted; the worker drops the others.

        A task that started before ``unpersist`` may cache a block after the
        worker dropped the RDD's blocks.
        """
        live = []
        stale = set()
        for rdd_id, split in keys:
            if rdd_id in self._unpersisted:
                stale.add(rdd_id)
            else:
                live.append((rdd_id, split))
        for rdd_id in sorted(stale):
            link.send(encode(Unpersist(rdd_id)))
        return tuple(live)

    def _publish_task(self, message: TaskEnded, placed: tuple[int, int], link: WorkerLink) -> None:
        counts = self._stage_counts.setdefault(placed[0], [0, 0])
        event = {"stage_id": placed[0], "partition": placed[1], "task_id": message.task_id,
                 "worker_id": link.info.worker_id, "seconds": message.seconds}
        if isinstance(message, TaskSucceeded):
            counts[0] += 1
            event.update(event="task_finished", finished=counts[0], tasks=counts[1])
        else:
            event.update(event="task_failed", reason=getattr(message, "reason", None))
        self.progress.publish(event)

    async def _fetch_result(self, url: str) -> list[bytes] | BaseException:
        try:
            async with self.session.get(url) as resp:
                resp.raise_for_status()
                return [chunk async for chunk in resp.content.iter_any()]  # never joined
        except (aiohttp.ClientError, OSError) as exc:
            return JobFailed(f"could not fetch a task result from {url}: {exc}")

    # -- jobs ---------------------------------------------------------------------------------

    def submit(
        self,
        rdd: SchedulerRDD,
        func: ResultFunc,
        partitions: list[int] | None = None,
        pool: str = DEFAULT_POOL,
        properties: Mapping[str, str] | None = None,
    ) -> JobHandle:
        """Start a job computing ``func(split_index, iterator)`` on ``partitions`` of ``rdd``.

        Its tasks compete for free slots in scheduling pool ``pool``, and see
        the job's local ``properties`` (``aiospark.scheduler.properties``).
        """
        if self._closing:
            raise JobCancelled("the context is stopped")
        total = len(rdd.splits())
        if partitions is None:
            partitions = list(range(total))
        for p in partitions:
            if not 0 <= p < total:
                raise IndexError(f"partition {p} out of range for {rdd!r} ({total} partitions)")
        if self._unpersisted:  # persisted again since?
            self._unpersisted.difference_update(
                node.id for node in all_ancestors(rdd) if node.storage_level is not None
            )
        stage = self.builder.result_stage(rdd, func)
        stages = self.builder.ancestors(stage)
        bar.check_job(stages, stage, partitions)  # what barrier mode refuses, before any run
        # Serialize up front, so an unpicklable closure fails here, naming the culprit.
        for s in stages:
            self._stage_blob(s)
        self._next_job += 1
        handle = JobHandle(self._next_job, len(partitions), self)
        self.handles[handle.job_id] = handle
        group, description = job_labels(properties) if properties else ("", "")
        if properties:
            self._properties[handle.job_id] = dict(properties)
        self.jobs.submitted(handle.job_id, call_site(), stages, len(partitions), pool,
                            group, description)
        if self.progress.active:
            self.progress.publish({"event": "job_started", "job_id": handle.job_id,
                                   "rdd": repr(rdd), "partitions": len(partitions)})
        self._apply(self.state.handle(
            ev.JobSubmitted(handle.job_id, stage, tuple(partitions), pool)))
        return handle

    def cancel_job(self, job_id: int, error: JobCancelled | None = None) -> None:
        """Stop a job and its tasks on the cluster.

        Its waiters see ``error`` raised; without one (the waiter itself was
        cancelled) the job's futures are cancelled.
        """
        handle = self.handles.pop(job_id, None)
        if handle is None:
            return
        self._properties.pop(job_id, None)
        self.jobs.ended(job_id, "cancelled", "" if error is None else str(error))
        if self.progress.active:
            self.progress.publish({"event": "job_cancelled", "job_id": job_id})
        if error is None:
            for future in (*handle.futures, handle.done):
                future.cancel()
        else:
            handle._fail(error)
        self._apply(self.state.handle(ev.CancelJob(job_id)))

    def add_file(self, name: str, data: bytes, python: bool) -> None:
        """Ship a file to every worker, now and as they join (before any later task)."""
        self.files[name] = (data, python)
        message = encode(AddFile(name, python), data)
        for link in self.links.values():
            link.send(message)

    async def remove_shuffles(self, shuffle_ids: list[int]) -> None:
        """Forget these shuffles' map outputs and delete their files wherever they may be.

        The cleaner calls it once no RDD references them: no running job reads
        them (its stages hold their dependencies).  A shuffle service or worker
        that cannot be reached keeps the files until the application stops.
        """
        urls = {info.shuffle_url.rstrip("/") for info in self.known.values() if info.shuffle_url}
        for shuffle_id in shuffle_ids:
            for output in self.state.map_outputs.get(shuffle_id, ()):
                if output is not None and output.shuffle_url:
                    urls.add(output.shuffle_url.rstrip("/"))
            self._apply(self.state.handle(ev.ShuffleRemoved(shuffle_id)))
        if self._closing:
            return
        limit = asyncio.Semaphore(16)

        async def delete(url: str) -> None:
            async with limit:
                try:
                    async with self.session.delete(
                        url, timeout=aiohttp.ClientTimeout(total=10)
                    ) as resp:
                        if resp.status >= 400:
                            log.warning("could not delete %s: HTTP %s", url, resp.status)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.warning("could not delete %s: %s", url, exc)

        await asyncio.gather(*(
            delete(f"{url}/v1/shuffle/{self.app_id}/{shuffle_id}")
            for shuffle_id in shuffle_ids for url in sorted(urls)
        ))

    def drop_broadcast(self, bid: int) -> None:
        """A broadcast nobody references: drop its blob here and its copies on the workers."""
        self.shared.destroy_broadcast(bid)
        self._unpersist_broadcast(bid)

    def unpersist(self, rdd_id: int) -> None:
        """Forget where an RDD's blocks are, and tell every worker to drop them."""
        self._unpersisted.add(rdd_id)
        self.state.handle(ev.Unpersisted(rdd_id))
        message = encode(Unpersist(rdd_id))
        for link in self.links.values():
            link.send(message)

    # -- commands ------------------------------------------------------------------------------

    def _apply(self, commands: list[Command]) -> None:
        publish = self.progress.publish if self.progress.active else None
        for command in commands:
            if isinstance(command, Launch):
                self._launch(command)
                stage = dag_stage(command.stage)
                if stage.id not in self._stage_counts:
                    self._stage_counts[stage.id] = [0, stage.num_partitions]
                    if publish:
                        kind = "result" if stage.shuffle_dep is None else "shuffle_map"
                        publish({"event": "stage_started", "stage_id": stage.id, "kind": kind,
                                 "tasks": stage.num_partitions})
            elif isinstance(command, PartitionDone):
                handle = self.handles.get(command.job_id)
                if handle is not None:
                    future = handle.futures[command.index]
                    if not future.done():
                        future.set_result(command.result)
            elif isinstance(command, JobFinished):
                handle = self.handles.pop(command.job_id, None)
                if handle is not None and not handle.done.done():
                    handle.done.set_result(None)
                self._properties.pop(command.job_id, None)
                self.jobs.ended(command.job_id, "succeeded")
                if publish:
                    publish({"event": "job_finished", "job_id": command.job_id})
            elif isinstance(command, JobAborted):
                handle = self.handles.pop(command.job_id, None)
                self._properties.pop(command.job_id, None)
                if handle is not None:
                    error = command.error
                    handle._fail(error if isinstance(error, BaseException)
                                 else JobFailed(str(error)))
                self.jobs.ended(command.job_id, "failed", repr(command.error))
                if publish:
                    publish({"event": "job_failed", "job_id": command.job_id,
                             "error": repr(command.error)})
            elif isinstance(command, Cancel):
                link = self.links.get(command.worker_id)
                if link is not None:
                    kill_after = self.state.kill_timeout
                    link.send(encode(CancelTask(
                        command.task_id, -1.0 if kill_after is None else kill_after,
                        if_waiting=command.if_waiting)))
            elif isinstance(command, BarrierReply):
                link = self.links.get(command.worker_id)
                if link is not None:
                    link.send(encode(BarrierAnswer(command.task_id, command.epoch,
                                                   list(command.messages), command.error)))
            elif isinstance(command, Kill):
                self._spawn(self._kill(command))
            elif isinstance(command, StagesFinished):
                self._forget_stages(command.stage_ids)
                for stage_id in command.stage_ids:
                    self._stage_counts.pop(stage_id, None)
        self._arm_timer()

    def _arm_timer(self) -> None:
        """Wake the state machine when a task held back for locality may run anywhere."""
        wake = self.state.wake_at
        if wake is None or (self._timer is not None and self._timer_at <= wake):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = wake
        delay = max(0.0, wake - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._closing:
            self._apply(self.state.handle(ev.Tick()))

    async def _kill(self, command: Kill) -> None:
        """Ask a worker's supervisor to kill the executor where cancelled tasks run on."""
        link = self.links.get(command.worker_id)
        if link is None or not link.info.control_url:
            return  # gone already (or a worker without a supervisor: nothing can be done)
        log.info("tasks %s ignored their cancellation on worker %s: killing its executor",
                 list(command.task_ids), command.worker_id)
        message = KillTasks(self.app_id, list(command.task_ids), pid=link.info.pid)
        try:
            async with self.session.post(
                f"{link.info.control_url}/v1/kill", json=message.to_json(),
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                resp.raise_for_status()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("could not reach the supervisor of %s: %s", command.worker_id, exc)

    def _unpersist_broadcast(self, bid: int) -> None:
        message = encode(UnpersistBroadcast(bid))
        for link in self.links.values():
            if bid in link.broadcasts:
                link.broadcasts.discard(bid)
                link.send(message)

    def _forget_stages(self, stage_ids: tuple[int, ...]) -> None:
        message = encode(ForgetStages(list(stage_ids)))
        for link in self.links.values():
            if link.sent_stages.intersection(stage_ids):
                link.sent_stages.difference_update(stage_ids)
                link.send(message)
        for stage_id in stage_ids:
            self._inputs.pop(stage_id, None)
            self._stage_blobs.pop(stage_id, None)  # made again if the stage ever reruns
            self._stage_broadcasts.pop(stage_id, None)


def _keys(keys: list[list[int]] | list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """``(rdd_id, split)`` block keys from a worker's message (JSON lists)."""
    return tuple((int(rdd_id), int(split)) for rdd_id, split in keys)


def _own_shuffle_url(info: WorkerInfo | None, others: Iterable[WorkerInfo]) -> str | None:
    """The URL a lost worker served its own map outputs at, if it did (it ran without a
    shuffle service: ``--shuffle-url``); None when a shuffle service outlives it.

    >>> def info(worker_id, url, shuffle_url):
    ...     return WorkerInfo(worker_id, url, "h", 1, 0, shuffle_url, "alive")
    >>> _own_shuffle_url(info("w1", "http://h:1", "http://h:1"), [])
    'http://h:1'
    >>> _own_shuffle_url(info("w1", "http://h:1", "http://h:9"), [])   # a shuffle service
    """
    if info is None or not info.shuffle_url:
        return None
    url = info.shuffle_url.rstrip("/")
    if url != info.url.rstrip("/"):
        return None
    if any(other.shuffle_url.rstrip("/") == url for other in others):
        return None
    return url


def _user_error(blob: bytes, remote_traceback: str) -> Exception:
    """The user's exception from a worker, with the worker's traceback as its cause.

    Always an ``Exception``: a ``StopIteration`` (which cannot be set on a
    future) or a ``BaseException`` such as ``SystemExit`` (which would escape
    the event loop) comes wrapped in a ``UserCodeError``.
    """
    try:
        error = cloudpickle.loads(blob)
    except Exception as exc:
        error = JobFailed(f"a task failed and its error could not be loaded: {exc}")
    if not isinstance(error, BaseException):
        error = JobFailed(f"a task failed with {error!r}")
    if remote_traceback:
        error.__cause__ = RemoteTraceback(with_source_lines(remote_traceback))
    if isinstance(error, StopIteration) or not isinstance(error, Exception):
        return UserCodeError.wrapping(error)
    return error
