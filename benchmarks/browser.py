"""The browser: a fresh `streamlit run` to its first heatmap in Chromium, later visitors' navigations,
Train pressed to both scatter plots, and the memory of the server's process tree, for app.py beside
the plain page benchmarks/plain_page.py (both run as files)."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from embedviz.ui.page import TABS

from . import harness
from .report import Row, log, median, skipped

PLAIN_PAGE = harness.ROOT / "benchmarks" / "plain_page.py"

FIRST_HEATMAP_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).some(g =>
    g.data && g.data.length > 0 && g.querySelector('.heatmaplayer image, .heatmaplayer .hm'))"""
SCATTER_AFTER_JS = """() => { const g = document.querySelector('.st-key-scatter_after .js-plotly-plot');
    return !!(g && g.data && g.data.length > 0 && g.querySelector('.scatterlayer .point')); }"""
NAVIGATION_TIMING_JS = """() => { const n = performance.getEntriesByType('navigation')[0];
    return {domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd}; }"""


def time_to_heatmap(browser: Any, url: str, *, since: float | None = None) -> dict:
    """A new visitor opens the page: seconds until the first heatmap is drawn (since `since`, else goto),
    with the browser's own milestones (HTML and Streamlit's scripts loaded) for a breakdown."""
    context = browser.new_context(viewport=harness.VIEWPORT)
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)  # Chromium's own counters: main-thread time spent in JS
        cdp.send("Performance.enable")
        start = time.perf_counter() if since is None else since
        goto = time.perf_counter()
        page.goto(url)
        page.wait_for_function(FIRST_HEATMAP_JS, timeout=180_000)
        done = time.perf_counter()
        nav = page.evaluate(NAVIGATION_TIMING_JS)
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return {"seconds": done - start, "goto_to_heatmap_s": done - goto,
                "dom_content_loaded_s": nav["domContentLoaded"] / 1000, "load_event_s": nav["load"] / 1000,
                "browser_script_s": metrics.get("ScriptDuration"), "browser_busy_s": metrics.get("TaskDuration")}
    finally:
        context.close()


def train_in_browser(browser: Any, url: str) -> dict:
    """Open the page, press Train (in the training tab if there is one), wait for both scatter plots."""
    context = browser.new_context(viewport=harness.VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_function(FIRST_HEATMAP_JS, timeout=180_000)
        harness.wait_idle(page, timeout_s=120)
        tab = page.locator('[data-testid="stTab"]', has_text=TABS[1])
        if tab.count():
            tab.first.click()
        page.locator(".st-key-train button:visible").first.click()
        start = time.perf_counter()
        page.wait_for_function(SCATTER_AFTER_JS, timeout=600_000)
        seconds = time.perf_counter() - start
        trained = page.locator('[data-testid="stAlert"]', has_text="Trained in")
        m = re.search(r"Trained in ([\d.]+) s", trained.first.inner_text()) if trained.count() else None
        return {"train_to_scatter_s": seconds, "training_s": float(m.group(1)) if m else None}
    finally:
        context.close()


def serve_and_measure(browser: Any, script: Path, env: dict[str, str], *, navigations: int, train: bool) -> dict:
    start = time.perf_counter()
    server = harness.start_server(script=script, env=env)
    try:
        out: dict = {"health_s": time.perf_counter() - start}
        out["cold"] = time_to_heatmap(browser, server.url, since=start)
        out["navigations"] = [time_to_heatmap(browser, server.url) for _ in range(navigations)]
        out["cold_first_heatmap_s"] = out["cold"]["seconds"]
        out["navigation_s"] = [n["seconds"] for n in out["navigations"]]
        out["vm_hwm_mib_before_train"] = harness.vm_hwm_mib(server.pid)
        if train:
            tree = harness.TreeMemory(server.pid)
            tree.start()
            try:
                out.update(train_in_browser(browser, server.url))
            finally:
                tree.stop()
            out["vm_hwm_mib"] = harness.vm_hwm_mib(server.pid)
            out["children_vm_hwm_mib"] = {str(p): v for p, v in tree.peaks.items() if p != server.pid}
            out["tree_peak_pss_mib"] = tree.peak_sum_pss
            out["tree_pss_at_peak_mib"] = tree.at_peak
        return out
    finally:
        harness.stop_server(server)


def _nav_median(result: dict, key: str) -> float:
    return median([n[key] for n in result["navigations"]]) or 0.0


def browser_section(*, quick: bool, env: dict[str, str]) -> tuple[list[Row], dict]:
    missing = harness.chromium_missing()
    if missing:
        return skipped("browser", missing), {}
    from playwright.sync_api import sync_playwright

    navigations = 2 if quick else 3
    with sync_playwright() as pw:
        browser = harness.launch_chromium(pw)
        try:
            log("browser: ours (app.py): cold start, navigations, Train")
            ours = serve_and_measure(browser, harness.APP, env, navigations=navigations, train=True)
            log("browser: plain page: cold start, navigations" + ("" if quick else ", Train"))
            plain = serve_and_measure(browser, PLAIN_PAGE, env, navigations=navigations, train=not quick)
        finally:
            browser.close()
    nav_o, nav_p = median(ours["navigation_s"]), median(plain["navigation_s"])
    rows = [
        Row("browser", "cold start: streamlit run -> first heatmap drawn", ours["cold_first_heatmap_s"],
            plain["cold_first_heatmap_s"],
            note=f"health endpoint answered after {ours['health_s']:.1f} s (ours) / {plain['health_s']:.1f} s (plain)"),
        Row("browser", f"navigation on a started server -> first heatmap (median of {navigations})", nav_o, nav_p,
            target="navigation", note="Chromium's main thread: " + " / ".join(
                f"{_nav_median(r, 'browser_busy_s'):.1f} s busy, {_nav_median(r, 'browser_script_s'):.1f} s "
                f"of it in JS, load event at {_nav_median(r, 'load_event_s'):.1f} s ({who})"
                for who, r in (("ours", ours), ("plain", plain)))),
        Row("browser", "Train pressed -> both scatter plots drawn (fresh server)", ours.get("train_to_scatter_s"),
            plain.get("train_to_scatter_s"), target="train_to_maps",
            note="" if ours.get("training_s") is None else
            f"of which training {ours['training_s']:.1f} s (the page's own figure); plain: 300-step plain "
            "loop + 2 umap-learn fits" + (" (skipped in --quick)" if quick else "")),
        Row("browser", "server peak RSS (VmHWM) after Train, scatter drawn", ours.get("vm_hwm_mib"),
            plain.get("vm_hwm_mib"), unit="MiB", target="server_memory",
            note=f"before Train: {ours['vm_hwm_mib_before_train']:.0f} MiB (ours) / "
                 f"{plain['vm_hwm_mib_before_train']:.0f} MiB (plain page)"),
    ]
    if ours.get("children_vm_hwm_mib"):  # training in child processes: count the whole tree too
        rows.append(Row("browser", "server + child processes: peak of summed PSS while training",
                        ours["tree_peak_pss_mib"], plain.get("tree_peak_pss_mib"), unit="MiB", target="tree_memory",
                        note="PSS at the peak: " + ", ".join(
                            f"{who} {v:.0f}" for who, v in ours["tree_pss_at_peak_mib"].items())
                             + " MiB; children's own VmHWM: " + ", ".join(
                            f"{v:.0f}" for v in ours["children_vm_hwm_mib"].values()) + " MiB"))
    return rows, {"ours": ours, "plain": plain, "plain_page": str(PLAIN_PAGE.relative_to(harness.ROOT))}
