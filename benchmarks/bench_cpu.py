"""CPU-seconds of this process and every process below it, read from ``/proc``.

Wall times swing 2x on a shared machine; the CPU-seconds a job costs barely
move.  ``tree_cpu_seconds()`` before and after a job, with the embedded
cluster's processes (master, shuffle service, workers, executors) as this
process's descendants, is the runtime's whole cost.  (Linux only: elsewhere it
counts this process alone.)  The process table itself is ``bench_procfs``'s.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench_procfs import cpu_seconds, descendants, role, role_of_argv

#: The roles an aiospark process shows; any other descendant counts as ``other``.
ROLES = ("master", "shuffle service", "worker supervisor", "executor", "zygote")


def role_of(cmdline: str) -> str:
    """The aiospark role a command line (arguments joined by spaces) shows, else ``driver``.

    >>> role_of("python -m aiospark worker --cores 1"), role_of("python -m aiospark.worker {}")
    ('worker supervisor', 'executor')
    >>> role_of("python bench.py")
    'driver'
    """
    name = role_of_argv(cmdline.split())
    return name if name in ROLES else "driver"


def cpu_by_role() -> dict[str, float]:
    """CPU-seconds used so far by this process and its descendants, by role.

    Worker supervisors and executors are numbered (``executor 1`` ...) in pid
    order; a descendant that is no aiospark role (py-spy, a helper) is ``other``.
    """
    used = {"driver": cpu_seconds(os.getpid()) if Path("/proc").is_dir() else sum(os.times()[:2])}
    if not Path("/proc").is_dir():
        return used
    numbered: dict[str, int] = {}
    for pid in sorted(descendants(os.getpid())):
        name = role(pid)
        if name not in ROLES:
            name = "other"
        if name in ("worker supervisor", "executor"):
            numbered[name] = numbered.get(name, 0) + 1
            name = f"{name} {numbered[name]}"
        used[name] = used.get(name, 0.0) + cpu_seconds(pid)
    return used


def tree_cpu_seconds() -> float:
    """CPU-seconds used so far by this process and all its descendants (live ones)."""
    return sum(cpu_by_role().values())
