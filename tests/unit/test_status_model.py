"""The status page's model, without sockets: the driver's job table read against a real
scheduler state, the master's job board, login sessions, and the Prometheus text."""

from __future__ import annotations

import asyncio
import inspect
import re
from types import SimpleNamespace

import pytest

import aiospark
from aiospark.master import ui
from aiospark.master.job_board import JobBoard
from aiospark.master.metrics import escape_label, render_metrics
from aiospark.master.ui import Sessions
from aiospark.protocol.messages import JobsReport, MessageError
from aiospark.scheduler import events as ev
from aiospark.scheduler.jobs import JobTable, call_site
from aiospark.scheduler.state import Launch, MapOutput, SchedulerState


def stage(stage_id, partitions, parents=(), shuffle_id=None):
    return SimpleNamespace(id=stage_id, num_partitions=partitions, parents=list(parents),
                           shuffle_id=shuffle_id, preferred=lambda partition, cache: [])


class Driver:
    """A scheduler state with two one-core workers, and a job table reading it."""

    def __init__(self) -> None:
        self.state = SchedulerState(retry_backoff=0.0, exclude_after=None)
        self.now = 1000.0
        self.table = JobTable(self.state, clock=lambda: self.now)
        self.launched: list[Launch] = []
        for worker in ("w1", "w2"):
            self.apply(self.state.handle(ev.WorkerAdded(worker, "host", 1)))

    def apply(self, commands) -> None:
        self.launched.extend(c for c in commands if isinstance(c, Launch))

    def submit(self, job_id, result, stages, partitions):
        self.table.submitted(job_id, f"job {job_id}", stages, len(partitions))
        self.apply(self.state.handle(ev.JobSubmitted(job_id, result, tuple(partitions))))

    def finish(self, launch: Launch) -> None:
        output = MapOutput(launch.worker_id, "http://shuffle", (1,))
        if launch.stage.shuffle_id is None:
            self.apply(self.state.handle(ev.TaskFinished(launch.task_id, result=1)))
        else:
            self.apply(self.state.handle(ev.TaskFinished(launch.task_id, map_output=output)))

    def stages(self, job_id):
        [report] = [r for r in self.table.changes(everything=True) if r["job_id"] == job_id]
        return report, [(s["kind"], s["done"], s["running"], s["tasks"], s["state"])
                        for s in report["stages"]]


def test_job_table_follows_the_scheduler_state_through_a_two_stage_job():
    d = Driver()
    map_stage = stage(1, 3, shuffle_id=0)
    result = stage(2, 2, parents=[map_stage])
    d.submit(1, result, [result, map_stage], [0, 1])
    report, stages = d.stages(1)
    assert report["state"] == "running" and report["completed"] is None
    assert stages == [("shuffle_map", 0, 2, 3, "running"), ("result", 0, 0, 2, "waiting")]
    d.finish(d.launched[0])
    assert d.stages(1)[1][0] == ("shuffle_map", 1, 2, 3, "running")
    for launch in d.launched[1:3]:
        d.finish(launch)
    assert d.stages(1)[1] == [("shuffle_map", 3, 0, 3, "done"), ("result", 0, 2, 2, "running")]
    d.finish(d.launched[3])
    assert d.stages(1)[1][1] == ("result", 1, 1, 2, "running")
    d.finish(d.launched[4])
    d.now = 1002.5
    d.table.ended(1, "succeeded")
    report, stages = d.stages(1)
    assert report["state"] == "succeeded" and report["completed"] == 1002.5
    assert stages == [("shuffle_map", 3, 0, 3, "done"), ("result", 2, 0, 2, "done")]
    assert JobsReport.from_json({"app_name": "t", "jobs": [report]}).jobs[0].job_id == 1


def test_a_map_stage_computed_by_an_earlier_job_is_skipped_and_failed_jobs_stop():
    d = Driver()
    map_stage = stage(1, 2, shuffle_id=0)
    first = stage(2, 2, parents=[map_stage])
    d.submit(1, first, [first, map_stage], [0, 1])
    while d.state.jobs:
        d.finish(next(launch for launch in d.launched if launch.task_id in d.state.tasks))
    d.table.ended(1, "succeeded")
    second = stage(3, 2, parents=[map_stage])
    d.submit(2, second, [second, map_stage], [0, 1])
    assert d.stages(2)[1][0] == ("shuffle_map", 2, 0, 2, "skipped")
    d.apply(d.state.handle(ev.CancelJob(2)))
    d.table.ended(2, "cancelled")
    report, stages = d.stages(2)
    assert report["state"] == "cancelled"
    assert stages[1] == ("result", 0, 0, 2, "stopped")


