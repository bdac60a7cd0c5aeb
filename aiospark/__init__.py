"""aiospark: an asyncio-native, Spark-style distributed runtime for Python.

>>> import aiospark
>>> {"Context", "RDD", "StorageLevel"} <= set(aiospark.__all__)
True
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiospark.barrier import BarrierTaskContext, BarrierTaskInfo, RDDBarrier
    from aiospark.context import Context
    from aiospark.errors import (
        AiosparkError,
        BarrierError,
        ClusterError,
        JobCancelled,
        JobFailed,
        RemoteTraceback,
        SerializationError,
        UserCodeError,
    )
    from aiospark.hashing import portable_hash
    from aiospark.lineage import HashPartitioner, Partitioner, StorageLevel
    from aiospark.partial import BoundedFloat
    from aiospark.rdd import RDD
    from aiospark.scheduler.tracker import JobInfo, StageInfo, StatusTracker
    from aiospark.shared import Accumulator, AccumulatorParam, Broadcast
    from aiospark.taskcontext import TaskContext

# Imported on first use, so the cluster's own processes (``python -m aiospark
# worker``) start without loading the driver's modules.
_EXPORTS = {
    "Context": "aiospark.context",
    "AiosparkError": "aiospark.errors",
    "BarrierError": "aiospark.errors",
    "BarrierTaskContext": "aiospark.barrier",
    "BarrierTaskInfo": "aiospark.barrier",
    "RDDBarrier": "aiospark.barrier",
    "ClusterError": "aiospark.errors",
    "JobCancelled": "aiospark.errors",
    "JobFailed": "aiospark.errors",
    "RemoteTraceback": "aiospark.errors",
    "SerializationError": "aiospark.errors",
    "UserCodeError": "aiospark.errors",
    "portable_hash": "aiospark.hashing",
    "HashPartitioner": "aiospark.lineage",
    "Partitioner": "aiospark.lineage",
    "StorageLevel": "aiospark.lineage",
    "BoundedFloat": "aiospark.partial",
    "RDD": "aiospark.rdd",
    "JobInfo": "aiospark.scheduler.tracker",
    "StageInfo": "aiospark.scheduler.tracker",
    "StatusTracker": "aiospark.scheduler.tracker",
    "Accumulator": "aiospark.shared",
    "AccumulatorParam": "aiospark.shared",
    "Broadcast": "aiospark.shared",
    "TaskContext": "aiospark.taskcontext",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aiospark' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__version__ = "0.1.0.dev0"

__all__ = [
    "RDD",
    "Accumulator",
    "AccumulatorParam",
    "AiosparkError",
    "BarrierError",
    "BarrierTaskContext",
    "BarrierTaskInfo",
    "BoundedFloat",
    "Broadcast",
    "ClusterError",
    "Context",
    "HashPartitioner",
    "JobCancelled",
    "JobFailed",
    "JobInfo",
    "Partitioner",
    "RDDBarrier",
    "RemoteTraceback",
    "SerializationError",
    "StageInfo",
    "StatusTracker",
    "StorageLevel",
    "TaskContext",
    "UserCodeError",
    "portable_hash",
]
