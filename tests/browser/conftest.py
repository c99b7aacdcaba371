"""A live `streamlit run app.py` on 127.0.0.1 and Debian's Chromium driven by Playwright; the server,
the browser and Streamlit's page state come from benchmarks.harness, shared with the benchmark.

Screenshots go to artifacts/screenshots/ (look at them). Every page is checked for Streamlit
exception boxes, browser console errors and JavaScript dialogs (a dialog means a script ran).
The helpers below drive widgets the way a person does (keyboard, clicks) and wait for the rerun
that follows to finish before anything is read back from the DOM; nothing sleeps for a fixed time.
Pages of one test module share a browser context (Streamlit's scripts are loaded once per module);
each test that changes the page gets a page (a Streamlit session) of its own, tests that only read
share one per module.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from benchmarks import harness
from benchmarks.harness import ARTIFACTS, HEATMAPS, VIEWPORT, heatmaps_drawn, is_idle

SHOTS = ARTIFACTS / "screenshots"
MAX_SHOT_HEIGHT = 9000  # px; a full-length screenshot is cut here

pytestmark = pytest.mark.browser

__all__ = ["HEATMAPS", "heatmaps_drawn", "is_idle"]


# ---------------------------------------------------------------- server and browser

def log_problems(log: Path) -> list[str]:
    """Tracebacks in the server's log (the browser never sees these), and runs of app.py outside
    `streamlit run`; other threads' log lines interleaved with a traceback are left out of it."""
    everything = log.read_text(errors="replace").splitlines()
    lines = [ln for ln in everything if " WARNING " not in ln]
    problems = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last):"):
            start = i - 1 if i and lines[i - 1].startswith("Exception in thread") else i
            block = lines[start:i + 60]
            end = next((j for j, ln in enumerate(block[2:], 2) if ln and not ln[0].isspace()), len(block) - 1)
            problems.append("\n".join(block[:end + 1]))
    bare = sum("missing ScriptRunContext" in ln for ln in everything)
    if bare:
        problems.append(f"{bare} x 'missing ScriptRunContext': app.py ran outside `streamlit run` "
                        "(e.g. re-imported as __mp_main__ by a multiprocessing child)")
    return problems


def warn_about_log(log: Path) -> None:
    problems = log_problems(log)
    if problems:
        warnings.warn(f"{log.name}: {len(problems)} problem(s) in the server log; the first:\n"
                      + problems[0][-1500:], stacklevel=1)


@pytest.fixture(scope="session")
def server():
    missing = harness.chromium_missing()
    if missing:
        pytest.fail(f"{missing}: run `make test-setup`")
    SHOTS.mkdir(parents=True, exist_ok=True)
    s = harness.start_server()
    yield s.url
    harness.stop_server(s)
    warn_about_log(s.log)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = harness.launch_chromium(p)
        yield b
        b.close()


# ---------------------------------------------------------------- a watched page

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


def open_page(browser, url: str, viewport: dict | None = None) -> Watched:
    """A new context (a new visitor: no cookies, storage or session in common) on the app, not yet
    waited for; the caller closes its context."""
    context = browser.new_context(viewport=viewport or VIEWPORT)
    context.add_init_script(_COUNT_RUNS_JS)
    return _goto(context.new_page(), url)


# ms. Generous: on a 2-core machine shared with other work (load 8-13) a fresh page took 150-250 s to
# draw its heatmaps, and a navigation alone more than 30 s; a condition that holds returns at once.
ACTION_TIMEOUT = 180_000
READY_TIMEOUT = 600_000


def _goto(p, url: str) -> Watched:
    p.set_default_timeout(ACTION_TIMEOUT)
    w = Watched(p)
    p.goto(url)
    return w


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def context(browser):
    """The module's browser context: its pages share Chromium's cache, so Streamlit's scripts and
    styles are fetched and compiled once per module rather than once per test."""
    c = browser.new_context(viewport=VIEWPORT)
    c.add_init_script(_COUNT_RUNS_JS)
    yield c
    c.close()