def test_changes_are_sent_once_and_everything_on_request():
    d = Driver()
    only = stage(1, 2)
    d.submit(1, only, [only], [0, 1])
    first = d.table.changes()
    assert [r["job_id"] for r in first] == [1]
    d.table.sent(first)
    assert d.table.changes() == [], "nothing changed since"
    d.finish(d.launched[0])
    assert [r["stages"][0]["done"] for r in d.table.changes()] == [1]
    assert len(d.table.changes(everything=True)) == 1


def test_a_job_report_names_the_jobs_scheduling_pool():
    table = JobTable(SchedulerState())
    table.submitted(1, "plain", [stage(1, 1)], 1)
    table.submitted(2, "pooled", [stage(2, 1)], 1, pool="interactive")
    reports = table.changes()
    assert [(r["job_id"], r["pool"]) for r in reports] == [(1, "default"), (2, "interactive")]
    board = JobBoard(clock=lambda: 5.0)
    board.connected("app-1", "etl")
    board.report("app-1", JobsReport.from_json({"app_name": "etl", "jobs": reports}))
    pools = sorted((j["job_id"], j["pool"]) for j in board.jobs())
    assert pools == [(1, "default"), (2, "interactive")]


def test_ended_jobs_are_kept_up_to_a_bound():
    table = JobTable(SchedulerState(), keep=3)
    for job_id in range(1, 6):
        table.submitted(job_id, "x", [stage(job_id, 1)], 1)
        table.ended(job_id, "succeeded")
    assert [r["job_id"] for r in table.changes()] == [3, 4, 5]


def test_a_job_the_master_saw_running_is_reported_ended_even_past_the_bound():
    table = JobTable(SchedulerState(), keep=2)
    table.submitted(1, "watched", [stage(1, 1)], 1)
    table.sent(table.changes())  # the master has job 1 as running
    table.ended(1, "succeeded")
    for job_id in range(2, 6):  # more jobs end than the table keeps, before the next report
        table.submitted(job_id, "x", [stage(job_id, 1)], 1)
        table.ended(job_id, "succeeded")
    reports = table.changes()
    assert [(r["job_id"], r["state"]) for r in reports] == [
        (1, "succeeded"), (4, "succeeded"), (5, "succeeded")]
    table.sent(reports)
    assert table.changes() == []


def test_call_site_names_the_action_and_the_callers_line():
    # A function compiled as if it lived in aiospark's own files stands for an action.
    namespace = {"call_site": call_site}
    exec(compile("def count():\n    return call_site()\n", call_site.__code__.co_filename,
                 "exec"), namespace)
    site = namespace["count"]()
    line = inspect.currentframe().f_lineno - 1
    assert site == f"count at test_status_model.py:{line}"


class SiteRecorder:
    """Stands in for a started scheduler: each job's call site, each job done at once."""

    def __init__(self) -> None:
        self.sites: list[str] = []
        self.total_cores = 2
        # compiled as if in aiospark's own files, as the real Scheduler.submit is
        namespace = {"call_site": call_site, "done": self._done, "sites": self.sites}
        exec(compile("def submit(rdd, func, partitions, pool, properties=None):\n"
                     "    sites.append(call_site())\n"
                     "    return done(partitions[0])\n",
                     call_site.__code__.co_filename, "exec"), namespace)
        self.submit = namespace["submit"]

    @staticmethod
    def _done(partition):
        loop = asyncio.get_running_loop()
        result, done = loop.create_future(), loop.create_future()
        result.set_result([partition])
        done.set_result(None)
        return SimpleNamespace(futures=[result], done=done, cancel=lambda: None)


async def test_the_call_site_of_an_async_for_job_is_the_async_for_line():
    ctx = aiospark.Context(workers=1)
    scheduler = SiteRecorder()
    ctx._scheduler, ctx._started = scheduler, True
    rdd = ctx.parallelize(range(4), 3)
    line = inspect.currentframe().f_lineno + 1
    assert [x async for x in rdd] == [0, 1, 2]  # the recorder's record: the partition index
    assert [x async for x in rdd.to_local_iterator(prefetch_partitions=1)] == [0, 1, 2]
    here = "test_status_model.py"
    assert scheduler.sites == [f"async for at {here}:{line}"] * 3 + [
        f"async for at {here}:{line + 1}"] * 3



