"""Ten visitors on one server at once: one trains while the others move a slider or type.

Correctness only (every page gets its heatmaps and its change, the server stays up, nothing breaks
on any page); the figures (pages served, slowest page, the server's peak memory) are printed and
written to artifacts/load.json, not asserted, since they depend on the machine.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from .conftest import (ARTIFACTS, CHROMIUM, HEATMAPS, SHOTS, heatmaps_drawn, healthy, is_idle, open_page, open_tab,
                       plot, press_slider, shapes, shot, slider_thumb, slider_value, start_server, stop_server,
                       warn_about_log)

pytestmark = pytest.mark.browser

N_PAGES = 10
TRAIN_STEPS = 50  # the trainer's run: short, so the test stays bounded on a busy 2-core machine
LOAD_DEADLINE_S = 90  # for all pages to draw; far above what it takes, so only a hang fails it
CHANGE_DEADLINE_S = 120  # for all changes (and the training) to come back


def _proc_tree(pid: int) -> list[int]:
    """pid and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Memory:
    """Peak RSS of the server: VmHWM (the kernel's high-water mark) of the streamlit process, plus
    that of any child process seen while sampling (their peaks may not coincide: an upper bound)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.hwm_kb: dict[int, int] = {}

    def sample(self) -> None:
        for p in _proc_tree(self.pid):
            self.hwm_kb[p] = max(self.hwm_kb.get(p, 0), _status_kb(p, "VmHWM"))

    @property
    def peak_mb(self) -> float:
        return sum(self.hwm_kb.values()) / 1024

    def processes(self) -> dict[str, float]:
        """Peak MB per process of the tree, by pid and the start of its command line."""
        out = {}
        for pid, kb in self.hwm_kb.items():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80].strip()
            except OSError:
                cmd = "(exited)"
            out[f"{pid} {cmd}"] = round(kb / 1024, 1)
        return out


class Health:
    """/_stcore/health polled during the test: failures in all, and the longest run of them."""

    def __init__(self, url: str):
        self.url = url
        self.checks = self.failures = self.run = self.longest_run = 0

    def check(self) -> None:
        ok = healthy(self.url, timeout=5)
        self.checks += 1
        self.failures += not ok
        self.run = 0 if ok else self.run + 1
        self.longest_run = max(self.longest_run, self.run)


def _expectation(i: int) -> tuple[str, str]:
    """What visitor i does and the shape text that proves it reached the server and came back."""
    if i == 0:
        return "train", ""
    kind = ("dim", "positions", "text")[(i - 1) % 3]
    return kind, {"dim": "x.shape = torch.Size([1, 12, 33])",
                  "positions": "wpe.weight.shape = torch.Size([15, 32])",
                  "text": "x.shape = torch.Size([1, 7, 32])"}[kind]


def _start_action(page, kind: str) -> None:
    """Fire the input and return at once: the pages work in parallel in the browser."""
    if kind == "train":
        button = page.locator(".st-key-train button:visible").first
        button.focus()
        button.press("Enter")
    elif kind == "dim":
        thumb = slider_thumb(page, "dim")
        thumb.focus()
        thumb.press("ArrowRight")
    elif kind == "positions":
        thumb = slider_thumb(page, "positions")
        thumb.focus()
        thumb.press("ArrowLeft")
    else:
        area = page.locator(".st-key-text textarea")
        area.fill("The cat sat on the mat.")
        area.press("Control+Enter")


def _done(page, kind: str, expected: str) -> bool:
    if kind == "train":
        after = plot(page, "scatter_after")
        return (plot(page, "scatter_before") is not None and after is not None
                and f"after {TRAIN_STEPS} steps" in (after["title"] or "") and is_idle(page))
    return expected in shapes(page) and heatmaps_drawn(page) and is_idle(page)


def _describe(pages, which: list[int], name: str) -> dict:
    """What the stuck pages show (script state, shapes, messages); screenshots them."""
    out = {}
    for i in which:
        p = pages[i].page
        out[i] = {
            "state": p.evaluate("() => { const a = document.querySelector('[data-testid=\"stApp\"]'); "
                                "return a && [a.getAttribute('data-test-script-state'), "
                                "a.getAttribute('data-test-connection-state')]; }"),
            "shapes": shapes(p),
            "alerts": p.locator('[data-testid="stAlert"]').all_inner_texts(),
            "console_errors": pages[i].console_errors,
        }
        shot(p, f"load-{name}-{i}")
    return out


def test_ten_visitors_one_training(browser):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test-setup`")
    SHOTS.mkdir(parents=True, exist_ok=True)
    proc, url = start_server()
    memory, health = Memory(proc.pid), Health(url)
    pages, loaded, changed = [], {}, {}
    figures: dict = {"pages": N_PAGES, "training_steps": TRAIN_STEPS}
    start = time.monotonic()
    try:
        opened = []
        for _ in range(N_PAGES):
            opened.append(time.monotonic())
            pages.append(open_page(browser, url))
        memory.sample()

        # 1. every visitor gets the three heatmaps
        deadline = time.monotonic() + LOAD_DEADLINE_S
        while len(loaded) < N_PAGES and time.monotonic() < deadline:
            for i, w in enumerate(pages):
                if i not in loaded and heatmaps_drawn(w.page) and is_idle(w.page):
                    loaded[i] = time.monotonic() - opened[i]
            memory.sample()
            health.check()
            time.sleep(0.2)
        stuck = [i for i in range(N_PAGES) if i not in loaded]
        assert not stuck, f"pages that never drew their heatmaps: {_describe(pages, stuck, 'load-stuck')}"
        print(f"\nall {N_PAGES} pages drew their heatmaps after {time.monotonic() - start:.1f} s")

        # the trainer picks a short run: Steps slider Home (10), then up in steps of 10
        trainer = pages[0].page
        open_tab(trainer, "2 · Training")
        press_slider(trainer, "steps", "Home")
        for _ in range(TRAIN_STEPS // 10 - 1):
            press_slider(trainer, "steps", "ArrowRight")
        assert slider_value(trainer, "steps") == str(TRAIN_STEPS)

        # 2. one trains, the others change a slider or the text, all at once
        plans = [_expectation(i) for i in range(N_PAGES)]
        acted = []
        for w, (kind, _) in zip(pages, plans):
            _start_action(w.page, kind)
            acted.append(time.monotonic())
        deadline = time.monotonic() + CHANGE_DEADLINE_S
        while len(changed) < N_PAGES and time.monotonic() < deadline:
            for i, w in enumerate(pages):
                if i not in changed and _done(w.page, *plans[i]):
                    changed[i] = time.monotonic() - acted[i]
                    print(f"page {i} ({plans[i][0]}) done after {changed[i]:.1f} s")
            memory.sample()
            health.check()
            time.sleep(0.2)
        stuck = [i for i in range(N_PAGES) if i not in changed]
        assert not stuck, f"pages that never showed their change: {_describe(pages, stuck, 'change-stuck')}"

        # every visitor's heatmaps have the shape it asked for, and nothing broke on any page
        for i, w in enumerate(pages[1:], start=1):
            x = next(s for s in shapes(w.page) if s.startswith("x.shape"))
            _, T, d = (int(n) for n in re.findall(r"\d+", x))
            for key in HEATMAPS:
                trace = plot(w.page, key)["traces"][0]
                assert (trace["rows"], trace["cols"]) == (T, d), (i, key)
        for w in pages:
            w.assert_clean()
        assert proc.poll() is None and healthy(url), "the server died"
        # a busy server may miss a 5 s health deadline now and then; three in a row means it is down
        assert health.longest_run < 3, f"/_stcore/health failed {health.longest_run} times in a row"
        figures["training_reported"] = next(
            (line for line in trainer.locator('[data-testid="stMain"]').inner_text().splitlines()
             if line.startswith("Trained in")), None)
        shot(trainer, "load-trainer")
        shot(pages[-1].page, "load-visitor")
    finally:
        memory.sample()
        figures.update({
            "pages_served": len(loaded),  # pages that drew their three heatmaps
            "slowest_page_to_heatmaps_s": round(max(loaded.values()), 1) if loaded else None,
            "median_page_to_heatmaps_s": round(sorted(loaded.values())[len(loaded) // 2], 1) if loaded else None,
            "pages_changed": len(changed),
            "slowest_change_to_heatmaps_s": round(max((v for i, v in changed.items() if i), default=0), 1),
            "training_to_scatter_plots_s": round(changed[0], 1) if 0 in changed else None,
            "server_peak_rss_mb": round(memory.peak_mb, 1),
            "server_processes_peak_mb": memory.processes(),
            "health_checks": health.checks,
            "health_check_failures": health.failures,
            "load_average_1min": round(os.getloadavg()[0], 1),
            "total_s": round(time.monotonic() - start, 1),
        })
        (ARTIFACTS / "load.json").write_text(json.dumps(figures, indent=2) + "\n")
        print("\nload test:", json.dumps(figures, indent=2))
        for w in pages:
            w.page.context.close()
        stop_server(proc)
        warn_about_log(url)
