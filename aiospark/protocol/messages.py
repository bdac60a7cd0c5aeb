"""Typed JSON control messages, validated field by field.

Every message is a frozen dataclass.  ``from_json`` refuses anything that is
not exactly the declared shape, with an error naming the bad field, so HTTP
handlers can answer 400 with a useful message.

>>> Heartbeat.from_json({"worker_id": "w1", "running_tasks": 2, "memory_used": 10}).memory_used
10
>>> Heartbeat.from_json({"worker_id": "w1", "running_tasks": "two", "memory_used": 0})
Traceback (most recent call last):
...
aiospark.protocol.messages.MessageError: Heartbeat.running_tasks: expected int, got str
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Self

from aiohttp import web

from aiospark.protocol.jsonbody import read_json


class MessageError(ValueError):
    """A control message does not have the declared shape."""


def _check(value: Any, kind: Any, where: str) -> Any:
    """``value`` if it has the shape ``kind`` (a type hint), else ``MessageError``."""
    return _checker(kind)(value, where)


@functools.cache
def _checker(kind: Any) -> Callable[[Any, str], Any]:
    """A function checking values against ``kind``, made once per type hint (checking is
    on the path of every task: inspecting the hint each time would cost more than JSON)."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return lambda value, where: value
    if origin in (typing.Union, types.UnionType):
        options = [_checker(option) for option in typing.get_args(kind)]
        names = " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(kind))

        def check_union(value: Any, where: str) -> Any:
            for option in options:
                try:
                    return option(value, where)
                except MessageError:
                    continue
            raise MessageError(f"{where}: expected {names}, got {type(value).__name__}")

        return check_union
    if kind is type(None):

        def check_none(value: Any, where: str) -> Any:
            if value is not None:
                raise MessageError(f"{where}: expected null, got {type(value).__name__}")
            return value

        return check_none
    if origin is list:
        (item_kind,) = typing.get_args(kind) or (Any,)
        item = None if item_kind is Any else _checker(item_kind)

        def check_list(value: Any, where: str) -> Any:
            if not isinstance(value, list):
                raise MessageError(f"{where}: expected list, got {type(value).__name__}")
            if item is None:
                return value
            try:
                return [item(v, where) for v in value]
            except MessageError:  # again, naming the bad item (only when there is one)
                return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]

        return check_list
    if origin is dict:
        _, item_kind = typing.get_args(kind) or (str, Any)
        item = _checker(item_kind)

        def check_dict(value: Any, where: str) -> Any:
            if not isinstance(value, dict):
                raise MessageError(f"{where}: expected object, got {type(value).__name__}")
            try:
                return {str(k): item(v, where) for k, v in value.items()}
            except MessageError:  # again, naming the bad item (only when there is one)
                return {str(k): item(v, f"{where}.{k}") for k, v in value.items()}

        return check_dict
    if isinstance(kind, type) and issubclass(kind, Message):
        return lambda value, where: kind.from_json(value)

    def check_plain(value: Any, where: str) -> Any:
        if type(value) is kind:
            return value
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, bool):
            raise MessageError(f"{where}: expected int, got bool")
        if not isinstance(value, kind):
            raise MessageError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
        return value

    return check_plain


