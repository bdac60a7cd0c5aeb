"""The HTTP API of every role as an OpenAPI 3 document, built from the message classes.

Request bodies are the typed messages of ``messages``, turned into JSON
Schema, so the document cannot drift from what the servers accept.  The
master serves it at ``GET /v1/openapi.json``; the tests check that it lists
every route each role registers and fuzz the API with schemathesis.

>>> doc = openapi_document()
>>> doc["openapi"], sorted(doc["paths"])[:2]
('3.0.3', ['/metrics', '/v1/apps/{app_id}/jobs'])
>>> body = doc["paths"]["/v1/workers"]["post"]["requestBody"]["content"]["application/json"]
>>> body["schema"]["$ref"]
'#/components/schemas/RegisterWorker'
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from aiospark.protocol import messages
from aiospark.protocol.messages import Message

_SCALARS = {int: "integer", float: "number", str: "string", bool: "boolean"}


def json_schema(kind: Any, components: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a message field's type (messages go to ``components``).

    >>> json_schema(list[int], {})
    {'type': 'array', 'items': {'type': 'integer'}}
    >>> json_schema(int | None, {})
    {'type': 'integer', 'nullable': True}
    """
    origin = typing.get_origin(kind)
    if kind is Any:
        return {}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        schema = (
            json_schema(options[0], components)
            if len(options) == 1
            else {"anyOf": [json_schema(a, components) for a in options]}
        )
        if len(options) < len(typing.get_args(kind)):
            schema = {**schema, "nullable": True}
        return schema
    if origin is list:
        (item,) = typing.get_args(kind) or (Any,)
        return {"type": "array", "items": json_schema(item, components)}
    if origin is dict:
        _, item = typing.get_args(kind) or (str, Any)
        return {"type": "object", "additionalProperties": json_schema(item, components)}
    if isinstance(kind, type) and issubclass(kind, Message):
        return message_schema(kind, components)
    if kind in _SCALARS:
        return {"type": _SCALARS[kind]}
    raise TypeError(f"no JSON Schema for {kind!r}")


def message_schema(cls: type[Message], components: dict[str, Any]) -> dict[str, Any]:
    """A reference to ``cls``'s schema, which is added to ``components``."""
    name = cls.__name__
    if name not in components:
        components[name] = {}  # placeholder: a message may refer to itself
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        components[name] = {
            "type": "object",
            "description": (cls.__doc__ or "").strip().splitlines()[0],
            "properties": {f.name: json_schema(hints[f.name], components) for f in fields},
            "required": [
                f.name
                for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ],
            "additionalProperties": False,
        }
    return {"$ref": f"#/components/schemas/{name}"}


