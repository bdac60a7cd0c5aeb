"""What the scheduler's state machine asks its shell to do (its output).

``SchedulerState.handle(event)`` returns a list of these; the async shell
(``aiospark.scheduler.runner``) carries them out in order.

>>> Cancel(task_id=7, worker_id="w1")
Cancel(task_id=7, worker_id='w1', if_waiting=False)
"""

from __future__ import annotations

import dataclasses
from typing import TypeAlias

from aiospark.scheduler.protocols import SchedulerStage


@dataclasses.dataclass(frozen=True)
class MapOutput:
    """Where one map task's shuffle output lives."""

    worker_id: str
    shuffle_url: str
    sizes: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Launch:
    """Run attempt ``attempt`` of ``stage``'s task for ``partition`` on ``worker_id``.

    A task of a barrier stage also carries its barrier attempt's id and the
    workers of all its tasks, in partition order (``peers``; empty otherwise).
    """

    task_id: int
    stage: SchedulerStage
    partition: int
    attempt: int
    worker_id: str
    barrier_attempt: int = -1
    peers: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Cancel:
    """Stop a running task; its outcome no longer matters.

    With ``if_waiting``, only if the worker has not started it yet (it was queued
    there): the worker then answers it as cancelled, and the task runs elsewhere;
    else it runs on and its outcome counts.
    """

    task_id: int
    worker_id: str
    if_waiting: bool = False


@dataclasses.dataclass(frozen=True)
class Kill:
    """Cancelled tasks still run on ``worker_id`` past the kill timeout: have its
    supervisor kill (and restart) the process running them."""

    worker_id: str
    task_ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class PartitionDone:
    """Output ``index`` of job ``job_id`` is ready: ``result`` is what the task returned."""

    job_id: int
    index: int
    result: object


@dataclasses.dataclass(frozen=True)
class JobFinished:
    """Every output of the job has been delivered."""

    job_id: int


@dataclasses.dataclass(frozen=True)
class JobAborted:
    """The job cannot finish; ``error`` (the last task's exception, usually) says why."""

    job_id: int
    error: object


@dataclasses.dataclass(frozen=True)
class StagesFinished:
    """No job needs these stages any more; workers may drop what they cached for them."""

    stage_ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class BarrierReply:
    """Answer a barrier task's ``barrier()`` / ``all_gather()`` call number ``epoch``
    (from 0): every task's message in partition order, or the ``error`` it raises."""

    task_id: int
    worker_id: str
    epoch: int
    messages: tuple[str, ...] = ()
    error: str = ""


Command: TypeAlias = (
    Launch | Cancel | Kill | PartitionDone | JobFinished | JobAborted | StagesFinished
    | BarrierReply
)
#: Another name for a command: what one event makes the scheduler do.
Action: TypeAlias = Command
