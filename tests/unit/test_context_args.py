"""``Context`` arguments that depend on where the master comes from (no cluster needed)."""

from __future__ import annotations

import logging
import sys
import types

import pytest

import aiospark
from aiospark.context import default_app_name

MASTER = "aiospark://127.0.0.1:7077"


def test_embedded_cluster_settings_with_a_master_argument_are_refused(monkeypatch):
    monkeypatch.delenv("AIOSPARK_MASTER", raising=False)
    with pytest.raises(ValueError, match="workers= applies to the embedded cluster"):
        aiospark.Context(MASTER, workers=2)
    with pytest.raises(ValueError, match="worker_memory= applies to the embedded cluster"):
        aiospark.Context(MASTER, worker_memory="1g")


def test_embedded_cluster_settings_are_ignored_under_submit(monkeypatch, caplog):
    # aiospark submit sets AIOSPARK_MASTER: a program written for the embedded cluster
    # runs unchanged against the cluster, with one INFO line saying so.
    monkeypatch.setenv("AIOSPARK_MASTER", MASTER)
    with caplog.at_level(logging.INFO, logger="aiospark"):
        ctx = aiospark.Context(workers=2, worker_memory="1g")
    assert ctx.master == MASTER
    notes = [r for r in caplog.records if "ignored" in r.getMessage()]
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in notes] == [
        ("INFO", "workers= and worker_memory= ignored")]
    # An explicit master in the code is still the program's own mistake.
    with pytest.raises(ValueError, match="workers= applies to the embedded cluster"):
        aiospark.Context(MASTER, workers=2)
    with pytest.raises(ValueError, match="workers must be"):
        aiospark.Context(workers=0)  # still checked


def test_the_app_name_defaults_to_the_program_file(monkeypatch):
    program = types.ModuleType("__main__")
    program.__file__ = "/home/me/jobs/first_job.py"
    monkeypatch.setitem(sys.modules, "__main__", program)
    assert default_app_name() == "first_job.py"
    assert aiospark.Context().app_name == "first_job.py"
    assert aiospark.Context(app_name="etl").app_name == "etl"
    del program.__file__  # a REPL or a notebook
    assert aiospark.Context().app_name == "aiospark"
    program.__file__ = "/usr/lib/python3/site-packages/pytest/__main__.py"  # python -m pytest
    assert default_app_name() == "aiospark"