# -- the master's board ------------------------------------------------------------------


def job(job_id, state="running", **extra):
    body = {"job_id": job_id, "description": f"job {job_id}", "state": state,
            "submitted": float(job_id), "completed": None if state == "running" else 9.0,
            "partitions": 1, "stages": []}
    return {**body, **extra}


def report(*jobs, name="etl"):
    return JobsReport.from_json({"app_name": name, "jobs": list(jobs)})


def test_board_asks_for_everything_until_an_app_has_reported():
    board = JobBoard()
    board.connected("app-1", "etl")
    assert board.report("app-1", report(job(1))) is True
    assert board.report("app-1", report(job(1, "succeeded"))) is False
    assert board.ended_jobs["succeeded"] == 1
    board.report("app-1", report(job(1, "succeeded")))
    assert board.ended_jobs["succeeded"] == 1, "a job resent is not counted twice"


def test_jobs_of_applications_with_the_same_name_and_job_ids_stay_apart():
    # Two runs of one program: both number their jobs from 1.
    board = JobBoard()
    for app_id in ("app-1", "app-2"):
        board.connected(app_id, "first_job.py")
        board.report(app_id, report(job(1), job(2, "succeeded"), name="first_job.py"))
    board.report("app-2", report(job(1, "failed", error="boom"), name="first_job.py"))
    rows = {(j["app_id"], j["job_id"]): j["state"] for j in board.jobs()}
    assert rows == {("app-1", 1): "running", ("app-1", 2): "succeeded",
                    ("app-2", 1): "failed", ("app-2", 2): "succeeded"}
    assert board.running_jobs == 1 and board.ended_jobs["failed"] == 1


def test_a_driver_that_disconnects_loses_its_running_jobs():
    board = JobBoard()
    board.connected("app-1", "etl")
    board.report("app-1", report(job(1), job(2, "failed", error="boom")))
    assert board.running_jobs == 1
    board.disconnected("app-1")
    assert {j["job_id"]: j["state"] for j in board.jobs()} == {1: "lost", 2: "failed"}
    assert board.to_json()["apps"][0]["connected"] is False
    assert board.running_jobs == 0
    board.connected("app-1", "etl")
    assert board.report("app-1", report(job(1))) is True, "back: it is asked for everything"
    assert board.running_jobs == 1


def test_board_bounds_ended_jobs_and_gone_apps():
    board = JobBoard(keep=2, keep_apps=2)
    board.report("app-1", report(*(job(i, "succeeded") for i in range(1, 6)), job(9)))
    assert sorted(j["job_id"] for j in board.jobs()) == [4, 5, 9]
    for n in range(3, 7):
        board.connected(f"app-{n}", "x")
        board.disconnected(f"app-{n}")
    assert sorted(board.apps) == ["app-5", "app-6"]


def test_job_reports_are_validated_field_by_field():
    bad = [
        ({**job(1), "state": "done"}, "JobReport.state"),
        ({**job(1), "stages": [{"stage_id": 1, "kind": "x", "tasks": 1}]}, "StageReport.kind"),
        ({**job(1), "stages": [{"stage_id": 1, "kind": "result", "tasks": 1, "done": 2}]},
         "StageReport.done"),
        ({**job(1), "partitions": -1}, "JobReport.partitions"),
        ({**job(1), "description": "x" * 5000}, "JobReport.description"),
        ({**job(1), "pool": "x" * 5000}, "JobReport.pool"),
        ({**job(1), "pool": 3}, "JobReport.pool"),
        ({**job(1), "extra": 1}, "unknown field 'extra'"),
        ({k: v for k, v in job(1).items() if k != "submitted"}, "JobReport.submitted"),
    ]
    for body, field in bad:
        with pytest.raises(MessageError, match=re.escape(field)):
            report(body)


# -- sessions ----------------------------------------------------------------------------


