"""A class on one server: app.py in hosted mode pinned to one core, 30 Chromium sessions (on the other
core) arriving within a minute; most press Train, some with another seed, all move a slider every 10 s.
Prints what the visitors saw (time to maps, queue texts, failures) and the server tree's peak memory."""
from __future__ import annotations

import asyncio
import collections
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

from . import harness
from .report import Row, log, skipped

SESSIONS = 30
OTHER_SETTINGS = 5  # sessions that train with another seed (one each: 5 settings besides the defaults)
EXPLORERS = 5  # sessions that never press Train
ARRIVAL_S = 60.0  # every session has opened the page by then
CLASS_S = 150.0  # how long the class moves sliders, from the first arrival (--class-seconds)
MOVE_EVERY_S = 10.0
LOAD_DEADLINE_S = 120.0  # a session without a heatmap by then is stuck
TRAIN_DEADLINE_S = 240.0  # from the first press to both maps; past it the session is stuck
RETRY_AFTER_S = 10.0  # a session refused ("already waiting") presses Train again after this long
POLL_S = 0.5  # how often each session reads its page: the resolution of the times below
SERVER_CORE, BROWSER_CORE = 0, 1
QUEUE_TEXTS = {"queued": "Waiting for a free trainer", "starting": "Starting…",
               "refused": "already waiting for a free trainer", "stopped": "Training stopped at step"}
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
    first_heatmap_s: float | None = None
    train_to_maps_s: float | None = None
    pressed: int = 0  # Train presses (a refused press is pressed again)
    joined: bool = False  # the button was disabled: a run with these settings was already going
    seen: dict[str, Sighting] = field(default_factory=lambda: {k: Sighting() for k in QUEUE_TEXTS})
    moves: list[float | None] = field(default_factory=list)  # seconds from a slider move to the page idle
    exceptions: int = 0
    errors: list[str] = field(default_factory=list)
    failure: str | None = None

    def summary(self) -> dict:
        return {"index": self.index, "seed": self.seed, "opens_at": self.opens_at,
                "first_heatmap_s": self.first_heatmap_s, "train_to_maps_s": self.train_to_maps_s,
                "pressed": self.pressed, "joined": self.joined, "moves": self.moves,
                "seen_s": {k: s.span for k, s in self.seen.items() if s.first is not None},
                "exceptions": self.exceptions, "errors": self.errors[:5], "failure": self.failure}


async def _status(page: Any, session: Session, now: float) -> dict:
    status = await page.evaluate(_STATUS_JS, QUEUE_TEXTS)
    session.exceptions = max(session.exceptions, status["exceptions"])
    for name, shown in status["seen"].items():
        if shown:
            session.seen[name].see(now)
    return status


async def _until(page: Any, session: Session, ready: Any, *, since: float, deadline_s: float) -> float | None:
    """Seconds from `since` (a time.monotonic()) until ready(status) holds, polling every POLL_S; None
    past deadline_s from `since`."""
    while time.monotonic() - since < deadline_s:
        if ready(await _status(page, session, time.monotonic())):
            return time.monotonic() - since
        await asyncio.sleep(POLL_S)
    return None


async def _train(page: Any, session: Session) -> None:
    """Open the training tab, press Train (again after a refusal), wait for both maps."""
    await page.locator('[data-testid="stTab"]', has_text="2 · Training").first.click()
    button = page.locator(".st-key-train button:visible").first
    start = last_press = time.monotonic()
    if await button.is_enabled():
        await button.click()
        session.pressed += 1
    else:
        session.joined = True
    while time.monotonic() - start < TRAIN_DEADLINE_S:
        status = await _status(page, session, time.monotonic())
        if status["maps"]:
            session.train_to_maps_s = time.monotonic() - start
            return
        if (status["seen"]["refused"] and status["idle"] and time.monotonic() - last_press >= RETRY_AFTER_S
                and await button.is_enabled()):
            await button.click()
            session.pressed += 1
            last_press = time.monotonic()
        await asyncio.sleep(POLL_S)
    session.failure = f"no maps {TRAIN_DEADLINE_S:.0f} s after Train"


async def _move(page: Any, session: Session, key: str) -> None:
    """One step of the d slider, then the time until the page is idle three polls in a row."""
    thumb = page.locator(".st-key-dim [role=slider]").first
    await thumb.focus()
    start = time.monotonic()
    await thumb.press(key)
    await asyncio.sleep(0.3)  # the widget's message goes out before the rerun shows as running
    calm = 0
    while calm < 3 and time.monotonic() - start < LOAD_DEADLINE_S:
        calm = calm + 1 if (await _status(page, session, time.monotonic()))["idle"] else 0
        await asyncio.sleep(0.2)
    session.moves.append(time.monotonic() - start if calm == 3 else None)


