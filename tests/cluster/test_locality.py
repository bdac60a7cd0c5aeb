"""Input splits run where the filesystem says their blocks are (a custom fsspec filesystem)."""

from __future__ import annotations

import os

import fsspec
import pytest
import pytest_asyncio
from fsspec.implementations.local import LocalFileSystem

import aiospark

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


class LocatedFS(LocalFileSystem):
    """Local files whose blocks of ``BLOCK`` bytes are "stored" on ``HOSTS``, round robin.

    A file's first block is on ``HOSTS[0]``, or on ``HOSTS[1]`` if its name is in
    ``START_ON_SECOND``.  Set by the tests, in the driver (the only process that asks).
    """

    protocol = ("located",)
    BLOCK = 1000
    HOSTS: list[str] = []
    START_ON_SECOND: set[str] = set()
    calls: list[tuple[str, int, int]] = []

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, str) and path.startswith("located://"):
            path = path[len("located://") :]
        return super()._strip_protocol(path)

    def get_file_block_locations(self, path, start, length):
        self.calls.append((path, start, length))
        first = int(os.path.basename(path) in self.START_ON_SECOND)
        return [
            (offset, min(self.BLOCK, length - offset), [self.HOSTS[(first + i) % 2]])
            for i, offset in enumerate(range(start, start + length, self.BLOCK))
        ]


fsspec.register_implementation("located", LocatedFS, clobber=True)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def patient_ctx():
    """Two workers; a task waits as long as it takes for the worker its data prefer."""
    async with aiospark.Context(workers=2, locality_wait=120) as context:
        ids = sorted(context._scheduler.known)
        LocatedFS.HOSTS = ids
        yield context


def worker_pids(context) -> dict[str, int]:
    return {w: info.pid for w, info in context._scheduler.known.items()}


async def test_text_splits_run_on_the_workers_holding_their_blocks(patient_ctx, tmp_path):
    path = tmp_path / "blocks.txt"
    path.write_bytes(b"".join(f"{i:09d}\n".encode() for i in range(800)))  # 8 blocks
    LocatedFS.calls.clear()
    rdd = patient_ctx.text_file(f"located://{path}", min_partitions=8)
    assert LocatedFS.calls == [(str(path), 0, 8000)], "asked once, for the whole file"
    splits = rdd.splits()
    assert [s.data.start for s in splits] == list(range(0, 8000, 1000))
    wanted = [LocatedFS.HOSTS[i % 2] for i in range(8)]
    assert [rdd.preferred_locations(s) for s in splits] == [[w] for w in wanted]
    # every split ran in the process of the worker holding it
    ran = await rdd.map_partitions(lambda lines: [(os.getpid(), sum(1 for _ in lines))]).collect()
    pids = worker_pids(patient_ctx)
    assert [pid for pid, _ in ran] == [pids[w] for w in wanted]
    assert sum(n for _, n in ran) == 800
    # the preference survives narrow transformations
    mapped = await rdd.map(len).map_partitions(lambda it: [os.getpid()]).collect()
    assert mapped == [pids[w] for w in wanted]


async def test_whole_files_prefer_the_worker_with_most_of_their_bytes(
    patient_ctx, tmp_path, monkeypatch
):
    folder = tmp_path / "files"
    folder.mkdir()
    sizes = {"a": 500, "b": 2500, "c": 900, "d": 100}
    for name, size in sizes.items():
        (folder / name).write_bytes(b"x" * size)
    monkeypatch.setattr(LocatedFS, "START_ON_SECOND", {"c", "d"})
    first, second = LocatedFS.HOSTS
    pids = worker_pids(patient_ctx)
    # one file per split: b's three blocks are on first, second, first
    rdd = patient_ctx.binary_files(f"located://{folder}", min_partitions=4)
    expected = [first, first, second, second]
    assert [rdd.preferred_locations(s) for s in rdd.splits()] == [[w] for w in expected]
    ran = await rdd.map_partitions(lambda it: [(os.getpid(), [len(v) for _, v in it])]).collect()
    assert ran == [(pids[w], [size]) for w, size in zip(expected, sizes.values(), strict=True)]
    # two files per split: (a, b) hold 2500 bytes on first, 500 on second; (c, d) on second
    rdd = patient_ctx.whole_text_files(f"located://{folder}", min_partitions=2)
    assert [rdd.preferred_locations(s) for s in rdd.splits()] == [[first], [second]]
    ran = await rdd.map_partitions(lambda it: [(os.getpid(), len(list(it)))]).collect()
    assert ran == [(pids[first], 2), (pids[second], 2)]
