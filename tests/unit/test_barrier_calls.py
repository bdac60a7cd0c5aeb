"""The executor's side of ``barrier()`` calls (``worker.barrier_calls``): a task thread
waiting for the driver's answer stops when the answer is an error, when the task is
cancelled, and when the driver's session closes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from aiospark.errors import BarrierError, TaskCancelled
from aiospark.protocol.tasks import BarrierAnswer
from aiospark.worker.barrier_calls import BarrierCalls


async def waiting_call(then):
    """Start a task's ``barrier()`` call on a thread; once the driver got it, ``then(calls,
    request)`` runs on the loop; return what the call returned or raised."""
    loop = asyncio.get_running_loop()
    sent: asyncio.Queue = asyncio.Queue()
    calls = BarrierCalls(loop, sent.put_nowait)
    task = calls.task(SimpleNamespace(cancelled=False), task_id=7, attempt=3, partition=1,
                      peers=["h:1", "h:2"], timeout=30.0)
    call = asyncio.ensure_future(asyncio.to_thread(task.sync, "barrier", ""))
    request = await asyncio.wait_for(sent.get(), 10)
    assert (request.task_id, request.barrier_attempt, request.partition, request.epoch) == (
        7, 3, 1, 0)
    then(calls, request)
    return await asyncio.wait_for(call, 10)


async def test_an_answer_returns_the_messages_and_an_error_raises():
    got = await waiting_call(lambda calls, r: calls.answer(BarrierAnswer(7, 0, ["", ""])))
    assert got == ["", ""]
    with pytest.raises(BarrierError, match="mismatched"):
        await waiting_call(lambda calls, r: calls.answer(BarrierAnswer(7, 0, error="mismatched")))


async def test_an_answer_to_another_call_is_ignored():
    def answer_wrong_then_right(calls, request):
        calls.answer(BarrierAnswer(7, 5, ["stale"]))  # another call number: not this one
        calls.answer(BarrierAnswer(7, 0, ["a", "b"]))

    assert await waiting_call(answer_wrong_then_right) == ["a", "b"]


async def test_cancelling_the_task_or_losing_the_driver_ends_the_wait():
    with pytest.raises(TaskCancelled):
        await waiting_call(lambda calls, r: calls.interrupt(7))
    with pytest.raises(BarrierError, match="the driver went away"):
        await waiting_call(lambda calls, r: calls.close())