async def _attend(browser: Any, url: str, session: Session, *, class_start: float, class_s: float) -> None:
    """One visitor: arrive, wait for a heatmap, train (or not), then move the slider every
    MOVE_EVERY_S until the class ends (alternately up and down, so the training settings come back)."""
    await asyncio.sleep(max(0.0, class_start + session.opens_at - time.monotonic()))
    context = await browser.new_context(viewport=harness.VIEWPORT)
    try:
        page = await context.new_page()
        page.set_default_timeout(60_000)
        page.on("pageerror", lambda e: session.errors.append(str(e)))
        opened = time.monotonic()
        await page.goto(url + (f"/?seed={session.seed}" if session.seed else ""), wait_until="commit",
                        timeout=LOAD_DEADLINE_S * 1000)
        session.first_heatmap_s = await _until(page, session, lambda s: s["heatmap"], since=opened,
                                               deadline_s=LOAD_DEADLINE_S)
        if session.first_heatmap_s is None:
            session.failure = f"no heatmap {LOAD_DEADLINE_S:.0f} s after opening"
            return
        if session.seed is not None:
            await _train(page, session)
        for n in itertools.count():
            next_move = time.monotonic() + MOVE_EVERY_S
            if next_move > class_start + class_s:
                break
            await _move(page, session, "ArrowRight" if n % 2 == 0 else "ArrowLeft")
            await asyncio.sleep(max(0.0, next_move - time.monotonic()))
        session.exceptions = max(session.exceptions, (await _status(page, session, time.monotonic()))["exceptions"])
    except Exception as exc:  # a broken session is a figure of the class, not the end of the benchmark
        session.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    finally:
        await context.close()


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
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await harness.launch_chromium(pw)
        try:
            start = time.monotonic()
            await asyncio.gather(*(_attend(browser, url, s, class_start=start, class_s=class_s) for s in sessions))
        finally:
            await browser.close()


def run_class(env: dict[str, str], *, class_s: float, sessions: int = SESSIONS) -> dict:
    """The class on a fresh hosted server pinned to SERVER_CORE; this process (so Playwright and
    Chromium, started from it) runs on BROWSER_CORE meanwhile."""
    plan = class_plan(sessions=sessions, other_settings=OTHER_SETTINGS, explorers=EXPLORERS)
    people = [Session(i, seed, opens_at=i * ARRIVAL_S / sessions) for i, seed in enumerate(plan)]
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
    log(f"classroom: {SESSIONS} sessions within {ARRIVAL_S:.0f} s on a hosted server on core {SERVER_CORE}, "
        f"sliders for {class_s:.0f} s")
    out = run_class(env, class_s=class_s)
    return classroom_rows(out), out


def classroom_rows(out: dict) -> list[Row]:
    people = out["sessions"]
    n = len(people)
    trainers = [p for p in people if p["seed"] is not None]
    defaults = [p for p in trainers if p["seed"] == 0]
    others = [p for p in trainers if p["seed"] != 0]
    failed = [p for p in people if p["failure"] or p["exceptions"] or p["errors"]]
    moves = [m for p in people for m in p["moves"]]

    def saw(name: str) -> list[float]:
        return [p["seen_s"][name] for p in people if name in p["seen_s"]]

    def maps(group: list[dict]) -> str:
        return f"{sum(p['train_to_maps_s'] is not None for p in group)}/{len(group)} drew both maps"

    settings = len({p["seed"] for p in trainers})
    load = "load average before {} · after {}".format(
        *(", ".join(f"{v:.2f}" for v in out[k]) for k in ("load_average_before", "load_average_after")))
    return [
        Row("classroom", f"{n} sessions, time to first heatmap (median / p95 / max)",
            spread([p["first_heatmap_s"] for p in people]),
            note=f"{sum(p['first_heatmap_s'] is not None for p in people)}/{n} drew one; arrivals spread over "
                 f"{ARRIVAL_S:.0f} s; server on 1 core, hosted mode; {load}"),
        Row("classroom", f"Train -> both maps, defaults, {len(defaults)} sessions (median / p95 / max)",
            spread([p["train_to_maps_s"] for p in defaults]),
            note=maps(defaults) + f"; {sum(p['joined'] for p in defaults)} joined a run already going"),
        Row("classroom", f"Train -> both maps, another seed each, {len(others)} sessions (median / p95 / max)",
            spread([p["train_to_maps_s"] for p in others]), note=maps(others)),
        Row("classroom", "failed or stuck sessions (target 0)", len(failed), unit="count",
            note="; ".join(f"{k}x {why}" for why, k in collections.Counter(
                p["failure"] or (p["errors"] or ["an exception box"])[0] for p in failed).most_common())[:300]
                 + ("" if out["server_up"] else " THE SERVER DIED")),
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
                                f"{LOAD_DEADLINE_S:.0f} s; resolution ~{POLL_S} s"),
    ]
