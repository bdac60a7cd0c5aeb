"""Shared fixtures: a session-wide embedded cluster, and helpers to wait on conditions."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
import pytest_asyncio

import aiospark


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ctx():
    """One embedded cluster (2 workers) shared by the non-destructive cluster tests."""
    async with aiospark.Context(workers=2) as context:
        yield context


async def wait_until(
    condition: Callable[[], Any], timeout: float = 10.0, what: str = ""
) -> None:
    """Poll ``condition`` (a function, or a coroutine function) until it holds.

    Fails the test after ``timeout`` seconds: the one bounded wait the tests use.
    """
    deadline = time.monotonic() + timeout
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(0.02)


def hold_until(path: str | os.PathLike, limit: float = 60.0) -> bool:
    """In a task on a worker: hold until the test creates ``path``; False after ``limit`` s.

    A file is the one signal a test can send to a task running in another
    process; the bound keeps a test that never opens the gate from hanging.
    """
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


async def worker_health(ctx) -> list[dict]:
    """Each connected worker's ``/v1/health`` answer."""
    answers = []
    for link in list(ctx._scheduler.links.values()):  # links may come and go meanwhile
        async with ctx._session.get(f"{link.info.url}/v1/health") as resp:
            answers.append(await resp.json())
    return answers


async def wait_for_idle(ctx, timeout: float = 5.0) -> None:
    """Wait until no worker runs a task (cancelled tasks have stopped), or fail."""
    async def idle() -> bool:
        return not sum(h["running_tasks"] for h in await worker_health(ctx))

    await wait_until(idle, timeout, "workers to stop running tasks")
