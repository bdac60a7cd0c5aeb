"""Building a task's launch message: what the worker needs to run it, and nothing it has.

``Scheduler`` (``scheduler.runner``) gets these methods from ``LaunchBuilder``:
the split, the stage's pickled lineage the first time a worker runs one of its
tasks, the broadcasts (inline, or where a peer holds them), where the shuffle
inputs and the cached blocks are, the job's local properties, and a barrier
task's peers.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from aiospark.protocol.tasks import LaunchTask, encode
from aiospark.scheduler.dag import Stage, cached_blocks
from aiospark.scheduler.replicas import replica_peers
from aiospark.scheduler.serialize import serialize_split, serialize_stage
from aiospark.shared import collect_broadcasts, stop_collecting

if TYPE_CHECKING:
    from aiospark.scheduler.links import WorkerLink
    from aiospark.scheduler.protocols import SchedulerStage
    from aiospark.scheduler.shared_vars import SharedVariables
    from aiospark.scheduler.state import Launch, SchedulerState


def dag_stage(stage: SchedulerStage) -> Stage:
    """The stage of a ``Launch``: the runner only ever submits ``dag.Stage`` objects."""
    assert isinstance(stage, Stage), stage
    return stage


class LaunchBuilder:
    """The launch messages of a ``Scheduler`` (which holds the attributes below)."""

    state: SchedulerState
    links: dict[str, WorkerLink]
    shared: SharedVariables
    #: stage id -> its pickled lineage, and the broadcasts it reads
    _stage_blobs: dict[int, bytes]
    _stage_broadcasts: dict[int, set[int]]
    #: task id -> (stage id, partition) of the tasks launched and not ended
    _task_partitions: dict[int, tuple[int, int]]
    #: stage id -> (map epoch, its shuffle inputs then)
    _inputs: dict[int, tuple[int, dict[str, list[Any]]]]
    #: job id -> the local properties its tasks see
    _properties: dict[int, dict[str, str]]

    def _launch(self, command: Launch) -> None:
        link = self.links.get(command.worker_id)
        stage = dag_stage(command.stage)
        if link is None:  # raced with the worker's loss: the state machine hears of it next
            return
        blobs = [serialize_split(stage.rdd.splits()[command.partition])]
        stage_included = stage.id not in link.sent_stages
        if stage_included:
            link.sent_stages.add(stage.id)
            blobs.append(self._stage_blob(stage))
        inline, sources, held = self._broadcast_parts(link, stage)
        blobs.extend(inline.values())
        launch = LaunchTask(
            command.task_id, stage.id, command.partition, command.attempt,
            inputs=self._shuffle_inputs(stage),
            stage_included=stage_included,
            broadcast_inline=list(inline),
            broadcast_sources=sources,
            broadcast_held=held,
            **self._block_hints(stage, command.partition, link),
            properties=self._task_properties(stage) if self._properties else {},
            barrier_attempt=command.barrier_attempt,
            barrier_peers=self._barrier_peers(command),
            barrier_timeout=self._barrier_timeout(command),
        )
        self._task_partitions[command.task_id] = (stage.id, command.partition)
        link.send(encode(launch, *blobs))

    def _task_properties(self, stage: Stage) -> dict[str, str]:
        """The local properties of the job a stage's tasks run for (its earliest live job,
        the one its tasks are charged to; PySpark's ``activeJobForStage``)."""
        job_id = self.state.stage_job(stage.id)
        return {} if job_id is None else self._properties.get(job_id, {})

    def _barrier_peers(self, command: Launch) -> list[str]:
        """A barrier task's ``BarrierTaskInfo.address`` list: ``host:port`` of the worker
        of each task of its attempt, in partition order (empty for other tasks)."""
        peers = []
        for worker_id in command.peers:
            link = self.links.get(worker_id)
            peers.append(urllib.parse.urlsplit(link.info.url).netloc if link else worker_id)
        return peers

    def _barrier_timeout(self, command: Launch) -> float:
        """How long a barrier task's calls wait for an answer: a little longer than the
        driver's own bound, which answers first (0 for other tasks)."""
        return self.state.barrier.timeout + 30.0 if command.barrier_attempt >= 0 else 0.0

    def _block_hints(
        self, stage: Stage, partition: int, link: WorkerLink
    ) -> dict[str, dict[str, list[str]]]:
        """For the cached blocks a task may read: ``blocks``, ``{"rdd:split": [worker
        urls]}`` of those held elsewhere (same host first), and ``replicate``, the peers to
        push those of replicated levels to if the task computes and caches them."""
        remote: dict[str, list[str]] = {}
        replicate: dict[str, list[str]] = {}
        own = link.info.worker_id
        hosts: dict[str, str] | None = None  # of the workers that may take a copy, if needed
        for rdd_id, split, replication in cached_blocks(stage.rdd, partition):
            holders = self.state.cached_on(rdd_id, split)
            if own in holders:
                continue
            key = f"{rdd_id}:{split}"
            others = [self.links[w].info for w in sorted(holders) if w in self.links]
            if others:
                others.sort(key=lambda info: info.host != link.info.host)
                remote[key] = [info.url for info in others]
            if replication > 1:
                hosts = self._replica_hosts() if hosts is None else hosts
                peers = replica_peers((rdd_id, split), own, hosts, holders, replication)
                if peers:
                    replicate[key] = [self.links[w].info.url for w in peers]
        hints = {}
        if remote:
            hints["blocks"] = remote
        if replicate:
            hints["replicate"] = replicate
        return hints

    def _replica_hosts(self) -> dict[str, str]:
        """Worker id -> host of the workers that may take a copy of a block (not draining)."""
        workers = self.state.workers
        return {worker_id: link.info.host for worker_id, link in self.links.items()
                if worker_id in workers and not workers[worker_id].draining}

    def _stage_blob(self, stage: Stage) -> bytes:
        blob = self._stage_blobs.get(stage.id)
        if blob is None:
            token, broadcasts = collect_broadcasts()
            try:
                blob = serialize_stage(stage)
            finally:
                stop_collecting(token)
            self._stage_blobs[stage.id] = blob
            self._stage_broadcasts[stage.id] = broadcasts
        return blob

    def _broadcast_parts(
        self, link: WorkerLink, stage: Stage
    ) -> tuple[dict[int, bytes], dict[str, list[str]], list[int]]:
        """Where the stage's broadcasts are for this worker: the values nobody has yet (to
        send inline), the peers holding the others, and those the worker holds."""
        inline: dict[int, bytes] = {}
        sources: dict[str, list[str]] = {}
        held: list[int] = []
        for bid in sorted(self._stage_broadcasts.get(stage.id, ())):
            if bid in link.broadcasts:
                held.append(bid)
                continue
            holders = [
                other.info.url for other in self.links.values()
                if other is not link and bid in other.broadcasts
            ]
            if holders:
                sources[str(bid)] = holders
            else:
                blob = self.shared.blobs.get(bid)
                if blob is None:
                    continue  # destroyed: the task fails reading it, with a clear error
                inline[bid] = blob
            link.broadcasts.add(bid)
        return inline, sources, held

    def _shuffle_inputs(self, stage: Stage) -> dict[str, list[Any]]:
        """For each shuffle the stage reads: ``[[shuffle_url, [map ids]], ...]``."""
        if not stage.parents:
            return {}
        cached = self._inputs.get(stage.id)
        if cached is not None and cached[0] == self.state.map_epoch:
            return cached[1]
        inputs: dict[str, list[Any]] = {}
        for parent in stage.parents:
            by_url: dict[str, list[int]] = {}
            assert parent.shuffle_id is not None  # a parent stage is a map stage
            for map_id, output in enumerate(self.state.map_locations(parent.shuffle_id)):
                by_url.setdefault(output.shuffle_url, []).append(map_id)
            inputs[str(parent.shuffle_id)] = [[url, ids] for url, ids in by_url.items()]
        self._inputs[stage.id] = (self.state.map_epoch, inputs)
        return inputs
