"""Running one task on a worker thread: deserialize, compute the split, package the outcome.

This is the only place user code runs.  It runs on a thread of the worker's
pool, never on its event loop, so heartbeats, cancellation and split serving
stay responsive while a CPU-bound task holds the GIL between switch intervals.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future
from typing import Any

import cloudpickle

from aiospark import faults, spill
from aiospark.errors import FetchFailed, TaskCancelled
from aiospark.lineage import StorageLevel
from aiospark.memory import UNLIMITED
from aiospark.protocol import frames
from aiospark.shuffle.layout import shuffle_dir
from aiospark.shuffle.writer import write_map_output
from aiospark.taskcontext import begin_task, end_task
from aiospark.worker.blocks import BlockStore

#: The longest a task waits for the copies of its cached blocks to reach their peers.
REPLICATION_WAIT = 300.0


@dataclasses.dataclass
class TaskSpec:
    """What the driver asked for (already unpacked from the launch message)."""

    app_id: str
    task_id: int
    stage_id: int
    partition: int
    attempt: int
    split_blob: bytes | memoryview
    #: shuffle_id -> [[shuffle_url, [map ids]], ...] for the shuffles this task reads
    shuffle_inputs: dict[str, list]
    #: ids of the broadcasts the task's stage references
    broadcasts: list[int] = dataclasses.field(default_factory=list)
    #: "rdd:split" -> urls of workers holding that cached block (when this one does not)
    remote_blocks: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: "rdd:split" -> urls of the peers to push copies of a replicated block to, best first
    replicate_to: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: the local properties of the job the task runs for
    properties: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class TaskOutcome:
    """What goes back to the driver."""

    ok: bool
    result: bytes | None = None
    map_sizes: list[int] | None = None
    cached: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    error: bytes | None = None
    #: pickled {accumulator id: update} of a successful task, if it added to any
    accumulators: bytes | None = None
    traceback: str = ""
    fetch_failed: FetchFailed | None = None
    cancelled: bool = False
    #: never run: handed back to the driver by a worker leaving the cluster
    refused: bool = False
    #: how long it ran
    seconds: float = 0.0


class StageCache:
    """Deserialized stages, so a stage's pickled lineage is loaded once per worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[tuple[str, int], Any] = {}
        self._loaded: dict[tuple[str, int], Any] = {}

    def add(self, app_id: str, stage_id: int, blob: bytes) -> None:
        with self._lock:
            self._blobs[(app_id, stage_id)] = blob

    def has(self, app_id: str, stage_id: int) -> bool:
        with self._lock:
            return (app_id, stage_id) in self._blobs

    def load(self, app_id: str, stage_id: int) -> Any:
        key = (app_id, stage_id)
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            blob = self._blobs[key]
        value = cloudpickle.loads(blob)
        with self._lock:
            self._loaded[key] = value
        return value

    def drop(self, app_id: str, stage_ids: list[int] | None = None) -> None:
        with self._lock:
            for store in (self._blobs, self._loaded):
                for key in [k for k in store if k[0] == app_id]:
                    if stage_ids is None or key[1] in stage_ids:
                        del store[key]


