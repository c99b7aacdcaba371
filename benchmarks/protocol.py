"""A Streamlit *protocol visitor*: what a browser tab asks of the server, over the server's own websocket,
without drawing anything. It sends the BackMsgs Streamlit's frontend sends (a rerun with the query string
and widget states, a button's trigger, a slider's value, a fragment's timed rerun) and keeps the elements
the ForwardMsgs carry, by their place on the page and their key, so a benchmark or a test can ask what a
visitor would see (a chart, a text) and when it arrived, at the server's cost of a page but not a browser's.

What it copies from the frontend (streamlit/static/.../index.*.js, Streamlit 1.67):
- the handshake: subprotocol "streamlit" (the server's handler reads the first entry of
  Sec-WebSocket-Protocol as the protocol, the second as an XSRF token, the third as a session to resume);
- every rerun request is a BackMsg `rerun_script` (a ClientState) with the query string, the widget states,
  the page's script hash, the hashes of the cached messages, and the browser's context (URL, time zone);
- ForwardMsgs marked `metadata.cacheable` are kept by hash; the server then sends a `ref_hash` in place of
  a message the visitor already has, and cached messages expire after `max_cached_message_age` runs;
- `auto_rerun` (a fragment with `run_every`) starts a timer that sends a rerun of that fragment
  (`fragment_id`, `is_auto_rerun`) every `interval` s, whether or not a run is going; `stop_auto_rerun`
  ends timers, and a full run (a `new_session` without fragment ids) ends them all: the fragments the new
  run draws send `auto_rerun` again;
- at `script_finished` (a full or fragment run that was not cut short for a rerun) the elements the run
  did not send again are dropped, as the frontend's clearStaleNodes does.

What it does not copy: drawing, and the widget states of widgets it never touched. The frontend sends a
state for every widget it has drawn; the server keeps the others' values in session state anyway (widget
state is merged, not replaced), so only the widgets this visitor set are sent, every time, as the
frontend would (a button's trigger once).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.Common_pb2 import DoubleArray
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

STREAM_PATH = "/_stcore/stream"
SUBPROTOCOL = "streamlit"
MAIN = 0  # delta_path[0] of the page's main area (RootContainer.MAIN; 1 is the sidebar)
DONE = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR)  # a full run that ended
SETTLED = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)  # stale nodes go
TEXT_FIELDS = {"markdown": "body", "alert": "body", "heading": "body", "text": "body", "progress": "text",
               "exception": "message"}  # the text a visitor reads in each kind of element


@dataclass(frozen=True)
class Opened:
    """How long a first visit took, from the first rerun request sent."""

    heatmap_s: float | None  # until the first `heatmap_0` chart arrived (None: the run drew none)
    finished_s: float  # until that run finished


@dataclass
class Placed:
    """An element where a run put it: which run sent it, from which fragment, when it arrived."""

    element: Element
    run_id: str
    fragment_id: str
    at: float


def element_id(element: Element) -> str:
    """The id of a widget or keyed element ('$$ID-<hash>-<key>'), '' for elements without one."""
    kind = element.WhichOneof("type")
    if kind is None:
        return ""
    inner = getattr(element, kind)
    return inner.id if "id" in inner.DESCRIPTOR.fields_by_name else ""


def key_of(element: Element) -> str | None:
    """The user key in an element's id (Streamlit appends it after the hash), None if it has none."""
    parts = element_id(element).split("-", 2)
    return parts[2] if len(parts) == 3 and parts[2] else None


def text_of(element: Element) -> str:
    """What a visitor reads in a markdown, alert, heading, text, progress or exception element; '' else."""
    kind = element.WhichOneof("type")
    return getattr(getattr(element, kind), TEXT_FIELDS[kind]) if kind in TEXT_FIELDS else ""


class _MessageCache:
    """The frontend's ForwardMsg cache: cacheable messages by hash, each aged by the runs that finished
    without using it; what the server is told the visitor has (and then sends as a ref_hash)."""

    def __init__(self) -> None:
        self.runs = 0
        self.max_age = 2  # global.maxCachedMessageAge; the server says in new_session.config
        self._messages: dict[str, tuple[bytes, int, str]] = {}  # hash -> (message, last run used, fragment)

    def hashes(self) -> list[str]:
        return list(self._messages)

    def keep(self, msg: ForwardMsg, raw: bytes) -> None:
        if msg.metadata.cacheable and msg.hash and not self._touch(msg.hash):
            self._messages[msg.hash] = (raw, self.runs, msg.delta.fragment_id)

    def resolve(self, ref: ForwardMsg) -> ForwardMsg:
        """The cached message a ref_hash stands for, with the reference's metadata (its place)."""
        if not self._touch(ref.ref_hash):
            raise RuntimeError(f"the server referred to a message this visitor never had ({ref.ref_hash})")
        msg = ForwardMsg.FromString(self._messages[ref.ref_hash][0])
        msg.metadata.CopyFrom(ref.metadata)
        return msg

    def run_finished(self, fragment_ids: Iterable[str]) -> None:
        """One more run: messages unused for more than max_age runs go (a fragment run ages only its own)."""
        self.runs += 1
        fragments = set(fragment_ids)
        for h, (_, used, fragment) in list(self._messages.items()):
            if (not fragments or fragment in fragments) and self.runs - used > self.max_age:
                del self._messages[h]

    def _touch(self, h: str) -> bool:
        entry = self._messages.get(h)
        if entry is not None:
            self._messages[h] = (entry[0], self.runs, entry[2])
        return entry is not None


