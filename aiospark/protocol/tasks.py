"""The messages between a driver and a worker's executor, typed and validated.

They travel as binary WebSocket envelopes (``protocol.envelope``): the message
as the JSON header, with a ``"type"`` naming its class, and its pickled
payloads (split, stage, result, exception, broadcasts) as blobs beside it.
``decode`` refuses any header that is not exactly one of these shapes, naming
the bad field, like the control-plane messages of ``protocol.messages``.

>>> data = encode(CancelTask(task_id=3, kill_after=2.0))
>>> decode(data)
(CancelTask(task_id=3, kill_after=2.0, if_waiting=False), [])
>>> message, blobs = decode(encode(LaunchTask(1, stage_id=2, partition=0, attempt=0), b"split"))
>>> message.stage_id, [bytes(b) for b in blobs]
(2, [b'split'])
>>> decode(pack({"type": "cancel", "task_id": "3"}))
Traceback (most recent call last):
...
aiospark.protocol.envelope.EnvelopeError: CancelTask.task_id: expected int, got str
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, ClassVar

from aiospark.protocol.envelope import EnvelopeError, pack, unpack
from aiospark.protocol.messages import Message, MessageError


@dataclasses.dataclass(frozen=True)
class TaskMessage(Message):
    """Base of the driver <-> executor messages; ``kind`` is the envelope's ``"type"``."""

    kind: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """The fields that differ from their defaults (the others need no sending, nor
        checking on arrival: this is on the path of every task)."""
        defaults = _defaults(typing.cast(type, type(self)))  # a class is hashable
        return {key: value for key, value in self.__dict__.items()
                if key not in defaults or value != defaults[key]}


