"""Exceptions users may see or catch."""

from __future__ import annotations


class AiosparkError(Exception):
    """Base of aiospark's own errors."""


class JobFailed(AiosparkError):
    """A job gave up: a task failed too often for a reason that is not the user's code."""


class JobCancelled(AiosparkError):
    """The job was cancelled (its context stopped, or it was cancelled on request)."""


class TaskCancelled(AiosparkError):
    """Raised inside a task whose job was cancelled; never reaches users."""


class ClusterError(AiosparkError):
    """The cluster could not be started or reached."""


class SerializationError(AiosparkError, TypeError):
    """A function or value could not be pickled to ship it to the workers."""


class FetchFailed(AiosparkError):
    """A reducer could not fetch map outputs; the scheduler recomputes them."""

    def __init__(self, shuffle_id: int, map_ids: list[int], url: str, reason: str) -> None:
        super().__init__(f"fetch of shuffle {shuffle_id} maps {map_ids} from {url}: {reason}")
        self.shuffle_id = shuffle_id
        self.map_ids = map_ids
        self.url = url
        self.reason = reason

    def __reduce__(self):  # keep the fields across pickling
        return (FetchFailed, (self.shuffle_id, self.map_ids, self.url, self.reason))


class RemoteTraceback(Exception):
    """Carries a worker's formatted traceback as the ``__cause__`` of a user error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\n" + self.text
