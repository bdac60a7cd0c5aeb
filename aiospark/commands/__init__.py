"""The ``aiospark`` commands, one module per kind: the cluster's roles (``roles``),
the embedded cluster in the foreground (``local``), running a driver program
(``submit``), the cluster's status (``status``) and the REPL (``shell``).

Each command is a function taking the resolved ``aiospark.config.Settings`` and
returning the process's exit code; ``aiospark.cli`` parses the command line and
calls it.
"""
