"""The executor process (started by the worker's supervisor, never by hand):
``python -m aiospark.worker CONFIG_JSON LISTEN_FD CONTROL_FD LOG_LEVEL LOG_FORMAT``."""

import sys

from aiospark.worker.process import main

main(sys.argv[1:])
