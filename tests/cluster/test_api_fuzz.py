"""Fuzz every role's HTTP API from its OpenAPI document with schemathesis.

A standalone master, shuffle service and worker (its executor, and its supervisor's
control URL) are started with the CLI; every
generated request (with the cluster secret) must get an answer below 500 within
a bound, and every process must still be serving afterwards.
"""

from __future__ import annotations

import subprocess

import pytest
import requests
from hypothesis import HealthCheck, settings

from aiospark.master.server import Master
from aiospark.protocol.auth import auth_headers
from aiospark.protocol.openapi import NOT_DOCUMENTED, openapi_document
from tests.cluster.cli_processes import start_serving, stop_all

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extra")

pytestmark = pytest.mark.cluster

SECRET = "fuzz-test-secret"
AUTH = auth_headers(SECRET)
#: Cases generated per operation (15 operations), with the secret; and without it.
EXAMPLES = 100
ANONYMOUS_EXAMPLES = 20
#: A request must be answered within this many seconds (a hang fails the test).
ANSWER_WITHIN = 15
TRIED: dict[str, int] = {}


def _start(role: str, *args: str) -> tuple[subprocess.Popen, str]:
    return start_serving(role, *args, secret=SECRET)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    procs: list[subprocess.Popen] = []
    try:
        master, master_url = _start("master", "--port", "0")
        procs.append(master)
        shuffle, shuffle_url = _start(
            "shuffle-service", "--port", "0", "--dir", str(root / "shuffle")
        )
        procs.append(shuffle)
        worker, worker_url = _start(
            "worker", "--master", master_url, "--shuffle-url", shuffle_url,
            "--shuffle-dir", str(root / "shuffle"), "--work-dir", str(root / "work"),
        )
        procs.append(worker)
        supervisor_url = worker.control_url
        executor_pid = requests.get(f"{supervisor_url}/v1/health", headers=AUTH,
                                    timeout=10).json()["executor_pid"]
        yield {"master": master_url, "shuffle-service": shuffle_url, "worker": worker_url,
               "worker-supervisor": supervisor_url}
        assert all(p.poll() is None for p in procs), "a process died while being fuzzed"
        health = requests.get(f"{supervisor_url}/v1/health", headers=AUTH, timeout=10).json()
        assert health["executor_pid"] == executor_pid, "the fuzzing got the executor killed"
        for url in (master_url, shuffle_url, worker_url, supervisor_url):
            assert requests.get(f"{url}/v1/health", headers=AUTH, timeout=10).ok, url
    finally:
        stop_all(procs)


def _fuzz(role: str, case, cluster, secret: bool = True) -> None:
    response = case.call(base_url=cluster[role], headers=AUTH if secret else None,
                         timeout=ANSWER_WITHIN)
    key = role if secret else f"{role} (no secret)"
    TRIED[key] = TRIED.get(key, 0) + 1
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    )
    if not secret and case.path not in ("/v1/live", "/v1/ready"):
        assert response.status_code == 401, (case.method, case.formatted_path)


_FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much],
)
master_api = schemathesis.openapi.from_dict(openapi_document("master"))
worker_api = schemathesis.openapi.from_dict(openapi_document("worker"))
shuffle_api = schemathesis.openapi.from_dict(openapi_document("shuffle-service"))
supervisor_api = schemathesis.openapi.from_dict(openapi_document("worker-supervisor"))


@master_api.parametrize()
@_FUZZ_SETTINGS
def test_master_api_survives_fuzzing(case, cluster):
    _fuzz("master", case, cluster)


@worker_api.parametrize()
@_FUZZ_SETTINGS
def test_worker_api_survives_fuzzing(case, cluster):
    _fuzz("worker", case, cluster)


@shuffle_api.parametrize()
@_FUZZ_SETTINGS
def test_shuffle_service_api_survives_fuzzing(case, cluster):
    _fuzz("shuffle-service", case, cluster)


@supervisor_api.parametrize()
@_FUZZ_SETTINGS
def test_worker_supervisor_api_survives_fuzzing(case, cluster):
    _fuzz("worker-supervisor", case, cluster)


_ANONYMOUS_SETTINGS = settings(_FUZZ_SETTINGS, max_examples=ANONYMOUS_EXAMPLES)


@master_api.parametrize()
@_ANONYMOUS_SETTINGS
def test_master_api_without_the_secret(case, cluster):
    _fuzz("master", case, cluster, secret=False)


@worker_api.parametrize()
@_ANONYMOUS_SETTINGS
def test_worker_api_without_the_secret(case, cluster):
    _fuzz("worker", case, cluster, secret=False)


@shuffle_api.parametrize()
@_ANONYMOUS_SETTINGS
def test_shuffle_service_api_without_the_secret(case, cluster):
    _fuzz("shuffle-service", case, cluster, secret=False)


@supervisor_api.parametrize()
@_ANONYMOUS_SETTINGS
def test_worker_supervisor_api_without_the_secret(case, cluster):
    _fuzz("worker-supervisor", case, cluster, secret=False)


def test_fuzzing_tried_many_cases(cluster):
    total = sum(TRIED.values())
    print(f"\nschemathesis tried {total} requests: {TRIED}")
    roles = {"master", "worker", "shuffle-service", "worker-supervisor"}
    assert set(TRIED) == roles | {f"{role} (no secret)" for role in roles}
    assert total >= 1000


def _registered_paths(app) -> set[str]:
    return {route.resource.canonical for route in app.router.routes()}


def test_the_document_lists_every_route_the_master_serves():
    documented = set(openapi_document("master")["paths"])
    served = _registered_paths(Master("s").make_app()) - NOT_DOCUMENTED
    assert served == documented - {"/v1/openapi.json"} | (served & {"/v1/openapi.json"})
    assert "/v1/openapi.json" in served, "the master does not serve its OpenAPI document"


def test_the_master_serves_its_document(cluster):
    response = requests.get(f"{cluster['master']}/v1/openapi.json", headers=AUTH, timeout=10)
    assert response.ok and response.json() == openapi_document("master")
