"""The zygote process (started by ``EmbeddedCluster``, never by hand):
``python -m aiospark.zygote --fd FD --parent-pid PID [ROOM]``.

It serves fork requests on the listening Unix socket ``FD`` until process ``PID``
exits; ``ROOM`` is a blank argument whose length leaves the forked processes
room for their own command lines (``aiospark.proctitle``).
"""

import contextlib
import importlib
import socket
import sys

from aiospark.zygote.server import Zygote

#: Modules every role imports as it starts: imported once here, shared by every child.
PRELOAD = (
    "aiospark.cli",
    "aiospark.commands.roles",
    "aiospark.master.server",
    "aiospark.shuffle.service",
    "aiospark.worker.spawn",
    "aiospark.worker.supervisor",
    "aiospark.worker.process",
)
#: ``-m MODULE`` -> ``"module:function"`` running it with the rest of the command line.
MAINS = {"aiospark": "aiospark.cli:main", "aiospark.worker": "aiospark.worker.process:main"}


def preload() -> None:
    """Import what the roles need (and uvloop, which ``runtime.run`` prefers)."""
    for name in PRELOAD:
        importlib.import_module(name)
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401


def main(argv: list[str]) -> None:
    """Parse ``--fd FD --parent-pid PID``, import, serve."""
    options = dict(zip(argv[0:4:2], argv[1:4:2], strict=True))
    listener = socket.socket(fileno=int(options["--fd"]))
    preload()
    mains = {}
    for module, target in MAINS.items():
        name, function = target.split(":")
        mains[module] = getattr(importlib.import_module(name), function)
    Zygote(listener, int(options["--parent-pid"]), mains).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
