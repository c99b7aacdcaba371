"""A class on one server: app.py in hosted mode pinned to one core, 30 sessions (on the other core)
arriving within a minute; most press Train, some with another seed, all move a slider every 10 s.
Prints what the visitors saw (time to maps, queue texts, failures) and the server tree's peak memory.

In a real class each student has a computer of their own: what they share is the server. So most
sessions are protocol visitors (benchmarks/protocol.py: the page's websocket conversation, the server's
whole work for a page, without drawing it) and a few, spread over the arrivals, are real Chromium pages
(what a visitor actually sees drawn, and when). 30 Chromium pages on one core measured the browser:
at 03:08 on 2026-12-01 the server used 10 s of CPU in 201 s (5 % of its core) while 24 of 30 pages drew
no heatmap within 120 s, Chromium's ~2 s of CPU per page load queuing on its one core."""
from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import os
import shutil
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedviz.ui.page import TABS

from . import harness
from .protocol import Visitor
from .report import Row, log, skipped

SESSIONS = 30
BROWSERS = 5  # sessions that are Chromium pages, spread over the arrivals; the others are protocol visitors
OTHER_SETTINGS = 5  # sessions that train with another seed (one each: 5 settings besides the defaults)
EXPLORERS = 5  # sessions that never press Train
ARRIVAL_S = 60.0  # every session has opened the page by then
CLASS_S = 150.0  # how long the class moves sliders, from the first arrival (--class-seconds)
MOVE_EVERY_S = 10.0
LOAD_DEADLINE_S = 120.0  # a session without a heatmap by then is stuck
TRAIN_DEADLINE_S = 240.0  # from the first press to both maps; past it the session is stuck
RETRY_AFTER_S = 10.0  # a session refused ("already waiting") presses Train again after this long
POLL_S = 0.5  # how often a Chromium page is read: the resolution of its times (a protocol visitor's are exact)
SERVER_CORE, BROWSER_CORE = 0, 1  # the protocol visitors run in this process, beside Chromium
QUEUE_TEXTS = {"queued": "Waiting for a free trainer", "starting": "Starting…",
               "refused": "already waiting for a free trainer", "stopped": "Training stopped at step"}
KINDS = {"protocol": "protocol visitors", "browser": "Chromium pages"}  # a session's client, as the rows say it
# One read of a page: script idle, a heatmap drawn, both maps drawn, exception boxes, the queue texts shown
_STATUS_JS = """(texts) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const idle = !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && !document.querySelector('[data-testid="stStatusWidget"]');
  const scatter = k => { const g = document.querySelector('.st-key-' + k + ' .js-plotly-plot');
    return !!(g && g.data && g.data.length > 0 && g.querySelector('.scatterlayer .point, canvas')); };
  const heatmap = Array.from(document.querySelectorAll('.js-plotly-plot')).some(g =>
    g.data && g.data.length > 0 && g.querySelector('.heatmaplayer image, .heatmaplayer .hm'));
  const main = document.querySelector('[data-testid="stMain"]');
  const text = main ? main.textContent : '';
  const seen = {};
  for (const [name, t] of Object.entries(texts)) seen[name] = text.includes(t);
  return {idle, heatmap, maps: scatter('scatter_before') && scatter('scatter_after'),
          exceptions: document.querySelectorAll('[data-testid="stException"]').length, seen};
}"""


# ---------------------------------------------------------------- pure pieces

def percentile(values: Sequence[float], *, q: float) -> float | None:
    """Nearest rank: the smallest value with at least q % of the values at or below it; None if empty."""
    if not 0 < q <= 100:
        raise ValueError(f"q={q} is not a percentage in (0, 100]; the median is q=50, the maximum q=100")
    ordered = sorted(values)
    return ordered[math.ceil(q / 100 * len(ordered)) - 1] if ordered else None


