"""The executor's decisions about its tasks, as a pure state machine: events in, instructions out.

Nothing here does I/O or knows about asyncio.  The executor's shell
(``aiospark.worker.executor_server``) feeds it events (a driver connected or went away, a
launch or a cancel arrived, a task ended, time passed, the worker drains) and
carries out the instructions it returns: start a task, refuse it, interrupt it
(set its cancel flag, which the task's iterators check), forget an
application's data, or ask the supervisor to kill this process because a
cancelled task did not stop in time.  Killing the process is the only way to
stop user code that never reaches a check (one long C call, a blocking
sleep): its cached blocks go with it, and the drivers recompute them.

>>> state = WorkerState()
>>> state.driver_connected("app-1")
[]
>>> state.launch("app-1", 7, now=0.0)
[Start(app_id='app-1', task_id=7)]
>>> state.cancel("app-1", 7, now=10.0, kill_after=2.0)
[Interrupt(app_id='app-1', task_id=7)]
>>> state.wake_at
12.0
>>> state.tick(now=11.0)
[]
>>> state.tick(now=12.5)
[Kill(reason='task 7 of app-1 ignored its cancellation for 2.5 s')]
>>> state.ended("app-1", 7)
[ReportLoad()]

With ``cores`` set, at most that many tasks run at once, whichever drivers launched
them; a launch that finds every core busy waits in a FIFO queue and starts when a
core frees (a queued task that is cancelled is dropped, and answered at once).
``queue`` more per core may start early, to wait in front of the executor's task
threads (``worker.lanes``), which run them back to back:

>>> state = WorkerState(cores=1)
>>> state.launch("a", 1, now=0.0), state.launch("b", 1, now=0.0)
([Start(app_id='a', task_id=1)], [])
>>> state.running, state.queued
(1, 1)
>>> state.ended("a", 1)
[Start(app_id='b', task_id=1)]
"""

from __future__ import annotations

import dataclasses

#: Seconds a cancelled task may keep running before its process is killed, unless the
#: driver says otherwise in its cancel message.
DEFAULT_KILL_AFTER = 1.0

# -- instructions --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Start:
    """Run the launched task."""

    app_id: str
    task_id: int


@dataclasses.dataclass(frozen=True)
class Refuse:
    """Answer the launch with a failure that does not count (``reason``) instead of running it."""

    app_id: str
    task_id: int
    reason: str


@dataclasses.dataclass(frozen=True)
class Unqueue:
    """A queued (never started) task was cancelled: answer it as cancelled."""

    app_id: str
    task_id: int


@dataclasses.dataclass(frozen=True)
class Interrupt:
    """Set the task's cancel flag: it stops at its next check."""

    app_id: str
    task_id: int


@dataclasses.dataclass(frozen=True)
class DropApp:
    """No driver of the application is connected any more: forget its data."""

    app_id: str


@dataclasses.dataclass(frozen=True)
class Kill:
    """Ask the supervisor to kill this process (and start a fresh one)."""

    reason: str


@dataclasses.dataclass(frozen=True)
class ReportLoad:
    """Tell the supervisor the running tasks now, not at the next interval."""


Instruction = Start | Refuse | Unqueue | Interrupt | DropApp | Kill | ReportLoad


@dataclasses.dataclass
class _Task:
    app_id: str
    task_id: int
    #: when the task was first cancelled, and when its process is killed if it still runs
    cancelled_at: float | None = None
    kill_at: float | None = None


