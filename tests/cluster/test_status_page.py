"""The master's status over HTTP: jobs reported by the driver in /v1/status, /metrics, and
the status page's login, cookie and live feed (the browser itself: test_status_browser.py)."""

from __future__ import annotations

import asyncio
import json
import operator

import aiohttp
import pytest

from aiospark.master.ui import COOKIE
from tests.conftest import hold_until, wait_for_idle, wait_until
from tests.unit.test_status_model import parse_exposition

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


def held_from(gate: str, first_held: int):
    """A partition function letting partitions below ``first_held`` through at once."""
    def held(index, items):
        if index >= first_held:
            hold_until(gate)
        return items
    return held


async def get_status(ctx) -> dict:
    async with ctx._session.get(f"{ctx.ui_web_url}/v1/status") as resp:
        assert resp.status == 200
        return await resp.json()


def our_jobs(ctx, status: dict) -> dict[int, dict]:
    return {j["job_id"]: j for j in status["jobs"] if j["app_id"] == ctx.app_id}


def secret_of(ctx) -> str:
    return ctx._session.headers["Authorization"].removeprefix("Bearer ")


def browser() -> aiohttp.ClientSession:
    """A client like a browser: no secret, keeps cookies (also for 127.0.0.1)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_status_follows_a_running_job_and_its_stages(ctx, tmp_path):
    gate = str(tmp_path / "go")
    pairs = (ctx.parallelize(range(40), 4).map_partitions_with_index(held_from(gate, 2))
             .map(lambda x: (x % 2, 1)).reduce_by_key(operator.add, 2))

    async def collect():
        return await pairs.collect()  # from here: the job's description names this line

    job = asyncio.create_task(collect())
    line = collect.__code__.co_firstlineno + 1
    description = f"collect at test_status_page.py:{line}"
    try:
        async def half_done():
            running = [j for j in our_jobs(ctx, await get_status(ctx)).values()
                       if j["state"] == "running" and j["description"] == description]
            if len(running) != 1:
                return None
            stages = [(s["kind"], s["done"], s["running"], s["tasks"], s["state"])
                      for s in running[0]["stages"]]
            return stages == [("shuffle_map", 2, 2, 4, "running"), ("result", 0, 0, 2, "waiting")]

        await wait_until(half_done, 60, "the map stage at 2/4 with 2 tasks running")
        status = await get_status(ctx)
        [running] = [j for j in our_jobs(ctx, status).values() if j["state"] == "running"]
        assert running["description"] == description, "no other job runs, none is left running"
        assert running["completed"] is None and running["partitions"] == 2
        [app] = [a for a in status["apps"] if a["app_id"] == ctx.app_id]
        assert app["connected"] and app["name"] == ctx.app_name and app["jobs_running"] == 1

        async def workers_busy():
            return sum(w["running_tasks"] for w in (await get_status(ctx))["workers"]) == 2

        await wait_until(workers_busy, 60, "both workers to report a running task")
    finally:
        open(gate, "w").close()
        result = await job
    assert sorted(result) == [(0, 20), (1, 20)]

    async def succeeded():
        found = our_jobs(ctx, await get_status(ctx)).get(running["job_id"])
        return found is not None and found["state"] == "succeeded" and all(
            s["done"] == s["tasks"] and s["state"] == "done" for s in found["stages"])

    await wait_until(succeeded, 20, "the job to be reported succeeded")


async def test_failed_and_cancelled_jobs_are_reported(ctx, tmp_path):
    with pytest.raises(ZeroDivisionError):
        await ctx.parallelize([0], 1).map(lambda x: 1 / x).collect()
    gate = str(tmp_path / "go")
    held = ctx.parallelize(range(4), 2).map_partitions_with_index(held_from(gate, 0))
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await held.count()
    finally:
        open(gate, "w").close()
    await wait_for_idle(ctx, 20)

    async def both_reported():
        jobs = sorted(our_jobs(ctx, await get_status(ctx)).values(), key=lambda j: j["job_id"])
        return [j["state"] for j in jobs[-2:]] == ["failed", "cancelled"] and jobs[-2:]

    await wait_until(both_reported, 20, "a failed and a cancelled job")
    failed, cancelled = await both_reported()
    assert "ZeroDivisionError" in failed["error"] and failed["completed"] is not None
    assert [s["state"] for s in cancelled["stages"]] == ["stopped"]


async def test_cached_rdds_say_which_workers_hold_them(ctx):
    rdd = ctx.parallelize(range(1000), 4).map(lambda x: x * 2).cache()
    assert await rdd.count() == 1000
    try:
        async def cached():
            status = await get_status(ctx)
            found = [c for c in status["cached"] if c["app_id"] == ctx.app_id
                     and c["rdd_id"] == rdd.id]
            return found and found[0]["splits"] == 4 and (status, found[0])

        await wait_until(cached, 20, "the cached RDD in the status")
        status, entry = await cached()
        workers = {w["worker_id"]: w["host"] for w in status["workers"]}
        assert sum(place["splits"] for place in entry["locations"]) == 4
        assert all(workers[p["worker_id"]] == p["host"] for p in entry["locations"])
        assert entry["memory_bytes"] == sum(p["memory_bytes"] for p in entry["locations"]) > 0
    finally:
        rdd.unpersist()


async def test_job_reports_are_validated_and_answer_resync(ctx):
    url = f"{ctx.ui_web_url}/v1/apps/app-0123abcd/jobs"
    job = {"job_id": 1, "description": "x", "state": "running", "submitted": 1.0,
           "completed": None, "partitions": 1, "stages": []}
    bad = [
        ({"app_name": "t", "jobs": [{**job, "state": "finished"}]}, "JobReport.state"),
        ({"app_name": "t", "jobs": [{**job, "stages": [{"stage_id": 1, "kind": "result",
                                                         "tasks": 1, "running": -1}]}]},
         "StageReport.running"),
        ({"app_name": "t"}, "JobsReport.jobs: missing"),
        ({"app_name": 3, "jobs": []}, "JobsReport.app_name"),
    ]
    for body, field in bad:
        async with ctx._session.post(url, json=body) as resp:
            assert resp.status == 400
            assert field in (await resp.json())["error"]
    async with ctx._session.post(f"{ctx.ui_web_url}/v1/apps/..%2Fx/jobs", json={}) as resp:
        assert resp.status in (400, 404)
    async with ctx._session.post(url.replace("app-0123abcd", "no spaces"), json={}) as resp:
        assert resp.status == 400 and "app_id" in (await resp.json())["error"]
    async with browser() as anonymous, anonymous.post(url, json={}) as resp:
        assert resp.status == 401
    answers = []
    for _ in range(2):
        async with ctx._session.post(url, json={"app_name": "t", "jobs": [job]}) as resp:
            answers.append((await resp.json())["resync"])
    assert answers == [True, False]


async def test_a_driver_that_goes_away_leaves_its_running_jobs_lost(ctx):
    app_id = "app-gone0123"
    job = {"job_id": 7, "description": "x", "state": "running", "submitted": 1.0,
           "completed": None, "partitions": 1, "stages": []}
    events = f"{ctx.ui_web_url}/v1/events"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ctx._session.ws_connect(events, params={"app": "../etc"})
    assert refused.value.status == 400
    async with ctx._session.ws_connect(events, params={"app": app_id, "name": "gone"}):
        async with ctx._session.post(f"{ctx.ui_web_url}/v1/apps/{app_id}/jobs",
                                     json={"app_name": "gone", "jobs": [job]}) as resp:
            assert resp.status == 200
        status = await get_status(ctx)
        assert [j["state"] for j in status["jobs"] if j["app_id"] == app_id] == ["running"]

    async def lost():
        status = await get_status(ctx)
        return [j["state"] for j in status["jobs"] if j["app_id"] == app_id] == ["lost"]

    await wait_until(lost, 10, "the job to be marked lost")


async def test_metrics_in_prometheus_text_format(ctx):
    await ctx.parallelize(range(10), 2).count()

    async def families():
        async with ctx._session.get(f"{ctx.ui_web_url}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            return parse_exposition(await resp.text())

    def total(found: dict, name: str, **labels: str) -> float:
        return sum(v for have, v in found[name]["samples"] if labels.items() <= have.items())

    async def counted():
        found = await families()
        return total(found, "aiospark_worker_tasks_total", outcome="succeeded") >= 2 and found

    await wait_until(counted, 20, "the workers' task counts")
    found = await counted()
    assert total(found, "aiospark_workers") == 2 and total(found, "aiospark_cores") == 2
    assert len(found["aiospark_worker_memory_budget_bytes"]["samples"]) == 2
    assert total(found, "aiospark_jobs_total", outcome="succeeded") >= 1
    assert total(found, "aiospark_apps_connected") >= 1
    async with browser() as anonymous, anonymous.get(f"{ctx.ui_web_url}/metrics") as resp:
        assert resp.status == 401


# -- the page's login ------------------------------------------------------------------------


async def test_the_page_and_its_data_need_a_login(ctx):
    base = ctx.ui_web_url
    async with browser() as anonymous:
        async with anonymous.get(f"{base}/ui/", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/ui/login"
        for path in ("/ui/events", "/ui/static/status.js", "/v1/status", "/metrics"):
            async with anonymous.get(base + path) as resp:
                assert resp.status == 401, path
        async with anonymous.post(f"{base}/v1/ui/tokens") as resp:
            assert resp.status == 401
        async with anonymous.get(f"{base}/ui/login") as resp:
            page = await resp.text()
            assert resp.status == 200 and 'name="secret"' in page
            assert secret_of(ctx) not in page
            assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
            assert resp.headers["X-Frame-Options"] == "DENY"
        async with anonymous.get(f"{base}/ui/static/style.css") as resp:
            assert resp.status == 200 and resp.content_type == "text/css"


async def test_logging_in_with_the_secret_opens_only_the_read_only_routes(ctx):
    base = ctx.ui_web_url
    async with browser() as client:
        async with client.post(f"{base}/ui/login", data={"secret": "wrong"}) as resp:
            assert resp.status == 401 and "not the cluster secret" in await resp.text()
        async with client.post(f"{base}/ui/login", data={"secret": secret_of(ctx)},
                               allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/ui/"
            cookie = resp.cookies[COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
            assert cookie["path"] == "/" and secret_of(ctx) not in cookie.value
        async with client.get(f"{base}/ui/") as resp:
            page = await resp.text()
            assert resp.status == 200 and "/ui/static/status.js" in page
            assert secret_of(ctx) not in page
        async with client.get(f"{base}/v1/status") as resp:
            assert resp.status == 200 and len((await resp.json())["workers"]) == 2
        async with client.get(f"{base}/ui/events") as resp:
            assert resp.content_type == "text/event-stream"
            line = await resp.content.readline()
            assert line.startswith(b"data: ")
            assert len(json.loads(line[6:])["workers"]) == 2
        for method, path in (("POST", "/v1/ui/tokens"), ("GET", "/v1/health"),
                             ("POST", "/v1/workers")):
            async with client.request(method, base + path, json={}) as resp:
                assert resp.status == 401, f"{method} {path} opened by a cookie"
        async with client.post(f"{base}/ui/logout", allow_redirects=False) as resp:
            assert resp.status == 303
        async with client.get(f"{base}/v1/status") as resp:
            assert resp.status == 401, "logged out"


async def test_a_one_time_link_logs_in_once(ctx):
    link = await ctx.status_page_link()
    assert secret_of(ctx) not in link
    async with browser() as first:
        async with first.get(link, allow_redirects=False) as resp:
            assert resp.status == 303 and COOKIE in resp.cookies
        async with first.get(f"{ctx.ui_web_url}/ui/") as resp:
            assert resp.status == 200 and resp.url.path == "/ui/"
    async with browser() as second, second.get(link) as resp:
        assert resp.status == 401 and "already used" in await resp.text()
        assert COOKIE not in resp.cookies


async def test_cross_origin_logins_and_odd_asset_names_are_refused(ctx):
    base = ctx.ui_web_url
    async with browser() as client:
        async with client.post(f"{base}/ui/login", data={"secret": secret_of(ctx)},
                               headers={"Origin": "http://evil.example"}) as resp:
            assert resp.status == 403 and COOKIE not in resp.cookies
        async with client.post(f"{base}/ui/login", data={"password": "x"}) as resp:
            assert resp.status == 400 and "secret" in await resp.text()
        await client.post(f"{base}/ui/login", data={"secret": secret_of(ctx)})
        for name in ("server.py", "..%2Fserver.py", "..%2F..%2Fprotocol%2Fauth.py", "index.html"):
            async with client.get(f"{base}/ui/static/{name}") as resp:
                assert resp.status in (401, 404), name
                assert "def " not in await resp.text()
