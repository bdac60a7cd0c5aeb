"""The zygote: one process that imports the roles' modules once and forks each role.

Starting a Python process that imports aiohttp and aiospark costs about half a
CPU-second on this kind of machine (more without bytecode caches); an embedded
cluster starts six of them (master, shuffle service, and a supervisor and an
executor per worker).  ``EmbeddedCluster`` instead starts one zygote
(``python -m aiospark.zygote``), which imports every role's modules, freezes
them out of the garbage collector's reach, and then forks a process per request
over a Unix socket: the forked role starts at once and shares the zygote's
memory pages (copy-on-write).  Workers ask the same zygote for their executors.

The zygote runs no event loop and no thread (a fork copies only the calling
thread).  A request carries the command line a spawned process would get and the
file descriptors named on it; the child puts them at the same numbers, so a role
cannot tell the difference.  The reply carries the child's pid and a pidfd, and
later its exit code: ``client.ForkedProcess`` follows it like a ``Popen``.  When the
zygote is gone (killed, or refused by ``AIOSPARK_FORK=0``) roles are spawned as
before.

Modules: ``wire`` (the messages), ``server`` (the zygote's loop), ``child`` (what a
forked child does before the role's main), ``client`` (asking for a fork, and the
handle of a forked process), ``__main__`` (the zygote process).
"""
