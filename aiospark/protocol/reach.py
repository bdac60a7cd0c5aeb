"""What a client of the master says while its link is down: one line per change, then quiet.

A worker heartbeats to its master, a driver follows the master's event stream.
When the master cannot be reached, or refuses them, they retry with backoff;
``MasterLink`` decides, without doing any I/O, what to log and how long to wait:

- the first failure, and each change of *why* (unreachable, refused with 401,
  another answer), gives one line naming the master and the reason;
- the same failure again gives nothing (a debug line at most), however long it lasts;
- getting through again gives one line saying so;
- a refusal (a wrong secret, which retrying does not fix soon) backs off to
  ``refused_delay``; anything else to ``max_delay``;
- with ``give_up_after``, ``gave_up`` turns true once the link has been down
  that long (``--connect-timeout``: a worker then exits non-zero, so that its
  supervisor, e.g. Kubernetes, sees it).

>>> now = [0.0]
>>> link = MasterLink("worker w1", "http://m:7077", give_up_after=10, clock=lambda: now[0])
>>> link.failed(ConnectionRefusedError("Connection refused"))[0]
'worker w1 cannot reach the master at http://m:7077 (Connection refused); retrying'
>>> link.failed(ConnectionRefusedError("Connection refused"))[0] is None
True
>>> now[0] = 11.0
>>> link.gave_up
True
>>> link.succeeded()
'worker w1 reached the master at http://m:7077 again'
>>> link.gave_up, link.succeeded()
(False, None)
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: First retry delay (seconds); doubles up to the link's maximum.
FIRST_DELAY = 0.05


def failure_reason(exc: BaseException) -> tuple[str, str]:
    """``(kind, text)`` of a failed request to the master: what went wrong, for people.

    >>> failure_reason(TimeoutError())
    ('unreachable', 'no answer in time')
    """
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        if status == 401:
            return "refused", "it refused the cluster secret (401): check AIOSPARK_SECRET"
        message = getattr(exc, "message", "") or ""
        return f"status {status}", f"it answered {status} {message}".rstrip()
    if isinstance(exc, TimeoutError):
        return "unreachable", "no answer in time"
    text = str(exc) or type(exc).__name__
    return "unreachable", text


class MasterLink:
    """The state of one client's link to the master (see the module doc)."""

    def __init__(
        self,
        who: str,
        master_url: str,
        *,
        max_delay: float = 1.0,
        refused_delay: float = 30.0,
        give_up_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.who = who
        self.master_url = master_url
        self.max_delay = max_delay
        self.refused_delay = max(refused_delay, max_delay)
        self.give_up_after = give_up_after
        self._clock = clock
        self._kind: str | None = None  # why the link is down; None while it is up
        self._down_since: float | None = clock()  # a client starts without a link
        self._delay = FIRST_DELAY

    @property
    def down(self) -> bool:
        """True while the last request failed."""
        return self._kind is not None

    @property
    def gave_up(self) -> bool:
        """True once the link has been down (or never up) for ``give_up_after`` seconds."""
        if self.give_up_after is None or self._down_since is None:
            return False
        return self._clock() - self._down_since >= self.give_up_after

    def failed(self, exc: BaseException) -> tuple[str | None, float]:
        """A request failed: the line to log (None: already said) and the delay before retrying."""
        kind, reason = failure_reason(exc)
        line = None
        if kind != self._kind:
            verb = "is refused by" if kind == "refused" else "cannot reach"
            line = f"{self.who} {verb} the master at {self.master_url} ({reason}); retrying"
            self._delay = FIRST_DELAY
        if self._down_since is None:
            self._down_since = self._clock()
        self._kind = kind
        delay = self._delay
        cap = self.refused_delay if kind == "refused" else self.max_delay
        self._delay = min(self._delay * 2, cap)
        return line, delay

    def succeeded(self) -> str | None:
        """A request got through: the line to log when the link was down, else None."""
        was_down = self._kind is not None
        self._kind = None
        self._down_since = None
        self._delay = FIRST_DELAY
        if was_down:
            return f"{self.who} reached the master at {self.master_url} again"
        return None
