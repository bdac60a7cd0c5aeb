"""Structured logs: one line per event, as logfmt (the default) or JSON.

Every line carries the time, the level, the process's role and ids bound to the
process (a worker's id), the logger, the message, and the event's own fields
(app, stage and task ids, ...) given with ``extra=fields(...)``:

>>> import io
>>> out = io.StringIO()
>>> configure("worker", "INFO", "logfmt", stream=out)
>>> bind(worker_id="worker-1")
>>> logging.getLogger("aiospark.worker").info(
...     "task finished", extra=fields(app_id="app-7", stage_id=2, task_id=31))
>>> line = parse_logfmt(out.getvalue())
>>> line["role"], line["worker_id"], line["msg"], line["task_id"]
('worker', 'worker-1', 'task finished', '31')
>>> reset()
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import sys
import traceback
from typing import Any, TextIO

#: Fields of every line of this process (its role, a worker's id ...).
CONTEXT: dict[str, Any] = {}
_FIELDS = "aiospark_fields"
_BARE = re.compile(r"^[^\s\"=\\\x00-\x1f\x7f]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def fields(**values: Any) -> dict[str, Any]:
    """The ``extra=`` argument that attaches ``values`` to a log event.

    >>> fields(task_id=3)
    {'aiospark_fields': {'task_id': 3}}
    """
    return {_FIELDS: values}


def bind(**values: Any) -> None:
    """Add ``values`` to every later line of this process (e.g. ``worker_id``).

    >>> bind(worker_id="worker-3"); CONTEXT["worker_id"]
    'worker-3'
    >>> reset()
    """
    CONTEXT.update(values)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


def event(record: logging.LogRecord) -> dict[str, Any]:
    """A record as ordered fields: ts, level, role and bound ids, logger, msg, its own.

    >>> record = logging.LogRecord("aiospark.master", logging.WARNING, "", 1,
    ...                            "worker %s lost", ("w-2",), None)
    >>> {k: v for k, v in event(record).items() if k != "ts"}
    {'level': 'warning', 'logger': 'aiospark.master', 'msg': 'worker w-2 lost'}
    """
    line: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname.lower()}
    line.update(CONTEXT)
    line["logger"] = record.name
    line["msg"] = record.getMessage()
    own = getattr(record, _FIELDS, None)
    if own:
        line.update((k, v) for k, v in own.items() if v is not None)
    if record.exc_info and record.exc_info[0] is not None:
        line["error"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
    elif record.stack_info:
        line["stack"] = record.stack_info
    return line


def _escape(match: re.Match) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\u{ord(char):04x}"


def logfmt_value(value: Any) -> str:
    """One value as logfmt writes it: bare when it can be, else quoted and escaped.

    >>> logfmt_value(3), logfmt_value("a b"), logfmt_value('x="1"\\n'), logfmt_value("")
    ('3', '"a b"', '"x=\\\\"1\\\\"\\\\n"', '""')
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(round(value, 6))
    else:
        text = str(value)
    if _BARE.match(text):
        return text
    escaped = _CONTROL.sub(_escape, text.replace("\\", "\\\\").replace('"', '\\"'))
    return f'"{escaped}"'


def parse_logfmt(line: str) -> dict[str, str]:
    """The fields of one logfmt line (values unescaped, all strings).

    >>> parse_logfmt('level=info msg="a \\\\"b\\\\"" task_id=4')
    {'level': 'info', 'msg': 'a "b"', 'task_id': '4'}
    """
    found = {}
    for key, raw in _PAIR.findall(line.strip()):
        if raw.startswith('"'):
            raw = json.loads(raw)  # logfmt's escapes are a subset of JSON's
        found[key] = raw
    return found


class LogfmtFormatter(logging.Formatter):
    """``key=value`` pairs, one event per line."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={logfmt_value(v)}" for k, v in event(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(event(record), default=str, separators=(",", ":"))


_handler: logging.Handler | None = None
_level_before = logging.WARNING


def configure(role: str, level: str = "WARNING", fmt: str = "logfmt",
              stream: TextIO | None = None) -> None:
    """Log this process's events at ``level`` and above to ``stream`` (stderr), one
    line each, tagged with ``role``; replaces a previous ``configure``.

    >>> import io
    >>> out = io.StringIO()
    >>> configure("master", "INFO", "json", stream=out)
    >>> logging.getLogger("aiospark.master").info("up", extra=fields(url="http://h:7077"))
    >>> line = json.loads(out.getvalue())
    >>> line["role"], line["msg"], line["url"]
    ('master', 'up', 'http://h:7077')
    >>> reset()
    """
    global _handler, _level_before
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    else:
        _level_before = root.level
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    _handler = handler
    CONTEXT.clear()
    CONTEXT.update(role=role, pid=os.getpid())


def reset() -> None:
    """Undo ``configure`` (for tests).

    >>> configure("worker"); reset(); CONTEXT
    {}
    """
    global _handler
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        logging.getLogger().setLevel(_level_before)
        _handler = None
    logging.captureWarnings(False)
    CONTEXT.clear()
