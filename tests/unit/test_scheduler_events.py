"""The scheduler's events: one entry point, an event log, replay, and what the runner
feeds (``aiospark.scheduler.events``, ``SchedulerState.handle``)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from aiospark.protocol.messages import WorkerInfo
from aiospark.scheduler import events as ev
from aiospark.scheduler.actions import Launch, MapOutput
from aiospark.scheduler.dag import Stage
from aiospark.scheduler.replay import replay
from aiospark.scheduler.runner import Scheduler
from aiospark.scheduler.state import SchedulerState


def fake_stage(stage_id, partitions, parents=(), shuffle_id=None, prefer=None):
    return SimpleNamespace(
        id=stage_id, num_partitions=partitions, parents=list(parents), shuffle_id=shuffle_id,
        preferred=lambda partition, cache: list((prefer or {}).get(partition, [])),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def random_run(seed: int, **options) -> tuple[SchedulerState, list[list]]:
    """Drive a state with a random mix of every kind of event; return it and its actions."""
    rng = random.Random(seed)
    clock = Clock()
    state = SchedulerState(clock=clock, log=100_000, **options)
    out: list[list] = []
    running: dict[int, Launch] = {}

    def feed(event):
        commands = state.handle(event)
        out.append(commands)
        for c in commands:
            if isinstance(c, Launch):
                running[c.task_id] = c
            elif hasattr(c, "task_id"):
                running.pop(c.task_id, None)

    for w in range(4):
        feed(ev.WorkerAdded(f"w{w}", f"h{w % 2}", rng.randint(1, 3)))
    job = 0
    for _ in range(250):
        clock.now += rng.random() * 0.3
        roll = rng.random()
        if roll < 0.05 or not running:
            job += 1
            base = job * 10
            mapper = fake_stage(base, rng.randint(1, 5), shuffle_id=base,
                                prefer={0: ["h1"], 1: ["w2"]})
            reducer = fake_stage(base + 1, rng.randint(1, 4), parents=[mapper])
            feed(ev.JobSubmitted(job, reducer, tuple(range(reducer.num_partitions)),
                                 rng.choice(["default", "batch"])))
        elif roll < 0.70:
            launch = running.pop(rng.choice(sorted(running)))
            output = None
            if launch.stage.shuffle_id is not None:
                output = MapOutput(launch.worker_id, f"http://{launch.worker_id}")
            feed(ev.TaskFinished(launch.task_id, f"r{launch.partition}", output,
                                 ((launch.stage.id, launch.partition),)))
        elif roll < 0.78:
            launch = running.pop(rng.choice(sorted(running)))
            feed(ev.TaskFailed(launch.task_id, "boom", counts=rng.random() < 0.7))
        elif roll < 0.82:
            launch = running.pop(rng.choice(sorted(running)))
            parents = launch.stage.parents
            if parents:
                feed(ev.FetchFailed(launch.task_id, "fetch", parents[0].shuffle_id, (0,)))
            else:
                feed(ev.TaskFailed(launch.task_id, "boom"))
        elif roll < 0.85:
            lost = f"w{rng.randrange(4)}"
            feed(ev.WorkerLost(lost))
            for task_id in [t for t, c in running.items() if c.worker_id == lost]:
                del running[task_id]
            feed(ev.WorkerAdded(lost, "h0", 2))
        elif roll < 0.87:
            feed(ev.ShuffleOutputsLost(f"http://w{rng.randrange(4)}"))
        elif roll < 0.89:
            feed(ev.CancelJob(rng.randint(1, job)))
        elif roll < 0.91:
            feed(ev.BlocksEvicted(f"w{rng.randrange(4)}", ((job * 10, 0),)))
        elif roll < 0.93:
            feed(ev.WorkerDraining(f"w{rng.randrange(4)}"))
        else:
            feed(ev.Tick())
    return state, out


@pytest.mark.parametrize("seed", range(4))
def test_replaying_the_log_decides_exactly_the_same_actions(seed):
    state, actions = random_run(seed, speculation=True, retry_backoff=0.01)
    assert state.log is not None and len(state.log) == len(actions)
    assert sum(isinstance(c, Launch) for a in actions for c in a) > 30, "too quiet a run"
    assert replay(state.log) == actions
    # And the replayed state ends where the logged one did.
    times = iter([t for t, _ in state.log.entries])
    again = SchedulerState(clock=lambda: next(times), log=0, **state.log.options)
    for _, event in state.log.entries:
        again.handle(event)
    assert sorted(again.tasks) == sorted(state.tasks)
    assert dict(again.map_outputs) == dict(state.map_outputs)


def test_replay_notices_different_settings():
    state, actions = random_run(1, max_attempts=1)
    state.log.options["max_attempts"] = 4
    assert replay(state.log) != actions


def test_a_log_that_dropped_events_cannot_be_replayed():
    state = SchedulerState(log=2)
    for w in range(3):
        state.handle(ev.WorkerAdded(f"w{w}", "h", 1))
    assert [e.worker_id for _, e in state.log.entries] == ["w1", "w2"]
    assert state.log.dropped == 1
    with pytest.raises(ValueError, match="dropped its first 1 events"):
        replay(state.log)


def test_the_log_is_off_unless_asked_for(monkeypatch):
    monkeypatch.delenv(ev.LOG_ENV, raising=False)
    assert SchedulerState().log is None
    monkeypatch.setenv(ev.LOG_ENV, "3")
    state = SchedulerState()
    assert state.log is not None and state.log.entries.maxlen == 3
    assert SchedulerState(log=0).log is None, "an explicit size wins over the environment"


def test_events_are_frozen_values():
    event = ev.TaskFinished(3, "r", None, ((1, 2),))
    with pytest.raises(AttributeError):
        event.task_id = 4
    assert event == ev.TaskFinished(3, "r", None, ((1, 2),)) and hash(event)


def test_an_unknown_event_is_refused():
    with pytest.raises(KeyError):
        SchedulerState().handle(object())


def test_read_only_views_follow_a_job():
    state = SchedulerState(clock=Clock())
    state.handle(ev.WorkerAdded("w1", "h", 1))
    mapper = fake_stage(1, 2, shuffle_id=9)
    reducer = fake_stage(2, 3, parents=[mapper])
    state.handle(ev.JobSubmitted(5, reducer, (0, 1, 2), "batch"))
    assert state.job_view(5).remaining == 3 and state.job_view(5).pool == "batch"
    assert state.stage_view(1) == ev_stage(1, waiting=False, running=1, queued=1)
    assert state.stage_view(2) == ev_stage(2, waiting=True, running=0, queued=0)
    assert state.shuffle_progress(9) == (0, 2)
    state.handle(ev.TaskFinished(1, map_output=MapOutput("w1", "u")))
    assert state.shuffle_progress(9) == (1, 2)
    with pytest.raises(TypeError):
        state.jobs[6] = None  # the mappings are views
    assert state.job_view(99) is None and state.stage_view(99) is None
    assert state.shuffle_progress(99) is None


def ev_stage(stage_id, waiting, running, queued):
    from aiospark.scheduler.stages import StageView
    return StageView(stage_id, waiting, running, queued)


# -- what the runner feeds -------------------------------------------------------------


def info(worker_id: str, url: str, shuffle_url: str) -> WorkerInfo:
    return WorkerInfo(worker_id, url, "h", 1, 0, shuffle_url, "alive")


async def runner_with_a_finished_map_stage(shuffle_urls: dict[str, str]) -> Scheduler:
    """A runner (no sockets) whose state has both map outputs of shuffle 7 and a reducer
    running; worker ``w`` has URL ``http://w`` and serves its map outputs at
    ``shuffle_urls[w]``."""
    scheduler = Scheduler("app", "http://master", None)
    scheduler.state.log = ev.EventLog(1000)
    state = scheduler.state
    mapper = Stage(1, None, 2, [], shuffle_dep=SimpleNamespace(shuffle_id=7))
    reducer = Stage(2, None, 1, [mapper], func=lambda i, it: None)
    mapper.preferred = reducer.preferred = lambda partition, cache: []
    for worker_id, shuffle_url in shuffle_urls.items():
        scheduler.known[worker_id] = info(worker_id, f"http://{worker_id}", shuffle_url)
        state.handle(ev.WorkerAdded(worker_id, "h", 1))
    launches = state.handle(ev.JobSubmitted(1, reducer, (0,)))
    for launch in launches:
        url = shuffle_urls[launch.worker_id]
        state.handle(ev.TaskFinished(launch.task_id, map_output=MapOutput(launch.worker_id, url)))
    assert state.shuffle_progress(7) == (2, 2)
    assert [t.stage_id for t in state.tasks.values()] == [2], "the reducer runs"
    return scheduler


async def test_losing_a_worker_that_served_its_own_map_outputs_recomputes_them():
    scheduler = await runner_with_a_finished_map_stage({"w1": "http://w1", "w2": "http://w2"})
    lost = next(iter(scheduler.state.tasks.values())).worker_id
    scheduler._worker_gone(lost, "gone")
    fed = [type(e).__name__ for _, e in scheduler.state.log.entries][-2:]
    assert fed == ["WorkerLost", "ShuffleOutputsLost"]
    assert scheduler.state.log.entries[-1][1].shuffle_url == f"http://{lost}"
    assert scheduler.state.shuffle_progress(7) == (1, 2), "its map output is gone"
    running = [(t.stage_id, t.worker_id) for t in scheduler.state.tasks.values()]
    other = "w2" if lost == "w1" else "w1"
    assert running == [(1, other)], "the lost map output is recomputed on the other worker"


async def test_a_shuffle_service_outliving_a_lost_worker_keeps_its_map_outputs():
    service = "http://shuffle-service"
    scheduler = await runner_with_a_finished_map_stage({"w1": service, "w2": service})
    lost = next(iter(scheduler.state.tasks.values())).worker_id
    scheduler._worker_gone(lost, "gone")
    fed = [type(e).__name__ for _, e in scheduler.state.log.entries]
    assert "ShuffleOutputsLost" not in fed and fed[-1] == "WorkerLost"
    assert scheduler.state.shuffle_progress(7) == (2, 2)
    reducer = scheduler.state.stage_view(2)
    assert not reducer.waiting and reducer.queued == 1, "the reducer retries, maps untouched"
    assert scheduler.state.stage_view(1) is None


async def test_the_runner_feeds_block_changes_as_events():
    scheduler = Scheduler("app", "http://master", None)
    scheduler.state.log = ev.EventLog(100)
    scheduler.unpersist(4)
    assert [e for _, e in scheduler.state.log.entries] == [ev.Unpersisted(4)]
