"""The master's view of the applications (drivers) and their jobs.

Drivers report their jobs (``POST /v1/apps/{app}/jobs``, a ``JobsReport``);
their event WebSocket (``/v1/events?app=...``) tells the master while they are
connected.  When the last connection of an application closes, its jobs still
running are marked ``lost``.  The board keeps every running job and the
``keep`` most recent ended jobs per application, and the ``keep_apps`` most
recently seen applications that are gone.

>>> from aiospark.protocol.messages import JobsReport
>>> board = JobBoard(clock=lambda: 5.0)
>>> board.connected("app-1", "etl")
>>> job = {"job_id": 1, "description": "count", "state": "succeeded", "submitted": 1.0,
...        "completed": 2.0, "partitions": 2, "stages": []}
>>> board.report("app-1", JobsReport.from_json({"app_name": "etl", "jobs": [job]}))
True
>>> [(j["app_name"], j["job_id"], j["state"]) for j in board.jobs()], board.ended_jobs
([('etl', 1, 'succeeded')], {'succeeded': 1, 'failed': 0, 'cancelled': 0})
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from aiospark.protocol.messages import KEEP_ENDED, JobsReport

#: Applications no longer connected that the board remembers.
KEEP_APPS = 20
#: Running jobs remembered per application (a driver running more is reported in part).
MAX_RUNNING = 1000
#: Ended jobs shown across all applications.
SHOW_ENDED = 100


@dataclasses.dataclass
class App:
    """One driver, as the master knows it."""

    app_id: str
    name: str
    first_seen: float
    last_seen: float
    #: open event WebSockets of this driver (0: gone, or never connected)
    connections: int = 0
    #: reports received since the board learnt of the application
    reports: int = 0
    #: job id -> the job's last report (JSON), with the master's ``lost`` state
    jobs: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        running = sum(j["state"] == "running" for j in self.jobs.values())
        return {"app_id": self.app_id, "name": self.name, "connected": self.connections > 0,
                "first_seen": self.first_seen, "last_seen": self.last_seen,
                "jobs_running": running, "jobs": len(self.jobs)}


class JobBoard:
    """Applications and their jobs, bounded in memory."""

    def __init__(
        self,
        keep: int = KEEP_ENDED,
        keep_apps: int = KEEP_APPS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.apps: dict[str, App] = {}
        self.keep = keep
        self.keep_apps = keep_apps
        self.clock = clock
        #: jobs seen ending since the master started, by final state (for ``/metrics``)
        self.ended_jobs = {"succeeded": 0, "failed": 0, "cancelled": 0}

    def _app(self, app_id: str, name: str | None) -> App:
        now = self.clock()
        app = self.apps.get(app_id)
        if app is None:
            app = self.apps[app_id] = App(app_id, name or "", now, now)
        app.last_seen = now
        if name:
            app.name = name
        return app

    def connected(self, app_id: str, name: str | None) -> None:
        """A driver opened its event stream."""
        self._app(app_id, name).connections += 1

    def disconnected(self, app_id: str) -> None:
        """One of a driver's event streams closed; its running jobs are lost with the last."""
        app = self.apps.get(app_id)
        if app is None:
            return
        app.connections = max(0, app.connections - 1)
        app.last_seen = self.clock()
        if app.connections == 0:
            app.reports = 0  # should it come back, it reports every job again
            for job in app.jobs.values():
                if job["state"] == "running":
                    job["state"] = "lost"
            self._forget_old_apps()

    def report(self, app_id: str, report: JobsReport) -> bool:
        """Record a driver's report; True when the board wants every job again (resync)."""
        app = self._app(app_id, report.app_name)
        resync = app.reports == 0
        app.reports += 1
        for job in report.jobs:
            before = app.jobs.pop(job.job_id, None)
            if job.state in self.ended_jobs and (before is None or before["state"] != job.state):
                self.ended_jobs[job.state] += 1
            app.jobs[job.job_id] = job.to_json()  # re-inserted: the most recent last
        self._trim(app)
        return resync

    def _trim(self, app: App) -> None:
        ended = [k for k, j in app.jobs.items() if j["state"] != "running"]
        running = [k for k, j in app.jobs.items() if j["state"] == "running"]
        for key in ended[: max(0, len(ended) - self.keep)]:
            del app.jobs[key]
        for key in running[: max(0, len(running) - MAX_RUNNING)]:
            del app.jobs[key]

    def _forget_old_apps(self) -> None:
        gone = sorted((a for a in self.apps.values() if a.connections == 0),
                      key=lambda a: a.last_seen)
        for app in gone[: max(0, len(gone) - self.keep_apps)]:
            del self.apps[app.app_id]

    # -- views ---------------------------------------------------------------------------

    @property
    def running_jobs(self) -> int:
        """Jobs running now (of drivers still connected)."""
        return sum(j["state"] == "running" for a in self.apps.values() for j in a.jobs.values())

    def jobs(self) -> list[dict[str, Any]]:
        """Running jobs (newest first), then the most recently ended, with their application."""
        rows = [
            {"app_id": app.app_id, "app_name": app.name, **job}
            for app in self.apps.values()
            for job in app.jobs.values()
        ]
        running = [r for r in rows if r["state"] == "running"]
        ended = [r for r in rows if r["state"] != "running"]
        running.sort(key=lambda r: r["submitted"], reverse=True)
        ended.sort(key=lambda r: r["completed"] or r["submitted"], reverse=True)
        return running + ended[:SHOW_ENDED]

    def to_json(self) -> dict[str, Any]:
        """``apps`` and ``jobs`` for ``GET /v1/status``."""
        apps = sorted(self.apps.values(), key=lambda a: (a.connections == 0, -a.first_seen))
        return {"apps": [a.to_json() for a in apps], "jobs": self.jobs()}