class WorkerState:
    """The tasks one executor runs, the drivers it serves, and whether it drains."""

    def __init__(self, cores: int | None = None, queue: int = 0) -> None:
        #: the most tasks running at once (None: no limit)
        self.cores = cores
        #: the most tasks started at once: running, or next in front of a task thread
        self.slots = None if cores is None else cores * (1 + queue)
        self.tasks: dict[tuple[str, int], _Task] = {}
        #: launches waiting for a free core, oldest first
        self.waiting: list[tuple[str, int]] = []
        #: application id -> connected driver sessions
        self.drivers: dict[str, int] = {}
        #: leaving the cluster: no new tasks
        self.draining = False
        #: a kill was asked for; nothing more to decide until the process is gone
        self.killing = False
        #: when ``tick`` has something to decide (the earliest kill deadline)
        self.wake_at: float | None = None

    @property
    def running(self) -> int:
        """Tasks started and not yet ended (cancelled ones, and those started early to
        wait for a task thread, included).

        >>> state = WorkerState(); _ = state.launch("a", 1, now=0.0); state.running
        1
        """
        return len(self.tasks)

    @property
    def queued(self) -> int:
        """Launches waiting for a free core."""
        return len(self.waiting)

    # -- events ------------------------------------------------------------------------

    def driver_connected(self, app_id: str) -> list[Instruction]:
        """A driver of ``app_id`` opened a session."""
        self.drivers[app_id] = self.drivers.get(app_id, 0) + 1
        return []

    def driver_gone(self, app_id: str, now: float, kill_after: float = DEFAULT_KILL_AFTER
                    ) -> list[Instruction]:
        """A driver's session closed: its tasks are cancelled; with its last session
        gone, the application's data is dropped.

        >>> state = WorkerState(); _ = state.driver_connected("a")
        >>> _ = state.launch("a", 1, now=0.0)
        >>> state.driver_gone("a", now=1.0)
        [Interrupt(app_id='a', task_id=1), DropApp(app_id='a')]
        """
        left = self.drivers.get(app_id, 0) - 1
        if left > 0:
            self.drivers[app_id] = left
            return []
        self.drivers.pop(app_id, None)
        self.waiting = [k for k in self.waiting if k[0] != app_id]
        instructions: list[Instruction] = []
        for key in sorted(k for k in self.tasks if k[0] == app_id):
            instructions.extend(self.cancel(app_id, key[1], now, kill_after))
        instructions.append(DropApp(app_id))
        return instructions

    def launch(self, app_id: str, task_id: int, now: float) -> list[Instruction]:
        """A driver asks for a task; refused while draining.

        >>> state = WorkerState(); _ = state.drain()
        >>> state.launch("a", 1, now=0.0)
        [Refuse(app_id='a', task_id=1, reason='draining')]
        """
        if self.draining:
            return [Refuse(app_id, task_id, "draining")]
        key = (app_id, task_id)
        if key in self.tasks or key in self.waiting:
            return []  # a duplicate launch: the first one runs
        if self.slots is not None and (self.waiting or len(self.tasks) >= self.slots):
            self.waiting.append(key)  # every core is busy: wait for one
            return []
        self.tasks[key] = _Task(app_id, task_id)
        return [Start(app_id, task_id)]

    def cancel(self, app_id: str, task_id: int, now: float,
               kill_after: float = DEFAULT_KILL_AFTER) -> list[Instruction]:
        """Stop a task: interrupt it now, kill the process if it still runs ``kill_after``
        seconds later (never, when ``kill_after`` is negative).

        >>> WorkerState().cancel("a", 99, now=0.0)  # not running (any more): nothing to do
        []
        """
        if (app_id, task_id) in self.waiting:
            self.waiting.remove((app_id, task_id))
            return [Unqueue(app_id, task_id)]
        task = self.tasks.get((app_id, task_id))
        if task is None:
            return []
        if task.cancelled_at is None:
            task.cancelled_at = now
        if kill_after >= 0:
            deadline = now + kill_after
            task.kill_at = deadline if task.kill_at is None else min(task.kill_at, deadline)
            self._wake()
        return [Interrupt(app_id, task_id)]

    def ended(self, app_id: str, task_id: int) -> list[Instruction]:
        """A task finished, failed or stopped; a cancelled one is reported at once (a kill
        asked for it is then moot)."""
        task = self.tasks.pop((app_id, task_id), None)
        instructions: list[Instruction] = []
        if task is not None and task.kill_at is not None:
            self._wake()
            instructions.append(ReportLoad())
        return instructions + self._start_waiting()

    def _start_waiting(self) -> list[Instruction]:
        """Start queued launches on the free cores, oldest first."""
        started: list[Instruction] = []
        while self.waiting and not self.draining and not self.killing and (
                self.slots is None or len(self.tasks) < self.slots):
            app_id, task_id = self.waiting.pop(0)
            self.tasks[(app_id, task_id)] = _Task(app_id, task_id)
            started.append(Start(app_id, task_id))
        return started

    def drain(self) -> list[Instruction]:
        """The worker leaves the cluster: take no new tasks (queued ones are refused, so
        their drivers run them elsewhere); running ones may finish."""
        self.draining = True
        refused: list[Instruction] = [Refuse(a, t, "draining") for a, t in self.waiting]
        self.waiting = []
        return refused

    def tick(self, now: float) -> list[Instruction]:
        """Time passed: kill the process if a cancelled task outlived its deadline."""
        if self.killing:
            return []
        late = [t for t in self.tasks.values() if t.kill_at is not None and t.kill_at <= now]
        if not late:
            self._wake()
            return []
        self.killing = True
        self.wake_at = None
        first = min(late, key=lambda t: (t.kill_at, t.app_id, t.task_id))
        waited = now - (first.cancelled_at or now)
        return [Kill(f"task {first.task_id} of {first.app_id} ignored its cancellation "
                     f"for {waited:.1f} s")]

    def _wake(self) -> None:
        deadlines = [t.kill_at for t in self.tasks.values() if t.kill_at is not None]
        self.wake_at = min(deadlines) if deadlines and not self.killing else None
