"""The status page in a real browser: Debian's headless Chromium driven by Playwright.

A cluster of its own (so the page shows only this test's jobs), a one-time login link,
then the page must show the workers, a cached RDD and a job held half way through its
map stage, live, without a reload; the screenshot taken then is docs/status-page.png
(with ``AIOSPARK_UPDATE_SCREENSHOT=1``; otherwise it goes to the test's temporary directory).
The login form and Log out are driven as a person would, wrong secret included.
"""

from __future__ import annotations

import asyncio
import operator
import os
import pathlib

import pytest

import aiospark
from tests.cluster.test_status_page import held_from

CHROMIUM = os.environ.get("AIOSPARK_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = pathlib.Path(__file__).resolve().parents[2] / "docs" / "status-page.png"
#: Only with this set does the run replace the tracked screenshot (else it goes to tmp_path).
UPDATE_SCREENSHOT = os.environ.get("AIOSPARK_UPDATE_SCREENSHOT") == "1"
#: Bound of every wait on the page's content (ms): updates come within a second.
WAIT_MS = 20_000

playwright = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install playwright)"
)

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]

LINES = ["the quick brown fox", "jumps over the lazy dog", "the dog sleeps", "a fox runs"] * 50


async def test_status_page_shows_workers_cache_and_live_job_progress(tmp_path):
    expect = playwright.expect
    expect.set_options(timeout=WAIT_MS)
    async with aiospark.Context(workers=2, app_name="wordcount") as ctx, \
            playwright.async_playwright() as pw:
        words = (ctx.parallelize(LINES, 4).flat_map(str.split).map(lambda w: (w, 1))
                 .reduce_by_key(operator.add).cache())
        assert await words.count() == len(set(" ".join(LINES).split()))
        browser = await pw.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(WAIT_MS)
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            await page.goto(await ctx.status_page_link())
            assert page.url == f"{ctx.ui_web_url}/ui/", "the link logs in and leaves the page"
            await expect(page.locator("#connection")).to_have_text("live")

            workers = page.locator('#workers tbody tr[data-state="alive"]')
            await expect(workers).to_have_count(2)
            for link in ctx._scheduler.links.values():
                row = page.locator(f'#workers tr[data-worker="{link.info.worker_id}"]')
                await expect(row).to_contain_text(link.info.url)
            cached = page.locator(f'#cached tr[data-rdd="{ctx.app_id}:{words.id}"]')
            await expect(cached).to_contain_text("worker-")

            gate = str(tmp_path / "go")
            held = (ctx.parallelize(range(400), 4).map_partitions_with_index(held_from(gate, 2))
                    .map(lambda x: (x % 10, x)).reduce_by_key(operator.add, 2))

            async def collect():
                with ctx.job_group("wordcount", "count the held words"):
                    return await held.collect()

            job = asyncio.create_task(collect())
            try:
                running = page.locator('#jobs tr[data-state="running"]')
                await expect(running).to_have_count(1)
                await expect(running.locator(".description")).to_contain_text(
                    "collect at test_status_browser.py")
                await expect(running.locator(".user-description")).to_have_text(
                    "count the held words")
                await expect(running.locator(".group")).to_have_text("group wordcount")
                job_key = await running.get_attribute("data-job")
                stages = running.locator(".stage .count")
                await expect(stages).to_have_text(["2/4 (2 running)", "0/2"])
                await expect(page.locator("#workers .running-tasks")).to_have_text(
                    ["1 / 1", "1 / 1"])
                await expect(page.locator('[data-card="running jobs"] .value')).to_have_text("1")
                target = SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / SCREENSHOT.name
                partial = target.with_name(f".status-page-{os.getpid()}.png")
                await page.screenshot(path=str(partial), full_page=True)
                os.replace(partial, target)  # whole, even with another run writing it
                assert target.stat().st_size > 10_000, "a screenshot with something in it"
            finally:
                open(gate, "w").close()
                result = await job
            assert len(result) == 10

            done = page.locator(f'#jobs tr[data-job="{job_key}"]')
            await expect(done).to_have_attribute("data-state", "succeeded")
            await expect(done.locator(".stage .count")).to_have_text(["4/4", "2/2"])
            await expect(page.locator('#jobs tr[data-state="succeeded"]')).to_have_count(2)

            # A second run of the same program: its job 1 is a row of its own, and the
            # application cells tell the two runs apart.
            async with aiospark.Context(ctx._scheduler.master_url, secret=ctx._cluster.secret,
                                        app_name="wordcount") as again:
                assert await again.parallelize(range(10), 2).count() == 10
                first = page.locator(f'#jobs tr[data-job="{ctx.app_id}:1"] td.app')
                second = page.locator(f'#jobs tr[data-job="{again.app_id}:1"] td.app')
                await expect(second).to_have_text(f"wordcount ({again.app_id[:10]})")
                await expect(first).to_have_text(f"wordcount ({ctx.app_id[:10]})")
            assert await page.evaluate("document.cookie") == "", "the session cookie is HttpOnly"
            assert problems == [], problems
        finally:
            await browser.close()


async def test_the_login_form_and_log_out_work_in_a_browser():
    expect = playwright.expect
    expect.set_options(timeout=WAIT_MS)
    async with aiospark.Context(workers=1) as ctx, playwright.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await browser.new_page()
            page.set_default_timeout(WAIT_MS)
            await page.goto(f"{ctx.ui_web_url}/ui/")
            assert page.url == f"{ctx.ui_web_url}/ui/login", "not logged in: the form"
            # A wrong secret is told so, and the page stays the form.
            await page.fill("#secret", "not-the-secret")
            await page.click("button[type=submit]")
            await expect(page.locator(".note")).to_have_text("That is not the cluster secret.")
            # The right one, typed as a person would, opens the status page.
            await page.fill("#secret", ctx._cluster.secret)
            await page.click("button[type=submit]")
            await expect(page.locator("#connection")).to_have_text("live")
            assert page.url == f"{ctx.ui_web_url}/ui/"
            # Log out ends the session: back to the form, and the page is closed again.
            await page.click("text=Log out")
            await expect(page.locator(".note")).to_have_text("You are logged out.")
            await page.goto(f"{ctx.ui_web_url}/ui/")
            assert page.url == f"{ctx.ui_web_url}/ui/login"
        finally:
            await browser.close()
