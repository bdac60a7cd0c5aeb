"""A forked process's command line, as ``ps`` and ``/proc/PID/cmdline`` show it.

A process forked from the zygote (``aiospark.zygote``) would show the zygote's
command line.  Linux shows the memory that held the original ``argv`` (from
``arg_start`` to ``arg_end`` in ``/proc/self/stat``); Python keeps copies of its
arguments, so that memory can be overwritten with the role's command line, cut to
the space there is.  The zygote is started with a long blank argument to leave
room for it.
"""

from __future__ import annotations

import ctypes


def argv_area() -> tuple[int, int]:
    """``(start, end)`` addresses of this process's original argument strings.

    >>> start, end = argv_area()
    >>> end > start
    True
    """
    with open("/proc/self/stat", "rb") as f:
        stat = f.read()
    # "pid (comm) state ...": fields after the command, counted from 3 (state).
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[48 - 3]), int(fields[49 - 3])


def title_bytes(argv: list[str], room: int) -> bytes:
    """``argv`` as NUL-separated bytes filling exactly ``room`` bytes (cut, NUL-padded).

    >>> title_bytes(["python", "-m", "aiospark", "master"], 28)
    b'python\\x00-m\\x00aiospark\\x00master\\x00\\x00\\x00'
    >>> title_bytes(["python", "-m", "aiospark", "worker"], 12)
    b'python\\x00-m\\x00a\\x00'
    """
    text = b"\0".join(a.encode("utf-8", "replace") for a in argv)[: room - 1]
    return text.ljust(room, b"\0")


def set_title(argv: list[str]) -> bool:
    """Show ``argv`` as this process's command line; False when it could not be done."""
    try:
        start, end = argv_area()
        if end - start < 2:
            return False
        ctypes.memmove(start, title_bytes(argv, end - start), end - start)
    except (OSError, ValueError, IndexError):
        return False
    return True