class WorkerTaskContext:
    """The ``TaskContext`` a split's computation sees on a worker."""

    def __init__(
        self,
        spec: TaskSpec,
        blocks: BlockStore,
        fetch: Callable[[str, int, int, list], Iterator[list]],
        broadcast: Callable[[int], Any] | None = None,
        fetch_block: Callable[[int, int, list[str]], tuple[list | None, list[str]]] | None = None,
        spill_dir: str | None = None,
        replicate: Callable[[int, int, StorageLevel, list[str]], Future[list[str]]] | None = None,
    ) -> None:
        self.app_id = spec.app_id
        self.task_id = spec.task_id
        self.stage_id = spec.stage_id
        self.partition = spec.partition
        self.attempt = spec.attempt
        self.local_properties = spec.properties
        self.cancelled = False
        self.files_dir: str | None = None
        #: this task's share of the worker's memory budget, and where it spills
        self.memory = UNLIMITED
        #: made when first needed; removed with everything in it when the task ends
        self.spill_dir = spill_dir or os.path.join(
            tempfile.gettempdir(), f"aiospark-spill-{uuid.uuid4().hex}")
        self.cached: list[tuple[int, int]] = []
        self._blocks = blocks
        self._fetch = fetch
        self._inputs = spec.shuffle_inputs
        self._broadcast = broadcast
        self._fetch_block = fetch_block
        self._remote_blocks = spec.remote_blocks
        #: (rdd_id, split, url) of blocks a holder said it no longer has
        self.blocks_missing: list[tuple[int, int, str]] = []
        self._replicate = replicate
        self._replicate_to = spec.replicate_to
        #: copies of cached blocks being pushed to peers: (rdd_id, split, future of urls)
        self._pushes: list[tuple[int, int, Future[list[str]]]] = []
        #: (rdd_id, split, url) of the copies peers took (``wait_for_replicas``)
        self.replicas: list[tuple[int, int, str]] = []
        #: a barrier stage's task: its side of ``barrier()`` / ``all_gather()``
        #: (``worker.barrier_calls.BarrierTask``); None otherwise
        self.barrier: Any = None
        #: what ``TaskContext.get()`` gives (None: ``TaskContext`` itself)
        self.context_class: type | None = None

    def broadcast_value(self, bid: int) -> Any:
        if self._broadcast is None:
            raise RuntimeError("this task context cannot read broadcasts")
        return self._broadcast(bid)

    def check(self) -> None:
        if self.cancelled:
            raise TaskCancelled("task cancelled")

    def get_block(self, rdd_id: int, split: int) -> Iterator[Any] | None:
        """A cached split: from this worker's store, else fetched from the worker holding it."""
        local = self._blocks.get(self.app_id, rdd_id, split)
        if local is not None or self._fetch_block is None:
            return local
        urls = self._remote_blocks.get(f"{rdd_id}:{split}")
        if not urls:
            return None
        # Another worker holds it: fetch it rather than recompute (None: recompute).
        records, missing_at = self._fetch_block(rdd_id, split, urls)
        self.blocks_missing.extend((rdd_id, split, url) for url in missing_at)
        return None if records is None else iter(records)

    def put_block(
        self, rdd_id: int, split: int, records: Iterable[Any], level: StorageLevel
    ) -> Iterator[Any]:
        """Cache a split as it is computed, if the budget allows; returns its records."""
        it, kept = self._blocks.put_iterator(self.app_id, rdd_id, split, records, level)
        if kept:
            self.cached.append((rdd_id, split))
            peers = self._replicate_to.get(f"{rdd_id}:{split}")
            if peers and level.replication > 1 and self._replicate is not None:
                # The block is whole in the store: copies go out while the task reads it.
                self._pushes.append((rdd_id, split, self._replicate(rdd_id, split, level, peers)))
        return it

    def wait_for_replicas(self, timeout: float = REPLICATION_WAIT) -> None:
        """Wait for the copies being pushed (``replicas`` lists those taken).

        A push that fails or outlasts ``timeout`` leaves its block with fewer
        copies; it never fails the task.
        """
        pushes, self._pushes = self._pushes, []
        for rdd_id, split, future in pushes:
            if self.cancelled:
                future.cancel()
                continue
            try:
                taken = future.result(timeout=timeout)
            except (TimeoutError, CancelledError):  # (failed pushes are logged by the pusher)
                future.cancel()
                continue
            self.replicas.extend((rdd_id, split, url) for url in taken)

    def fetch_shuffle(self, shuffle_id: int, reduce_id: int) -> Iterator[list]:
        for url, map_ids in self._inputs.get(str(shuffle_id), []):
            self.check()
            yield from self._fetch(url, shuffle_id, reduce_id, map_ids)


def run_task(
    spec: TaskSpec, stages: StageCache, tctx: WorkerTaskContext, shuffle_root: str
) -> TaskOutcome:
    """Compute one task.  Never raises: failures become a failed outcome."""
    started = time.perf_counter()
    begin_task(tctx)
    spills = spill.created
    try:
        outcome = _compute(spec, stages, tctx, shuffle_root)
    finally:
        tctx.wait_for_replicas()
        updates = end_task()
        tctx.memory.release_task()
        if spill.created != spills:  # this task (or another meanwhile) spilled
            shutil.rmtree(tctx.spill_dir, ignore_errors=True)
    if outcome.ok and updates:  # a failed attempt's updates are dropped
        try:
            outcome.accumulators = cloudpickle.dumps(updates)
        except Exception as exc:  # an accumulator value that cannot be pickled
            error = TypeError(f"the task's accumulator updates cannot be pickled: {exc}")
            outcome = TaskOutcome(False, error=pickle_exception(error),
                                  traceback=format_user_traceback(error))
    outcome.seconds = time.perf_counter() - started
    return outcome


def _compute(
    spec: TaskSpec, stages: StageCache, tctx: WorkerTaskContext, shuffle_root: str
) -> TaskOutcome:
    try:
        faults.maybe_fail("task")
        rdd, action = stages.load(spec.app_id, spec.stage_id)
        split = pickle.loads(spec.split_blob)
        records = rdd.iterator(split, tctx)
        if callable(action):
            value = action(spec.partition, records)
            tctx.check()
            return TaskOutcome(True, result=frames.dumps(value), cached=tctx.cached)
        directory = shuffle_dir(shuffle_root, spec.app_id, action.shuffle_id)
        sizes = write_map_output(
            records, action, directory, spec.partition, tctx.memory, tctx.spill_dir
        )
        return TaskOutcome(True, map_sizes=sizes, cached=tctx.cached)
    except TaskCancelled:
        return TaskOutcome(False, cancelled=True)
    except FetchFailed as exc:
        return TaskOutcome(False, fetch_failed=exc, traceback=traceback.format_exc())
    except BaseException as exc:  # user code may raise anything
        return TaskOutcome(False, error=pickle_exception(exc), traceback=format_user_traceback(exc))


def format_user_traceback(exc: BaseException) -> str:
    """The traceback of a user error, without the frames of aiospark's own task machinery."""
    lines = traceback.format_exception(exc)
    return "".join(lines)


def pickle_exception(exc: BaseException) -> bytes:
    """The exception itself when it pickles (and unpickles), else a stand-in with its text."""
    try:
        blob = cloudpickle.dumps(exc)
        pickle.loads(blob)
        return blob
    except Exception:
        stand_in = RuntimeError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
        return cloudpickle.dumps(stand_in)
