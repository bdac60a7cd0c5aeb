"""Fault injection, for proving that jobs survive unreliable processes (like GoSpark's tests).

Set ``AIOSPARK_FAULTS`` in the environment of the cluster's processes (the
embedded cluster passes the driver's environment on), for example::

    AIOSPARK_FAULTS="fail=0.05,hang=0.02,hang_seconds=1,task_fail=0.05,seed=7"

- ``fail``: fraction of HTTP requests (control and data) answered 503, and of
  local shuffle reads that fail;
- ``hang``: fraction of HTTP requests delayed by ``hang_seconds`` first;
- ``task_fail``: fraction of tasks that fail with ``InjectedFault`` before running;
- ``seed``: makes the choices repeatable (per process).

With nothing set, nothing is injected and the cost is one attribute check.

>>> plan = FaultPlan.parse("fail=0.5,seed=1")
>>> sorted({plan.roll("request") for _ in range(100)} - {None})
['fail']
>>> plan.injected["request_total"]
100
>>> FaultPlan.parse("fail=2")
Traceback (most recent call last):
...
ValueError: AIOSPARK_FAULTS: fail must be between 0 and 1, got 2.0
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web


class InjectedFault(Exception):
    """A failure made on purpose by ``AIOSPARK_FAULTS``."""


@dataclasses.dataclass
class FaultPlan:
    """What to inject, and how much was injected so far."""

    fail: float = 0.0
    hang: float = 0.0
    hang_seconds: float = 1.0
    task_fail: float = 0.0
    seed: int | None = None
    injected: Counter = dataclasses.field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """Read ``key=value,...`` (the format of ``AIOSPARK_FAULTS``)."""
        values: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, raw = item.partition("=")
            if not sep or key not in ("fail", "hang", "hang_seconds", "task_fail", "seed"):
                raise ValueError(f"AIOSPARK_FAULTS: unknown setting {item!r}")
            try:
                values[key] = float(raw)
            except ValueError:
                raise ValueError(f"AIOSPARK_FAULTS: {key} must be a number, got {raw!r}") from None
        for key in ("fail", "hang", "task_fail"):
            if not 0 <= values.get(key, 0.0) <= 1:
                got = values[key]
                raise ValueError(f"AIOSPARK_FAULTS: {key} must be between 0 and 1, got {got}")
        seed = values.pop("seed", None)
        return cls(**values, seed=None if seed is None else int(seed))

    @property
    def active(self) -> bool:
        return bool(self.fail or self.hang or self.task_fail)

    def roll(self, kind: str) -> str | None:
        """``"fail"``, ``"hang"`` or None for one request (``kind`` is counted).

        Tasks fail with ``task_fail``; other kinds than ``"request"`` never hang.
        """
        draw = self._random.random()
        self.injected[f"{kind}_total"] += 1
        if kind == "task":
            outcome = "fail" if draw < self.task_fail else None
        elif kind != "request":
            outcome = "fail" if draw < self.fail else None
        elif draw < self.fail:
            outcome = "fail"
        elif draw < self.fail + self.hang:
            outcome = "hang"
        else:
            outcome = None
        if outcome:
            self.injected[f"{kind}_{outcome}"] += 1
        return outcome


def _from_environment() -> FaultPlan:
    text = os.environ.get("AIOSPARK_FAULTS", "")
    return FaultPlan.parse(text) if text else FaultPlan()


#: This process's plan (empty unless AIOSPARK_FAULTS is set).
PLAN = _from_environment()


def maybe_fail(kind: str) -> None:
    """Raise ``InjectedFault`` for a fraction of calls, when fault injection is on."""
    if PLAN.active and PLAN.roll(kind) == "fail":
        raise InjectedFault(f"injected {kind} failure (AIOSPARK_FAULTS)")


def middleware() -> Callable:
    """aiohttp middleware failing or delaying a fraction of requests."""

    @web.middleware
    async def inject(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if PLAN.active and request.path != "/v1/health":
            outcome = PLAN.roll("request")
            if outcome == "fail":
                return web.json_response({"error": "injected fault (AIOSPARK_FAULTS)"}, status=503)
            if outcome == "hang":
                await asyncio.sleep(PLAN.hang_seconds)
        return await handler(request)

    return inject
