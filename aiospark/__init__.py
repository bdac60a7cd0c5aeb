"""aiospark: an asyncio-native, Spark-style distributed runtime for Python.

>>> import aiospark
>>> sorted(n for n in aiospark.__all__ if n[0].isupper())[:3]
['AiosparkError', 'ClusterError', 'Context']
"""

from aiospark.context import Context
from aiospark.errors import (
    AiosparkError,
    ClusterError,
    JobCancelled,
    JobFailed,
    RemoteTraceback,
    SerializationError,
)
from aiospark.hashing import portable_hash
from aiospark.lineage import HashPartitioner, Partitioner, StorageLevel
from aiospark.rdd import RDD

__version__ = "0.1.0.dev0"

__all__ = [
    "RDD",
    "AiosparkError",
    "ClusterError",
    "Context",
    "HashPartitioner",
    "JobCancelled",
    "JobFailed",
    "Partitioner",
    "RemoteTraceback",
    "SerializationError",
    "StorageLevel",
    "portable_hash",
]
