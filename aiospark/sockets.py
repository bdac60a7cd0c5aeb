"""Listening sockets made before any event loop or heavy import (they outlive the processes
serving on them: a restarted master, shuffle service or executor keeps its address)."""

from __future__ import annotations

import socket


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound, listening TCP socket (on a free port by default), inheritable by children.

    >>> sock = listening_socket()
    >>> sock.getsockname()[1] > 0, sock.get_inheritable()
    (True, True)
    >>> sock.close()
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock
