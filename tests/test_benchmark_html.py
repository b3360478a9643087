"""The benchmark's HTML page: self-contained, deterministic, and shown by headless Chromium without errors.

Driven like the partitioning report's test (``tests/test_html_report.py``): Debian's
``chromium`` through Playwright, every console message, page error and request watched.
"""

from __future__ import annotations

import re

import pytest
from bench_cases import mlp_bench
from test_html_report import CHROMIUM, CHROMIUM_ARGS

from snnconv import benchmark_text


@pytest.fixture(scope="module")
def result():
    return mlp_bench()


@pytest.fixture(scope="module")
def page_file(result, tmp_path_factory):
    return result.write_html(tmp_path_factory.mktemp("bench") / "bench.html")


@pytest.fixture(scope="module")
def page(page_file):
    """The page opened in headless Chromium: (page, problems), problems being every error it met."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    url = page_file.as_uri()
    problems = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        view = browser.new_page(viewport={"width": 1200, "height": 900})
        view.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
                else None)
        view.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        view.on("requestfailed", lambda r: problems.append(f"failed request: {r.url} ({r.failure})"))
        view.on("request", lambda r: problems.append(f"request outside the file: {r.url}")
                if r.url != url and not r.url.startswith("data:") else None)
        view.goto(url, wait_until="load")
        yield view, problems
        browser.close()


def test_chromium_loads_the_page_without_errors(page, tmp_path):
    view, problems = page
    assert problems == []
    broken = view.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.id)")
    assert broken == []
    box = view.locator("#plane-image").bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 300
    screenshot = tmp_path / "bench.png"
    view.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 10_000  # a page with a picture, not a blank one


def test_chromium_shows_every_configuration_its_split_and_sources(page, result):
    view, _ = page
    rows = result.rows()
    shown = [row.split("\t")[0].strip() for row in view.locator("#bench-table tbody tr").all_inner_texts()]
    assert shown == [row["name"] for row in rows]
    assert view.locator("#split-table tbody tr").count() == sum(1 for row in rows if row["energy_split_uj"])
    assert view.locator("#measured-table tbody tr").count() == len(result.measured["runtimes"]) + len(
        result.measured["unavailable"])
    assert view.locator("#sources-table tbody tr").count() == len(benchmark_text.source_lines(result))
    configurations = view.locator("#configurations").inner_text()
    assert all(row["reason"] in configurations for row in rows if row["reason"])
    best = result.best()
    assert best["edp_js"] in view.locator("#summary").inner_text()
    assert "mnist_mlp" in view.title()


def test_page_is_self_contained_and_deterministic(result):
    text = result.to_html()
    links = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert links and all(link.startswith(("data:", "#")) for link in links)
    assert "<script" not in text and "@import" not in text and "url(" not in text
    assert result.to_html() == text


def test_write_into_a_missing_folder_names_it(result, tmp_path):
    from snnconv.errors import SnnconvError

    with pytest.raises(SnnconvError, match="missing.*does not exist"):
        result.write_html(tmp_path / "missing" / "bench.html")
