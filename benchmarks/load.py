"""Load: ten visitors on one server at once, one training while the others move a slider or type, for
app.py; the plain page (benchmarks/plain_page.py) gets the same ten visitors opening it. Every figure
(pages served, slowest page, the process tree's memory, health checks) is printed, none asserted."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from embedviz.ui.page import TABS

from . import harness
from .browser import FIRST_HEATMAP_JS, PLAIN_PAGE
from .report import Row, log, median, skipped

VISITORS = 10
TRAIN_STEPS = 50  # the trainer's run: short, so the section stays bounded on a busy 2-core machine
LOAD_DEADLINE_S = 120  # for every page to draw its heatmaps
CHANGE_DEADLINE_S = 180  # for every change (and the training) to come back
CHANGES = {"dim": "x.shape = torch.Size([1, 12, 33])", "positions": "wpe.weight.shape = torch.Size([15, 32])",
           "text": "x.shape = torch.Size([1, 7, 32])"}
_SHAPE = re.compile(r"[\w.]+\s*=\s*torch\.Size\(\[[\d,\s]*\]\)")
_TITLE_JS = ("(k) => { const g = document.querySelector('.st-key-' + k + ' .js-plotly-plot'); "
             "return g && g.layout && g.layout.title ? String(g.layout.title.text) : null; }")


class Visitor:
    """One browser context on the server, with the errors its page showed."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(viewport=harness.VIEWPORT)
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and not _benign(m.text) and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until="commit")  # not waiting for its load event: the visitors arrive together

    def exception_boxes(self) -> int:
        return self.page.locator('[data-testid="stException"]').count()


def _benign(message: str) -> bool:
    # Chromium offline: failed fetches of Streamlit's optional remote assets are not the page's errors
    return any(s in message for s in ("net::ERR_", "Failed to load resource", "favicon"))


# The page's text with each chart title's lines on lines of their own (innerText runs a title's SVG
# lines together: "x = tok + pos" then "x.shape = ..." reads "posx.shape = ...")
_TEXT_JS = """() => { const main = document.querySelector('[data-testid="stMain"]');
    const titles = Array.from(main.querySelectorAll('.g-gtitle text')).flatMap(t => {
        const lines = Array.from(t.querySelectorAll('tspan.line')).map(l => l.textContent);
        return lines.length ? lines : [t.textContent]; });
    return [main.innerText, ...titles].join('\\n'); }"""


def _shapes(page: Any) -> list[str]:
    return [" ".join(m.split()) for m in _SHAPE.findall(page.evaluate(_TEXT_JS))]


def _plan(i: int) -> str:
    """What visitor i does: the first trains, the others take turns at d, P and the text."""
    return "train" if i == 0 else ("dim", "positions", "text")[(i - 1) % 3]


def _start(page: Any, kind: str) -> None:
    """Fire the input and return at once: the pages work in parallel in the browser."""
    if kind == "train":
        button = page.locator(".st-key-train button:visible").first
        button.focus()
        button.press("Enter")
    elif kind == "text":
        area = page.locator(".st-key-text textarea")
        area.fill("The cat sat on the mat.")
        area.press("Control+Enter")
    else:
        thumb = page.locator(harness.slider_thumb_selector(kind)).first
        thumb.focus()
        thumb.press("ArrowRight" if kind == "dim" else "ArrowLeft")


def _done(page: Any, kind: str) -> bool:
    if kind == "train":
        title = page.evaluate(_TITLE_JS, "scatter_after") or ""
        return f"after {TRAIN_STEPS} steps" in title and harness.is_idle(page)
    return CHANGES[kind] in _shapes(page) and harness.heatmaps_drawn(page) and harness.is_idle(page)


class Health:
    """/_stcore/health polled while the visitors work: checks, failures, the longest run of failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.checks = self.failures = self.run = self.longest_run = 0

    def check(self) -> None:
        ok = harness.healthy(self.url, timeout=5)
        self.checks += 1
        self.failures += not ok
        self.run = 0 if ok else self.run + 1
        self.longest_run = max(self.longest_run, self.run)


def _poll(pending: dict[int, float], ready: Any, deadline_s: float, health: Health) -> dict[int, float]:
    """Seconds from each pending visitor's start (pending: index -> start) until ready(i), within deadline_s."""
    finished: dict[int, float] = {}
    deadline = time.monotonic() + deadline_s
    while len(finished) < len(pending) and time.monotonic() < deadline:
        for i, started in pending.items():
            if i not in finished and ready(i):
                finished[i] = time.monotonic() - started
        health.check()
        time.sleep(0.2)
    return finished


