"""Sending a driver's job progress to the master, for its status page and ``/metrics``.

The reporter wakes when a job starts or ends, and every ``interval`` seconds
while jobs run; it posts the jobs that changed (``POST /v1/apps/{app}/jobs``,
a ``JobsReport``) in chunks.  When the master answers ``{"resync": true}``
(it did not know this application: it restarted) or a post fails, the next
report carries every job the driver remembers.  A master that cannot be
reached never slows a job down: reports are best effort.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp

from aiospark.scheduler.jobs import JobTable

log = logging.getLogger("aiospark.scheduler")

#: Seconds between two reports while jobs run.
REPORT_INTERVAL = 0.25
#: Jobs per request (each with its stages), well under the master's body limit.
CHUNK = 100
_TIMEOUT = aiohttp.ClientTimeout(total=5)


class JobReporter:
    """Posts ``table``'s changes to ``master_url`` for application ``app_id``.

    >>> reporter = JobReporter(JobTable(None), None, "http://127.0.0.1:1", "app-1", "etl")
    >>> reporter.url
    'http://127.0.0.1:1/v1/apps/app-1/jobs'
    """

    def __init__(
        self,
        table: JobTable,
        session: aiohttp.ClientSession | None,
        master_url: str,
        app_id: str,
        app_name: str,
        interval: float = REPORT_INTERVAL,
    ) -> None:
        self.table = table
        self.session = session
        self.url = f"{master_url.rstrip('/')}/v1/apps/{app_id}/jobs"
        self.app_name = app_name
        self.interval = interval
        self._wake = asyncio.Event()
        self._resync = True
        self._task: asyncio.Task[None] | None = None
        table.on_change = self._wake.set

    def start(self) -> None:
        """Start reporting in the background."""
        self._task = asyncio.create_task(self._run())

    async def stop(self, timeout: float = 1.0) -> None:
        """Stop, after one last report (so the master sees how the jobs ended)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        self._task = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.flush()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()
            if self._resync:  # the master restarted and wants everything: send it now
                await self.flush()
            await asyncio.sleep(self.interval)
            if self.table.running:
                self._wake.set()

    async def flush(self) -> None:
        """Post the jobs that changed (all of them after a resync request or a failure)."""
        assert self.session is not None
        everything = self._resync
        reports = self.table.changes(everything=everything)
        if not reports and not everything:
            return
        self._resync = False
        for start in range(0, max(len(reports), 1), CHUNK):
            chunk = reports[start : start + CHUNK]
            body = {"app_name": self.app_name, "jobs": chunk}
            try:
                async with self.session.post(self.url, json=body, timeout=_TIMEOUT) as resp:
                    answer = await resp.json(content_type=None)
                    if resp.status != 200:
                        raise aiohttp.ClientError(f"{resp.status}: {answer}")
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                log.debug("could not report jobs to the master: %s", exc)
                self._resync = True
                return
            self.table.sent(chunk)
            if not everything and isinstance(answer, dict) and answer.get("resync") is True:
                self._resync = True
