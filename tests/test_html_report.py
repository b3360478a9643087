"""The HTML report: self-contained, deterministic, and shown by a real browser without errors.

The browser is Debian's ``chromium`` driven by Playwright (``pip install playwright``;
``playwright install`` is never needed: the system Chromium is passed as the
executable). Playwright reports every console message, uncaught page error and request,
which parsing Chromium's ``--enable-logging`` output would only approximate, and it can
query the DOM after load and take a full-page screenshot.

To refresh the README's screenshot: ``SNNCONV_REPORT_SCREENSHOT=docs/report.png pytest
tests/test_html_report.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv import html_report
from snnconv.errors import MissingDependencyError, SnnconvError

MODELS = resources.files("snnconv.models")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags Chromium reaches for the network, which CI closes.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SAMPLES = 200


@pytest.fixture(scope="module")
def compiled():
    """The bundled CNN on loihi, a run on test digits, and accuracy at T = 8, 16, 32 (ANN as reference)."""
    x = np.load(MODELS / "mnist_calib.npz")["x"]
    net = snnconv.compile(str(MODELS / "mnist_cnn.onnx"), "loihi", x, timesteps=32)
    test = np.load(MODELS / "mnist_test.npz")
    digits, labels = test["x"][:SAMPLES], test["y"][:SAMPLES]
    run = net.run(digits)
    ann = snnconv.ann.evaluate(snnconv.load_onnx(str(MODELS / "mnist_cnn.onnx")), digits).argmax(axis=1)
    snn = {steps: net.run(digits, timesteps=steps).accuracy(labels) for steps in (8, 16)}
    accuracy = {"ann": float((ann == labels).mean()), "snn": {**snn, run.timesteps: run.accuracy(labels)}}
    return net, run, accuracy


@pytest.fixture(scope="module")
def report_file(compiled, tmp_path_factory):
    net, run, accuracy = compiled
    return html_report.write(net, tmp_path_factory.mktemp("report") / "report.html", run, accuracy,
                             title="mnist_cnn")


def open_in_chromium(path):
    """``path`` opened in headless Chromium, yielding (page, problems): every error it met, and any request that
    leaves the file (a self-contained page makes none)."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    url = path.as_uri()
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


@pytest.fixture(scope="module")
def page(report_file):
    """The report opened in headless Chromium: (page, problems)."""
    yield from open_in_chromium(report_file)


def test_chromium_loads_the_report_without_errors(page, tmp_path):
    view, problems = page
    assert problems == []
    broken = view.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.id)")
    assert broken == []
    screenshot = tmp_path / "report.png"
    view.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 10_000  # a page with pictures, not a blank one
    if os.environ.get("SNNCONV_REPORT_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["SNNCONV_REPORT_SCREENSHOT"])


def test_chromium_shows_the_mesh_pictures_and_tables(page, compiled):
    view, _ = page
    report = compiled[0].report.to_dict()
    for image in ("mesh-image", "utilization-image", "spikes-image", "activity-image", "cost-image", "accuracy-image"):
        box = view.locator(f"#{image}").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100, image
    layers = view.locator("#layers-table tbody tr").all_inner_texts()
    assert [row.split("\t")[0].strip() for row in layers] == [row["layer"] for row in report["layers"]]
    assert view.locator("#chips-table tbody tr").count() == len(report["chips"])
    assert f"{report['totals']['cores']:,}" in view.locator("#summary").inner_text()
    assert view.locator("#neurobench-table").is_visible() and view.locator("#run-table").is_visible()
    assert "mnist_cnn on loihi" in view.title()


def test_report_is_self_contained_and_deterministic(compiled):
    net, run, accuracy = compiled
    text = html_report.render(net, run, accuracy)
    links = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert links and all(link.startswith(("data:", "#")) for link in links)
    assert "<script" not in text and "@import" not in text and "url(" not in text
    assert html_report.render(net, run, accuracy) == text


def test_report_without_a_run_shows_the_partition_only(compiled):
    net = compiled[0]
    text = html_report.render(net)
    for present in ("mesh-image", "utilization-image", "layers-table", "chips-table"):
        assert f'id="{present}"' in text
    for absent in ("spikes", "activity", "cost", "accuracy", "run"):
        assert f'id="{absent}"' not in text


def test_write_is_atomic_and_readable_like_any_new_file(compiled, tmp_path):
    net = compiled[0]
    path = html_report.write(net, tmp_path / "report.html")
    (tmp_path / "plain.txt").write_text("")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt", "report.html"]  # no temporary left
    assert path.stat().st_mode == (tmp_path / "plain.txt").stat().st_mode
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_write_into_a_missing_folder_names_it(compiled, tmp_path):
    with pytest.raises(SnnconvError, match="missing.*does not exist"):
        html_report.write(compiled[0], tmp_path / "missing" / "report.html")


def test_without_matplotlib_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(MissingDependencyError, match="pip install matplotlib"):
        html_report.render(object())
