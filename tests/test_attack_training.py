"""Attack surface: training. A visitor cannot stop (or see a Stop button for) another visitor's run,
a flood of trainings ends in "try again" once the queue is full, and a run whose page went away is
cancelled and says so to its owner. The pages are AppTests with their session id set per visitor and
a small real job registry whose one trainer is held busy, so nothing here trains (the process-level
tests, SIGKILL included, are in tests/test_jobs.py)."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from embedviz import jobs
from embedviz.ui import loaders, runs
from embedviz.ui.page import TABS

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def held(gate: threading.Event):
    """Work that keeps the registry's only trainer busy until `gate` is set."""
    def work(*, on_progress, should_stop):
        gate.wait(120)
        return SimpleNamespace(stopped_early=False)
    return work


@pytest.fixture
def busy(monkeypatch):
    """A registry with one trainer, held busy, and room for one queued training; the page uses it."""
    def make(abandon_after_s: float = 60.0) -> jobs.JobRegistry:
        registry = jobs.JobRegistry(max_running=1, max_queued=1, max_kept=4, max_seconds=120,
                                    abandon_after_s=abandon_after_s, isolated=False)
        blocker = registry.submit("blocker", held(gate), owner="someone else")
        deadline = time.monotonic() + 10
        while blocker.state != jobs.RUNNING and time.monotonic() < deadline:
            time.sleep(0.01)
        assert blocker.state == jobs.RUNNING
        monkeypatch.setattr(loaders, "registry", lambda: registry)
        return registry

    gate = threading.Event()
    yield make
    gate.set()


def page(monkeypatch, session: str, at: AppTest | None = None) -> AppTest:
    """Run (or rerun) a page as visitor `session`."""
    monkeypatch.setattr(runs, "session_id", lambda: session)
    if at is None:
        at = AppTest.from_file(APP, default_timeout=120)
        at.session_state["tab"] = TABS[1]  # the training tab
    at.run()
    assert not at.exception, at.exception
    return at


def infos(at: AppTest) -> list[str]:
    return [e.value for e in at.info]


def has_stop(at: AppTest) -> bool:
    return any(b.key == "stop" for b in at.button)


def test_only_the_owner_gets_a_stop_button_and_a_flood_is_refused(monkeypatch, busy):
    busy()
    a = page(monkeypatch, "A")
    a.button(key="train").click()
    a = page(monkeypatch, "A", a)
    waiting = "Waiting for a free trainer: 1 training(s) running, 0 queued before this one. It starts by itself."
    assert waiting in infos(a) and has_stop(a)

    b = page(monkeypatch, "B")  # the same settings: B sees A's queued run, without a Stop button
    assert waiting in infos(b) and not has_stop(b)
    assert b.button(key="train").disabled

    b.slider(key="steps").set_value(20)  # other settings: the one queue place is A's
    b = page(monkeypatch, "B", b)
    b.button(key="train").click()
    b = page(monkeypatch, "B", b)
    assert [w.value for w in b.warning] == [
        "1 training(s) are already waiting for a free trainer. Try again in a minute, or use settings "
        "someone has trained already."]
    assert any(i.startswith("Press **Train**") for i in infos(b))

    a.button(key="stop").click()
    a = page(monkeypatch, "A", a)
    assert "That training was cancelled before it started. Press **Train** to queue it again." in infos(a)
    b.slider(key="steps").set_value(300)
    b = page(monkeypatch, "B", b)  # a run stopped by its owner is not offered to others
    assert any(i.startswith("Press **Train**") for i in infos(b)) and not has_stop(b)


def test_a_run_nobody_watches_is_cancelled_and_its_owner_told(monkeypatch, busy):
    busy(abandon_after_s=0.5)
    a = page(monkeypatch, "A")
    a.button(key="train").click()
    a = page(monkeypatch, "A", a)
    assert has_stop(a)
    time.sleep(1.0)  # the page is gone: nothing polls the job
    a = page(monkeypatch, "A", a)
    assert "That training was cancelled before it started. Press **Train** to queue it again." in infos(a)
    assert not a.button(key="train").disabled  # and it can be queued again
