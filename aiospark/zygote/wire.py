"""The zygote's messages: one JSON object per ``SOCK_SEQPACKET`` packet, fds beside it.

A request names the command line (without the interpreter) a spawned process
would get, the numbers its file descriptors must have in the child (the fds
themselves travel as ``SCM_RIGHTS``), and its environment (None: the zygote's):

>>> packet = request(["-m", "aiospark", "master", "--fd", "5"], [5], {"A": "1"})
>>> decode(packet)["argv"][2], decode(packet)["fds"], decode(packet)["env"]
('master', [5], {'A': '1'})

The zygote answers ``{"pid": N}`` with the child's pidfd, and later
``{"code": C}`` when the child exits (C as ``Popen.returncode``: ``-signal`` when
killed by one); ``{"error": "..."}`` when it refuses.
"""

from __future__ import annotations

import json
from typing import Any

#: Environment variable naming the zygote's socket, for the processes it forks.
ZYGOTE_ENV = "AIOSPARK_ZYGOTE"
#: ``AIOSPARK_FORK=0`` makes the embedded cluster spawn every process (no zygote).
FORK_ENV = "AIOSPARK_FORK"
#: The largest packet and the most fds a request may carry.
MAX_PACKET = 1 << 16
MAX_FDS = 8


def request(argv: list[str], fds: list[int], env: dict[str, str] | None) -> bytes:
    """A fork request's packet."""
    return encode({"argv": argv, "fds": fds, "env": env})


def encode(message: dict[str, Any]) -> bytes:
    """One message as a packet.

    >>> decode(encode({"pid": 12}))
    {'pid': 12}
    """
    return json.dumps(message, separators=(",", ":")).encode()


def decode(packet: bytes) -> dict[str, Any]:
    """A packet's message; a ``ValueError`` when it is not a JSON object.

    >>> decode(b"[1]")
    Traceback (most recent call last):
    ...
    ValueError: not a zygote message: b'[1]'
    """
    message = json.loads(packet)
    if not isinstance(message, dict):
        raise ValueError(f"not a zygote message: {packet[:80]!r}")
    return message
