"""How the master divides the cluster's cores between the applications connected to it.

As Spark standalone gives each application its cores, the master gives each
driver a share, pushed on its event stream (``ClusterEvent("share", cores=n)``);
the driver's scheduler runs at most that many tasks at once (new launches wait,
running tasks are never preempted).  Whatever the shares, an executor never runs
more tasks than its cores (``worker.state``): a launch beyond them waits there.

The applications with running jobs (busy) split the cores evenly, the remainder
going to the oldest, at least one core each.  An idle application (no running
job) takes nothing from them: it is told what it would get were it busy too, so
its next job starts at once, and the busy ones shrink when the master hears of
that job.

>>> split_cores(4, [("a", True), ("b", True)])
{'a': 2, 'b': 2}
>>> split_cores(5, [("a", True), ("b", True), ("c", False)])
{'a': 3, 'b': 2, 'c': 1}
>>> split_cores(4, [("a", False), ("b", True)])
{'a': 2, 'b': 4}
"""

from __future__ import annotations

from collections.abc import Sequence


def split_cores(total: int, apps: Sequence[tuple[str, bool]]) -> dict[str, int]:
    """Each application's share of ``total`` cores; ``apps`` are (app id, busy), oldest first.

    >>> split_cores(1, [("a", True), ("b", True)])  # fewer cores than applications
    {'a': 1, 'b': 1}
    >>> split_cores(0, [("a", False)])
    {'a': 1}
    """
    busy = [app_id for app_id, is_busy in apps if is_busy]
    shares: dict[str, int] = {}
    if busy:
        each, extra = divmod(total, len(busy))
        for rank, app_id in enumerate(busy):
            shares[app_id] = max(1, each + (rank < extra))
    idle_share = max(1, total // (len(busy) + 1))
    return {app_id: shares.get(app_id, idle_share) for app_id, _ in apps}