@pytest.fixture
def page(context, server, request):
    """A page of its own (its own Streamlit session) for a test that changes what it shows; a failed
    test leaves <test name>-failed.png."""
    w = _goto(context.new_page(), server)
    wait_ready(w.page)
    yield w
    report = getattr(request.node, "report_call", None)
    if report is None or report.failed:
        shot(w.page, request.node.name + "-failed")
    w.page.close()


@pytest.fixture(scope="module")
def shared_page(context, server):
    """One page per module for the tests that only read it."""
    w = _goto(context.new_page(), server)
    wait_ready(w.page)
    yield w
    w.page.close()


# ---------------------------------------------------------------- waiting for Streamlit

# Streamlit marks its root with data-test-script-state="running" | "notRunning" (its own e2e tests
# wait on it); counting the transitions tells a finished rerun from one that has not started yet.
# Runs seen to start, and messages sent to the server: a short run can start and end between two
# frames without the running state ever reaching the page, but its request always goes out.
_COUNT_RUNS_JS = """
window.__evRuns = {started: 0, sent: 0};
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (...args) { window.__evRuns.sent++; return send.apply(this, args); };
new MutationObserver(changes => {
    for (const c of changes) {
        const now = c.target.getAttribute('data-test-script-state');
        if (now === 'running' && c.oldValue !== 'running') window.__evRuns.started++;
    }
}).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                      attributeFilter: ['data-test-script-state']});
"""


def wait_ready(p, timeout: float = READY_TIMEOUT) -> None:
    """Until the first script run has finished and the three embedding heatmaps are drawn."""
    p.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    p.wait_for_function(harness.HEATMAPS_JS, timeout=timeout)
    wait_idle(p, timeout=timeout)


def wait_idle(p, timeout: float = ACTION_TIMEOUT) -> None:
    """Until no script run is in progress (timeout in ms, as Playwright's)."""
    harness.wait_idle(p, timeout_s=timeout / 1000)


def run_counts(p) -> dict[str, int]:
    return p.evaluate("() => window.__evRuns ? {...window.__evRuns} : {started: 0, sent: 0}")


def rerun(p, action, *, timeout: float = ACTION_TIMEOUT) -> None:
    """Do `action()` (an input that makes Streamlit rerun), then wait until that rerun was asked for
    (seen running, or its request sent) and has finished."""
    before = run_counts(p)
    action()
    p.wait_for_function("(b) => window.__evRuns && (window.__evRuns.started > b.started "
                        "|| window.__evRuns.sent > b.sent)", arg=before, timeout=timeout)
    wait_idle(p, timeout=timeout)


def wait_text(p, text: str, timeout: float = ACTION_TIMEOUT, where: str = "[data-testid=\"stMain\"]") -> None:
    """Until `text` appears inside `where` (a CSS selector), then until the rerun is over."""
    p.wait_for_function(
        "([sel, t]) => { const e = document.querySelector(sel); return e && e.innerText.includes(t); }",
        arg=[where, text], timeout=timeout)
    wait_idle(p, timeout=timeout)


# ---------------------------------------------------------------- driving widgets

def commit_text(p, key: str, text: str, *, type_it: bool = True) -> None:
    """Replace the text of the text area with key `key`, commit it with Ctrl+Enter and wait for
    the rerun. type_it=True types key by key (as a person would); False pastes it in one event."""
    area = p.locator(f".st-key-{key} textarea")
    area.click()
    p.keyboard.press("Control+a")
    p.keyboard.press("Delete")
    if type_it:
        area.press_sequentially(text)
    else:
        area.fill(text)
    rerun(p, lambda: p.keyboard.press("Control+Enter"))


def click_button(p, key: str, *, wait: bool = True) -> None:
    """Press the button with key `key` and wait for the rerun. Streamlit also renders a hidden copy
    of a button that has help; the visible one is activated from the keyboard (focus + Enter): a
    mouse click can land while the help tooltip mounts under the pointer."""
    button = p.locator(f".st-key-{key} button:visible").first
    button.focus()
    if wait:
        rerun(p, lambda: button.press("Enter"))
    else:
        button.press("Enter")