def _path_param(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


_APP = _path_param("app")
_JSON_OK = {"200": {"description": "OK", "content": {"application/json": {"schema": {}}}}}
_ERRORS = {
    "400": {"description": "a malformed request; the error names the bad field"},
    "401": {"description": "missing or wrong cluster secret"},
    "404": {"description": "no such thing"},
}
_STREAM = {"200": {"description": "record frames (binary)",
                   "content": {"application/octet-stream": {"schema": {}}}}}

#: (role, method, path, summary, request message, path parameters, responses)
ROUTES: list[
    tuple[str, str, str, str, type[Message] | None, list[dict[str, Any]], dict[str, Any]]
] = [
    ("master", "post", "/v1/workers", "A worker registers.", messages.RegisterWorker, [],
     _JSON_OK),
    ("master", "post", "/v1/workers/{worker_id}/heartbeat", "A worker's heartbeat.",
     messages.Heartbeat, [_path_param("worker_id")], _JSON_OK),
    ("master", "delete", "/v1/workers/{worker_id}", "A worker leaves the cluster (drained).",
     None, [_path_param("worker_id")], _JSON_OK),
    ("master", "get", "/v1/status", "Cluster status: workers, memory, cached RDDs.", None, [],
     _JSON_OK),
    ("master", "get", "/v1/health", "The master's own health.", None, [], _JSON_OK),
    ("master", "get", "/v1/openapi.json", "This document.", None, [], _JSON_OK),
    ("master", "post", "/v1/apps/{app_id}/jobs",
     "A driver reports its jobs' progress; answers whether to send them all again.",
     messages.JobsReport, [_path_param("app_id")], _JSON_OK),
    ("master", "post", "/v1/ui/tokens", "A one-time login link for the status page.", None, [],
     _JSON_OK),
    ("master", "get", "/metrics", "The status in Prometheus' text format 0.0.4.", None, [],
     {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}),
    ("worker-supervisor", "get", "/v1/health", "A worker's supervisor: its executor's pid, "
     "URL, starts and kills.", None, [], _JSON_OK),
    ("worker-supervisor", "post", "/v1/kill", "Kill the executor, where these cancelled tasks "
     "still run (ignored unless ``pid`` is the current executor's).", messages.KillTasks, [],
     _JSON_OK),
    ("worker", "get", "/v1/health", "A worker's load, memory, blocks and spills.", None, [],
     _JSON_OK),
    ("worker", "get", "/v1/results/{app}/{task}", "A large task result, once.", None,
     [_APP, _path_param("task", "integer")], _STREAM),
    ("worker", "get", "/v1/broadcast/{app}/{bid}", "A broadcast value, for a peer.", None,
     [_APP, _path_param("bid", "integer")], _STREAM),
    ("worker", "get", "/v1/blocks/{app}/{rdd}/{split}", "A cached split, for a peer.", None,
     [_APP, _path_param("rdd", "integer"), _path_param("split", "integer")], _STREAM),
    ("worker", "put", "/v1/blocks/{app}/{rdd}/{split}",
     "A copy of a peer's cached split (a replicated storage level), as a stream of frames; "
     "answers whether it was kept.", None,
     [_APP, _path_param("rdd", "integer"), _path_param("split", "integer"),
      {"name": "level", "in": "query", "required": True, "schema": {"type": "string"},
       "description": "use_disk,use_memory,deserialized,replication: three 0/1 flags and "
                      "a count, such as 0,1,1,2"}], _JSON_OK),
    ("shuffle-service", "get", "/v1/shuffle/{app}/{shuffle}/{reduce}",
     "One reducer's segments of the listed map outputs.", None,
     [_APP, _path_param("shuffle", "integer"), _path_param("reduce", "integer"),
      {"name": "maps", "in": "query", "required": True, "schema": {"type": "string"},
       "description": "map ids: runs such as 0-3,7"}], _STREAM),
    ("shuffle-service", "delete", "/v1/shuffle/{app}", "Forget an application's shuffles.",
     None, [_APP], _JSON_OK),
    ("shuffle-service", "delete", "/v1/shuffle/{app}/{shuffle}", "Forget one shuffle.", None,
     [_APP, _path_param("shuffle", "integer")], _JSON_OK),
    ("shuffle-service", "get", "/v1/health", "The shuffle service's health.", None, [],
     _JSON_OK),
]

#: Routes left out of the document: WebSocket endpoints, the probes, the status page.
NOT_DOCUMENTED = frozenset({"/v1/events", "/v1/driver", "/v1/live", "/v1/ready", "/", "/ui/",
                            "/ui/login", "/ui/logout", "/ui/events", "/ui/static/{name}"})


def openapi_document(role: str | None = None) -> dict[str, Any]:
    """The OpenAPI document of one role's HTTP API (every role when ``role`` is None)."""
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for route_role, method, path, summary, body, params, responses in ROUTES:
        if role is not None and route_role != role:
            continue
        operation: dict[str, Any] = {
            "summary": summary,
            "tags": [route_role],
            "operationId": f"{route_role}:{method}:{path}",
            "parameters": params,
            "responses": {**responses, **_ERRORS},
        }
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": message_schema(body, components)}},
            }
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"aiospark {role or 'cluster'} API",
            "version": "1",
            "description": "Control messages are JSON; partition data travel as binary "
            "frames. Every request carries the cluster secret as a Bearer token.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"clusterSecret": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"clusterSecret": []}],
    }
