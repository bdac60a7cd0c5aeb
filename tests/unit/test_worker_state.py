"""The executor's task decisions (``worker.state``) and the typed driver <-> executor
messages (``protocol.tasks``), without processes or sockets."""

from __future__ import annotations

import pytest

from aiospark.protocol.envelope import EnvelopeError, pack
from aiospark.protocol.tasks import (
    MESSAGES,
    CancelTask,
    LaunchTask,
    TaskFailed,
    TaskSucceeded,
    decode,
    encode,
    task_id_of,
)
from aiospark.worker.state import (
    DropApp,
    Interrupt,
    Kill,
    Refuse,
    ReportLoad,
    Start,
    Unqueue,
    WorkerState,
)


def test_a_task_runs_once_even_if_launched_twice():
    state = WorkerState()
    assert state.launch("a", 1, now=0.0) == [Start("a", 1)]
    assert state.launch("a", 1, now=0.0) == []
    assert state.running == 1
    assert state.ended("a", 1) == []  # not cancelled: nothing to report at once
    assert state.running == 0


def test_the_earliest_kill_deadline_wins_and_one_kill_is_asked_for():
    state = WorkerState()
    for task_id in (1, 2):
        state.launch("a", task_id, now=0.0)
    assert state.cancel("a", 1, now=0.0, kill_after=5.0) == [Interrupt("a", 1)]
    assert state.cancel("a", 2, now=1.0, kill_after=1.0) == [Interrupt("a", 2)]
    assert state.cancel("a", 1, now=1.5, kill_after=10.0) == [Interrupt("a", 1)]  # no later
    assert state.wake_at == 2.0
    (kill,) = state.tick(now=2.0)
    assert isinstance(kill, Kill) and "task 2 of a" in kill.reason
    assert state.tick(now=6.0) == []  # asked once: the process is going away
    assert state.wake_at is None


def test_a_cancelled_task_that_stops_in_time_is_reported_and_never_killed():
    state = WorkerState()
    state.launch("a", 1, now=0.0)
    state.cancel("a", 1, now=0.0, kill_after=1.0)
    assert state.ended("a", 1) == [ReportLoad()]
    assert state.wake_at is None
    assert state.tick(now=100.0) == []


def test_a_negative_kill_after_never_kills():
    state = WorkerState()
    state.launch("a", 1, now=0.0)
    assert state.cancel("a", 1, now=0.0, kill_after=-1.0) == [Interrupt("a", 1)]
    assert state.wake_at is None and state.tick(now=1e9) == []


def test_only_the_last_session_of_an_app_going_away_cancels_its_tasks_and_drops_it():
    state = WorkerState()
    state.driver_connected("a")
    state.driver_connected("a")
    state.driver_connected("b")
    state.launch("a", 1, now=0.0)
    state.launch("b", 1, now=0.0)
    assert state.driver_gone("a", now=1.0) == []
    assert state.driver_gone("a", now=1.0, kill_after=2.0) == [Interrupt("a", 1), DropApp("a")]
    assert state.wake_at == 3.0
    assert sorted(state.tasks) == [("a", 1), ("b", 1)]  # still running until they end


def test_a_draining_executor_refuses_new_tasks_but_keeps_running_ones():
    state = WorkerState()
    state.launch("a", 1, now=0.0)
    state.drain()
    assert state.launch("a", 2, now=0.0) == [Refuse("a", 2, "draining")]
    assert state.running == 1


@pytest.mark.parametrize("message", [
    LaunchTask(7, 3, 1, 0, inputs={"2": [["http://h:1", [0, 1]]]}, stage_included=True,
               broadcast_inline=[4], broadcast_sources={"5": ["http://w:2"]},
               broadcast_held=[6], blocks={"9:1": ["http://w:3"]}),
    CancelTask(7, kill_after=0.5),
    TaskSucceeded(7, 0.25, cached=[[9, 1]], map_sizes=[10, 0, 3]),
    TaskFailed(7, 0.1, reason="fetch_failed", traceback="tb",
               fetch={"shuffle_id": 2, "map_ids": [0], "url": "u", "message": "gone"}),
])
def test_every_message_survives_the_wire(message):
    decoded, blobs = decode(encode(message, b"payload"))
    assert decoded == message and [bytes(b) for b in blobs] == [b"payload"]