def spread(values: Sequence[float | None]) -> tuple[float, float, float] | None:
    """(median, p95, max) of the values present; None when none is."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return statistics.median(present), percentile(present, q=95), max(present)


def class_plan(*, sessions: int, other_settings: int, explorers: int) -> list[int | None]:
    """What each session trains, in arrival order: 0 for the default seed, 1..other_settings for a seed
    of its own, None for an explorer; the seeds and explorers spread over the arrivals."""
    if other_settings + explorers > sessions:
        raise ValueError(f"{other_settings} sessions with other settings and {explorers} explorers do not fit "
                         f"in {sessions} sessions; lower them or raise the sessions")
    pairs = itertools.zip_longest(range(1, other_settings + 1), [None] * explorers, fillvalue=0)
    specials = [x for pair in pairs for x in pair if x != 0]  # 0 fills the shorter list: not a special
    plan: list[int | None] = [0] * sessions
    for k, special in enumerate(specials):  # evenly over the arrivals, other seeds and explorers in turn
        plan[(2 * k + 1) * sessions // (2 * len(specials))] = special
    return plan


def browser_seats(plan: Sequence[int | None], *, browsers: int) -> list[int]:
    """The sessions (indices of the plan) that are Chromium pages: `browsers` of them, spread evenly over
    the arrivals, at least two of them (if there are two) sessions that press Train, so that the maps
    a visitor sees drawn are measured: an explorer's seat moves to the nearest free trainer if needed."""
    if not 0 <= browsers <= len(plan):
        raise ValueError(f"{browsers} Chromium pages do not fit in {len(plan)} sessions")
    seats = [(2 * k + 1) * len(plan) // (2 * browsers) for k in range(browsers)]
    need = min(2, browsers, sum(p is not None for p in plan))
    for i, seat in enumerate(seats):
        if sum(plan[s] is not None for s in seats) >= need:
            break
        if plan[seat] is None:
            free = [j for j, p in enumerate(plan) if p is not None and j not in seats]
            seats[i] = min(free, key=lambda j: abs(j - seat))
    return sorted(seats)


@dataclass
class Sighting:
    """When a page first and last showed something, on the session's clock."""

    first: float | None = None
    last: float | None = None

    def see(self, t: float) -> None:
        self.first = t if self.first is None else self.first
        self.last = t

    @property
    def span(self) -> float | None:
        return None if self.first is None or self.last is None else self.last - self.first


# ---------------------------------------------------------------- one session

@dataclass
class Session:
    index: int
    seed: int | None  # None: explores only
    opens_at: float  # seconds after the class starts
    client: str = "browser"  # a key of KINDS
    first_heatmap_s: float | None = None
    train_to_maps_s: float | None = None
    pressed: int = 0  # Train presses (a refused press is pressed again)
    joined: bool = False  # the button was disabled: a run with these settings was already going
    seen: dict[str, Sighting] = field(default_factory=lambda: {k: Sighting() for k in QUEUE_TEXTS})
    moves: list[float | None] = field(default_factory=list)  # seconds from a slider move to the page idle
    exceptions: int = 0
    errors: list[str] = field(default_factory=list)
    failure: str | None = None
    received: dict = field(default_factory=dict)  # a protocol visitor's messages, bytes, fragment reruns

    def summary(self) -> dict:
        return {"index": self.index, "seed": self.seed, "opens_at": self.opens_at, "client": self.client,
                "first_heatmap_s": self.first_heatmap_s, "train_to_maps_s": self.train_to_maps_s,
                "pressed": self.pressed, "joined": self.joined, "moves": self.moves,
                "seen_s": {k: s.span for k, s in self.seen.items() if s.first is not None},
                "exceptions": self.exceptions, "errors": self.errors[:5], "failure": self.failure,
                "received": self.received}


class BrowserPage:
    """A session drawn by Chromium: a browser context of its own, read through _STATUS_JS."""

    def __init__(self, browser: Any, url: str, session: Session) -> None:
        self.browser, self.url, self.session = browser, url, session
        self.context: Any = None
        self.page: Any = None

    async def open(self, query: str) -> float | None:
        """Seconds from the navigation to a heatmap drawn; None past LOAD_DEADLINE_S."""
        self.context = await self.browser.new_context(viewport=harness.VIEWPORT)
        self.page = await self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.page.on("pageerror", lambda e: self.session.errors.append(str(e)))
        opened = time.monotonic()
        await self.page.goto(self.url + (f"/?{query}" if query else ""), wait_until="commit",
                             timeout=LOAD_DEADLINE_S * 1000)
        return await _until(self, self.session, lambda s: s["heatmap"], since=opened, deadline_s=LOAD_DEADLINE_S)

    async def status(self) -> dict:
        return await self.page.evaluate(_STATUS_JS, QUEUE_TEXTS)

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def to_training(self) -> None:
        await self.page.locator('[data-testid="stTab"]', has_text=TABS[1]).first.click()

    async def train_enabled(self) -> bool:
        return await self.page.locator(".st-key-train button:visible").first.is_enabled()

    async def press_train(self) -> None:
        await self.page.locator(".st-key-train button:visible").first.click()

    async def move(self, up: bool) -> float | None:
        """One step of the d slider, then seconds until the page is idle three polls in a row."""
        thumb = self.page.locator(harness.slider_thumb_selector("dim")).first
        await thumb.focus()
        start = time.monotonic()
        await thumb.press("ArrowRight" if up else "ArrowLeft")
        await asyncio.sleep(0.3)  # the widget's message goes out before the rerun shows as running
        calm = 0
        while calm < 3 and time.monotonic() - start < LOAD_DEADLINE_S:
            calm = calm + 1 if (await _status(self, self.session, time.monotonic()))["idle"] else 0
            await asyncio.sleep(0.2)
        return time.monotonic() - start if calm == 3 else None

    async def close(self) -> None:
        if self.context is not None:
            await self.context.close()


class ProtocolVisitor:
    """A session without a browser: benchmarks.protocol.Visitor, read from the elements it holds. Its
    times are exact (by message), not by POLL_S: the first heatmap_0 chart's arrival, a run's end."""

    def __init__(self, url: str, session: Session) -> None:
        self.visitor, self.session = Visitor(url), session

    async def open(self, query: str) -> float | None:
        """Seconds from the first rerun request to the first heatmap_0 chart; None past LOAD_DEADLINE_S."""
        v = self.visitor
        try:
            return (await v.open(query, timeout_s=LOAD_DEADLINE_S)).heatmap_s
        except TimeoutError:  # the run did not end in time; its heatmap may have come
            seen = v.first_seen.get("heatmap_0")
            return None if seen is None or seen - v.opened_at > LOAD_DEADLINE_S else seen - v.opened_at

    async def status(self) -> dict:
        v = self.visitor
        return {"idle": v.idle, "heatmap": v.has_chart("heatmap_0"),
                "maps": v.has_chart("scatter_before") and v.has_chart("scatter_after"),
                "exceptions": v.exceptions(), "seen": {k: v.shows(t) for k, t in QUEUE_TEXTS.items()}}

    async def pause(self, seconds: float) -> None:
        await self.visitor.next_message(seconds)  # a page changes only when a message comes

    async def to_training(self) -> None:
        await self.visitor.open_tab("tab", TABS[1], timeout_s=LOAD_DEADLINE_S)  # only the open tab runs

    async def train_enabled(self) -> bool:
        button = self.visitor.element("train")
        return button is not None and not button.button.disabled

    async def press_train(self) -> None:
        await self.visitor.click("train", timeout_s=LOAD_DEADLINE_S)

    async def move(self, up: bool) -> float | None:
        """One step of the d slider (as an arrow key moves it), then seconds until the run it started ended."""
        v = self.visitor
        step = v.element("dim").slider.step or 1
        try:
            return await v.set_slider("dim", v.slider_value("dim") + (step if up else -step),
                                      timeout_s=LOAD_DEADLINE_S)
        except TimeoutError:
            return None

    async def close(self) -> None:
        v = self.visitor
        await v.close()
        self.session.received = {"messages": v.messages, "bytes": v.received_bytes,
                                 "auto_reruns": v.auto_reruns_sent}


async def _status(client: Any, session: Session, now: float) -> dict:
    status = await client.status()
    session.exceptions = max(session.exceptions, status["exceptions"])
    for name, shown in status["seen"].items():
        if shown:
            session.seen[name].see(now)
    return status


async def _until(client: Any, session: Session, ready: Any, *, since: float, deadline_s: float) -> float | None:
    """Seconds from `since` (a time.monotonic()) until ready(status) holds, reading the page every POLL_S
    (a protocol visitor: at every message, at least every POLL_S); None past deadline_s from `since`."""
    while time.monotonic() - since < deadline_s:
        if ready(await _status(client, session, time.monotonic())):
            return time.monotonic() - since
        await client.pause(POLL_S)
    return None


async def _train(client: Any, session: Session) -> None:
    """Open the training tab, press Train (again after a refusal), wait for both maps."""
    await client.to_training()
    start = last_press = time.monotonic()
    if await client.train_enabled():
        await client.press_train()
        session.pressed += 1
    else:
        session.joined = True
    while time.monotonic() - start < TRAIN_DEADLINE_S:
        status = await _status(client, session, time.monotonic())
        if status["maps"]:
            session.train_to_maps_s = time.monotonic() - start
            return
        if (status["seen"]["refused"] and status["idle"] and time.monotonic() - last_press >= RETRY_AFTER_S
                and await client.train_enabled()):
            await client.press_train()
            session.pressed += 1
            last_press = time.monotonic()
        await client.pause(POLL_S)
    session.failure = f"no maps {TRAIN_DEADLINE_S:.0f} s after Train"


async def _attend(client: Any, session: Session, *, class_start: float, class_s: float) -> None:
    """One visitor: arrive, wait for a heatmap, train (or not), then move the slider every
    MOVE_EVERY_S until the class ends (alternately up and down, so the training settings come back)."""
    await asyncio.sleep(max(0.0, class_start + session.opens_at - time.monotonic()))
    try:
        session.first_heatmap_s = await client.open(f"seed={session.seed}" if session.seed else "")
        if session.first_heatmap_s is None:
            session.failure = f"no heatmap {LOAD_DEADLINE_S:.0f} s after opening"
            return
        if session.seed is not None:
            await _train(client, session)
        for n in itertools.count():
            next_move = time.monotonic() + MOVE_EVERY_S
            if next_move > class_start + class_s:
                break
            session.moves.append(await client.move(up=n % 2 == 0))
            await asyncio.sleep(max(0.0, next_move - time.monotonic()))
        session.exceptions = max(session.exceptions, (await _status(client, session, time.monotonic()))["exceptions"])
    except Exception as exc:  # a broken session is a figure of the class, not the end of the benchmark
        session.failure = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:160]}"
    finally:
        await client.close()