def slider_thumb(p, key: str):
    """The focusable thumb of the slider (or select_slider) with key `key`."""
    return p.locator(harness.slider_thumb_selector(key)).first


def press_slider(p, key: str, key_name: str) -> None:
    """Focus the slider's thumb, press one key (ArrowRight, ArrowLeft, End, Home, ...) and wait for
    the rerun."""
    thumb = slider_thumb(p, key)
    thumb.focus()
    rerun(p, lambda: thumb.press(key_name))


def slider_value(p, key: str) -> str:
    return p.locator(f".st-key-{key} [data-testid=stSliderThumbValue]").first.inner_text().strip()


def choose(p, key: str, option: str) -> None:
    """Pick `option` (its visible text) in the selectbox with key `key` and wait for the rerun."""
    box = p.locator(f".st-key-{key} [role=combobox], .st-key-{key} [data-baseweb=select]").first
    box.click()
    if box.get_attribute("aria-expanded") == "false":  # a click can focus without opening the list
        p.keyboard.press("ArrowDown")
    rerun(p, lambda: p.locator("[role=option]:visible", has_text=option).first.click())


# The tab labelled `label` is selected and its panel holds elements: only the open tab runs, and the
# elements a run did not draw are removed, so a panel just opened stays empty until its run draws it.
_TAB_DRAWN_JS = """(label) => {
    const tab = Array.from(document.querySelectorAll('[data-testid="stTab"]')).find(t => t.innerText.includes(label));
    if (!tab || tab.getAttribute('aria-selected') !== 'true') return false;
    const id = tab.getAttribute('aria-controls');
    const panel = id ? document.getElementById(id) : document.querySelector('[role="tabpanel"]:not([hidden])');
    return !!panel && !!panel.querySelector('[data-testid="stElementContainer"]'); }"""


def open_tab(p, label: str) -> None:
    """Open the tab labelled `label` and wait until its run has drawn it and the page is idle (a run
    can be too short for the running state to show, so runs are not counted here)."""
    tab = p.locator('[data-testid="stTab"]', has_text=label).first
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
    p.wait_for_function(_TAB_DRAWN_JS, arg=label)
    wait_idle(p)


def flip_toggle(p, key: str) -> None:
    """Switch the toggle (or checkbox) with key `key` from the keyboard and wait for the rerun."""
    switch = p.locator(f".st-key-{key} input[type=checkbox]").first
    switch.focus()
    rerun(p, lambda: switch.press("Space"))


def pick_radio(p, key: str, option: str) -> None:
    """Click the option with visible text `option` of the radio group with key `key`; wait for the rerun."""
    rerun(p, lambda: p.locator(f".st-key-{key} [role=radiogroup] label", has_text=option).first.click())


def type_number(p, key: str, value: int | float) -> None:
    """Replace the value of the number input with key `key` by typing, commit with Enter, wait."""
    box = p.locator(f".st-key-{key} input[type=number]").first
    box.click()
    p.keyboard.press("Control+a")
    box.press_sequentially(str(value))
    rerun(p, lambda: box.press("Enter"))


def open_expander(p, label: str) -> None:
    """Open the (closed) expander whose header contains `label`."""
    details = p.locator('[data-testid="stExpander"] details', has_text=label).first
    if details.get_attribute("open") is None:
        details.locator("summary").first.click()
    p.wait_for_function("(d) => d.open", arg=details.element_handle())
    wait_idle(p)  # an expander that draws its content only while open reruns the page


def download(p, key: str, folder: Path) -> Path:
    """Press the download button with key `key`; the file it gives, saved into `folder`."""
    with p.expect_download() as info:
        p.locator(f".st-key-{key} button:visible, .st-key-{key} a:visible").first.click()
    d = info.value
    path = Path(folder) / d.suggested_filename
    d.save_as(path)
    return path


# ---------------------------------------------------------------- reading the page back

