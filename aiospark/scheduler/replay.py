"""Replaying a scheduler's event log (``SchedulerState.log``, kept when
``AIOSPARK_SCHEDULER_LOG`` is set): the same events at the same clock readings,
fed to a fresh state with the same settings, make the same decisions.  To debug
a scheduling decision, replay the log up to the event that made it.
"""

from __future__ import annotations

from aiospark.scheduler.actions import Action
from aiospark.scheduler.events import EventLog
from aiospark.scheduler.state import SchedulerState


def replay(log: EventLog) -> list[list[Action]]:
    """Feed a logged run's events to a fresh state (same settings, same clock readings):
    the actions it decides, event by event, are the ones the logged run decided.

    >>> from types import SimpleNamespace as NS
    >>> from aiospark.scheduler.events import JobSubmitted, WorkerAdded
    >>> from aiospark.scheduler.state import SchedulerState
    >>> state = SchedulerState(log=100)
    >>> stage = NS(id=1, num_partitions=1, parents=[], shuffle_id=None,
    ...            preferred=lambda partition, cache: [])
    >>> first = [state.handle(WorkerAdded("w1", "h", 1)),
    ...          state.handle(JobSubmitted(1, stage, (0,)))]
    >>> replay(state.log) == first
    True
    """
    if log.dropped:
        raise ValueError(
            f"the log dropped its first {log.dropped} events: it cannot be replayed")
    times = iter([t for t, _ in log.entries])
    state = SchedulerState(clock=lambda: next(times), log=0, **log.options)
    return [state.handle(event) for _, event in log.entries]
