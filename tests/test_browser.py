"""End-to-end in a real headless Chromium: sample data -> codes -> a training run -> Results -> Inspect.

Starts ``python -m streamlit run app.py`` on 127.0.0.1 (free port, temporary workspace, the fast 'hash:64' encoder
and the 'smoke' preset so the walk takes ~2 minutes on 2 cores), asserts what each page shows, and saves
screenshots to tests/artifacts/. Needs /usr/bin/chromium (or $CHROMIUM) and the playwright package; the browser
binary is never downloaded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# VQREC_BROWSER_REAL=1: the same walk with the real defaults (MiniLM, the 'quick' preset); takes ~6-8 minutes
REAL = bool(os.environ.get("VQREC_BROWSER_REAL"))
SLOW = 3 if REAL else 1

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"Chromium not found at {CHROMIUM}; install it (apt-get install chromium).", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    ws = tmp_path_factory.mktemp("browser_ws")
    env = {**os.environ, "VQREC_WORKSPACE": str(ws), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    if not REAL:
        env.update({"VQREC_ENCODER": "hash:64", "VQREC_SMOKE": "1"})
    log = open(tmp_path_factory.mktemp("logs") / "streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early (code {proc.returncode}); see {log.name}")
    else:
        proc.terminate()
        raise RuntimeError(f"streamlit did not answer on {url} within 60 s")
    yield url, ws
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser_page(server):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 2200})
        yield page
        browser.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(800)  # let plotly finish drawing
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, page.locator(
        "[data-testid='stException']").first.inner_text()


def _wait_text(page, text: str, timeout_s: float = 60) -> None:
    page.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=timeout_s * 1000)


def _wait_charts(page, n: int, timeout_s: float = 60) -> None:
    """Wait until at least ``n`` plotly charts have drawn (their SVG root exists)."""
    page.locator("[data-testid='stPlotlyChart'] .main-svg").nth(n - 1).wait_for(state="attached",
                                                                               timeout=timeout_s * 1000)


def test_sample_data_to_inspect(server, browser_page):
    url, ws = server
    page = browser_page
    t0 = time.time()

    # Home: the idea, the two sample domains, where to go
    page.goto(url)
    _wait_text(page, "Domains in the workspace", 90)
    _wait_text(page, "Where to go next")
    body = page.inner_text("body")
    assert "text → code → representation" in body
    assert "beauty" in body and "toys" in body
    _no_exception(page)
    _shot(page, "01_home")

    # Data: the sample domain with its statistics, report and preview; the upload limit is stated
    page.goto(f"{url}/Data")
    _wait_text(page, "Validation report")
    _wait_text(page, "Catalog preview")
    _wait_text(page, "1,988")
    page.get_by_role("tab", name="Add a domain").click()
    _wait_text(page, "100 MB per file")
    _no_exception(page)
    _shot(page, "02_data")

    # Codes: build codes (with the ablations and UMAP maps) on both samples
    page.goto(f"{url}/Codes")
    _wait_text(page, "not been built yet")
    page.get_by_role("button", name="Build codes and analyse").click()
    _wait_text(page, "Code diagnostics", 240 * SLOW)
    _wait_text(page, "Maps: text space vs code space")
    body = page.inner_text("body")
    assert "Uniformity: code space vs raw text" in body and "Ablations" in body and "Domain gap" in body
    _wait_charts(page, 6)
    _no_exception(page)
    _shot(page, "03_codes")
    page.get_by_text("Maps: text space vs code space").first.scroll_into_view_if_needed()
    _shot(page, "03b_codes_maps")

    # Train: a smoke run beauty -> toys with the default models, live progress, then finished
    page.goto(f"{url}/Train")
    _wait_text(page, "Start training")
    page.get_by_role("button", name="Start training").click()
    _wait_text(page, "Started run", 30)
    _shot(page, "04_train_running")
    _wait_text(page, "Direction: beauty → toys", 240 * SLOW)  # shown once the run is no longer running
    _wait_text(page, "Test metrics of the models finished so far")
    assert ": finished" in page.locator("[data-testid='stAlertContentSuccess']").first.inner_text()
    _no_exception(page)
    _shot(page, "05_train_finished")

    # Results: metrics, transfer gain, domain gap, bias before/after (the run is analysed when it finishes)
    page.goto(f"{url}/Results")
    _wait_text(page, "Transfer gain", 60)
    _wait_text(page, "Text-similarity bias before vs after adaptation", 120 * SLOW)
    assert "Domain gap between the run's domains" in page.inner_text("body")
    _wait_charts(page, 4)
    _no_exception(page)
    _shot(page, "06_results")

    # Inspect: one evaluated user, every model's top-10 side by side, what adaptation moved
    page.goto(f"{url}/Inspect")
    _wait_text(page, "Top-10 side by side", 90)
    _wait_text(page, "True next item")
    _wait_text(page, "What adaptation moved")
    _no_exception(page)
    _shot(page, "07_inspect")

    # A reload keeps everything: the run is still listed as finished
    page.goto(f"{url}/Train")
    _wait_text(page, "Direction: beauty → toys", 60)
    assert ": finished" in page.locator("[data-testid='stAlertContentSuccess']").first.inner_text()
    assert time.time() - t0 < 400 * SLOW