@pytest.mark.parametrize("header, error", [
    ({"type": "launch", "task_id": 1, "stage_id": 1, "partition": 0}, "attempt: missing"),
    ({"type": "launch", "task_id": 1, "stage_id": 1, "partition": 0, "attempt": 0,
      "inputs": {"1": "x"}}, "LaunchTask.inputs"),
    ({"type": "cancel", "task_id": True}, "CancelTask.task_id: expected int, got bool"),
    ({"type": "cancel", "task_id": 1, "surprise": 1}, "unknown field 'surprise'"),
    ({"type": "failure", "task_id": 1, "reason": "bored"}, "TaskFailed.reason"),
    ({"type": "teleport"}, "unknown message type 'teleport'"),
])
def test_a_malformed_message_is_refused_naming_what_is_wrong(header, error):
    with pytest.raises(EnvelopeError, match=error):
        decode(pack(header))


def test_a_refused_launch_can_still_be_answered():
    bad = pack({"type": "launch", "task_id": 12, "stage_id": "one"})
    assert task_id_of(bad) == 12
    assert task_id_of(pack({"type": "cancel", "task_id": 12})) is None
    assert task_id_of(b"\x00") is None


def test_message_kinds_are_distinct():
    assert len(MESSAGES) == len({cls for cls in MESSAGES.values()})


def test_a_worker_never_runs_more_tasks_than_its_cores_whoever_launches_them():
    state = WorkerState(cores=2)
    assert state.launch("a", 1, now=0.0) == [Start("a", 1)]
    assert state.launch("b", 1, now=0.0) == [Start("b", 1)]
    assert state.launch("a", 2, now=0.0) == []  # every core busy: queued, in order
    assert state.launch("b", 2, now=0.0) == []
    assert state.launch("a", 2, now=0.0) == []  # a duplicate of a queued launch
    assert (state.running, state.queued) == (2, 2)
    assert state.ended("b", 1) == [Start("a", 2)]  # FIFO, whichever driver freed the core
    assert (state.running, state.queued) == (2, 1)
    assert state.ended("a", 2) == [Start("b", 2)]
    assert state.ended("a", 1) == []
    assert state.ended("b", 2) == []
    assert (state.running, state.queued) == (0, 0)


def test_a_launch_behind_queued_ones_waits_its_turn():
    state = WorkerState(cores=1)
    state.launch("a", 1, now=0.0)
    state.launch("b", 1, now=0.0)
    assert state.cancel("a", 1, now=0.0, kill_after=-1.0) == [Interrupt("a", 1)]
    assert state.running == 1  # a cancelled task holds its core until it really ends
    assert state.ended("a", 1) == [Start("b", 1)]


def test_a_queued_task_cancelled_is_dropped_and_answered():
    state = WorkerState(cores=1)
    state.launch("a", 1, now=0.0)
    state.launch("a", 2, now=0.0)
    state.launch("a", 3, now=0.0)
    assert state.cancel("a", 2, now=0.0) == [Unqueue("a", 2)]
    assert state.wake_at is None  # nothing to kill: it never started
    assert state.ended("a", 1) == [Start("a", 3)]
    assert state.ended("a", 3) == []


def test_a_driver_gone_drops_its_queued_tasks_and_a_drain_refuses_them():
    state = WorkerState(cores=1)
    for app in ("a", "b"):
        state.driver_connected(app)
    state.launch("a", 1, now=0.0)
    state.launch("b", 1, now=0.0)
    state.launch("a", 2, now=0.0)
    assert state.driver_gone("b", now=0.0) == [DropApp("b")]
    assert state.drain() == [Refuse("a", 2, "draining")]
    assert state.ended("a", 1) == [] and state.queued == 0
