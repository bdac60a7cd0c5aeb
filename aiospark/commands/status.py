"""``aiospark status``: the master's ``GET /v1/status`` as tables, or as JSON."""

from __future__ import annotations

import json
import time
from typing import Any

from aiospark import security
from aiospark.commands import http
from aiospark.config import Settings
from aiospark.runtime import run


def human_bytes(count: float) -> str:
    """A byte count for people.

    >>> human_bytes(0), human_bytes(1536), human_bytes(3 << 30)
    ('0 B', '1.5 KiB', '3.0 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def table(header: list[str], rows: list[list[Any]]) -> str:
    """Columns aligned on the widest cell.

    >>> print(table(["ID", "CORES"], [["w-1", 2], ["worker-22", 1]]))
    ID         CORES
    w-1        2
    worker-22  1
    """
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def render(status: dict[str, Any], master: str) -> str:
    """The status as a summary line, the workers, and the applications.

    >>> print(render({"now": 100.0, "uptime": 3725, "cores": 1, "workers": [
    ...     {"worker_id": "w-1", "url": "http://10.0.0.6:4000", "cores": 1,
    ...      "running_tasks": 1, "memory_used": 1 << 20, "memory_bytes": 1 << 30,
    ...      "last_heartbeat": 99.5, "state": "alive"}]}, "aiospark://10.0.0.5:7077"))
    master aiospark://10.0.0.5:7077  up 1h02m05s  1 workers  1 cores  1 tasks running
    <BLANKLINE>
    WORKER  URL                   CORES  RUNNING  MEMORY USED / BUDGET  HEARTBEAT  STATE
    w-1     http://10.0.0.6:4000  1      1        1.0 MiB / 1.0 GiB     0.5s ago   alive
    """
    workers = status.get("workers", [])
    now = status.get("now") or time.time()
    uptime = int(status.get("uptime", 0))
    hours, rest = divmod(uptime, 3600)
    running = sum(w.get("running_tasks", 0) for w in workers)
    lines = [f"master {master}  up {hours}h{rest // 60:02d}m{rest % 60:02d}s  "
             f"{len(workers)} workers  {status.get('cores', 0)} cores  "
             f"{running} tasks running", ""]
    if workers:
        rows = [[
            w.get("worker_id", "?"), w.get("url", "?"), w.get("cores", "?"),
            w.get("running_tasks", 0),
            f"{human_bytes(w.get('memory_used', 0))} / {human_bytes(w.get('memory_bytes', 0))}",
            f"{max(0.0, now - w.get('last_heartbeat', now)):.1f}s ago", w.get("state", "?"),
        ] for w in workers]
        lines.append(table(["WORKER", "URL", "CORES", "RUNNING", "MEMORY USED / BUDGET",
                            "HEARTBEAT", "STATE"], rows))
    else:
        lines.append("no workers: start some with aiospark worker --master " + master)
    apps = status.get("apps") or []
    if apps:
        rows = [[a.get("app_id", "?"), a.get("name", ""),
                 "yes" if a.get("connected") else "no",
                 "-" if a.get("cores") is None else a["cores"],
                 a.get("jobs_running", 0), a.get("jobs", 0)] for a in apps]
        # CORES: the application's share of the cluster's cores (``master.shares``)
        lines += ["", table(["APPLICATION", "NAME", "CONNECTED", "CORES", "JOBS RUNNING",
                             "JOBS"], rows)]
    return "\n".join(lines)


def status(settings: Settings) -> int:
    """Print the status of the master at ``--master``.

    >>> from aiospark.config import resolve
    >>> status(resolve("status", {"secret_file": "/nonexistent/secret"}, {}))
    Traceback (most recent call last):
    ...
    aiospark.config.ConfigError: --secret-file: cannot read the secret file /nonexistent/secret...
    """
    url = http.http_url(settings.master)
    secret = security.client_secret(settings, url)

    async def fetch() -> dict[str, Any]:
        async with http.session(secret.value) as client:
            return await http.fetch_status(client, url)

    data = run(fetch)
    if settings.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(render(data, settings.master))
    return 0
