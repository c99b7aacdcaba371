"""A live `streamlit run app.py` on 127.0.0.1 and Debian's Chromium driven by Playwright.

Screenshots go to artifacts/screenshots/ (look at them). Every page is checked for Streamlit
exception boxes, browser console errors and JavaScript dialogs (a dialog means a script ran).
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

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env_extra: dict | None = None):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    log = open(ROOT / "artifacts" / f"streamlit-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"streamlit did not start; see {log.name}")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="session")
def server():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test-setup` (apt-get install -y chromium)")
    (ROOT / "artifacts").mkdir(exist_ok=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    proc, url = start_server()
    yield url
    stop_server(proc)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watched:
    """A page plus what went wrong on it: console errors, dialogs, page errors."""

    def __init__(self, page):
        self.page = page
        self.console_errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))

        def on_dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)

    def assert_clean(self):
        exceptions = self.page.locator('[data-testid="stException"]')
        assert exceptions.count() == 0, exceptions.first.inner_text()
        assert not self.dialogs, f"a script ran: {self.dialogs}"
        errors = [e for e in self.console_errors if not _benign(e)]
        assert not errors, errors


def _benign(message: str) -> bool:
    # Chromium offline: failed fetches of Streamlit's optional remote assets are not our errors
    return any(s in message for s in ("net::ERR_", "Failed to load resource", "favicon"))


@pytest.fixture
def page(browser, server, request):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    p = context.new_page()
    p.set_default_timeout(60_000)
    w = Watched(p)
    p.goto(server)
    wait_ready(p)
    yield w
    shot(p, request.node.name + "-end")
    context.close()


def wait_ready(p, timeout: float = 60_000) -> None:
    """Until the script has finished running (Streamlit shows a running indicator meanwhile)."""
    p.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    p.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
        "document.querySelectorAll('.js-plotly-plot').length > 0", timeout=timeout)
    time.sleep(0.3)


def shot(p, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    p.screenshot(path=str(path), full_page=True)
    return path


def require_chromium() -> None:
    if shutil.which("chromium") is None:
        pytest.fail("chromium is not installed: run `make test-setup`")