class Visitor:
    """One browser tab's conversation with a Streamlit server, without the browser.

        async with Visitor("http://127.0.0.1:8501") as v:
            opened = await v.open("steps=10")   # the first run, to heatmap_0 and to its end
            await v.set_slider("dim", 16)       # returns once the full run it started has finished
            await v.click("train")
            await v.wait_for(lambda: v.has_chart("scatter_after"), timeout_s=120)

    The elements of the page are kept by their place (ForwardMsg metadata.delta_path); `element(key)`
    finds one by the key in its id. Waiting is by message: wait_for() re-checks its condition after every
    message, and a fragment's timed reruns (run_every) are sent by background tasks as the frontend's
    timers do, so a training page keeps polling while the visitor waits."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.query = ""  # without "?": what the address bar holds (the page may change it)
        self.tree: dict[tuple[int, ...], Placed] = {}
        self.first_seen: dict[str, float] = {}  # element key -> time.monotonic() of its first arrival
        self.opened_at: float | None = None  # time.monotonic() when open() sent the first rerun request
        self.messages = 0  # ForwardMsgs received, and their bytes
        self.received_bytes = 0
        self.auto_reruns_sent = 0  # fragment reruns sent by run_every timers
        self.running = False  # a run (full or fragment) started and not finished
        self.full_runs_started = 0
        self.full_runs_done = 0  # full runs finished (not cut short for a rerun)
        self._done_upto = 0  # the number (by full_runs_started) of the last full run that finished
        self._run_id = ""
        self._fragments: tuple[str, ...] = ()  # the fragments the current run reruns (() for a full run)
        self._page_script_hash = ""
        self._widgets: dict[str, WidgetState] = {}  # widget id -> the state this visitor gave it
        self._sliders: dict[str, list[float]] = {}  # slider id -> its value as the frontend holds it
        self._tabs: dict[str, str] = {}  # user key -> widget id of tabs that track which one is open
        self._cache = _MessageCache()
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id -> (interval, timer)
        self._ws: Any = None
        self._reader: asyncio.Task | None = None
        self._changed = asyncio.Event()  # replaced by a fresh one after every message
        self.closed: str | None = None  # why the connection ended, once it has

    # ------------------------------------------------------------ connection

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        ws_url = "ws" + self.url.removeprefix("http") + STREAM_PATH
        # no proxy (127.0.0.1), no size limit (a chart's message can pass 1 MiB), no pings (the browser
        # sends none; a busy event loop must not drop the connection); compression as a browser offers it
        self._ws = await connect(ws_url, subprotocols=[SUBPROTOCOL], proxy=None, max_size=None,
                                 ping_interval=None, open_timeout=60)
        self._reader = asyncio.create_task(self._read(), name="protocol-visitor-reader")

    async def close(self) -> None:
        self.closed = self.closed or "closed by the visitor"
        for _, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader

    async def __aenter__(self) -> Visitor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ what a visitor does

    async def open(self, query: str = "", *, timeout_s: float = 120) -> Opened:
        """Connect and ask for the first run with `query` (e.g. "seed=3&steps=10"), as a page load does;
        returns once that run has finished."""
        if self._ws is None:
            await self.connect()
        self.query = query.lstrip("?")
        self.opened_at = time.monotonic()
        await self.rerun()
        await self.wait_for(lambda: self._done_upto >= 1, timeout_s=timeout_s)
        heatmap = self.first_seen.get("heatmap_0")
        return Opened(None if heatmap is None else heatmap - self.opened_at, time.monotonic() - self.opened_at)

    async def click(self, key: str, *, timeout_s: float = 120) -> float:
        """Press the button with this key: its trigger goes in one rerun request (not in later ones);
        seconds until the full run it started has finished."""
        trigger = WidgetState(id=self._widget_id(key, "button"), trigger_value=True)
        return await self._rerun_and_wait(extra=[trigger], timeout_s=timeout_s)

    async def set_slider(self, key: str, value: float, *, timeout_s: float = 120) -> float:
        """Move the slider with this key to `value`, as the frontend sends it (a double array, one value
        per thumb, also for an int slider); seconds until the full run it started has finished."""
        wid = self._widget_id(key, "slider")
        self._widgets[wid] = WidgetState(id=wid, double_array_value=DoubleArray(data=[float(value)]))
        self._sliders[wid] = [float(value)]
        return await self._rerun_and_wait(timeout_s=timeout_s)

    async def open_tab(self, key: str, label: str, *, timeout_s: float = 120) -> float:
        """Click the tab labelled `label` of the tabs with this key (tabs that run only the open one: a
        click reruns the page); seconds until that run has finished."""
        if key not in self._tabs:
            raise LookupError(f"no tabs with key {key!r} on the page")
        wid = self._tabs[key]
        self._widgets[wid] = WidgetState(id=wid, string_value=label)
        return await self._rerun_and_wait(timeout_s=timeout_s)

    async def rerun(self, *, fragment_id: str = "", auto: bool = False, extra: Iterable[WidgetState] = ()) -> None:
        """Send one rerun request: the whole page, or one fragment (auto: a run_every timer's)."""
        if self.closed:
            raise ConnectionError(f"the visitor's websocket is closed: {self.closed}")
        url = f"{self.url}/" + (f"?{self.query}" if self.query else "")
        state = ClientState(
            query_string=self.query, widget_states=WidgetStates(widgets=[*self._widgets.values(), *extra]),
            page_script_hash=self._page_script_hash, page_name="", fragment_id=fragment_id, is_auto_rerun=auto,
            cached_message_hashes=self._cache.hashes(),
            context_info=ContextInfo(timezone="UTC", timezone_offset=0, locale="en-US", url=url,
                                     is_embedded=False, color_scheme="light"))
        await self._ws.send(BackMsg(rerun_script=state).SerializeToString())

    async def wait_for(self, ready: Callable[[], bool], *, timeout_s: float) -> None:
        """Until ready() holds, checked after every message; TimeoutError past timeout_s, ConnectionError
        if the connection ends first."""
        async with asyncio.timeout(timeout_s):
            while not ready():
                if self.closed:
                    raise ConnectionError(f"the visitor's websocket is closed: {self.closed}")
                await self._changed.wait()

    async def next_message(self, timeout_s: float) -> None:
        """Until the next message arrives, or timeout_s."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._changed.wait()

    # ------------------------------------------------------------ what the visitor sees

    def element(self, key: str) -> Element | None:
        """The element whose id ends with this user key (a widget, or a chart with key=...)."""
        for placed in self.tree.values():
            if key_of(placed.element) == key:
                return placed.element
        return None

    def has_chart(self, key: str) -> bool:
        element = self.element(key)
        return element is not None and element.WhichOneof("type") == "plotly_chart"

    def chart(self, key: str) -> dict | None:
        """The Plotly figure (its JSON spec, as plotly.js would get it) of the chart with this key."""
        element = self.element(key)
        if element is None or element.WhichOneof("type") != "plotly_chart":
            return None
        return json.loads(element.plotly_chart.spec)

    def slider_value(self, key: str) -> float:
        """The slider's value as the frontend holds it: its default when first drawn, then what this
        visitor or the server (set_value: a value given through session state) set last. The element's
        `default` alone is not the value: a slider keyed to session state sends it once, with set_value."""
        return self._sliders[self._widget_id(key, "slider")][0]

    def texts(self) -> list[str]:
        """The texts of the main area (not the sidebar), in no particular order."""
        return [t for path, placed in self.tree.items() if path[:1] == (MAIN,) and (t := text_of(placed.element))]

    def shows(self, text: str) -> bool:
        return any(text in t for t in self.texts())

    def exceptions(self) -> int:
        """Exception boxes on the page."""
        return sum(p.element.WhichOneof("type") == "exception" for p in self.tree.values())

    @property
    def idle(self) -> bool:
        """No run going, and the connection open."""
        return not self.running and not self.closed

    # ------------------------------------------------------------ inside

    def _widget_id(self, key: str, kind: str) -> str:
        element = self.element(key)
        if element is None or element.WhichOneof("type") != kind:
            raise LookupError(f"no {kind} with key {key!r} on the page")
        return element_id(element)

    async def _rerun_and_wait(self, *, timeout_s: float, extra: Iterable[WidgetState] = ()) -> float:
        """A full rerun request, then seconds until a full run started after it has finished."""
        started_before = self.full_runs_started
        sent = time.monotonic()
        await self.rerun(extra=extra)
        await self.wait_for(lambda: self._done_upto > started_before, timeout_s=timeout_s)
        return time.monotonic() - sent

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        why = "closed by the server"
        try:
            async for raw in self._ws:
                self.messages += 1
                self.received_bytes += len(raw)
                self._handle(ForwardMsg.FromString(raw), raw)
                self._wake()
        except ConnectionClosed as exc:
            why = f"closed by the server ({exc})"
        except Exception as exc:  # a message this visitor cannot read ends it, visibly
            why = f"{type(exc).__name__}: {exc}"
        finally:
            self.closed = self.closed or why  # close() says first when the visitor left
            for _, timer in self._timers.values():
                timer.cancel()
            self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _handle(self, msg: ForwardMsg, raw: bytes) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            msg = self._cache.resolve(msg)
            kind = msg.WhichOneof("type")
        else:
            self._cache.keep(msg, raw)
        if kind == "new_session":
            self._run_id = msg.metadata.run.script_run_id
            self._fragments = tuple(msg.metadata.run.fragment_ids)
            self.running = True
            self._page_script_hash = msg.new_session.page_script_hash or self._page_script_hash
            if msg.new_session.config.max_cached_message_age:
                self._cache.max_age = msg.new_session.config.max_cached_message_age
            if not self._fragments:  # a full run: the frontend drops every timer, the run's fragments set theirs
                self.full_runs_started += 1
                for fragment in list(self._timers):
                    self._stop_timer(fragment)
        elif kind == "delta":
            self._place(msg)
        elif kind == "script_finished":
            self._finished(msg)
        elif kind == "auto_rerun":
            self._start_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment in msg.stop_auto_rerun.fragment_ids:
                self._stop_timer(fragment)
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "session_status_changed":
            self.running = msg.session_status_changed.script_is_running

    def _place(self, msg: ForwardMsg) -> None:
        delta = msg.delta
        if delta.WhichOneof("type") == "add_block":  # a place, not content; tabs with a key are a widget
            block = delta.add_block
            if block.WhichOneof("type") == "tab_container":
                parts = block.tab_container.id.split("-", 2)
                if len(parts) == 3 and parts[2]:
                    self._tabs[parts[2]] = block.tab_container.id
            return
        if delta.WhichOneof("type") != "new_element":  # transients pass
            return
        now = time.monotonic()
        self.tree[tuple(msg.metadata.delta_path)] = Placed(delta.new_element, self._run_id, delta.fragment_id, now)
        key = key_of(delta.new_element)
        if key is not None:
            self.first_seen.setdefault(key, now)
        if delta.new_element.WhichOneof("type") == "slider":  # what the frontend's slider holds
            slider = delta.new_element.slider
            if slider.set_value or slider.id not in self._sliders:
                self._sliders[slider.id] = list(slider.value if slider.set_value else slider.default)

    def _finished(self, msg: ForwardMsg) -> None:
        status = msg.script_finished
        run = msg.metadata.run if msg.metadata.HasField("run") else None
        fragments = tuple(run.fragment_ids) if run is not None else self._fragments
        run_id = run.script_run_id if run is not None else self._run_id
        if status in SETTLED:  # the frontend's clearStaleNodes: what this run did not send again goes
            self.tree = {path: p for path, p in self.tree.items()
                         if p.run_id == run_id or (fragments and p.fragment_id not in fragments)}
        if status != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            self._cache.run_finished(fragments)
        if status in DONE and not fragments:
            self.full_runs_done += 1
            self._done_upto = self.full_runs_started
        if run is None or run_id == self._run_id:
            self.running = False

    def _start_timer(self, fragment_id: str, interval: float) -> None:
        if not fragment_id or self._timers.get(fragment_id, (None,))[0] == interval:
            return  # the frontend keeps a timer that runs at this interval already
        self._stop_timer(fragment_id)
        self._timers[fragment_id] = (interval, asyncio.create_task(self._tick(fragment_id, interval),
                                                                   name=f"auto-rerun-{fragment_id[:12]}"))

    def _stop_timer(self, fragment_id: str) -> None:
        entry = self._timers.pop(fragment_id, None)
        if entry is not None:
            entry[1].cancel()

    async def _tick(self, fragment_id: str, interval: float) -> None:
        """setInterval(() => rerun this fragment, interval): sent whether or not a run is going."""
        next_at = time.monotonic() + interval
        while not self.closed:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            try:
                await self.rerun(fragment_id=fragment_id, auto=True)
            except Exception:  # the connection ended: the reader says why
                return
            self.auto_reruns_sent += 1
