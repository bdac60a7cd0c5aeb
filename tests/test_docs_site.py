"""The documentation site (mkdocs.yml, docs/) builds with no warning and covers the API.

The strict build fails on a broken link or anchor between pages, a page missing from
the nav, an unknown ``::: aiospark.X`` reference or a docstring griffe cannot parse.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import zlib

import pytest

import aiospark

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _load_extension():
    spec = importlib.util.spec_from_file_location(
        "doctest_blocks", DOCS / "_ext" / "doctest_blocks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[subprocess.CompletedProcess, pathlib.Path]:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", NO_COLOR="1")
    # Any download during the build (fonts, inventories, plugins) fails, and so warns.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = "http://127.0.0.1:9"
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out),
         "--config-file", str(ROOT / "mkdocs.yml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    return build, out


def test_the_site_builds_strictly_without_a_warning(site):
    build, out = site
    log = build.stdout + build.stderr
    assert build.returncode == 0, log
    assert "WARNING" not in log and "ERROR" not in log, log
    assert (out / "index.html").is_file()


def test_every_page_is_built_and_the_readme_links_resolve(site):
    _, out = site
    pages = [p.relative_to(DOCS) for p in DOCS.rglob("*.md") if "_ext" not in p.parts]
    assert len(pages) >= 20
    for page in pages:
        built = out / page.with_suffix("") / "index.html"
        if page.name == "index.md":
            built = out / page.parent / "index.html"
        assert built.is_file(), page
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(links) >= 10
    for link in links:
        assert (ROOT / link).is_file(), link


def _inventory(out: pathlib.Path) -> set[str]:
    data = (out / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four text lines, then the zlib-compressed entries
        header_end = data.index(b"\n", header_end) + 1
    body = zlib.decompress(data[header_end:]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines()}


def test_the_api_reference_documents_every_public_method(site):
    _, out = site
    documented = _inventory(out)
    missing = []
    for cls in (aiospark.Context, aiospark.RDD):
        for klass in cls.__mro__:
            if not klass.__module__.startswith("aiospark"):
                continue
            for name in vars(klass):
                if name.startswith("_") or any(
                    name in vars(k) for k in cls.__mro__[: cls.__mro__.index(klass)]
                ):
                    continue
                if f"{klass.__module__}.{klass.__qualname__}.{name}" not in documented:
                    missing.append(f"{klass.__qualname__}.{name}")
    assert missing == []
    assert {f"aiospark.{name}" for name in aiospark.__all__} <= documented
    assert "aiospark.statcounter.StatCounter.mean" in documented


def test_the_rdd_page_lists_the_user_api_before_the_internals(site):
    _, out = site
    html = (out / "api" / "rdd" / "index.html").read_text()

    def at(anchor: str) -> int:
        found = html.find(f'id="{anchor}"')
        assert found >= 0, anchor
        return found

    transformations = [at(f"aiospark.RDD.{n}") for n in ("map", "flat_map", "filter")]
    actions = [at(f"aiospark.RDD.{n}") for n in ("collect", "count", "take")]
    internals = [at(f"aiospark.RDD.{n}") for n in ("splits", "compute", "iterator",
                                                   "preferred_locations")]
    assert max(transformations) < min(actions) < max(actions) < at("internals")
    assert at("internals") < min(internals)


def test_docstring_examples_render_as_highlighted_code(site):
    _, out = site
    for page in ("context", "rdd", "pairs", "stats", "shared"):
        html = (out / "api" / page / "index.html").read_text()
        prompts = html.count("&gt;&gt;&gt;")
        assert prompts > 3, page
        # Pygments marks a pycon prompt; a prompt left in a paragraph has no mark.
        assert html.count('<span class="gp">&gt;&gt;&gt; </span>') == prompts, page


def test_the_site_loads_nothing_from_other_hosts(site):
    _, out = site
    for page in out.rglob("*.html"):
        html = page.read_text()
        assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html, page
        assert not re.search(r'<(?:script|img)[^>]* src="https?:', html), page
        assert not re.search(r'<link[^>]* href="https?:[^"]*"[^>]*stylesheet', html), page


def test_doctest_fences_keep_code_and_drop_doctest_markup():
    fence = _load_extension().fence_doctests
    text = "\n".join([
        "Intro::",
        "",
        ">>> print('a\\n\\nb')  # doctest: +NORMALIZE_WHITESPACE",
        "a",
        "<BLANKLINE>",
        "b",
        "",
        "```python",
        ">>> left_alone",
        "```",
        "- in a list:",
        "",
        "    >>> 1 + 1",
        "    2",
    ])
    assert fence(text).split("\n") == [
        "Intro:",
        "",
        "```pycon",
        ">>> print('a\\n\\nb')",
        "a",
        "",
        "b",
        "```",
        "",
        "```python",
        ">>> left_alone",
        "```",
        "- in a list:",
        "",
        "    ```pycon",
        "    >>> 1 + 1",
        "    2",
        "    ```",
    ]
    assert fence("No examples: a >>> b.") == "No examples: a >>> b."