def test_sessions_expire_and_tokens_work_once():
    now = [0.0]
    sessions = Sessions("s3cr3t", clock=lambda: now[0])
    token, stale = sessions.new_token(), sessions.new_token()
    session = sessions.redeem(token)
    assert sessions.valid(session) and sessions.redeem(token) is None
    now[0] = ui.TOKEN_SECONDS + 1
    assert sessions.redeem(stale) is None, "a token expires"
    now[0] = ui.SESSION_SECONDS + 1
    assert not sessions.valid(session), "a session expires"
    fresh = sessions.login("s3cr3t")
    sessions.end(fresh)
    assert not sessions.valid(fresh) and not sessions.valid(None) and not sessions.valid("")
    assert session not in repr(vars(sessions)), "only hashes are kept"


def test_sessions_are_bounded(monkeypatch):
    monkeypatch.setattr(ui, "MAX_SESSIONS", 3)
    sessions = Sessions("s")
    made = [sessions.login("s") for _ in range(4)]
    assert [sessions.valid(s) for s in made] == [False, True, True, True]


# -- Prometheus text ---------------------------------------------------------------------

_SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?P<labels>(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})?'
    r' (?P<value>[-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))$'
)


def parse_exposition(text: str) -> dict[str, dict]:
    """A strict reading of the text format 0.0.4: every family's HELP then TYPE, then only
    its samples; names, labels and values well formed; no family twice."""
    assert text.endswith("\n")
    families: dict[str, dict] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current, _, help_text = line[7:].partition(" ")
            assert current not in families, f"{current} twice"
            assert help_text, f"{current} has an empty HELP"
            families[current] = {"help": help_text, "type": None, "samples": []}
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and families[name]["type"] is None, line
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            families[name]["type"] = kind
        else:
            match = _SAMPLE.match(line)
            assert match, f"malformed sample line {line!r}"
            assert match["name"] == current and families[current]["type"] is not None, line
            labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                     match["labels"] or ""))
            families[current]["samples"].append((labels, float(match["value"])))
    return families


def status_with(**overrides):
    worker = {"worker_id": 'w"1\\', "host": "h\nx", "cores": 2, "memory_bytes": 100,
              "memory_used": 30, "storage_used": 20, "execution_used": 10, "running_tasks": 1,
              "last_heartbeat": 9.5, "tasks_succeeded": 5, "tasks_failed": 1,
              "tasks_cancelled": 0, "spilled_bytes": 7}
    running = {"app_id": "app-1", "job_id": 3, "state": "running", "stages": [
        {"stage_id": 1, "kind": "shuffle_map", "tasks": 4, "done": 1, "running": 2,
         "state": "running"},
        {"stage_id": 2, "kind": "result", "tasks": 2, "done": 0, "running": 0,
         "state": "waiting"}]}
    status = {"now": 10.0, "uptime": 3.0, "workers": [worker], "cores": 2,
              "cached": [{"app_id": "app-1", "rdd_id": 4, "splits": 2, "memory_bytes": 64,
                          "disk_bytes": 0}],
              "apps": [{"connected": True}], "jobs": [running],
              "counters": {"workers_lost": 1,
                           "jobs_ended": {"succeeded": 2, "failed": 0, "cancelled": 1}}}
    return {**status, **overrides}


def test_metrics_are_well_formed_and_carry_the_status():
    text = render_metrics(status_with())
    families = parse_exposition(text)

    def value(name: str, **labels: str) -> float:
        samples = families[name]["samples"]
        return next(v for have, v in samples if labels.items() <= have.items())

    assert families["aiospark_worker_tasks_total"]["type"] == "counter"
    assert value("aiospark_workers") == 1 and value("aiospark_cores") == 2
    assert value("aiospark_worker_tasks_total", outcome="succeeded") == 5
    assert value("aiospark_worker_heartbeat_age_seconds") == 0.5
    assert value("aiospark_cached_bytes", where="memory", rdd_id="4") == 64
    assert value("aiospark_jobs_total", outcome="cancelled") == 1
    assert value("aiospark_running_job_tasks", state="pending") == 1 + 2
    assert families["aiospark_worker_cores"]["samples"][0][0]["worker_id"] == 'w\\"1\\\\'
    prometheus = pytest.importorskip("prometheus_client.parser")
    parsed = {f.name: f for f in prometheus.text_string_to_metric_families(text)}
    [sample] = parsed["aiospark_worker_spilled_bytes"].samples
    assert sample.labels == {"worker_id": 'w"1\\', "host": "h\nx"} and sample.value == 7


def test_label_values_are_escaped():
    assert escape_label('say "hi"\\\n') == 'say \\"hi\\"\\\\\\n'
