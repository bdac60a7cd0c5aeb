r"""The cluster's state in Prometheus' text exposition format (version 0.0.4), for ``/metrics``.

Rendered from the same snapshot as ``GET /v1/status``: every family gets its
``# HELP`` and ``# TYPE`` lines, then its samples; label values are escaped.

>>> text = render_metrics({"uptime": 2.5, "workers": [], "cached": [], "apps": [],
...                        "jobs": [], "counters": {}, "now": 0.0})
>>> print("\n".join(text.splitlines()[:3]))
# HELP aiospark_master_uptime_seconds Seconds since the master started.
# TYPE aiospark_master_uptime_seconds gauge
aiospark_master_uptime_seconds 2.5
"""

from __future__ import annotations

import math
from typing import Any

#: The Content-Type of the text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: name -> (type, help), in the order they are written
_FAMILIES: dict[str, tuple[str, str]] = {
    "aiospark_master_uptime_seconds": ("gauge", "Seconds since the master started."),
    "aiospark_workers": ("gauge", "Workers alive (registered and heartbeating)."),
    "aiospark_workers_lost_total": ("counter", "Workers declared lost since the master started."),
    "aiospark_cores": ("gauge", "Cores of all alive workers."),
    "aiospark_running_tasks": ("gauge", "Tasks running on all workers."),
    "aiospark_memory_budget_bytes": ("gauge", "Memory budget of all workers."),
    "aiospark_memory_used_bytes": ("gauge", "Memory charged against the workers' budgets."),
    "aiospark_worker_cores": ("gauge", "A worker's cores (task threads)."),
    "aiospark_worker_memory_budget_bytes": ("gauge", "A worker's memory budget."),
    "aiospark_worker_memory_used_bytes": (
        "gauge", "Memory charged against a worker's budget, by kind (storage: cached blocks; "
        "execution: task buffers)."),
    "aiospark_worker_running_tasks": ("gauge", "Tasks running on a worker."),
    "aiospark_worker_heartbeat_age_seconds": ("gauge", "Seconds since a worker's last heartbeat."),
    "aiospark_worker_tasks_total": (
        "counter", "Tasks a worker ended since it started, by outcome."),
    "aiospark_worker_spilled_bytes_total": (
        "counter", "Bytes a worker spilled to disk since it started."),
    "aiospark_cached_bytes": ("gauge", "Bytes of a persisted RDD's cached blocks, by place."),
    "aiospark_cached_splits": ("gauge", "Cached splits of a persisted RDD."),
    "aiospark_apps_connected": ("gauge", "Drivers connected to the master."),
    "aiospark_jobs_running": ("gauge", "Jobs running, over all drivers."),
    "aiospark_jobs_total": ("counter", "Jobs ended since the master started, by outcome."),
    "aiospark_running_job_tasks": (
        "gauge", "Tasks of the unfinished stages of running jobs, by state."),
}


def escape_label(value: str) -> str:
    r"""A label value for the text format: backslash, double quote and newline escaped.

    >>> print(escape_label('a "b"\\c' + "\n"))
    a \"b\"\\c\n
    """
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: integers without a fraction, and the text format's special floats.

    >>> format_value(3), format_value(0.25), format_value(float("inf")), format_value(float("nan"))
    ('3', '0.25', '+Inf', 'NaN')
    """
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class _Samples:
    def __init__(self) -> None:
        self.by_family: dict[str, list[str]] = {name: [] for name in _FAMILIES}

    def add(self, name: str, value: float, **labels: Any) -> None:
        text = ",".join(f'{k}="{escape_label(str(v))}"' for k, v in labels.items())
        self.by_family[name].append(f"{name}{{{text}}} {format_value(value)}" if text
                                    else f"{name} {format_value(value)}")

    def render(self) -> str:
        lines = []
        for name, (kind, help_text) in _FAMILIES.items():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(self.by_family[name])
        return "\n".join(lines) + "\n"


def render_metrics(status: dict[str, Any]) -> str:
    """The metrics text for a ``GET /v1/status`` snapshot."""
    out = _Samples()
    workers = status["workers"]
    counters = status.get("counters", {})
    out.add("aiospark_master_uptime_seconds", status["uptime"])
    out.add("aiospark_workers", len(workers))
    out.add("aiospark_workers_lost_total", counters.get("workers_lost", 0))
    out.add("aiospark_cores", sum(w["cores"] for w in workers))
    out.add("aiospark_running_tasks", sum(w["running_tasks"] for w in workers))
    out.add("aiospark_memory_budget_bytes", sum(w["memory_bytes"] for w in workers))
    out.add("aiospark_memory_used_bytes", sum(w["memory_used"] for w in workers))
    for w in workers:
        worker = {"worker_id": w["worker_id"], "host": w["host"]}
        out.add("aiospark_worker_cores", w["cores"], **worker)
        out.add("aiospark_worker_memory_budget_bytes", w["memory_bytes"], **worker)
        for kind in ("storage", "execution"):
            out.add("aiospark_worker_memory_used_bytes", w[f"{kind}_used"], **worker, kind=kind)
        out.add("aiospark_worker_running_tasks", w["running_tasks"], **worker)
        age = max(0.0, round(status["now"] - w["last_heartbeat"], 3))
        out.add("aiospark_worker_heartbeat_age_seconds", age, **worker)
        for outcome in ("succeeded", "failed", "cancelled"):
            out.add("aiospark_worker_tasks_total", w[f"tasks_{outcome}"], **worker,
                    outcome=outcome)
        out.add("aiospark_worker_spilled_bytes_total", w["spilled_bytes"], **worker)
    for c in status["cached"]:
        rdd = {"app_id": c["app_id"], "rdd_id": c["rdd_id"]}
        out.add("aiospark_cached_bytes", c["memory_bytes"], **rdd, where="memory")
        out.add("aiospark_cached_bytes", c["disk_bytes"], **rdd, where="disk")
        out.add("aiospark_cached_splits", c["splits"], **rdd)
    out.add("aiospark_apps_connected", sum(a["connected"] for a in status["apps"]))
    running = [j for j in status["jobs"] if j["state"] == "running"]
    out.add("aiospark_jobs_running", len(running))
    for outcome, count in sorted(counters.get("jobs_ended", {}).items()):
        out.add("aiospark_jobs_total", count, outcome=outcome)
    tasks = {"done": 0, "running": 0, "pending": 0}
    for job in running:
        for stage in job["stages"]:
            if stage["state"] in ("running", "waiting"):
                tasks["done"] += stage["done"]
                tasks["running"] += stage["running"]
                tasks["pending"] += max(0, stage["tasks"] - stage["done"] - stage["running"])
    for state, count in tasks.items():
        out.add("aiospark_running_job_tasks", count, state=state)
    return out.render()
