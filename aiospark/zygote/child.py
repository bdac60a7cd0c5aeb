"""What a process forked by the zygote does before it runs its role's main.

It drops what was the zygote's (its sockets, its signal handling), becomes the
leader of a new session (as ``start_new_session=True``), puts the file descriptors
it was sent at the numbers its command line names, shows that command line to
``ps``, and runs the role's ``main(args)`` as ``python -m MODULE ARGS`` would.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from aiospark.proctitle import set_title

#: ``main(args)`` of each module a request may name (``-m MODULE``); returns an exit code.
Mains = dict[str, Callable[[list[str]], Any]]


def place_fds(received: list[int], targets: list[int]) -> None:
    """Move ``received[i]`` to number ``targets[i]`` (inheritable), whatever they were.

    >>> r, w = os.pipe()
    >>> high = max(r, w) + 20
    >>> place_fds([w], [high])
    >>> os.write(high, b"x"), os.read(r, 1)
    (1, b'x')
    >>> os.close(r), os.close(high)
    (None, None)
    """
    if len(received) != len(targets):
        raise ValueError(f"{len(received)} fds sent for {len(targets)} numbers")
    # First out of the way of every target, then into place.
    floor = max([*targets, *received, 2]) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in received]
    for fd in received:
        os.close(fd)
    for fd, target in zip(moved, targets, strict=True):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)


def exit_code(value: Any) -> int:
    """The process exit code of ``SystemExit(value)``.

    >>> exit_code(None), exit_code(3), exit_code("bad")
    (0, 3, 1)
    """
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    sys.stderr.write(f"{value}\n")
    return 1


def run_child(message: dict[str, Any], received: list[int], mains: Mains,
              shed: Iterable[Any]) -> int:
    """Become the process ``message`` asks for and run it; returns its exit code.

    ``shed``: the zygote's fds, sockets (detached first, so that nothing closes
    their numbers again later) and selector, closed here.
    """
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for item in shed:
        with contextlib.suppress(OSError):
            if isinstance(item, int):
                os.close(item)
            elif hasattr(item, "detach"):
                os.close(item.detach())
            else:
                item.close()
    os.setsid()
    place_fds(received, [int(n) for n in message["fds"]])
    if message.get("env") is not None:  # as Popen(env=...): all of it
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in message["env"].items()})
    argv = [str(a) for a in message["argv"]]
    set_title([sys.executable, *argv])
    if "numpy.random" in sys.modules:  # Python's own random reseeds itself after a fork
        sys.modules["numpy.random"].seed()
    module, args = argv[1], argv[2:]
    sys.argv = [module, *args]
    try:
        code = exit_code(mains[module](args))
    except SystemExit as exc:
        code = exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code