def visit(browser: Any, script: Path, env: dict[str, str], *, visitors: int, act: bool) -> dict:
    """`visitors` pages opened at once on a fresh server of `script`; with act, the first then trains
    TRAIN_STEPS steps while the others change d, P or the text, all at once."""
    server = harness.start_server(script=script, env=env)
    tree, health = harness.TreeMemory(server.pid), Health(server.url)
    tree.start()
    pages: list[Visitor] = []
    out: dict = {"visitors": visitors}
    start = time.monotonic()
    try:
        opened = {}
        for i in range(visitors):
            opened[i] = time.monotonic()
            # the trainer's short run comes through the page's own share link parameters
            pages.append(Visitor(browser, server.url + (f"/?steps={TRAIN_STEPS}" if act and i == 0 else "")))
        ready_js = harness.HEATMAPS_JS if act else FIRST_HEATMAP_JS
        loaded = _poll(opened, lambda i: pages[i].page.evaluate(ready_js) and harness.is_idle(pages[i].page),
                       LOAD_DEADLINE_S, health)
        out["loaded_s"] = loaded
        if act and len(loaded) == visitors:
            pages[0].page.locator('[data-testid="stTab"]', has_text=TABS[1]).first.click()
            acted = {}
            for i, v in enumerate(pages):
                _start(v.page, _plan(i))
                acted[i] = time.monotonic()
            out["changed_s"] = _poll(acted, lambda i: _done(pages[i].page, _plan(i)), CHANGE_DEADLINE_S, health)
            trained = pages[0].page.locator('[data-testid="stAlert"]', has_text="Trained in")
            out["training_reported"] = trained.first.inner_text() if trained.count() else None
        out["pages_with_errors"] = sum(bool(v.errors or v.exception_boxes()) for v in pages)
        out["errors"] = [e for v in pages for e in v.errors][:20]
        out["server_up"] = server.proc.poll() is None and harness.healthy(server.url)
    finally:
        tree.stop()
        for v in pages:
            v.context.close()
        harness.stop_server(server)
    out.update({"tree_peak_pss_mib": tree.peak_sum_pss, "tree_pss_at_peak_mib": tree.at_peak,
                "server_vm_hwm_mib": tree.peaks.get(server.pid), "health_checks": health.checks,
                "health_failures": health.failures, "health_longest_failing_run": health.longest_run,
                "total_s": time.monotonic() - start})
    return out


def load_section(*, quick: bool, env: dict[str, str]) -> tuple[list[Row], dict]:
    missing = harness.chromium_missing()
    if missing:
        return skipped("load", missing), {}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = harness.launch_chromium(pw)
        try:
            log(f"load: {VISITORS} visitors on app.py, one trains {TRAIN_STEPS} steps, the others change a setting")
            ours = visit(browser, harness.APP, env, visitors=VISITORS, act=True)
            log(f"load: {VISITORS} visitors on the plain page")
            plain = visit(browser, PLAIN_PAGE, env, visitors=VISITORS, act=False)
        finally:
            browser.close()
    n = VISITORS
    changes = {i: s for i, s in ours.get("changed_s", {}).items() if i}
    rows = [
        Row("load", f"{n} visitors at once: pages that drew their heatmaps", f"{len(ours['loaded_s'])}/{n}",
            f"{len(plain['loaded_s'])}/{n}", unit="count",
            note="ours: all three embedding heatmaps and the script idle; plain: its one heatmap"),
        Row("load", f"{n} visitors at once: slowest page to its heatmaps", max(ours["loaded_s"].values(), default=None),
            max(plain["loaded_s"].values(), default=None),
            note=f"median {median(list(ours['loaded_s'].values())) or 0:.1f} s (ours) / "
                 f"{median(list(plain['loaded_s'].values())) or 0:.1f} s (plain)"),
        Row("load", "while one trains: changes (d, P, text) back on the page", f"{len(changes)}/{n - 1}",
            unit="count", note="slowest " + (f"{max(changes.values()):.1f} s" if changes else "–")
            + "; the plain page has no settings to change"),
        Row("load", f"Train ({TRAIN_STEPS} steps) -> both scatter plots, {n - 1} others busy",
            ours.get("changed_s", {}).get(0), target="train_to_maps_loaded", note=ours.get("training_reported") or ""),
        Row("load", f"server + child processes: peak of summed PSS, {n} visitors", ours["tree_peak_pss_mib"],
            plain["tree_peak_pss_mib"], unit="MiB", target="tree_memory",
            note="PSS at the peak: " + ", ".join(f"{who} {v:.0f}" for who, v in ours["tree_pss_at_peak_mib"].items())
                 + " MiB"),
        Row("load", "health checks failed (longest run in a row)",
            f"{ours['health_failures']}/{ours['health_checks']} ({ours['health_longest_failing_run']})",
            f"{plain['health_failures']}/{plain['health_checks']} ({plain['health_longest_failing_run']})",
            unit="count"),
        Row("load", "pages with an exception box or a console error", ours["pages_with_errors"],
            plain["pages_with_errors"], unit="count",
            note="; ".join(ours["errors"][:3])[:300] + ("" if ours["server_up"] else " THE SERVER DIED")),
    ]
    return rows, {"ours": ours, "plain": plain, "load_average": list(os.getloadavg())}
