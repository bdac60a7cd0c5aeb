"""The output commit protocol on a real cluster: retried and speculative attempts."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import pytest_asyncio

import aiospark
from aiospark.sources import slice_collection
from tests.conftest import hold_until, wait_for_idle, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def speculative_ctx():
    """Two workers, speculation on: a straggling task gets a second copy."""
    async with aiospark.Context(workers=2, speculation=True) as context:
        yield context


def _first_to_create(path: str) -> bool:
    """True for exactly one caller across processes: the one that creates ``path``."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def listing(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names
    )


async def test_speculative_loser_finishing_after_the_job_changes_nothing(
    speculative_ctx, tmp_path
):
    out = tmp_path / "out"
    marker = str(tmp_path / "slow-attempt")
    success = str(out / "_SUCCESS")

    def tagged(index, records):
        records = list(records)  # no more cancellation checks from here: a true zombie
        tag = "fast"
        if index == 0 and _first_to_create(marker):
            # The first attempt of partition 0 straggles until the job has committed
            # (the speculative copy's output), then writes different records.
            hold_until(success, 30)
            tag = "slow"
        for x in records:
            yield f"{tag} {x}"

    rdd = speculative_ctx.parallelize(range(40), 4).map_partitions_with_index(tagged)
    await rdd.save_as_text_file(str(out))
    await wait_for_idle(speculative_ctx, timeout=40)  # the straggler has finished too
    assert os.path.exists(marker), "partition 0 had a straggling first attempt"
    assert listing(out) == ["_SUCCESS"] + [f"part-{i:05d}" for i in range(4)]
    assert (out / "part-00000").read_text() == "".join(f"fast {x}\n" for x in range(10))
    lines = await speculative_ctx.text_file(str(out)).collect()
    assert lines == [f"fast {x}" for x in range(40)]


async def test_retried_attempt_writes_its_part_once(ctx, tmp_path):
    out = tmp_path / "out"
    marker = str(tmp_path / "failed-once")

    def flaky(index, records):
        for n, x in enumerate(records):
            if index == 1 and n == 3000 and _first_to_create(marker):
                raise ConnectionResetError("lost the storage connection mid-part")
            yield x

    data = [f"record {i}" for i in range(20_000)]
    await ctx.parallelize(data, 2).map_partitions_with_index(flaky).save_as_text_file(str(out))
    assert os.path.exists(marker), "partition 1 failed once and was retried"
    assert listing(out) == ["_SUCCESS", "part-00000", "part-00001"]
    second = slice_collection(data, 2)[1]
    assert (out / "part-00001").read_text() == "".join(f"{x}\n" for x in second)
    assert await ctx.text_file(str(out)).collect() == data


async def test_cancelled_save_leaves_no_part(ctx, tmp_path):
    out = tmp_path / "out"
    started = tmp_path / "started"

    def slow(records):
        started.touch()
        for x in records:
            time.sleep(0.001)
            yield x

    rdd = ctx.parallelize(range(100_000), 2).map_partitions(slow)
    job = asyncio.create_task(rdd.save_as_text_file(str(out)))
    await wait_until(started.exists, 30, "the save's tasks to start")
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    await wait_for_idle(ctx, timeout=10)
    assert listing(out) == [], "no part, no _SUCCESS, no _temporary"