def shapes(p) -> list[str]:
    """Every "name.shape = torch.Size([...])" the visible main area shows, wherever it is (markdown
    code, captions, chart titles), e.g. "x.shape = torch.Size([1, 12, 32])", "wte.weight.shape = torch.Size([256, 32])"."""
    return [" ".join(m.split()) for m in _SHAPE.findall(p.evaluate(_VISIBLE_TEXT_JS))]


# The main area's text with each line of a chart title on a line of its own: innerText runs the lines of
# a wrapped SVG title together ("x = tok + pos" + "x.shape = ..." would read "posx.shape = ...").
_VISIBLE_TEXT_JS = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const prose = Array.from(main.querySelectorAll('.stMarkdown, [data-testid="stCaptionContainer"]'))
        .filter(e => e.offsetParent !== null).map(e => e.innerText);
    const titles = Array.from(main.querySelectorAll('.js-plotly-plot')).filter(g => g.offsetParent !== null)
        .flatMap(g => Array.from(g.querySelectorAll('.g-gtitle text')))
        .flatMap(t => { const lines = t.querySelectorAll('tspan.line');
                        return lines.length ? Array.from(lines, l => l.textContent) : [t.textContent]; });
    return [...prose, ...titles].join('\\n');
}"""


_SHAPE = re.compile(r"[\w.]+\s*=\s*torch\.Size\(\[[\d,\s]*\]\)")


def chip_tokens(p) -> list[list[str]]:
    """The token text of every chip, one list per sentence (chips are plain text in the DOM)."""
    return p.evaluate(
        "() => Array.from(document.querySelectorAll('.ev-chips')).map(c => "
        "Array.from(c.querySelectorAll('.ev-tok')).map(t => t.textContent))")


def plot(p, key: str) -> dict:
    """What Plotly drew for the chart with key `key`, read from the DOM (not from Python):
    per trace its type, y (category names), z shape and hovertemplate; the rendered y tick texts."""
    return p.evaluate(
        """(key) => {
            const g = document.querySelector('.st-key-' + key + ' .js-plotly-plot');
            if (!g || !g.data) return null;
            // _fullData holds decoded arrays (plotly 7 ships them base64-encoded in g.data)
            const traces = (g._fullData || g.data).map(t => ({
                type: t.type, name: t.name, mode: t.mode,
                x: t.x ? Array.from(t.x).slice(0, 5000) : null,
                y: t.y ? Array.from(t.y).slice(0, 5000) : null,
                rows: t.z ? t.z.length : null,
                cols: t.z && t.z[0] ? t.z[0].length : null,
                points: t.x ? t.x.length : null,
                hovertemplate: t.hovertemplate || null,
            }));
            const ticks = Array.from(g.querySelectorAll('.yaxislayer-above .ytick text, .ytick text'))
                .map(e => e.textContent);
            const title = g.layout && g.layout.title ? g.layout.title.text : null;
            return {traces, ticks, title};
        }""", key)


def wait_chart(p, key: str, timeout: float = ACTION_TIMEOUT) -> None:
    """Until the Plotly chart with key `key` has data and is drawn, then until the rerun is over."""
    p.wait_for_function(
        "(k) => { const g = document.querySelector('.st-key-' + k + ' .js-plotly-plot'); "
        "return !!g && !!g._fullData && g._fullData.length > 0 && !!g.querySelector('.main-svg'); }",
        arg=key, timeout=timeout)
    wait_idle(p, timeout=timeout)


def chart_eval(p, key: str, fn: str):
    """The value of the JavaScript function `fn` (e.g. "g => g._fullLayout.title.font.size") applied to
    the Plotly graph div of chart `key`; None when the chart is not there."""
    return p.evaluate(
        f"(k) => {{ const g = document.querySelector('.st-key-' + k + ' .js-plotly-plot'); "
        f"return g ? ({fn})(g) : null; }}", key)


def heatmap_z(p, key: str, trace: int = 0) -> list[list[float]] | None:
    """z of trace `trace` of heatmap `key` as Plotly holds it (_fullData: decoded from base64)."""
    return chart_eval(p, key, f"g => {{ const t = (g._fullData || g.data)[{trace}]; "
                              "return t && t.z ? Array.from(t.z, r => Array.from(r)) : null; }")


def hover_text(p, key: str, fx: float = 0.5, fy: float = 0.5) -> str:
    """Move the mouse over the plot area of chart `key` at fraction (fx, fy); return the tooltip."""
    chart = p.locator(f".st-key-{key} .js-plotly-plot")
    chart.scroll_into_view_if_needed()
    box = chart.locator(".nsewdrag").first.bounding_box()
    p.mouse.move(1, 1)  # off the chart first, so the box that is read is the one for this point
    p.wait_for_function(
        "(k) => { const h = document.querySelector('.st-key-' + k + ' .hoverlayer'); "
        "return !h || h.textContent.length === 0; }", arg=key, timeout=30_000)
    p.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    try:
        p.wait_for_function(
            "(k) => { const h = document.querySelector('.st-key-' + k + ' .hoverlayer'); "
            "return h && h.textContent.length > 0; }", arg=key, timeout=30_000)
    except Exception:
        return ""
    return p.evaluate("(k) => document.querySelector('.st-key-' + k + ' .hoverlayer').textContent", key)


def alerts(p, where: str = "body") -> list[str]:
    return p.locator(f"{where} [data-testid=stAlert]").all_inner_texts()


# ---------------------------------------------------------------- screenshots

def shot(p, name: str, *, full: bool = True) -> Path:
    """Save artifacts/screenshots/<name>.png. Streamlit scrolls inside its own main container, so
    Playwright's full_page only sees the viewport: for a full-length picture the viewport is made
    as tall as the content for the moment of the screenshot."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    if p.is_closed():
        return path
    p.mouse.move(0, 0)  # no hover box or tooltip over the picture (a focused button shows its help)
    p.evaluate("() => document.activeElement && document.activeElement.blur()")
    size = p.viewport_size or VIEWPORT
    height = size["height"]
    if full:
        content = p.evaluate(
            "() => Math.max(...['[data-testid=\"stMain\"]', '[data-testid=\"stSidebarContent\"]']"
            ".map(s => document.querySelector(s)).filter(Boolean).map(e => e.scrollHeight))")
        height = max(size["height"], min(int(content) + 20, MAX_SHOT_HEIGHT))
    if height != size["height"]:
        p.set_viewport_size({"width": size["width"], "height": height})
        settle_layout(p)
    try:
        p.screenshot(path=str(path))
    finally:
        if height != size["height"]:
            p.set_viewport_size(size)
    return path


