"""Replicated storage levels, piece by piece: the peer order (pure), the level on the
wire, a task's pushes, and a push to peers that refuse or cannot be reached (two block
servers in this process, over loopback)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections import Counter

import aiohttp
import pytest
from aiohttp import web

from aiospark.lineage import StorageLevel
from aiospark.memory import MemoryManager
from aiospark.protocol.frames import frame_bytes
from aiospark.scheduler.replicas import order_peers, replica_peers
from aiospark.worker.block_server import BlockServer, level_token, parse_level
from aiospark.worker.blocks import BlockStore
from aiospark.worker.executor import TaskSpec, WorkerTaskContext

REPLICATED = [StorageLevel.MEMORY_ONLY_2, StorageLevel.MEMORY_ONLY_SER_2,
              StorageLevel.MEMORY_AND_DISK_2, StorageLevel.MEMORY_AND_DISK_SER_2,
              StorageLevel.DISK_ONLY_2, StorageLevel.DISK_ONLY_3]


# -- the levels -------------------------------------------------------------------------


def test_replicated_levels_are_their_unreplicated_forms_times_n():
    singles = [StorageLevel.MEMORY_ONLY, StorageLevel.MEMORY_ONLY_SER,
               StorageLevel.MEMORY_AND_DISK, StorageLevel.MEMORY_AND_DISK_SER,
               StorageLevel.DISK_ONLY, StorageLevel.DISK_ONLY]
    for single, level in zip(singles, REPLICATED, strict=True):
        assert (level.use_disk, level.use_memory, level.deserialized) == (
            single.use_disk, single.use_memory, single.deserialized)
    assert [level.replication for level in REPLICATED] == [2, 2, 2, 2, 2, 3]
    assert str(StorageLevel.MEMORY_ONLY_SER_2) == "Memory Serialized 2x Replicated"
    assert str(StorageLevel.DISK_ONLY_3) == "Disk Serialized 3x Replicated"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_a_replication_that_is_not_a_positive_int_is_refused(bad):
    with pytest.raises(ValueError, match="replication must be a positive int"):
        StorageLevel(False, True, True, bad)


@pytest.mark.parametrize("level", [*REPLICATED, StorageLevel(True, True, False, 7)])
def test_a_level_travels_as_its_token(level):
    assert parse_level(level_token(level)) == level


@pytest.mark.parametrize("token", ["", "1,1,0", "1,1,0,2,2", "2,1,0,2", "1,1,0,0", "1,1,0,-2",
                                   "1,1,0,x", "0,0,1,2", "1,1,0,1e3", "1,1,0,99999999999"])
def test_a_malformed_level_token_is_a_value_error(token):
    with pytest.raises(ValueError):
        parse_level(token)


# -- a copy put as frames --------------------------------------------------------------------


@pytest.mark.parametrize("level", REPLICATED)
def test_a_copy_arriving_as_frames_is_kept_as_a_computed_block_is(tmp_path, level):
    records = [(i, str(i)) for i in range(5000)]
    source = BlockStore(str(tmp_path / "a"), MemoryManager(1 << 24))
    source.put("app", 1, 0, records, level)
    frames = [b"".join(pieces) for pieces in source.frames("app", 1, 0)]
    copy = BlockStore(str(tmp_path / "b"), MemoryManager(1 << 24))
    assert copy.put_frames("app", 1, 0, frames, level)
    assert copy.where("app", 1, 0) == source.where("app", 1, 0)
    assert list(copy.get("app", 1, 0)) == records
    assert copy.summary()["memory_bytes"] == source.summary()["memory_bytes"]
    if not level.deserialized:  # kept as they came
        assert [b"".join(p) for p in copy.frames("app", 1, 0)] == frames


def test_a_serialized_copy_past_the_budget_is_refused_or_goes_to_disk(tmp_path):
    frames = [frame_bytes(list(range(i * 1000, (i + 1) * 1000))) for i in range(20)]
    store = BlockStore(str(tmp_path), MemoryManager(20_000))
    assert not store.put_frames("app", 1, 0, frames, StorageLevel.MEMORY_ONLY_SER_2)
    assert store.memory.storage_used == 0 and store.summary()["not_stored"] == 1
    assert store.put_frames("app", 1, 0, frames, StorageLevel.MEMORY_AND_DISK_SER_2)
    assert store.where("app", 1, 0) == "disk" and store.memory.storage_used == 0
    assert list(store.get("app", 1, 0)) == list(range(20_000))


# -- choosing peers (pure) -------------------------------------------------------------------


def test_other_hosts_come_before_a_second_worker_on_a_host():
    candidates = [("w2", "a"), ("w3", "b"), ("w4", "b"), ("w5", "c"), ("w6", "c")]
    for seed in range(200):
        order = order_peers("a", candidates, seed)
        hosts = dict(candidates)
        assert sorted(order) == ["w2", "w3", "w4", "w5", "w6"]
        assert {hosts[w] for w in order[:2]} == {"b", "c"}  # one on each other host
        assert order[-1] == "w2" or hosts[order[-1]] != "a"  # the pusher's host comes last
        assert order == order_peers("a", list(reversed(candidates)), seed)  # deterministic


def test_copies_of_different_blocks_spread_over_the_workers():
    workers = {f"w{i}": "h" for i in range(5)}
    firsts = Counter(replica_peers((3, split), "w0", workers, (), 2)[0] for split in range(400))
    assert set(firsts) == {"w1", "w2", "w3", "w4"}
    assert min(firsts.values()) > 50  # ~100 each


def test_replica_peers_leave_out_the_pusher_and_the_holders_and_stop_at_the_spares():
    workers = {f"w{i}": f"h{i % 3}" for i in range(10)}
    peers = replica_peers((1, 2), "w0", workers, holders={"w1", "w2"}, replication=3, spare=2)
    assert len(peers) == 4 and not {"w0", "w1", "w2"} & set(peers)
    assert replica_peers((1, 2), "w0", workers, (), replication=1) == []
    # Fewer workers than copies: every other worker.
    assert sorted(replica_peers((1, 2), "w0", {"w0": "a", "w1": "a"}, (), 3)) == ["w1"]


# -- a task's pushes -----------------------------------------------------------------------


def _task_context(tmp_path, replicate, replicate_to):
    spec = TaskSpec("app", 1, 0, 0, 0, b"", {}, replicate_to=replicate_to)
    store = BlockStore(str(tmp_path), MemoryManager(1 << 24))
    return WorkerTaskContext(spec, store, lambda *a: iter(()), replicate=replicate), store


def test_a_task_pushes_what_it_cached_and_a_failed_push_does_not_fail_it(tmp_path):
    asked = []

    def replicate(rdd_id, split, level, urls):
        asked.append((rdd_id, split, level.replication, urls))
        future: concurrent.futures.Future = concurrent.futures.Future()
        if split == 0:
            future.set_result(urls[:1])
        else:
            future.cancel()  # (as a push that timed out is)
        return future

    peers = {"5:0": ["http://p1", "http://p2"], "5:1": ["http://p2"], "6:0": ["http://p1"]}
    tctx, _ = _task_context(tmp_path, replicate, peers)
    assert list(tctx.put_block(5, 0, range(3), StorageLevel.MEMORY_ONLY_2)) == [0, 1, 2]
    assert list(tctx.put_block(5, 1, range(3), StorageLevel.DISK_ONLY_2)) == [0, 1, 2]
    assert list(tctx.put_block(6, 0, range(3), StorageLevel.MEMORY_ONLY)) == [0, 1, 2]
    tctx.wait_for_replicas()
    assert asked == [(5, 0, 2, ["http://p1", "http://p2"]), (5, 1, 2, ["http://p2"])]
    assert tctx.replicas == [(5, 0, "http://p1")]
    assert tctx.cached == [(5, 0), (5, 1), (6, 0)]


def test_a_cancelled_task_does_not_wait_for_its_pushes(tmp_path):
    pending: concurrent.futures.Future = concurrent.futures.Future()
    tctx, _ = _task_context(tmp_path, lambda *a: pending, {"5:0": ["http://p1"]})
    list(tctx.put_block(5, 0, range(3), StorageLevel.MEMORY_ONLY_2))
    tctx.cancelled = True
    tctx.wait_for_replicas()  # returns at once
    assert pending.cancelled() and tctx.replicas == []


# -- pushing to real servers ------------------------------------------------------------------


async def _serve(server: BlockServer) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.add_routes(server.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def test_a_push_skips_peers_that_refuse_or_are_gone_and_the_copy_is_charged(tmp_path):
    async with aiohttp.ClientSession() as session:
        def server(name: str, budget: int) -> BlockServer:
            store = BlockStore(str(tmp_path / name), MemoryManager(budget))
            return BlockServer(store, lambda app: app == "app", lambda: session)

        source, roomy = server("src", 1 << 26), server("big", 1 << 26)
        small = server("small", 50_000)
        runners = []
        try:
            urls = {}
            for name, peer in (("small", small), ("roomy", roomy)):
                runner, urls[name] = await _serve(peer)
                runners.append(runner)
            records = [(i, f"{i:0100d}") for i in range(3000)]  # ~500 kB: too big for "small"
            level = StorageLevel.MEMORY_ONLY_2
            assert source.blocks.put("app", 4, 0, records, level)
            order = [_closed_port_url(), urls["small"], urls["roomy"], urls["small"]]
            taken = await source.push("app", 4, 0, level, order)
            assert taken == [urls["roomy"]]  # one copy wanted: the spares after it are not tried
            assert source.stats["push_failed"] == 2 and source.stats["pushed"] == 1
            assert small.blocks.where("app", 4, 0) is None and small.stats["received"] == 0
            assert small.blocks.memory.storage_used == 0  # refused, nothing left charged
            assert roomy.blocks.where("app", 4, 0) == "memory"
            assert list(roomy.blocks.get("app", 4, 0)) == records
            assert roomy.blocks.memory.storage_used > 0  # charged like a computed block
            # A block gone from the pusher (evicted meanwhile) is not pushed at all.
            assert await source.push("app", 9, 0, level, [urls["roomy"]]) == []
        finally:
            for runner in runners:
                await runner.cleanup()


async def test_a_copy_for_an_app_the_peer_does_not_serve_is_refused(tmp_path):
    async with aiohttp.ClientSession() as session:
        store = BlockStore(str(tmp_path), MemoryManager(1 << 24))
        peer = BlockServer(store, lambda app: False, lambda: session)
        runner, url = await _serve(peer)
        try:
            async with session.put(f"{url}/v1/blocks/app/1/0",
                                   params={"level": "0,1,1,2"}, data=b"") as resp:
                assert resp.status == 404
            assert await asyncio.wait_for(
                BlockServer(store, lambda a: True, lambda: session).push(
                    "app", 1, 0, StorageLevel.MEMORY_ONLY_2, [url]), 10) == []
        finally:
            await runner.cleanup()
