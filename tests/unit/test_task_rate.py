"""The pieces that let short tasks run back to back (issue 13's control path).

- the scheduler's ``prefetch``: a busy worker gets short tasks queued, long ones never;
- the executor's task threads (``worker.lanes``): order, batched hand-over, withdrawal;
- the executor state's ``queue``: tasks started early, still capped;
- batch frames (``protocol.envelope``) and the session's held results.
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from aiospark.protocol.envelope import EnvelopeError, batches, pack_batch, split_batch
from aiospark.protocol.tasks import CancelTask, TaskSucceeded, decode, encode
from aiospark.scheduler import events as ev
from aiospark.scheduler.state import Cancel, Launch, SchedulerState
from aiospark.scheduler.tasksets import SHORT_TASK
from aiospark.worker.lanes import Lanes
from aiospark.worker.session import HOLD_SECONDS, DriverSession
from aiospark.worker.state import Start, WorkerState
from tests.conftest import wait_until

# -- the scheduler's prefetch ------------------------------------------------------------


def stage(stage_id: int, partitions: int) -> SimpleNamespace:
    return SimpleNamespace(id=stage_id, num_partitions=partitions, parents=[], shuffle_id=None,
                           preferred=lambda partition, cache: [])


def launches(commands) -> list[Launch]:
    return [c for c in commands if isinstance(c, Launch)]


def run_job(state: SchedulerState, partitions: int, seconds: float, workers: int = 1):
    """Submit a job, finish its tasks as they come (each having run ``seconds``); return
    the most tasks any worker held at once."""
    for w in range(workers):
        state.handle(ev.WorkerAdded(f"w{w}", "h", 1))
    pending = launches(state.handle(ev.JobSubmitted(1, stage(1, partitions), tuple(
        range(partitions)))))
    most = 0
    while pending:
        held: dict[str, int] = {}
        for task in state.tasks.values():
            held[task.worker_id] = held.get(task.worker_id, 0) + 1
        most = max(most, *held.values())
        done = pending.pop(0)
        pending += launches(state.handle(ev.TaskFinished(done.task_id, result=done.partition,
                                                         seconds=seconds)))
    assert not state.tasks and not state.jobs
    return most


def test_short_tasks_are_queued_on_a_busy_worker():
    assert run_job(SchedulerState(prefetch=3), 20, seconds=SHORT_TASK / 10) == 4


def test_long_tasks_only_go_to_free_cores():
    assert run_job(SchedulerState(prefetch=3), 20, seconds=SHORT_TASK * 10) == 1


def test_without_prefetch_a_worker_holds_one_task_per_core():
    assert run_job(SchedulerState(), 20, seconds=SHORT_TASK / 10) == 1


def test_no_prefetch_while_the_share_is_below_the_cluster():
    state = SchedulerState(prefetch=3)
    state.handle(ev.ShareChanged(1))
    assert run_job(state, 20, seconds=SHORT_TASK / 10, workers=2) == 1


def test_a_new_stage_of_unknown_length_stops_prefetch_until_its_tasks_are_short():
    state = SchedulerState(prefetch=3)
    state.handle(ev.WorkerAdded("w0", "h", 1))
    first = launches(state.handle(ev.JobSubmitted(1, stage(1, 50), tuple(range(50)))))
    for _ in range(2):  # two short tasks: the stage is short, the worker gets a queue
        first += launches(state.handle(ev.TaskFinished(first.pop(0).task_id, seconds=0.001)))
    assert len(state.tasks) == 4
    # A second job's stage, of unknown length: nothing more is queued for now.
    second = launches(state.handle(ev.JobSubmitted(2, stage(2, 5), tuple(range(5)))))
    assert second == []
    more = launches(state.handle(ev.TaskFinished(first.pop(0).task_id, seconds=0.001)))
    assert len(more) == 0 and len(state.tasks) == 3


# -- the executor's task threads ------------------------------------------------------------


async def _run_lanes(count: int, calls: int, block: threading.Event | None = None,
                     entered: threading.Event | None = None):
    loop = asyncio.get_running_loop()
    lanes = Lanes(count)
    lanes.bind(loop)
    ended: list[tuple[int, int]] = []  # (call, hand-over it came in)
    handovers = [0]
    finished = loop.create_future()
    original = lanes._hand_over

    def hand_over() -> None:
        handovers[0] += 1
        original()

    lanes._hand_over = hand_over  # type: ignore[method-assign]

    def call(i: int) -> int:
        if block is not None and i == 0:
            if entered is not None:
                entered.set()
            block.wait(10)
        return i

    def done(result, error) -> None:
        assert error is None
        ended.append((result, handovers[0]))
        if len(ended) == calls and not finished.done():
            finished.set_result(None)

    for i in range(calls):
        lanes.submit(i, lambda i=i: call(i), done)
    return lanes, ended, finished


async def test_calls_run_in_order_and_end_in_batches():
    gate = threading.Event()
    lanes, ended, finished = await _run_lanes(1, 20, block=gate)
    gate.set()
    await asyncio.wait_for(finished, 10)
    lanes.shutdown()
    assert [i for i, _ in ended] == list(range(20))
    assert len({h for _, h in ended}) < 20  # several outcomes per trip to the loop


async def test_a_withdrawn_call_never_runs():
    gate, entered = threading.Event(), threading.Event()
    lanes, ended, finished = await _run_lanes(1, 5, block=gate, entered=entered)
    assert entered.wait(10)
    done = lanes.withdraw(3)
    assert done is not None and lanes.withdraw(3) is None
    assert lanes.withdraw(0) is None and lanes.waiting == 3  # 0 runs: too late
    done(None, None)  # the caller answers it instead
    gate.set()
    await asyncio.wait_for(finished, 10)
    lanes.shutdown()
    assert sorted(i for i, _ in ended if i is not None) == [0, 1, 2, 4]


async def test_a_call_that_raises_hands_its_error_over():
    loop = asyncio.get_running_loop()
    lanes = Lanes(2)
    lanes.bind(loop)
    got = loop.create_future()
    lanes.submit("x", lambda: 1 / 0, lambda result, error: got.set_result(error))
    assert isinstance(await asyncio.wait_for(got, 10), ZeroDivisionError)
    lanes.shutdown()
    with pytest.raises(RuntimeError):
        lanes.submit("y", lambda: 1, lambda result, error: None)


async def test_withdraw_all_takes_back_what_no_thread_picked():
    gate, entered = threading.Event(), threading.Event()
    lanes, _ended, _finished = await _run_lanes(1, 4, block=gate, entered=entered)
    assert entered.wait(10)
    taken = lanes.withdraw_all()
    assert [key for key, _ in taken] == [1, 2, 3] and lanes.waiting == 0
    gate.set()
    lanes.shutdown()


# -- the executor state's queue ---------------------------------------------------------------


def test_tasks_start_early_up_to_the_queue_then_wait():
    state = WorkerState(cores=1, queue=2)
    started = [state.launch("a", t, now=0.0) for t in range(5)]
    assert started[:3] == [[Start("a", 0)], [Start("a", 1)], [Start("a", 2)]]
    assert started[3:] == [[], []] and state.running == 3 and state.queued == 2
    assert state.ended("a", 0) == [Start("a", 3)]


# -- frames and held results ------------------------------------------------------------------


def test_a_batch_frame_carries_messages_in_order_and_refuses_truncation():
    messages = [encode(CancelTask(t)) for t in range(3)]
    frame = pack_batch(messages)
    assert [decode(m)[0].task_id for m in split_batch(frame)] == [0, 1, 2]
    with pytest.raises(EnvelopeError):
        split_batch(frame[:-1])
    big = b"x" * (1 << 20)
    assert batches([messages[0], big, messages[1]]) == [messages[0], big, messages[1]]


class FakeSocket:
    closed = False

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    async def send_bytes(self, data: bytes) -> None:
        self.frames.append(data)


async def test_results_are_held_while_more_tasks_are_in_progress_then_sent_together():
    ws = FakeSocket()
    session = DriverSession("app", ws)  # type: ignore[arg-type]
    session.tasks = {7: None, 8: None}  # type: ignore[dict-item]
    session.queued = 1
    session.post(TaskSucceeded(5), hold=True)
    session.post(TaskSucceeded(6), hold=True)
    await asyncio.sleep(0)
    assert ws.frames == []  # 2 results wait: 3 tasks are still in progress
    session.tasks = {}
    session.queued = 0
    session.post(TaskSucceeded(7), hold=True)  # the last one: everything goes, in one frame
    await session.flush()
    assert len(ws.frames) == 1
    assert [decode(m)[0].task_id for m in split_batch(ws.frames[0])] == [5, 6, 7]
    session.close()


async def test_a_held_result_goes_out_after_hold_seconds_at_most():
    ws = FakeSocket()
    session = DriverSession("app", ws)  # type: ignore[arg-type]
    session.tasks = {9: None}  # type: ignore[dict-item]
    session.post(TaskSucceeded(1), hold=True)
    await wait_until(lambda: ws.frames, 200 * HOLD_SECONDS, "the held result to go out")
    assert [decode(ws.frames[0])[0].task_id] == [1]
    session.close()


def test_tasks_queued_behind_a_long_one_move_to_an_idle_core():
    now = [0.0]
    state = SchedulerState(prefetch=3, clock=lambda: now[0])
    state.handle(ev.WorkerAdded("w0", "h", 1))
    pending = launches(state.handle(ev.JobSubmitted(1, stage(1, 6), tuple(range(6)))))
    for _ in range(2):  # two short tasks: the other four go to w0, three of them queued
        pending += launches(state.handle(ev.TaskFinished(pending.pop(0).task_id,
                                                         seconds=0.001)))
    assert [t.worker_id for t in pending] == ["w0"] * 4
    assert launches(state.handle(ev.WorkerAdded("w1", "h", 1))) == []  # nothing left to run
    now[0] = 0.05
    assert state.handle(ev.Tick()) == []  # w0's task is not long yet
    now[0] = 1.0
    commands = state.handle(ev.Tick())
    recalled = [c for c in commands if isinstance(c, Cancel)]
    assert [c.task_id for c in recalled] == [t.task_id for t in pending[1:]]  # not the 1st
    assert all(c.if_waiting for c in recalled) and not launches(commands)
    assert state.handle(ev.Tick()) == []  # asked once
    # w0 had started the second one already (it finishes), not the other two (answered
    # cancelled): those run on w1.
    state.handle(ev.TaskFinished(pending[1].task_id, result=1, seconds=0.001))
    moved = []
    for task in pending[2:]:
        moved += launches(state.handle(ev.TaskFailed(task.task_id, "cancelled", counts=False)))
    assert sorted(t.partition for t in moved) == sorted(t.partition for t in pending[2:])
    assert {t.worker_id for t in moved} == {"w1"}
    for task in [pending[0], *moved]:
        state.handle(ev.TaskFinished(task.task_id, result=task.partition, seconds=0.001))
    assert not state.tasks and not state.jobs
