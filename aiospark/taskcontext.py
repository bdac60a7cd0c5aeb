"""The task running on this thread: its ``TaskContext`` and its accumulator updates.

A worker calls ``begin_task`` before running a task on one of its threads and
``end_task`` after it; in between, code of the task (shared variables, spilling,
shipped files, async functions) finds the task through ``current_task_context``.

>>> begin_task("ctx")
>>> current_task_context(), accumulator_updates()
('ctx', {})
>>> end_task(), current_task_context(), accumulator_updates()
({}, None, None)
"""

from __future__ import annotations

import threading
from typing import Any


class _TaskState(threading.local):
    """What the task running on this thread collects: accumulator updates, broadcast access."""

    updates: dict[int, Any] | None = None
    context: Any = None


_task = _TaskState()


def begin_task(context: Any) -> None:
    """Called by the worker before running a task on this thread."""
    _task.updates = {}
    _task.context = context


def current_task_context() -> Any:
    """The ``TaskContext`` of the task running on this thread, or None outside tasks."""
    return _task.context


def accumulator_updates() -> dict[int, Any] | None:
    """The running task's accumulator updates (aid -> value), or None outside tasks."""
    return _task.updates


def end_task() -> dict[int, Any]:
    """Called by the worker after the task: returns (and forgets) its accumulator updates."""
    updates = _task.updates or {}
    _task.updates = None
    _task.context = None
    return updates