@functools.cache
def _shape(cls: type) -> tuple[dict[str, Callable[[Any, str], Any]], frozenset[str],
                                frozenset[str]]:
    """A message class's checker per field, its fields, and those without a default
    (resolving the types is slow: once per class)."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    required = frozenset(
        f.name for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    return {f.name: _checker(hints[f.name]) for f in fields}, frozenset(hints) & {
        f.name for f in fields}, required


@dataclasses.dataclass(frozen=True)
class Message:
    """Base of all control messages."""

    _hints: ClassVar[dict[str, Any]]

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Validate a decoded JSON object and build the message."""
        name = cls.__name__
        if not isinstance(data, dict):
            raise MessageError(f"{name}: expected a JSON object, got {type(data).__name__}")
        checkers, fields, required = _shape(typing.cast(type, cls))  # a dataclass: hashable
        if not fields.issuperset(data):
            unknown = sorted(set(data) - fields)
            raise MessageError(f"{name}: unknown field {unknown[0]!r}")
        try:
            values = {key: checkers[key](value, key) for key, value in data.items()}
        except MessageError as exc:
            raise MessageError(f"{name}.{exc}") from None
        if not required.issubset(data):
            missing = [f for f in checkers if f in required and f not in data]
            raise MessageError(f"{name}.{missing[0]}: missing")
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The message as a JSON-ready dict."""
        return dataclasses.asdict(self)


async def read_message(request: web.Request, cls: type[Message]) -> Any:
    """Parse a request body as ``cls``, answering 400 with the reason when it is not."""
    data = await read_json(request)  # bounded: 400 for deep, huge or non-UTF-8 JSON
    try:
        return cls.from_json(data)
    except MessageError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": str(exc)}), content_type="application/json"
        ) from None


# -- worker <-> master -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RegisterWorker(Message):
    """A worker announcing itself to the master."""

    worker_id: str
    url: str
    host: str
    cores: int
    memory_bytes: int
    shuffle_url: str
    #: the executor's process id: a new one means the executor was restarted
    pid: int = 0
    #: the supervisor's URL (``POST /v1/kill``); empty for workers without one
    control_url: str = ""


@dataclasses.dataclass(frozen=True)
class KillTasks(Message):
    """A driver asks a worker's supervisor to kill its executor, because these cancelled
    tasks still run there after their kill timeout.

    >>> KillTasks.from_json({"app_id": "app-1", "task_ids": [4, 5], "pid": 812}).task_ids
    [4, 5]
    """

    app_id: str
    task_ids: list[int]
    #: the executor the driver saw them run in (another one is not killed for them)
    pid: int
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class CachedRDD(Message):
    """The blocks of one persisted RDD that one worker holds.

    >>> CachedRDD("app-1", 7, splits=3, memory_bytes=4096, disk_bytes=0).splits
    3
    """

    app_id: str
    rdd_id: int
    splits: int
    memory_bytes: int
    disk_bytes: int


@dataclasses.dataclass(frozen=True)
class Heartbeat(Message):
    """A worker's periodic proof of life, with its load and what it caches.

    ``memory_used`` is storage plus execution memory, charged against the
    worker's budget (``RegisterWorker.memory_bytes``).

    >>> beat = Heartbeat("w1", 0, 300, storage_used=200, execution_used=100,
    ...                  cached=[CachedRDD("app-1", 7, 2, 200, 0)])
    >>> Heartbeat.from_json(beat.to_json()) == beat
    True
    """

    worker_id: str
    running_tasks: int
    memory_used: int
    storage_used: int = 0
    execution_used: int = 0
    cached: list[CachedRDD] = dataclasses.field(default_factory=list)
    #: tasks this worker process ended, by outcome, since it started (for ``/metrics``)
    tasks_succeeded: int = 0
    tasks_failed: int = 0
    tasks_cancelled: int = 0
    #: bytes this worker process spilled to disk since it started
    spilled_bytes: int = 0


@dataclasses.dataclass(frozen=True)
class WorkerInfo(Message):
    """What the master tells drivers about a worker."""

    worker_id: str
    url: str
    host: str
    cores: int
    memory_bytes: int
    shuffle_url: str
    state: str
    running_tasks: int = 0
    memory_used: int = 0
    last_heartbeat: float = 0.0
    pid: int = 0
    storage_used: int = 0
    execution_used: int = 0
    #: the persisted RDDs this worker holds blocks of (as of its last heartbeat)
    cached: list[CachedRDD] = dataclasses.field(default_factory=list)
    tasks_succeeded: int = 0
    tasks_failed: int = 0
    tasks_cancelled: int = 0
    spilled_bytes: int = 0
    control_url: str = ""


@dataclasses.dataclass(frozen=True)
class ClusterEvent(Message):
    """Pushed by the master to drivers: ``snapshot``, ``worker_added``, ``worker_lost``
    (no heartbeat), ``worker_left`` (deregistered after draining) or ``share``: the
    most tasks this driver's application may run at once (``cores``; None: no cap)."""

    kind: str
    workers: list[WorkerInfo] = dataclasses.field(default_factory=list)
    cores: int | None = None


# -- driver -> master: job progress for the status page ------------------------

#: A job's states: the first is live, the others final.
JOB_STATES = ("running", "succeeded", "failed", "cancelled")
#: A stage's states within a job (``skipped``: its map outputs existed already;
#: ``stopped``: the job failed or was cancelled before the stage was done).
STAGE_STATES = ("waiting", "running", "done", "skipped", "stopped")
#: Longest job description, error or application name a driver may report.
MAX_TEXT = 1000
#: Most jobs in one report, and stages in one job.
MAX_ITEMS = 1000
#: Ended jobs of one application kept: by its driver, to tell a master that restarted,
#: and by the master, to show.
KEEP_ENDED = 50