# Plotly's toolbar fades (an opacity transition of its button groups, not of .modebar itself) once the
# mouse and the focus have left a chart.
_MODEBARS_HIDDEN_JS = ("(s) => Array.from(document.querySelectorAll(s + ' .modebar--hover > :not(.watermark)'))"
                       ".every(m => getComputedStyle(m).opacity === '0')")
# Two animation frames: a resize, and the re-layout it triggers, have been painted.
_TWO_FRAMES_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


def settle_layout(p) -> None:
    """After a change of the viewport's height (the width stays, so no chart is redrawn): until the
    browser has laid out and painted the taller page."""
    p.evaluate(_TWO_FRAMES_JS)


def element_shot(p, selector: str, name: str, *, keep_hover: bool = False) -> Path:
    """A screenshot of one element (e.g. the chips, or one chart); keep_hover keeps the mouse where
    it is (to show a hover box), otherwise it is moved away first."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    el = p.locator(selector).first
    if not keep_hover:
        p.mouse.move(0, 0)
        p.evaluate("() => document.activeElement && document.activeElement.blur()")
        p.wait_for_function(_MODEBARS_HIDDEN_JS, arg=selector)  # plotly's toolbar fades out
    el.scroll_into_view_if_needed()
    el.screenshot(path=str(path))
    return path

