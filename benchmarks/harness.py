"""What the benchmark and the browser tests share: a `streamlit run` server on 127.0.0.1 started and
stopped with its whole process tree, Debian's Chromium launched through Playwright, Streamlit's state
read from a page, and the memory of a process tree read from /proc (VmHWM, RSS, PSS)."""
from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
APP = ROOT / "app.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 1000}


# ---------------------------------------------------------------- the server

@dataclass(frozen=True)
class Server:
    """A running `streamlit run`: its process (the leader of its own process group), address and log."""

    proc: subprocess.Popen
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str, *, timeout: float = 2) -> bool:
    """Whether the server at `url` answers /_stcore/health with 200 within `timeout` seconds."""
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def start_server(*, script: Path = APP, env: dict[str, str] | None = None, timeout_s: float = 120,
                 prefix: Sequence[str] = ()) -> Server:
    """`streamlit run script` on a free 127.0.0.1 port, logging to artifacts/streamlit-<port>.log;
    returns once /_stcore/health answers. The server gets a process group of its own, so that
    stop_server also ends what it forked (the training fork server and its children). `prefix` goes
    before the command, e.g. ("taskset", "-c", "0") to pin the server and its children to one core."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = ARTIFACTS / f"streamlit-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "streamlit", "run", str(script), "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if healthy(server.url):
            return server
        time.sleep(0.05)
    stop_server(server)
    raise RuntimeError(f"streamlit did not answer within {timeout_s:.0f} s; see {log}")


def stop_server(server: Server, *, grace_s: float = 15) -> None:
    """SIGTERM to the server's process group, then SIGKILL to whatever of it is left after grace_s."""
    _signal_group(server.pid, signal.SIGTERM)
    try:
        server.proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + grace_s
    while _group_alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_group(server.pid, signal.SIGKILL)
    server.proc.wait(grace_s)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------- the browser

def chromium_missing() -> str | None:
    """Why Chromium cannot be driven here (None when it can)."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (make test-setup installs it)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    return None


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, through a started `sync_playwright()` (Playwright's own browser
    download does not work on these machines)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# ---------------------------------------------------------------- reading a Streamlit page

HEATMAPS = ("heatmap_0", "heatmap_1", "heatmap_2")  # the keys of the explorer's three embedding charts
# Streamlit marks its root with data-test-script-state="running" | "notRunning" (its own e2e tests wait on it)
IDLE_JS = ("() => { const a = document.querySelector('[data-testid=\"stApp\"]'); "
           "return !!a && a.getAttribute('data-test-script-state') === 'notRunning' && "
           "a.getAttribute('data-test-connection-state') === 'CONNECTED' && "
           "!document.querySelector('[data-testid=\"stStatusWidget\"]'); }")
HEATMAPS_JS = ("() => ['heatmap_0', 'heatmap_1', 'heatmap_2'].every(k => { "
               "const g = document.querySelector('.st-key-' + k + ' .js-plotly-plot'); "
               "return g && g.data && g.data.length > 0 && g.querySelector('.heatmaplayer image, "
               ".heatmaplayer .hm'); })")


def slider_thumb_selector(key: str) -> str:
    """CSS for the focusable thumb of the slider (or select_slider) with key `key`: Streamlit has drawn
    it as a [role=slider] element and, in newer versions, as an input[type=range]."""
    return f".st-key-{key} [role=slider], .st-key-{key} input[type=range]"


def is_idle(page: Any) -> bool:
    """No script run in progress and the page connected to its server."""
    return bool(page.evaluate(IDLE_JS))


def heatmaps_drawn(page: Any) -> bool:
    """The explorer's three embedding heatmaps have data and are drawn."""
    return bool(page.evaluate(HEATMAPS_JS))


def wait_idle(page: Any, *, timeout_s: float = 60, settle: int = 3) -> None:
    """Until the page is idle for `settle` checks in a row 0.1 s apart (one idle check can fall in the
    gap between a widget's message and the rerun it starts)."""
    deadline = time.monotonic() + timeout_s
    calm = 0
    while calm < settle:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Streamlit kept running for {timeout_s:.0f} s")
        calm = calm + 1 if is_idle(page) else 0
        time.sleep(0.1)


# ---------------------------------------------------------------- memory of a process tree

def _kb_field(path: str, field: str) -> float | None:
    """A "<field>: N kB" line of a /proc file in MiB; None if the process is gone."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


def status_mib(pid: int | str, field: str) -> float | None:
    """A kB field of /proc/<pid>/status (VmHWM, VmRSS, ...) in MiB; None if the process is gone."""
    return _kb_field(f"/proc/{pid}/status", field)


def vm_hwm_mib(pid: int | str = "self") -> float | None:
    """Peak resident memory (VmHWM) of a process in MiB."""
    return status_mib(pid, "VmHWM")


def pss_mib(pid: int) -> float | None:
    """Proportional set size: pages shared with a fork parent are split between the sharers, so a
    sum over a process tree does not count them twice (VmRSS would)."""
    return _kb_field(f"/proc/{pid}/smaps_rollup", "Pss")


def descendants(pid: int) -> list[int]:
    """Every live process started (directly or not) by `pid`, e.g. a fork server and its trainings."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children.get(child, [])
    return out


def process_label(pid: int, *, root: int) -> str:
    """'server' (the root), 'fork server', 'forked <pid>' (what a fork server started: a training),
    'resource tracker' or 'pid <pid>'."""
    if pid == root:
        return "server"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return f"pid {pid}"
    if "forkserver import main" in cmdline:  # its children keep its command line
        return "fork server" if parent == root else f"forked {pid}"
    return "resource tracker" if "resource_tracker" in cmdline else f"pid {pid}"


class TreeMemory(threading.Thread):
    """Samples a process and its descendants every `every` s until stop(): each one's VmHWM, and
    the peak of their summed PSS (what the whole tree held at once) with its split by process."""

    def __init__(self, pid: int, *, every: float = 0.2) -> None:
        super().__init__(name="bench-tree-memory", daemon=True)
        self.pid, self.every = pid, every
        self.peaks: dict[int, float] = {}  # pid -> VmHWM (MiB), last seen
        self.peak_sum_pss = 0.0
        self.at_peak: dict[str, float] = {}  # process label -> PSS (MiB) at the moment of the peak
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.every)

    def sample(self) -> None:
        now: dict[int, float] = {}
        for pid in [self.pid, *descendants(self.pid)]:
            hwm = vm_hwm_mib(pid)
            if hwm is not None:
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), hwm)
            now[pid] = pss_mib(pid) or status_mib(pid, "VmRSS") or 0.0
        if sum(now.values()) > self.peak_sum_pss:
            self.peak_sum_pss = sum(now.values())
            self.at_peak = {process_label(pid, root=self.pid): v for pid, v in now.items()}

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(5)
        self.sample()
