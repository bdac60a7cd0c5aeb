"""Mains a test zygote forks (tests/cluster/test_zygote.py): small, observable processes."""

from __future__ import annotations

import os
import time


def exit_with(args: list[str]) -> int:
    """Exit with the code ``args[0]``."""
    return int(args[0])


def write_to(args: list[str]) -> int:
    """Write ``args[1]`` to fd ``args[0]`` (an fd the request placed), then exit 0."""
    os.write(int(args[0]), args[1].encode())
    return 0


def write_env(args: list[str]) -> int:
    """Write the sorted names of the environment's variables to fd ``args[0]``."""
    os.write(int(args[0]), " ".join(sorted(os.environ)).encode())
    return 0


def sleep(args: list[str]) -> int:
    """Sleep until killed (at most a minute)."""
    time.sleep(60)
    return 0


MAINS = {"exit": exit_with, "write": write_to, "env": write_env, "sleep": sleep}

#: ``python -c`` program of a zygote serving MAINS: argv FD PARENT_PID ROOM.
ZYGOTE = (
    "import socket, sys\n"
    "from aiospark.zygote.server import Zygote\n"
    "from tests.cluster.zygote_mains import MAINS\n"
    "Zygote(socket.socket(fileno=int(sys.argv[1])), int(sys.argv[2]), MAINS).serve()\n"
)
