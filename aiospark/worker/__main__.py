"""The executor process (started by the worker's supervisor, never by hand):
``python -m aiospark.worker CONFIG_JSON LISTEN_FD CONTROL_FD LOG_LEVEL LOG_FORMAT``."""

import json
import os
import sys

from aiospark import logs
from aiospark.runtime import run
from aiospark.worker.process import run_executor

config_json, listen_fd, control_fd, log_level, log_format = sys.argv[1:6]
logs.configure("worker", log_level, log_format)
run(lambda: run_executor(json.loads(config_json), int(listen_fd), int(control_fd)))
# Do not wait for user code still running on task threads (it was cancelled).
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
