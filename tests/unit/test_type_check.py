"""The scheduler and the wire protocol type-check strictly (``[tool.mypy]`` in
pyproject.toml): the same command as ``.ci/run``, so the README's test command checks it too."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMAND = [sys.executable, "-m", "mypy", "aiospark/scheduler", "aiospark/protocol"]


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install -e '.[test]')")
@pytest.mark.timeout(600)
def test_scheduler_and_protocol_pass_strict_mypy():
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert " ".join(COMMAND[1:]) in f.read(), "CI runs a different mypy command"
    done = subprocess.run(COMMAND, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout
