"""CPU-seconds of this process and every process below it, read from ``/proc``.

Wall times swing 2x on a shared machine; the CPU-seconds a job costs barely
move.  ``tree_cpu_seconds()`` before and after a job, with the embedded
cluster's processes (master, shuffle service, workers, executors) as this
process's descendants, is the runtime's whole cost.  (Linux only: elsewhere it
counts this process alone.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_ROLE = re.compile(r"-m aiospark(?:\.(worker)\b| (\S+))")


def _process_table() -> dict[int, tuple[int, float]]:
    """Every live process: pid -> (parent pid, CPU-seconds used so far, user + system)."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK)
    return table


def _descendants(table: dict[int, tuple[int, float]], root: int) -> list[int]:
    """``root`` and every process below it, in pid order."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return sorted(found)


def role_of(cmdline: str) -> str:
    """The aiospark role a command line shows (``executor`` for a worker's task process).

    >>> role_of("python -m aiospark worker --cores 1"), role_of("python -m aiospark.worker {}")
    ('worker', 'executor')
    >>> role_of("python bench.py")
    'driver'
    """
    match = _ROLE.search(cmdline)
    if match is None:
        return "driver"
    return "executor" if match.group(1) else match.group(2)


def cpu_by_role() -> dict[str, float]:
    """CPU-seconds used so far by this process and its descendants, by role.

    Workers and executors are numbered (``worker 1``, ``executor 1`` ...) in pid
    order; a descendant that is no aiospark role (py-spy, a helper) is ``other``.
    """
    if not Path("/proc/self/stat").exists():
        return {"driver": sum(os.times()[:2])}
    table = _process_table()
    used: dict[str, float] = {}
    numbered: dict[str, int] = {}
    for pid in _descendants(table, os.getpid()):
        if pid not in table:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        role = "driver" if pid == os.getpid() else role_of(cmdline)
        if role == "driver" and pid != os.getpid():
            role = "other"
        if role in ("worker", "executor"):
            numbered[role] = numbered.get(role, 0) + 1
            role = f"{role} {numbered[role]}"
        used[role] = used.get(role, 0.0) + table[pid][1]
    return used


def tree_cpu_seconds() -> float:
    """CPU-seconds used so far by this process and all its descendants (live ones)."""
    return sum(cpu_by_role().values())