def _require(ok: bool, where: str, problem: str) -> None:
    if not ok:
        raise MessageError(f"{where}: {problem}")


def _counts_ok(message: Message, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(message, name)
        _require(value >= 0, f"{type(message).__name__}.{name}", f"must be >= 0, got {value}")


def _text_ok(message: Message, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(message, name)
        _require(len(value) <= MAX_TEXT, f"{type(message).__name__}.{name}",
                 f"longer than {MAX_TEXT} characters")


@dataclasses.dataclass(frozen=True)
class StageReport(Message):
    """One stage of a job as its driver sees it: tasks done and running out of ``tasks``.

    >>> StageReport(3, "shuffle_map", tasks=8, done=5, running=2, state="running").done
    5
    >>> StageReport.from_json({"stage_id": 3, "kind": "map", "tasks": 8})
    Traceback (most recent call last):
    ...
    aiospark.protocol.messages.MessageError: StageReport.kind: must be 'shuffle_map' or 'result'
    """

    stage_id: int
    kind: str
    tasks: int
    done: int = 0
    running: int = 0
    state: str = "waiting"

    def __post_init__(self) -> None:
        _require(self.kind in ("shuffle_map", "result"), "StageReport.kind",
                 "must be 'shuffle_map' or 'result'")
        _require(self.state in STAGE_STATES, "StageReport.state",
                 f"must be one of {', '.join(STAGE_STATES)}")
        _counts_ok(self, ("stage_id", "tasks", "done", "running"))
        _require(self.done <= self.tasks, "StageReport.done", "more than tasks")


@dataclasses.dataclass(frozen=True)
class JobReport(Message):
    """One job of a driver: what it computes, its state and its stages.

    ``description`` names the action and where the user's code called it;
    ``user_description`` is what the program said of the job
    (``Context.set_job_description``) and ``group`` its job group
    (``Context.set_job_group``), both empty when unset; ``submitted`` and
    ``completed`` are Unix times (``completed`` is null while the job runs).

    >>> job = JobReport(1, "count at app.py:12", "running", 1700000000.0, None, 4,
    ...                 stages=[StageReport(1, "result", 4, done=1, running=2,
    ...                                     state="running")])
    >>> JobReport.from_json(job.to_json()) == job
    True
    >>> JobReport.from_json({**job.to_json(), "state": "done"})
    Traceback (most recent call last):
    ...
    aiospark.protocol.messages.MessageError: JobReport.state: must be one of running, ...
    """

    job_id: int
    description: str
    state: str
    submitted: float
    completed: float | None
    partitions: int
    error: str = ""
    stages: list[StageReport] = dataclasses.field(default_factory=list)
    #: the scheduling pool the job's tasks compete in (``Context.pool``)
    pool: str = "default"
    #: the job group (``Context.set_job_group``), "" when none
    group: str = ""
    #: the program's description of the job (``Context.set_job_description``), "" when none
    user_description: str = ""

    def __post_init__(self) -> None:
        _require(self.state in JOB_STATES, "JobReport.state",
                 f"must be one of {', '.join(JOB_STATES)}")
        _counts_ok(self, ("job_id", "partitions"))
        _text_ok(self, ("description", "error", "pool", "group", "user_description"))
        _require(len(self.stages) <= MAX_ITEMS, "JobReport.stages",
                 f"more than {MAX_ITEMS} stages")


@dataclasses.dataclass(frozen=True)
class JobsReport(Message):
    """What a driver tells the master about its jobs (``POST /v1/apps/{app_id}/jobs``).

    Only jobs that changed since the last report, unless the master asks for
    everything again (it answers ``{"resync": true}`` when it did not know the
    application, e.g. after a restart).

    >>> JobsReport.from_json({"app_name": "etl", "jobs": []}).app_name
    'etl'
    """

    app_name: str
    jobs: list[JobReport]

    def __post_init__(self) -> None:
        _text_ok(self, ("app_name",))
        _require(len(self.jobs) <= MAX_ITEMS, "JobsReport.jobs", f"more than {MAX_ITEMS} jobs")
