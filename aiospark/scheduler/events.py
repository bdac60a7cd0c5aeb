"""What happens to the scheduler (its input), as small frozen objects.

Every change to the scheduler's state goes through one entry point,
``SchedulerState.handle(event)``, with one of these.  Being values, events can
be logged and replayed: ``EventLog`` keeps the last ones with the time each
was handled, and ``aiospark.scheduler.replay.replay`` feeds a log to a fresh
state, which decides exactly what the first one did.

>>> log = EventLog(maxlen=2)
>>> for i in range(3):
...     log.record(float(i), WorkerLost(f"w{i}"))
>>> [(t, e.worker_id) for t, e in log.entries], log.dropped
([(1.0, 'w1'), (2.0, 'w2')], 1)
"""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from typing import Any, TypeAlias

from aiospark.scheduler.actions import MapOutput
from aiospark.scheduler.pools import DEFAULT_POOL
from aiospark.scheduler.protocols import SchedulerStage

#: Set to a number of events to keep a log of the last ones in every scheduler state
#: (``SchedulerState.log``); any other non-empty value keeps ``DEFAULT_LOG_SIZE``.
LOG_ENV = "AIOSPARK_SCHEDULER_LOG"
DEFAULT_LOG_SIZE = 100_000

# -- jobs --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class JobSubmitted:
    """A job wants its result stage computed on ``partitions`` (output i is partition i's).

    Its tasks compete for slots in ``pool``.  Job ids must grow with
    submission order: FIFO scheduling runs the lowest first.
    """

    job_id: int
    stage: SchedulerStage
    partitions: tuple[int, ...]
    pool: str = DEFAULT_POOL


@dataclasses.dataclass(frozen=True)
class CancelJob:
    """Forget a job; cancel the tasks no other job needs."""

    job_id: int


# -- tasks -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TaskFinished:
    """A task succeeded: ``result`` for result stages, ``map_output`` for map stages.

    ``cached`` lists the ``(rdd_id, split)`` blocks its worker now holds;
    ``seconds`` is how long it ran there, when its worker says (it tells short
    tasks from long ones, ``SchedulerState.prefetch``).
    """

    task_id: int
    result: object = None
    map_output: MapOutput | None = None
    cached: tuple[tuple[int, int], ...] = ()
    seconds: float | None = None


@dataclasses.dataclass(frozen=True)
class TaskFailed:
    """A task failed with ``error``.

    ``counts`` is False for failures that are nobody's fault (the task was
    cancelled, or refused by a worker leaving); ``blame_worker`` False keeps
    the failure from counting against the worker (it was lost, not flaky).
    """

    task_id: int
    error: object
    counts: bool = True
    blame_worker: bool = True


@dataclasses.dataclass(frozen=True)
class FetchFailed:
    """A task could not read map outputs ``map_ids`` of ``shuffle_id``: they are
    recomputed, then the task is retried."""

    task_id: int
    error: object
    shuffle_id: int
    map_ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class BarrierSync:
    """A barrier task made its ``epoch``-th (from 0) ``barrier()`` or ``all_gather()``
    call (``call``), with ``message``."""

    task_id: int
    barrier_attempt: int
    partition: int
    epoch: int
    call: str
    message: str = ""
    #: where the task runs (to answer a call of an attempt that is over)
    worker_id: str = ""


# -- workers and what they hold ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WorkerAdded:
    """A worker joined (or came back) with ``cores`` task slots."""

    worker_id: str
    host: str
    cores: int


@dataclasses.dataclass(frozen=True)
class WorkerDraining:
    """A worker is leaving: it takes no new tasks; the running ones may finish."""

    worker_id: str


@dataclasses.dataclass(frozen=True)
class WorkerLost:
    """A worker died or was cut off: its tasks run again elsewhere, its cached blocks
    are forgotten.  Its map outputs are not: a shuffle service may still serve them
    (``ShuffleOutputsLost`` says when they went with it)."""

    worker_id: str
    error: object = "worker lost"


@dataclasses.dataclass(frozen=True)
class BlocksCached:
    """A worker holds these ``(rdd_id, split)`` blocks."""

    worker_id: str
    keys: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class BlocksEvicted:
    """A worker no longer holds these blocks (evicted, or it answered "missing")."""

    worker_id: str
    keys: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class Unpersisted:
    """An RDD was unpersisted: forget where its blocks were."""

    rdd_id: int


@dataclasses.dataclass(frozen=True)
class ShuffleOutputsLost:
    """The shuffle service at ``shuffle_url`` is gone: every map output it served is
    recomputed."""

    shuffle_url: str


@dataclasses.dataclass(frozen=True)
class ShuffleRemoved:
    """No RDD references the shuffle any more (the driver's cleaner): forget its map
    outputs.  A stage of a live job never reads such a shuffle: it holds the dependency."""

    shuffle_id: int


@dataclasses.dataclass(frozen=True)
class ShareChanged:
    """The master gave this application ``cores`` of the cluster's cores (None: no cap).

    New launches wait while this many tasks run; running ones are never preempted."""

    cores: int | None


@dataclasses.dataclass(frozen=True)
class Tick:
    """Time passed (``SchedulerState.wake_at`` was reached): place tasks that waited
    for locality or backoff, kill cancelled tasks past their timeout, speculate."""


Event: TypeAlias = (
    JobSubmitted | CancelJob | TaskFinished | TaskFailed | FetchFailed | BarrierSync
    | WorkerAdded
    | WorkerDraining | WorkerLost | BlocksCached | BlocksEvicted | Unpersisted
    | ShuffleOutputsLost | ShuffleRemoved | ShareChanged | Tick
)


class EventLog:
    """The last ``maxlen`` events handled, each with the time it was handled.

    ``options`` are the settings of the state that handled them (a replay
    needs the same); ``dropped`` counts events pushed out of the log (a log
    that dropped some cannot be replayed).
    """

    def __init__(self, maxlen: int = DEFAULT_LOG_SIZE, options: dict[str, Any] | None = None):
        self.entries: deque[tuple[float, Event]] = deque(maxlen=maxlen)
        self.options: dict[str, Any] = dict(options or {})
        self.dropped = 0

    def record(self, time: float, event: Event) -> None:
        if len(self.entries) == self.entries.maxlen:
            self.dropped += 1
        self.entries.append((time, event))

    def __len__(self) -> int:
        return len(self.entries)


def log_size_from_env(environ: dict[str, str] | None = None) -> int:
    """How many events to log, from ``AIOSPARK_SCHEDULER_LOG`` (0: no log).

    >>> log_size_from_env({"AIOSPARK_SCHEDULER_LOG": "500"})
    500
    >>> log_size_from_env({"AIOSPARK_SCHEDULER_LOG": "yes"}), log_size_from_env({})
    (100000, 0)
    """
    value = (os.environ if environ is None else environ).get(LOG_ENV, "").strip()
    if not value or value.lower() in ("0", "false", "no", "off"):
        return 0
    try:
        return max(0, int(value))
    except ValueError:
        return DEFAULT_LOG_SIZE
