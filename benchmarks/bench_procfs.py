"""What ``/proc`` says of a driver and the processes below it: roles, RSS, PSS, fds, CPU.

PSS (proportional set size, ``/proc/PID/smaps_rollup``) charges each shared page
to the processes sharing it in equal parts, so the PSS of all a cluster's
processes adds up to the memory they really take: forked processes that share
the zygote's pages are not counted once per process as RSS would.
"""

from __future__ import annotations

import os


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), depth first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, stack = [], list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child, []))
    return found


def role(pid: int) -> str:
    """The aiospark role a process's command line shows (``?`` when it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    return role_of_argv(argv)


def role_of_argv(argv: list[str]) -> str:
    """The aiospark role an argument vector shows, else its program's name.

    >>> role_of_argv(["python", "-m", "aiospark", "shuffle-service"])
    'shuffle service'
    """
    text = " ".join(argv)
    if "aiospark.worker" in text:
        return "executor"
    if "aiospark.zygote" in text:
        return "zygote"
    for name, label in (("shuffle-service", "shuffle service"), ("master", "master"),
                        ("worker", "worker supervisor")):
        if name in argv:
            return label
    return os.path.basename(argv[0]) if argv and argv[0] else "?"


def process_stats(pid: int) -> tuple[float, int]:
    """``(RSS in MiB, open fds)`` of a process."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def pss_mib(pid: int) -> float:
    """A process's PSS in MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU-seconds a process has used (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
