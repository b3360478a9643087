"""The benchmark's HTML page: self-contained, deterministic, and shown by headless Chromium without errors.

Driven like the partitioning report's test (``tests/test_html_report.py``): Debian's
``chromium`` through Playwright, every console message, page error and request watched.
"""

from __future__ import annotations

import re

import pytest
from bench_cases import mlp_bench
from test_html_report import open_in_chromium

from snnconv import benchmark_text


@pytest.fixture(scope="module")
def result():
    return mlp_bench()


@pytest.fixture(scope="module")
def page_file(result, tmp_path_factory):
    return result.write_html(tmp_path_factory.mktemp("bench") / "bench.html")


@pytest.fixture(scope="module")
def page(page_file):
    """The page opened in headless Chromium: (page, problems)."""
    yield from open_in_chromium(page_file)


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