@functools.cache
def _defaults(cls: type) -> dict[str, Any]:
    """A message class's default field values (fields without one are always sent).

    >>> _defaults(CancelTask)
    {'kill_after': 1.0, 'if_waiting': False}
    """
    found = {}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            found[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            found[field.name] = field.default_factory()
    return found


# -- driver -> executor ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LaunchTask(TaskMessage):
    """Run attempt ``attempt`` of a stage's task for ``partition``.

    Blobs: the pickled split; then the pickled stage when ``stage_included``
    (the first task of a stage this executor sees); then one blob per id in
    ``broadcast_inline``.
    """

    kind: ClassVar[str] = "launch"
    task_id: int
    stage_id: int
    partition: int
    attempt: int
    #: shuffle id -> [[shuffle service URL, [map ids]], ...] for the shuffles the task reads
    inputs: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    stage_included: bool = False
    broadcast_inline: list[int] = dataclasses.field(default_factory=list)
    #: broadcast id -> URLs of workers holding (or fetching) it
    broadcast_sources: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: broadcasts this executor already holds
    broadcast_held: list[int] = dataclasses.field(default_factory=list)
    #: "rdd:split" -> URLs of workers holding that cached block (when this one does not)
    blocks: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: "rdd:split" -> URLs of the peers to push a replicated block to if the task caches
    #: it, best first (``scheduler.replicas``): ``replication - 1`` take a copy
    replicate: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: the local properties of the job the task runs for (``TaskContext.get_local_property``)
    properties: dict[str, str] = dataclasses.field(default_factory=dict)
    #: a barrier stage's task: its barrier attempt's id (-1: not one), the address
    #: (``host:port``) of the worker of each task of the attempt in partition order,
    #: and how long its ``barrier()`` calls may wait for the driver's answer
    barrier_attempt: int = -1
    barrier_peers: list[str] = dataclasses.field(default_factory=list)
    barrier_timeout: float = 0.0


@dataclasses.dataclass(frozen=True)
class BarrierAnswer(TaskMessage):
    """The driver's answer to a barrier task's call number ``epoch``: every task's
    message in partition order, or the ``error`` the call raises."""

    kind: ClassVar[str] = "barrier_answer"
    task_id: int
    epoch: int
    messages: list[str] = dataclasses.field(default_factory=list)
    error: str = ""


@dataclasses.dataclass(frozen=True)
class CancelTask(TaskMessage):
    """Stop a task; if it still runs ``kill_after`` seconds later (say, inside one long
    C call), its process is killed and restarted (never, when negative).  With
    ``if_waiting``, only a task not started yet (queued) is stopped: it is answered as
    cancelled; one that started runs on."""

    kind: ClassVar[str] = "cancel"
    task_id: int
    kill_after: float = 1.0
    if_waiting: bool = False


@dataclasses.dataclass(frozen=True)
class Unpersist(TaskMessage):
    """Drop every cached block of an RDD."""

    kind: ClassVar[str] = "unpersist"
    rdd_id: int


@dataclasses.dataclass(frozen=True)
class ForgetStages(TaskMessage):
    """No job needs these stages any more."""

    kind: ClassVar[str] = "forget_stages"
    stage_ids: list[int]


@dataclasses.dataclass(frozen=True)
class AddFile(TaskMessage):
    """Keep a file (the blob) for the application's tasks; ``python``: importable."""

    kind: ClassVar[str] = "add_file"
    name: str
    python: bool = False


@dataclasses.dataclass(frozen=True)
class UnpersistBroadcast(TaskMessage):
    """Drop a broadcast value."""

    kind: ClassVar[str] = "unpersist_broadcast"
    broadcast_id: int


# -- executor -> driver ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TaskEnded(TaskMessage):
    """What every task outcome says besides success or failure."""

    task_id: int
    seconds: float = 0.0
    #: blocks the task cached that this executor still holds: [[rdd_id, split], ...]
    cached: list[list[int]] = dataclasses.field(default_factory=list)
    #: blocks evicted since the last report
    evicted: list[list[int]] = dataclasses.field(default_factory=list)
    #: [[rdd_id, split, url], ...] of blocks a holder said it no longer has
    blocks_missing: list[list[Any]] = dataclasses.field(default_factory=list)
    #: [[rdd_id, split, url], ...] of copies of blocks the task cached that peers took
    replicas: list[list[Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class TaskSucceeded(TaskEnded):
    """A task finished.  A map task gives ``map_sizes``; a result task its pickled result
    as blob 0, or ``result_url`` to fetch a large one from.  ``acc_blob`` is the index
    of the blob holding its accumulator updates."""

    kind: ClassVar[str] = "success"
    map_sizes: list[int] | None = None
    result_url: str | None = None
    acc_blob: int | None = None


#: Why a task failed: the user's code raised (blob 0 is the pickled exception), it was
#: cancelled, it could not read a map output, or a draining executor refused it.
FAILURE_REASONS = ("error", "cancelled", "fetch_failed", "draining")


@dataclasses.dataclass(frozen=True)
class TaskFailed(TaskEnded):
    """A task did not finish; ``reason`` is one of ``FAILURE_REASONS``."""

    kind: ClassVar[str] = "failure"
    reason: str = "error"
    traceback: str = ""
    #: with ``fetch_failed``: shuffle_id, map_ids, url, message
    fetch: dict[str, Any] | None = None
    #: broadcasts this executor could not fetch (and forgot)
    broadcast_failed: list[int] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.reason not in FAILURE_REASONS:
            raise MessageError(f"TaskFailed.reason: expected one of {FAILURE_REASONS}, "
                               f"got {self.reason!r}")


@dataclasses.dataclass(frozen=True)
class BarrierCall(TaskMessage):
    """A barrier task called ``barrier()`` or ``all_gather(message)`` (``call``), its
    ``epoch``-th such call (from 0); the task waits for a ``BarrierAnswer``."""

    kind: ClassVar[str] = "barrier_call"
    task_id: int
    barrier_attempt: int
    partition: int
    epoch: int
    call: str
    message: str = ""


@dataclasses.dataclass(frozen=True)
class BlocksEvicted(TaskMessage):
    """Cached blocks this executor dropped (to make room)."""

    kind: ClassVar[str] = "blocks"
    evicted: list[list[int]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Draining(TaskMessage):
    """The worker is leaving the cluster: send it no more tasks."""

    kind: ClassVar[str] = "draining"


@dataclasses.dataclass(frozen=True)
class Refused(TaskMessage):
    """A message the executor could not use (not about one task)."""

    kind: ClassVar[str] = "error"
    error: str


MESSAGES: dict[str, type[TaskMessage]] = {
    cls.kind: cls
    for cls in (LaunchTask, CancelTask, Unpersist, ForgetStages, AddFile, UnpersistBroadcast,
                BarrierAnswer, TaskSucceeded, TaskFailed, BarrierCall, BlocksEvicted, Draining,
                Refused)
}


def encode(message: TaskMessage, *blobs: bytes | bytearray | memoryview) -> bytes:
    """One envelope carrying ``message`` and its blobs."""
    return pack({"type": message.kind, **message.to_json()}, *blobs)


def decode(data: bytes | bytearray) -> tuple[TaskMessage, list[memoryview]]:
    """The message and blobs of an envelope; ``EnvelopeError`` names what is wrong."""
    header, blobs = unpack(data)
    kind = header.pop("type")
    header.pop("blobs", None)
    cls = MESSAGES.get(kind)
    if cls is None:
        raise EnvelopeError(f"unknown message type {kind!r}")
    try:
        return cls.from_json(header), blobs
    except (MessageError, TypeError) as exc:
        raise EnvelopeError(str(exc)) from None


def task_id_of(data: bytes | bytearray) -> int | None:
    """The ``task_id`` of a launch that failed to decode, to answer it (None if unknown).

    >>> task_id_of(pack({"type": "launch", "task_id": 4, "partition": "x"}))
    4
    """
    try:
        header, _ = unpack(data)
    except EnvelopeError:
        return None
    task_id = header.get("task_id")
    if header.get("type") == "launch" and type(task_id) is int:
        return task_id
    return None