# ---------------------------------------------------------------- the server side

def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used so far (its own, not its children's); None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15 of stat


class TrainingCensus(threading.Thread):
    """Every process the server's fork server started (a training), by PID, until stop()."""

    def __init__(self, root: int, *, every: float = 0.25) -> None:
        super().__init__(name="bench-training-census", daemon=True)
        self.root, self.every = root, every
        self.pids: set[int] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for pid in harness.descendants(self.root):
                if harness.process_label(pid, root=self.root).startswith("forked"):
                    self.pids.add(pid)
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


async def _class(url: str, sessions: list[Session], *, class_s: float) -> None:
    """Every session at once in this event loop: the protocol visitors beside Playwright's pages (Chromium
    is started only if a session is a page)."""
    async with contextlib.AsyncExitStack() as stack:
        browser = None
        if any(s.client == "browser" for s in sessions):
            from playwright.async_api import async_playwright

            pw = await stack.enter_async_context(async_playwright())
            browser = await harness.launch_chromium(pw)
            stack.push_async_callback(browser.close)
        clients = [BrowserPage(browser, url, s) if s.client == "browser" else ProtocolVisitor(url, s) for s in sessions]
        start = time.monotonic()
        await asyncio.gather(*(_attend(c, s, class_start=start, class_s=class_s) for c, s in zip(clients, sessions)))


def run_class(env: dict[str, str], *, class_s: float, sessions: int = SESSIONS, browsers: int = BROWSERS) -> dict:
    """The class on a fresh hosted server pinned to SERVER_CORE; this process (so the protocol visitors,
    Playwright and Chromium, started from it) runs on BROWSER_CORE meanwhile."""
    plan = class_plan(sessions=sessions, other_settings=OTHER_SETTINGS, explorers=EXPLORERS)
    pages = set(browser_seats(plan, browsers=browsers)) if browsers else set()
    people = [Session(i, seed, opens_at=i * ARRIVAL_S / sessions, client="browser" if i in pages else "protocol")
              for i, seed in enumerate(plan)]
    server = harness.start_server(env={**env, "EMBEDVIZ_HOSTED": "1"}, prefix=("taskset", "-c", str(SERVER_CORE)))
    tree, census = harness.TreeMemory(server.pid, every=1.0), TrainingCensus(server.pid)
    tree.start()
    census.start()
    cores = os.sched_getaffinity(0)
    load_before = os.getloadavg()
    start, cpu_before = time.monotonic(), cpu_seconds(server.pid) or 0.0
    try:
        os.sched_setaffinity(0, {BROWSER_CORE})
        asyncio.run(_class(server.url, people, class_s=class_s))
        server_up = server.proc.poll() is None and harness.healthy(server.url)
        server_cpu_s = (cpu_seconds(server.pid) or cpu_before) - cpu_before
    finally:
        os.sched_setaffinity(0, cores)
        tree.stop()
        census.stop()
        harness.stop_server(server)
    return {"sessions": [p.summary() for p in people], "class_s": class_s, "total_s": time.monotonic() - start,
            "tree_peak_pss_mib": tree.peak_sum_pss, "tree_pss_at_peak_mib": tree.at_peak,
            "training_pids": sorted(census.pids), "server_up": server_up, "server_cpu_s": server_cpu_s,
            "load_average_before": list(load_before), "load_average_after": list(os.getloadavg())}


def classroom_section(*, quick: bool, env: dict[str, str], class_s: float = CLASS_S) -> tuple[list[Row], dict]:
    missing = harness.chromium_missing()
    if missing is None and shutil.which("taskset") is None:
        missing = "taskset is missing (util-linux)"
    if missing is None and not {SERVER_CORE, BROWSER_CORE} <= os.sched_getaffinity(0):
        missing = f"cores {SERVER_CORE} and {BROWSER_CORE} are not both usable here"
    if missing:
        return skipped("classroom", missing), {}
    log(f"classroom: {SESSIONS} sessions ({SESSIONS - BROWSERS} protocol visitors, {BROWSERS} Chromium pages) "
        f"within {ARRIVAL_S:.0f} s on a hosted server on core {SERVER_CORE}, sliders for {class_s:.0f} s")
    out = run_class(env, class_s=class_s)
    return classroom_rows(out), out


def classroom_rows(out: dict) -> list[Row]:
    """The table's rows, over all sessions as before; when the class mixed protocol visitors and Chromium
    pages, the times a client measures are also split by client (a session without "client" is a page)."""
    people = out["sessions"]
    n = len(people)
    trainers = [p for p in people if p["seed"] is not None]
    defaults = [p for p in trainers if p["seed"] == 0]
    others = [p for p in trainers if p["seed"] != 0]
    failed = [p for p in people if p["failure"] or p["exceptions"] or p["errors"]]
    moves = [m for p in people for m in p["moves"]]
    by_kind = {kind: [p for p in people if p.get("client", "browser") == kind] for kind in KINDS}
    mixed = sum(bool(group) for group in by_kind.values()) > 1

    def saw(name: str) -> list[float]:
        return [p["seen_s"][name] for p in people if name in p["seen_s"]]

    def maps(group: list[dict]) -> str:
        return f"{sum(p['train_to_maps_s'] is not None for p in group)}/{len(group)} drew both maps"

    def split(figure: str, values: Any, note: Any, *, among: Any = lambda p: True) -> list[Row]:
        """One row per client when the class had both: values(group) and note(kind, group) of its sessions
        that `among` selects (e.g. the trainers)."""
        if not mixed:
            return []
        groups = {kind: [p for p in group if among(p)] for kind, group in by_kind.items()}
        return [Row("classroom", f"  {figure}, {len(group)} {KINDS[kind]} (median / p95 / max)", spread(values(group)),
                    note=note(kind, group)) for kind, group in groups.items() if group]

    def heatmap_note(kind: str, group: list[dict]) -> str:
        got = f"{sum(p['first_heatmap_s'] is not None for p in group)}/{len(group)}"
        if kind == "browser":
            return (f"{got} drew one; Chromium on core {BROWSER_CORE} beside the protocol visitors, each page "
                    f"read every {POLL_S} s: what a visitor sees drawn")
        received = [p.get("received") or {} for p in group]
        mib = sum(r.get("bytes", 0) for r in received) / 2**20
        return (f"{got} got one; a protocol visitor is the server's work for a page without drawing it: "
                f"benchmarks/protocol.py speaks Streamlit's websocket as the frontend does (rerun requests, "
                f"widget states, run_every fragment timers, the message cache), from the first request to the "
                f"heatmap_0 chart's message; they received {mib:.1f} MiB in "
                f"{sum(r.get('messages', 0) for r in received):,} messages, "
                f"{sum(r.get('auto_reruns', 0) for r in received):,} fragment reruns sent")

    settings = len({p["seed"] for p in trainers})
    load = "load average before {} · after {}".format(
        *(", ".join(f"{v:.2f}" for v in out[k]) for k in ("load_average_before", "load_average_after")))
    failures = "; ".join(f"{k}x {why}" for why, k in collections.Counter(
        p["failure"] or (p["errors"] or ["an exception box"])[0] for p in failed).most_common())[:300]
    if mixed:
        failures = "; ".join([*filter(None, [failures]), ", ".join(
            f"{KINDS[kind]} {sum(p in failed for p in group)}/{len(group)}" for kind, group in by_kind.items())])
    return [
        Row("classroom", f"{n} sessions, time to first heatmap (median / p95 / max)",
            spread([p["first_heatmap_s"] for p in people]),
            note=f"{sum(p['first_heatmap_s'] is not None for p in people)}/{n} drew one; arrivals spread over "
                 f"{ARRIVAL_S:.0f} s; server on 1 core, hosted mode; {load}"),
        *split("time to first heatmap", lambda g: [p["first_heatmap_s"] for p in g], heatmap_note),
        Row("classroom", f"Train -> both maps, defaults, {len(defaults)} sessions (median / p95 / max)",
            spread([p["train_to_maps_s"] for p in defaults]),
            note=maps(defaults) + f"; {sum(p['joined'] for p in defaults)} joined a run already going"),
        Row("classroom", f"Train -> both maps, another seed each, {len(others)} sessions (median / p95 / max)",
            spread([p["train_to_maps_s"] for p in others]), note=maps(others)),
        *split("Train -> both maps, any seed", lambda g: [p["train_to_maps_s"] for p in g],
               lambda kind, g: maps(g) + ("" if kind == "browser" else " (both scatter charts' messages arrived)"),
               among=lambda p: p["seed"] is not None),
        Row("classroom", "failed or stuck sessions (target 0)", len(failed), unit="count",
            note=failures + ("" if out["server_up"] else " THE SERVER DIED")),
        Row("classroom", "server process: CPU used while the class ran", out["server_cpu_s"],
            note=f"{out['server_cpu_s'] / out['total_s']:.0%} of its one core over {out['total_s']:.0f} s "
                 "(the rest went to other processes on that core, or it was idle)"),
        Row("classroom", "server + children: peak of summed PSS, sampled every second", out["tree_peak_pss_mib"],
            unit="MiB", target="class_tree_memory",
            note="PSS at the peak: " + ", ".join(f"{who} {v:.0f}" for who, v in out["tree_pss_at_peak_mib"].items())
                 + " MiB"),
        Row("classroom", "sessions that saw: waiting for a trainer / Starting… / refused / stopped early",
            " / ".join(str(len(saw(k))) for k in QUEUE_TEXTS), unit="count",
            note=f"longest seen: waiting {max(saw('queued'), default=0):.1f} s, Starting… "
                 f"{max(saw('starting'), default=0):.1f} s; Train presses {sum(p['pressed'] for p in trainers)} "
                 f"by {len(trainers)} sessions"),
        Row("classroom", "training processes started / distinct settings trained",
            f"{len(out['training_pids'])} / {settings}", unit="count",
            note="same settings share one run: one process per setting expected"),
        Row("classroom", f"slider moves every {MOVE_EVERY_S:.0f} s -> page idle again (median / p95 / max)",
            spread(moves), note=f"{sum(m is not None for m in moves)}/{len(moves)} came back within "
                                f"{LOAD_DEADLINE_S:.0f} s; resolution ~{POLL_S} s"
                                + (" for the pages (the protocol visitors' are exact)" if mixed else "")),
        *split("slider moves", lambda g: [m for p in g for m in p["moves"]],
               lambda kind, g: f"{sum(m is not None for p in g for m in p['moves'])}/{sum(len(p['moves']) for p in g)} "
                               + ("came back: page idle 3 polls in a row (0.2 s apart, from 0.3 s after the key)"
                                  if kind == "browser" else "came back: the request to the end of the run it started")),
    ]
